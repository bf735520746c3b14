//! Staff accounts (admins only): the list, creating an account (with a generated password
//! shown once) and deactivating one, which ends its sessions at once.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};

use super::{page, CsrfOnly};
use crate::auth::{self, Admin, AdminForm};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{NewUser, User};
use crate::routes::checkout::Page;
use crate::schema::{admin_sessions, users};

/// Every staff account, for the users page.
async fn user_rows(db: &Db) -> AppResult<Vec<Value>> {
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
        .map(|u| json!({ "id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active }))
        .collect())
}

#[get("/users")]
pub(super) async fn users_page(db: &State<Db>, admin: Admin) -> AppResult<Template> {
    let rows = user_rows(db).await?;
    Ok(page(
        "admin/users",
        &admin.0,
        json!({ "title": "Users", "users": rows, "errors": {}, "created": null, "form": { "email": "", "name": "", "role": "staff" } }),
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
pub(super) async fn create_user(db: &State<Db>, form: AdminForm<UserForm>) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
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
    let password = crate::passwords::generate();
    let mut created = None;
    if errors.is_empty() {
        let (email, name, role, hash, s2) = (
            email.unwrap(),
            name.unwrap(),
            f.role.clone(),
            crate::passwords::hash(&password),
            staff.clone(),
        );
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
                    auth::audit(
                        conn,
                        &s2,
                        "user.create",
                        "user",
                        Some(u.id),
                        None,
                        Some(json!({ "email": u.email, "role": u.role })),
                    )
                })?;
                Ok(true)
            })
            .await?;
        if done {
            created = Some(json!({ "email": f.email.trim(), "password": password }));
        } else {
            errors.insert("email", "An account with this email exists.".into());
        }
    }
    let rows = user_rows(db).await?;
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
            json!({ "title": "Users", "users": rows, "errors": errors, "created": created, "form": f }),
        ),
    )))
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
            diesel::update(
                admin_sessions::table
                    .filter(admin_sessions::user_id.eq(id))
                    .filter(admin_sessions::revoked_at.is_null()),
            )
            .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
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
