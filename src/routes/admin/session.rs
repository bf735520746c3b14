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
use crate::auth::{self, LoginLimits, Staff, StaffForm, SESSION_COOKIE};
use crate::db::Db;
use crate::error::AppResult;
use crate::net::ClientIp;
use crate::routes::checkout::Page;
use crate::schema::{admin_sessions, users};
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
        json!({ "title": "Staff login", "next": next.unwrap_or("/admin"), "email": "", "error": null, "csrf": csrf }),
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

#[post("/login", data = "<form>")]
#[allow(clippy::too_many_arguments)]
pub(super) async fn login(
    db: &State<Db>,
    app: &State<AppInfo>,
    limits: &State<LoginLimits>,
    cookies: &CookieJar<'_>,
    client: ClientIp,
    agent: crate::routes::waivers::UserAgent,
    form: Form<LoginForm>,
) -> AppResult<Page> {
    let form = form.into_inner();
    let next = if form.next.starts_with("/admin") && !form.next.starts_with("/admin/login") {
        form.next.clone()
    } else {
        "/admin".into()
    };
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
    if !limits.attempt(&form.email, client.0) {
        tracing::warn!(client = %client.0, "login rate limit reached");
        return Ok(again(
            Status::TooManyRequests,
            "Too many login attempts. Please wait a few minutes and try again.",
        ));
    }
    match auth::authenticate(db, &form.email, &form.password).await? {
        Some(user) => {
            auth::start_session(
                db,
                cookies,
                user.id,
                client.0.to_string(),
                agent.0,
                app.production,
            )
            .await?;
            Ok(Page::Redirect(Redirect::to(next)))
        }
        None => Ok(again(
            Status::UnprocessableEntity,
            "That email and password do not match an active account.",
        )),
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
    form: StaffForm<PasswordForm>,
) -> AppResult<Page> {
    let StaffForm { staff, form } = form;
    let mut errors: HashMap<&str, String> = HashMap::new();
    if auth::authenticate(db, &staff.user.email, &form.current)
        .await?
        .is_none()
    {
        errors.insert("current", "That is not your current password.".into());
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
    let (hash, s2, session) = (
        crate::passwords::hash(&form.new),
        staff.clone(),
        staff.session_id,
    );
    db.run(move |conn| {
        conn.transaction(|conn| {
            diesel::update(users::table.find(s2.user.id))
                .set((
                    users::password_hash.eq(hash),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
            // Other sessions of this account end; this one goes on.
            diesel::update(
                admin_sessions::table
                    .filter(admin_sessions::user_id.eq(s2.user.id))
                    .filter(admin_sessions::id.ne(session))
                    .filter(admin_sessions::revoked_at.is_null()),
            )
            .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
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
