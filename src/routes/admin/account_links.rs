//! Passwords set by one-time link: "forgot password" on the login page mails a link (same
//! answer whether or not the address has an account, limited per network and per address
//! with find-my-booking's budgets), and the invite or reset link opens a form that sets the
//! password once, ends the account's sessions and clears its login lock-out. The forms have
//! no session, so their CSRF token is the login form's cookie token. Tests `accounts::*`.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;
use ticketing_domain::accounts::{self, Purpose};

use crate::auth::{self, LoginLimits};
use crate::db::Db;
use crate::error::AppResult;
use crate::hashing::PasswordHasher;
use crate::net::{ClientIp, ClientKey};
use crate::routes::checkout::Page;
use crate::routes::find::FindLimits;
use crate::schema::users;
use crate::AppInfo;

/// The shortest and longest password accepted (as for a password change).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=200;

fn forgot_page(csrf: &str, email: &str, error: Option<&str>, sent: bool) -> Template {
    Template::render(
        "admin/forgot_password",
        json!({ "title": "Forgot password", "csrf": csrf, "email": email, "error": error, "sent": sent }),
    )
}

#[get("/forgot-password")]
pub(super) fn forgot_password_page(app: &State<AppInfo>, cookies: &CookieJar<'_>) -> Template {
    let csrf = auth::login_csrf_token(cookies, app.production);
    forgot_page(&csrf, "", None, false)
}

#[derive(FromForm)]
pub struct ForgotForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    email: String,
}

#[post("/forgot-password", data = "<form>")]
pub(super) async fn forgot_password(
    db: &State<Db>,
    app: &State<AppInfo>,
    limits: &State<FindLimits>,
    cookies: &CookieJar<'_>,
    client_key: ClientKey,
    client: ClientIp,
    form: Form<ForgotForm>,
) -> AppResult<Page> {
    let csrf = auth::login_csrf_token(cookies, app.production);
    let typed: String = form.email.chars().take(254).collect();
    if !auth::login_csrf_ok(cookies, &form.csrf) {
        return Ok(Page::Status((
            Status::Forbidden,
            forgot_page(
                &csrf,
                &typed,
                Some("This form has expired or did not come from this site. Please try again."),
                false,
            ),
        )));
    }
    let email = match ticketing_core::validate::email(&form.email) {
        Ok(e) => e,
        Err(msg) => {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                forgot_page(&csrf, &typed, Some(&msg), false),
            )))
        }
    };
    // Over budget: the same answer, and no mail (test `accounts::forgot_password_is_limited`).
    if limits.allow(client_key, &email) {
        let (lookup, ip) = (email.clone(), client.0.to_string());
        db.run(move |conn| {
            conn.transaction(|conn| {
                match crate::models::User::find_by_email(conn, &lookup)? {
                    Some(user) if user.active => {
                        accounts::issue(conn, user.id, Purpose::Reset)?;
                        // Nobody is signed in: the entry names the account and the requester's
                        // IP (test `accounts::forgot_password_answers_the_same_...`).
                        ticketing_domain::audit::record(
                            conn,
                            ticketing_domain::audit::Actor {
                                user_id: None,
                                ip: &ip,
                            },
                            "user.password_reset_requested",
                            "user",
                            Some(user.id),
                            None,
                            None,
                        )?;
                    }
                    _ => {}
                }
                Ok::<_, diesel::result::Error>(())
            })?;
            Ok(())
        })
        .await?;
    } else {
        tracing::warn!(client = %client_key, "password reset refused: request limit reached");
    }
    Ok(Page::Template(forgot_page(&csrf, &email, None, true)))
}

fn set_page(
    csrf: &str,
    token: &str,
    purpose: Option<Purpose>,
    errors: &HashMap<&str, String>,
) -> Template {
    Template::render(
        "admin/set_password",
        json!({
            "title": if purpose == Some(Purpose::Invite) { "Choose your password" } else { "Choose a new password" },
            "csrf": csrf,
            "token": token,
            "valid": purpose.is_some(),
            "invite": purpose == Some(Purpose::Invite),
            "errors": errors,
        }),
    )
}

#[get("/set-password/<token>")]
pub(super) async fn set_password_page(
    db: &State<Db>,
    app: &State<AppInfo>,
    cookies: &CookieJar<'_>,
    token: &str,
) -> AppResult<Page> {
    let csrf = auth::login_csrf_token(cookies, app.production);
    let t = token.to_string();
    let holder = db.run(move |conn| Ok(accounts::holder(conn, &t)?)).await?;
    let page = set_page(&csrf, token, holder.map(|(_, p)| p), &HashMap::new());
    Ok(match holder {
        Some(_) => Page::Template(page),
        None => Page::Status((Status::NotFound, page)),
    })
}

#[derive(FromForm)]
pub struct SetPasswordForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    confirm: String,
}

#[post("/set-password/<token>", data = "<form>")]
#[allow(clippy::too_many_arguments)]
pub(super) async fn set_password(
    db: &State<Db>,
    app: &State<AppInfo>,
    hasher: &State<PasswordHasher>,
    limits: &State<LoginLimits>,
    cookies: &CookieJar<'_>,
    client: ClientIp,
    token: &str,
    form: Form<SetPasswordForm>,
) -> AppResult<Page> {
    let csrf = auth::login_csrf_token(cookies, app.production);
    let t = token.to_string();
    let holder = db.run(move |conn| Ok(accounts::holder(conn, &t)?)).await?;
    let Some((_, purpose)) = holder else {
        return Ok(Page::Status((
            Status::NotFound,
            set_page(&csrf, token, None, &HashMap::new()),
        )));
    };
    let mut errors: HashMap<&str, String> = HashMap::new();
    if !auth::login_csrf_ok(cookies, &form.csrf) {
        errors.insert(
            "password",
            "This form has expired or did not come from this site. Please try again.".into(),
        );
    } else if !PASSWORD_CHARS.contains(&form.password.chars().count()) {
        errors.insert("password", "Use 12 to 200 characters.".into());
    } else if form.password != form.confirm {
        errors.insert("confirm", "The two passwords differ.".into());
    }
    if !errors.is_empty() {
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            set_page(&csrf, token, Some(purpose), &errors),
        )));
    }
    let hash = hasher.hash(&form.password).await?;
    let (t, ip) = (token.to_string(), client.0.to_string());
    let done: Option<String> = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let Some(user_id) = accounts::redeem(conn, &t, &hash)? else {
                    return Ok(None);
                };
                auth::end_sessions(conn, user_id, None)?;
                ticketing_domain::audit::record(
                    conn,
                    ticketing_domain::audit::Actor {
                        user_id: Some(user_id),
                        ip: &ip,
                    },
                    "user.password_link",
                    "user",
                    Some(user_id),
                    None,
                    None,
                )?;
                let email: String = users::table
                    .find(user_id)
                    .select(users::email)
                    .first(conn)?;
                Ok::<_, diesel::result::Error>(Some(email))
            })
            .map_err(Into::into)
        })
        .await?;
    let Some(email) = done else {
        // Used by a parallel submit a moment ago.
        return Ok(Page::Status((
            Status::NotFound,
            set_page(&csrf, token, None, &HashMap::new()),
        )));
    };
    // A new password is a fresh start: the account's lock-out by failed logins ends.
    limits.unlock(&email);
    Ok(Page::Template(Template::render(
        "admin/login",
        json!({ "title": "Staff login", "next": "/admin", "email": email, "error": null, "csrf": csrf, "notice": "Your password is set. Log in with it now." }),
    )))
}
