//! Signing in and out, and changing one's own password. The login form has no session yet,
//! so its CSRF token lives in a private cookie (see `auth::login_csrf_token`); every form
//! after it goes through [`StaffForm`]. A password change ends the account's other sessions.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{page, CsrfOnly};
use crate::auth::{self, LoginLimits, Refused, Staff, StaffForm, SESSION_COOKIE};
use crate::db::Db;
use crate::error::AppResult;
use crate::hashing::PasswordHasher;
use crate::net::{ClientIp, ClientKey};
use crate::routes::checkout::Page;
use crate::schema::users;
use crate::AppInfo;

#[get("/login?<next>")]
pub(super) fn login_page(
    app: &State<AppInfo>,
    cookies: &CookieJar<'_>,
    next: Option<&str>,
) -> Template {
    let csrf = auth::login_csrf_token(cookies, app.production);
    Template::render(
        "admin/login",
        json!({ "title": "Staff login", "next": safe_next(next.unwrap_or("/admin")), "email": "", "error": null, "csrf": csrf }),
    )
}

#[derive(FromForm)]
pub struct LoginForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    password: String,
    #[field(default = String::from("/admin"))]
    next: String,
}

/// Where a login may send the browser afterwards: a path inside the admin area (not the
/// login page), made only of URL-safe characters (none a control character even once
/// percent-decoded) and at most 512 long; anything else goes to
/// the dashboard. A header can never be built from it (test `admin::login_next_is_checked`).
pub fn safe_next(next: &str) -> &str {
    let admin_path = next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?");
    let clean = next.len() <= 512
        && next
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'\\' | b'"' | b'<' | b'>'))
        && !next.contains("//")
        && rocket::http::RawStr::new(next)
            .percent_decode()
            .is_ok_and(|decoded| !decoded.chars().any(char::is_control))
        && rocket::http::uri::Origin::parse(next).is_ok();
    if admin_path && clean && !next.starts_with("/admin/login") {
        next
    } else {
        "/admin"
    }
}

/// What a refused password check tells the person at the form.
fn refusal_text(refused: Refused) -> (Status, &'static str) {
    match refused {
        Refused::NoMatch => (
            Status::UnprocessableEntity,
            "That email and password do not match an active account.",
        ),
        Refused::Limited => (
            Status::TooManyRequests,
            "Too many login attempts. Please wait a few minutes and try again.",
        ),
        Refused::Busy => (
            Status::ServiceUnavailable,
            "The site is busy checking passwords. Please try again in a moment.",
        ),
    }
}

#[post("/login", data = "<form>")]
#[allow(clippy::too_many_arguments)]
pub(super) async fn login(
    db: &State<Db>,
    app: &State<AppInfo>,
    limits: &State<LoginLimits>,
    hasher: &State<PasswordHasher>,
    cookies: &CookieJar<'_>,
    client: ClientIp,
    client_key: ClientKey,
    agent: crate::routes::waivers::UserAgent,
    form: Form<LoginForm>,
) -> AppResult<Page> {
    let form = form.into_inner();
    let next = safe_next(&form.next).to_string();
    let csrf = auth::login_csrf_token(cookies, app.production);
    let again = |status: Status, error: &str| {
        Page::Status((
            status,
            Template::render(
                "admin/login",
                json!({ "title": "Staff login", "next": next, "email": form.email.chars().take(254).collect::<String>(), "error": error, "csrf": csrf }),
            ),
        ))
    };
    if !auth::login_csrf_ok(cookies, &form.csrf) {
        return Ok(again(
            Status::Forbidden,
            "This login form has expired or did not come from this site. Please try again.",
        ));
    }
    let checked =
        auth::authenticate(db, hasher, limits, client_key, &form.email, &form.password).await?;
    match checked {
        Ok(user) => {
            auth::start_session(
                db,
                cookies,
                user.id,
                client.0.to_string(),
                agent.0,
                app.production,
            )
            .await?;
            Ok(Page::Redirect(Redirect::to(next.clone())))
        }
        Err(refused) => {
            if refused == Refused::Limited {
                tracing::warn!(client = %client_key, "login refused: failure limit reached");
            }
            let (status, text) = refusal_text(refused);
            Ok(again(status, text))
        }
    }
}

#[post("/logout", data = "<form>")]
pub(super) async fn logout(
    db: &State<Db>,
    cookies: &CookieJar<'_>,
    form: super::twofactor::AnyStageForm<CsrfOnly>,
) -> AppResult<Redirect> {
    // Any session may log out, also one still owing its second factor.
    let super::twofactor::AnyStageForm { staff, .. } = form;
    auth::revoke(db, staff.session_id).await?;
    cookies.remove_private(rocket::http::Cookie::build(SESSION_COOKIE).path("/admin"));
    Ok(Redirect::to("/admin/login"))
}

#[get("/password")]
pub(super) fn password_page(staff: Staff) -> Template {
    page(
        "admin/password",
        &staff,
        json!({ "title": "Change password", "errors": {}, "done": false }),
    )
}

#[derive(FromForm)]
pub struct PasswordForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    current: String,
    #[field(default = String::new())]
    new: String,
}

csrf_form!(PasswordForm);

#[post("/password", data = "<form>")]
pub(super) async fn change_password(
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    limits: &State<LoginLimits>,
    client_key: ClientKey,
    form: StaffForm<PasswordForm>,
) -> AppResult<Page> {
    let StaffForm { staff, form } = form;
    let mut errors: HashMap<&str, String> = HashMap::new();
    // The current password is checked under the same limits and on the same hashing pool as
    // a login (test `admin::password_change_is_limited_like_login`).
    let checked = auth::authenticate(
        db,
        hasher,
        limits,
        client_key,
        &staff.user.email,
        &form.current,
    )
    .await?;
    match checked {
        Ok(_) => {}
        Err(Refused::NoMatch) => {
            errors.insert("current", "That is not your current password.".into());
        }
        Err(refused) => {
            errors.insert("current", refusal_text(refused).1.into());
        }
    }
    if form.new.chars().count() < 12 || form.new.chars().count() > 200 {
        errors.insert("new", "Use 12 to 200 characters.".into());
    }
    if !errors.is_empty() {
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/password",
                &staff,
                json!({ "title": "Change password", "errors": errors, "done": false }),
            ),
        )));
    }
    let hash = hasher.hash(&form.new).await?;
    let (s2, session) = (staff.clone(), staff.session_id);
    db.run(move |conn| {
        conn.transaction(|conn| {
            diesel::update(users::table.find(s2.user.id))
                .set((
                    users::password_hash.eq(hash),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
            // Other sessions of this account end; this one goes on.
            auth::end_sessions(conn, s2.user.id, Some(session))?;
            auth::audit(
                conn,
                &s2,
                "user.password",
                "user",
                Some(s2.user.id),
                None,
                None,
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(Page::Template(page(
        "admin/password",
        &staff,
        json!({ "title": "Change password", "errors": {}, "done": true }),
    )))
}
