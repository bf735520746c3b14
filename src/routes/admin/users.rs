//! Staff accounts (admins only): the list, creating an account (which mails it an invite to
//! choose its password: no password is ever shown on screen), sending an account a new
//! password link, changing its role, deactivating one, which ends its sessions at once, and
//! unlocking an account
//! that failed logins have locked on some network; requiring two-factor authentication of an
//! account, and resetting an account's second factor (a lost phone), which also ends its
//! sessions.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};

use super::{page, CsrfOnly};
use crate::auth::{self, Admin, AdminForm, LoginLimits};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::hashing::PasswordHasher;
use crate::models::{NewUser, User};
use crate::routes::checkout::Page;
use crate::schema::users;

/// Every staff account, for the users page.
async fn user_rows(db: &Db, limits: &LoginLimits) -> AppResult<Vec<Value>> {
    let list: Vec<User> = db
        .run(|conn| {
            Ok(users::table
                .order(users::email)
                .select(User::as_select())
                .load(conn)?)
        })
        .await?;
    Ok(list
        .iter()
        .map(|u| json!({ "id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active, "locked": limits.is_locked(&u.email), "two_factor": u.totp_enabled(), "two_factor_required": u.two_factor_required }))
        .collect())
}

#[get("/users")]
pub(super) async fn users_page(
    db: &State<Db>,
    limits: &State<LoginLimits>,
    tf: &State<crate::twofactor::TwoFactor>,
    admin: Admin,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Template> {
    let rows = user_rows(db, limits).await?;
    let notice = flash.map(|f| f.message().to_string());
    Ok(page(
        "admin/users",
        &admin.0,
        json!({ "title": "Users", "users": rows, "errors": {}, "created": null, "notice": notice, "require_all": tf.require_all, "form": { "email": "", "name": "", "role": "staff" } }),
    ))
}

#[derive(FromForm, serde::Serialize)]
pub struct UserForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::from("staff"))]
    role: String,
}

csrf_form!(UserForm);

#[post("/users", data = "<form>")]
pub(super) async fn create_user(
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    limits: &State<LoginLimits>,
    tf: &State<crate::twofactor::TwoFactor>,
    form: AdminForm<UserForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let require_all = tf.require_all;
    let mut errors: HashMap<&str, String> = HashMap::new();
    let email = ticketing_core::validate::email(&f.email)
        .map_err(|e| errors.insert("email", e))
        .ok();
    let name = ticketing_core::validate::name(&f.name)
        .map_err(|e| errors.insert("name", e))
        .ok();
    if !["admin", "staff"].contains(&f.role.as_str()) {
        errors.insert("role", "Choose admin or staff.".into());
    }
    let mut created = None;
    if errors.is_empty() {
        // Until the invite is used the account has a password nobody knows, so a login
        // attempt costs the same time as for any account.
        let hash = hasher.hash(&crate::passwords::generate()).await?;
        let (email, name, role, s2) =
            (email.unwrap(), name.unwrap(), f.role.clone(), staff.clone());
        let done = db
            .run(move |conn| {
                if User::find_by_email(conn, &email)?.is_some() {
                    return Ok(false);
                }
                conn.transaction(|conn| {
                    let u = User::insert(
                        conn,
                        &NewUser {
                            email,
                            name,
                            password_hash: hash,
                            role,
                        },
                    )?;
                    ticketing_domain::accounts::issue(
                        conn,
                        u.id,
                        ticketing_domain::accounts::Purpose::Invite,
                    )?;
                    auth::audit(
                        conn,
                        &s2,
                        "user.create",
                        "user",
                        Some(u.id),
                        None,
                        Some(json!({ "email": u.email, "role": u.role, "invited": true })),
                    )
                })?;
                Ok(true)
            })
            .await?;
        if done {
            created = Some(json!({ "email": f.email.trim() }));
        } else {
            errors.insert("email", "An account with this email exists.".into());
        }
    }
    let rows = user_rows(db, limits).await?;
    let status = if errors.is_empty() {
        Status::Ok
    } else {
        Status::UnprocessableEntity
    };
    Ok(Page::Status((
        status,
        page(
            "admin/users",
            &staff,
            json!({ "title": "Users", "users": rows, "errors": errors, "created": created, "notice": null, "require_all": require_all, "form": f }),
        ),
    )))
}

/// Mails an account a new link to choose its password (an invite that ran out, a forgotten
/// password); older links stop working.
#[post("/users/<id>/invite", data = "<form>")]
pub(super) async fn invite_user(
    db: &State<Db>,
    id: i64,
    form: AdminForm<CsrfOnly>,
) -> AppResult<Flash<Redirect>> {
    let AdminForm { staff, .. } = form;
    let email = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let user = User::find(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
                if !user.active {
                    return Ok(None);
                }
                ticketing_domain::accounts::issue(
                    conn,
                    id,
                    ticketing_domain::accounts::Purpose::Invite,
                )?;
                auth::audit(conn, &staff, "user.invite", "user", Some(id), None, None)?;
                Ok::<_, diesel::result::Error>(Some(user.email))
            })
            .map_err(Into::into)
        })
        .await?;
    let message = match email {
        Some(e) => {
            format!("A link to choose a password was mailed to {e}; it works once, for 7 days.")
        }
        None => "This account is deactivated: it gets no links.".into(),
    };
    Ok(Flash::success(Redirect::to("/admin/users"), message))
}

#[derive(FromForm)]
pub struct RoleForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    role: String,
}

csrf_form!(RoleForm);

/// Changes an account's role. An admin cannot change their own, so nobody demotes
/// themselves by mistake and an admin always remains (the one acting). The account's
/// sessions carry on with the new role from their next request. Test
/// `accounts::roles_change_but_not_ones_own`.
#[post("/users/<id>/role", data = "<form>")]
pub(super) async fn change_role(
    db: &State<Db>,
    id: i64,
    form: AdminForm<RoleForm>,
) -> AppResult<Flash<Redirect>> {
    let AdminForm { staff, form } = form;
    if !["admin", "staff"].contains(&form.role.as_str()) {
        return Err(AppError::bad_request("Choose admin or staff."));
    }
    if id == staff.user.id {
        return Err(AppError::bad_request("You cannot change your own role."));
    }
    let role = form.role.clone();
    let (email, role) = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let user = User::find(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
                if user.role == role {
                    return Ok((user.email, role));
                }
                diesel::update(users::table.find(id))
                    .set((
                        users::role.eq(&role),
                        users::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                auth::audit(
                    conn,
                    &staff,
                    "user.role",
                    "user",
                    Some(id),
                    Some(json!({ "role": user.role })),
                    Some(json!({ "role": role })),
                )?;
                Ok::<_, diesel::result::Error>((user.email, role))
            })
            .map_err(Into::into)
        })
        .await?;
    Ok(Flash::success(
        Redirect::to("/admin/users"),
        format!("{email} is now {role}."),
    ))
}

#[post("/users/<id>/deactivate", data = "<form>")]
pub(super) async fn deactivate_user(
    db: &State<Db>,
    id: i64,
    form: AdminForm<CsrfOnly>,
) -> AppResult<Redirect> {
    let AdminForm { staff, .. } = form;
    if id == staff.user.id {
        return Err(AppError::bad_request(
            "You cannot deactivate your own account.",
        ));
    }
    db.run(move |conn| {
        conn.transaction(|conn| {
            // No such account: 404, and nothing is written or audited (test
            // `hardening::deactivating_a_missing_user_is_404_and_not_audited`).
            let found = diesel::update(users::table.find(id))
                .set(users::active.eq(false))
                .execute(conn)?;
            if found == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            auth::end_sessions(conn, id, None)?;
            auth::audit(
                conn,
                &staff,
                "user.deactivate",
                "user",
                Some(id),
                Some(json!({ "active": true })),
                Some(json!({ "active": false })),
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/admin/users"))
}

/// Lifts the failed-login lock of an account on every network (for an owner locked out by
/// their own mistakes, or from a network they share with a guesser). Test
/// `admin::login_limits_an_admin_unlocks_an_account`.
#[post("/users/<id>/unlock", data = "<form>")]
pub(super) async fn unlock_user(
    db: &State<Db>,
    limits: &State<LoginLimits>,
    id: i64,
    form: AdminForm<CsrfOnly>,
) -> AppResult<Redirect> {
    let AdminForm { staff, .. } = form;
    let user = db
        .run(move |conn| Ok(User::find(conn, id)?))
        .await?
        .ok_or_else(AppError::not_found)?;
    let networks = limits.unlock(&user.email);
    db.run(move |conn| {
        auth::audit(
            conn,
            &staff,
            "user.unlock",
            "user",
            Some(user.id),
            None,
            Some(json!({ "networks": networks })),
        )?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/admin/users"))
}

#[derive(FromForm)]
pub struct RequireForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = false)]
    required: bool,
}

csrf_form!(RequireForm);

#[post("/users/<id>/two-factor/require", data = "<form>")]
pub(super) async fn require_two_factor(
    db: &State<Db>,
    id: i64,
    form: AdminForm<RequireForm>,
) -> AppResult<Flash<Redirect>> {
    let AdminForm { staff, form } = form;
    let required = form.required;
    let email = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let Some(before) = User::find(conn, id)? else {
                    return Ok(None);
                };
                User::set_two_factor_required(conn, id, required)?;
                auth::audit(
                    conn,
                    &staff,
                    "user.two_factor.require",
                    "user",
                    Some(id),
                    Some(json!({ "two_factor_required": before.two_factor_required })),
                    Some(json!({ "two_factor_required": required })),
                )?;
                Ok(Some(before.email))
            })
        })
        .await?
        .ok_or_else(AppError::not_found)?;
    let message = if required {
        format!("{email} must now sign in with two-factor authentication.")
    } else {
        format!("Two-factor authentication is no longer required of {email}.")
    };
    Ok(Flash::success(Redirect::to("/admin/users"), message))
}

#[post("/users/<id>/two-factor/reset", data = "<form>")]
pub(super) async fn reset_two_factor(
    db: &State<Db>,
    id: i64,
    form: AdminForm<CsrfOnly>,
) -> AppResult<Flash<Redirect>> {
    let AdminForm { staff, .. } = form;
    if id == staff.user.id {
        return Err(AppError::bad_request(
            "Turn your own two-factor authentication off on your two-factor page.",
        ));
    }
    let email = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let Some(before) = User::find(conn, id)? else {
                    return Ok(None);
                };
                User::disable_totp(conn, id)?;
                // Whoever holds the lost phone's sessions is signed out.
                auth::end_sessions(conn, id, None)?;
                auth::audit(
                    conn,
                    &staff,
                    "user.two_factor.reset",
                    "user",
                    Some(id),
                    Some(json!({ "two_factor": before.totp_enabled() })),
                    Some(json!({ "two_factor": false })),
                )?;
                Ok(Some(before.email))
            })
        })
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Flash::success(
        Redirect::to("/admin/users"),
        format!("Two-factor authentication of {email} was reset and its sessions ended; it can sign in with its password and set up a new app."),
    ))
}
