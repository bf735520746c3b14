//! Two-factor authentication pages: the code step after the password (`/admin/login/code`,
//! a TOTP code or a recovery code completes a pending session), and one's own enrolment page
//! (`/admin/two-factor`: set up with a QR code, confirm with a code, recovery codes shown
//! once, regenerate them, turn it off). The rules live in [`crate::twofactor`]; every change
//! writes an audit entry in the transaction that makes it.

use diesel::prelude::*;
use rocket::data::{self, Data, FromData};
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};

use super::{page, CsrfOnly};
use crate::auth::{self, CsrfForm, FormRefused, Staff};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::User;
use crate::routes::checkout::Page;
use crate::twofactor::{self, Checked, Stage, TwoFactor};
use crate::AppInfo;

/// A session at any stage (the code step and logout take it). Not signed in: 401.
#[derive(Debug, Clone)]
pub(crate) struct AnyStage(pub Staff);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AnyStage {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match auth::session(req).await {
            Ok(s) => Outcome::Success(AnyStage(s.clone())),
            Err(status) => Outcome::Error((*status, ())),
        }
    }
}

/// A signed-in session, or one that must enrol first (the enrolment page takes it). A
/// session still at the code step is sent there.
#[derive(Debug, Clone)]
pub(crate) struct Enrolling(pub Staff);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Enrolling {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match auth::session(req).await {
            Ok(s) if s.stage != Stage::Code => Outcome::Success(Enrolling(s.clone())),
            Ok(s) => {
                twofactor::set_detour(req, s.stage);
                Outcome::Error((Status::Unauthorized, ()))
            }
            Err(status) => Outcome::Error((*status, ())),
        }
    }
}

/// [`auth::StaffForm`] for a session at any stage ([`AnyStage`]): the code step's form and
/// logout. The session's CSRF token is checked.
pub(crate) struct AnyStageForm<T> {
    pub staff: Staff,
    pub form: T,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfForm + Send> FromData<'r> for AnyStageForm<T> {
    type Error = FormRefused<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let who = AnyStage::from_request(req).await.map(|s| s.0);
        auth::checked_form(req, data, who)
            .await
            .map(|(staff, form)| AnyStageForm { staff, form })
    }
}

/// [`auth::StaffForm`] for the enrolment page's forms ([`Enrolling`]).
pub(crate) struct EnrollingForm<T> {
    pub staff: Staff,
    pub form: T,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfForm + Send> FromData<'r> for EnrollingForm<T> {
    type Error = FormRefused<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let who = Enrolling::from_request(req).await.map(|s| s.0);
        auth::checked_form(req, data, who)
            .await
            .map(|(staff, form)| EnrollingForm { staff, form })
    }
}

/// The code step's page, with `error` shown above the form.
fn code_step(staff: &Staff, next: &str, error: Option<&str>) -> Template {
    Template::render(
        "admin/login_code",
        json!({ "title": "Two-factor authentication", "csrf": staff.csrf, "next": next, "error": error }),
    )
}

/// Where a session that is not at the code step goes instead.
fn onward(stage: Stage, next: String) -> Option<Redirect> {
    match stage {
        Stage::Code => None,
        Stage::Enrol => Some(Redirect::to("/admin/two-factor")),
        Stage::Full => Some(Redirect::to(next)),
    }
}

#[get("/login/code?<next>")]
pub(super) fn code_page(session: AnyStage, next: Option<&str>) -> Page {
    let next = twofactor::safe_next(next);
    match onward(session.0.stage, next.clone()) {
        Some(to) => Page::Redirect(to),
        None => Page::Template(code_step(&session.0, &next, None)),
    }
}

#[derive(FromForm)]
pub struct CodeForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    code: String,
    #[field(default = String::new())]
    recovery: String,
    #[field(default = String::new())]
    next: String,
}

csrf_form!(CodeForm);

#[post("/login/code", data = "<form>")]
pub(super) async fn submit_code(
    db: &State<Db>,
    tf: &State<TwoFactor>,
    form: AnyStageForm<CodeForm>,
) -> AppResult<Page> {
    let AnyStageForm { staff, form } = form;
    let next = twofactor::safe_next(Some(&form.next));
    if let Some(to) = onward(staff.stage, next.clone()) {
        return Ok(Page::Redirect(to));
    }
    let typed = if form.code.trim().is_empty() {
        &form.recovery
    } else {
        &form.code
    };
    let checked = twofactor::check(db, tf, staff.user.id, typed, true).await?;
    match checked {
        Checked::Totp(_) => {
            let session = staff.session_id;
            db.run(move |conn| Ok(twofactor::mark_passed(conn, session)?))
                .await?
        }
        Checked::Recovery => {
            let s2 = staff.clone();
            db.run(move |conn| {
                conn.transaction(|conn| {
                    twofactor::mark_passed(conn, s2.session_id)?;
                    let left = User::unused_recovery_codes(conn, s2.user.id)?;
                    auth::audit(
                        conn,
                        &s2,
                        "user.two_factor.recovery_used",
                        "user",
                        Some(s2.user.id),
                        None,
                        Some(json!({ "recovery_codes_left": left })),
                    )
                })?;
                Ok(())
            })
            .await?
        }
        refused => {
            let (status, message) = twofactor::refusal(refused);
            return Ok(Page::Status((
                status,
                code_step(&staff, &next, Some(message)),
            )));
        }
    }
    Ok(Page::Redirect(Redirect::to(next)))
}

/// The enrolment page's context for `staff`: on or off, the enrolment in progress (QR code
/// and secret) while it is off, unused recovery codes while it is on.
async fn state(
    db: &Db,
    tf: &TwoFactor,
    app: &AppInfo,
    staff: &Staff,
) -> AppResult<serde_json::Map<String, Value>> {
    let (id, enabled) = (staff.user.id, staff.user.totp_enabled());
    let (secret, unused) = db
        .run(move |conn| {
            let secret = if enabled {
                None
            } else {
                User::totp_secret(conn, id)?
            };
            Ok((secret, User::unused_recovery_codes(conn, id)?))
        })
        .await?;
    let pending = secret.map(|secret| {
        let uri = twofactor::otpauth_uri(&secret, &app.site_name, &staff.user.email);
        json!({
            "qr_svg": crate::routes::checkout::qr_svg(&uri),
            "secret": twofactor::grouped(&secret),
        })
    });
    let mut ctx = serde_json::Map::new();
    ctx.insert("title".into(), json!("Two-factor authentication"));
    ctx.insert("enabled".into(), json!(enabled));
    ctx.insert(
        "enabled_at".into(),
        json!(staff
            .user
            .totp_enabled_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())),
    );
    ctx.insert(
        "required".into(),
        json!(tf.require_all || staff.user.two_factor_required),
    );
    ctx.insert("pending".into(), json!(pending));
    ctx.insert("unused".into(), json!(unused));
    ctx.insert("codes".into(), Value::Null);
    ctx.insert("error".into(), Value::Null);
    ctx.insert("done".into(), Value::Null);
    Ok(ctx)
}

/// Renders the enrolment page for `staff` with `extra` over its state.
async fn render(
    db: &Db,
    tf: &TwoFactor,
    app: &AppInfo,
    staff: &Staff,
    status: Status,
    extra: Value,
) -> AppResult<Page> {
    let mut ctx = state(db, tf, app, staff).await?;
    if let Value::Object(extra) = extra {
        ctx.extend(extra);
    }
    let template = page("admin/two_factor", staff, Value::Object(ctx));
    Ok(if status == Status::Ok {
        Page::Template(template)
    } else {
        Page::Status((status, template))
    })
}

/// `staff` as it is after a change to its own second factor (the account re-read, the
/// session now past the second factor where it has one).
async fn reloaded(db: &Db, tf: &TwoFactor, staff: &Staff) -> AppResult<Staff> {
    let id = staff.user.id;
    let user = db
        .run(move |conn| {
            Ok(crate::schema::users::table
                .find(id)
                .select(User::as_select())
                .first(conn)?)
        })
        .await?;
    let stage = if user.totp_enabled() || !(tf.require_all || user.two_factor_required) {
        Stage::Full
    } else {
        Stage::Enrol
    };
    Ok(Staff {
        user,
        stage,
        ..staff.clone()
    })
}

#[get("/two-factor")]
pub(super) async fn two_factor_page(
    db: &State<Db>,
    tf: &State<TwoFactor>,
    app: &State<AppInfo>,
    who: Enrolling,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Page> {
    let done = flash.map(|f| f.message().to_string());
    render(db, tf, app, &who.0, Status::Ok, json!({ "done": done })).await
}

#[post("/two-factor/setup", data = "<form>")]
pub(super) async fn setup(db: &State<Db>, form: EnrollingForm<CsrfOnly>) -> AppResult<Redirect> {
    let EnrollingForm { staff, .. } = form;
    let (id, secret) = (staff.user.id, twofactor::new_secret());
    // An enrolment changes nothing until it is confirmed with a code (then audited).
    let started = db
        .run(move |conn| Ok(User::begin_totp(conn, id, &secret)?))
        .await?;
    if !started {
        return Err(AppError::new(
            Status::Conflict,
            "Two-factor authentication is already on. Turn it off first to move it to another app.",
        ));
    }
    Ok(Redirect::to("/admin/two-factor"))
}

#[derive(FromForm)]
pub struct ConfirmForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    code: String,
}

csrf_form!(ConfirmForm);

#[post("/two-factor/confirm", data = "<form>")]
pub(super) async fn confirm(
    db: &State<Db>,
    tf: &State<TwoFactor>,
    app: &State<AppInfo>,
    form: EnrollingForm<ConfirmForm>,
) -> AppResult<Page> {
    let EnrollingForm { staff, form } = form;
    if staff.user.totp_enabled() {
        return Ok(Page::Redirect(Redirect::to("/admin/two-factor")));
    }
    let id = staff.user.id;
    let has_secret = db
        .run(move |conn| Ok(User::totp_secret(conn, id)?.is_some()))
        .await?;
    if !has_secret {
        return Err(AppError::bad_request(
            "Start the set-up first: it shows the QR code to scan.",
        ));
    }
    let checked = twofactor::check(db, tf, id, &form.code, false).await?;
    if !matches!(checked, Checked::Totp(_)) {
        let (status, message) = twofactor::refusal(checked);
        return render(db, tf, app, &staff, status, json!({ "error": message })).await;
    }
    let codes = twofactor::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| twofactor::recovery_hash(c)).collect();
    let s2 = staff.clone();
    let enabled = db
        .run(move |conn| {
            conn.transaction(|conn| {
                if !User::enable_totp(conn, s2.user.id, &hashes)? {
                    return Ok(false);
                }
                // This session proved the code just now.
                twofactor::mark_passed(conn, s2.session_id)?;
                auth::audit(
                    conn,
                    &s2,
                    "user.two_factor.enable",
                    "user",
                    Some(s2.user.id),
                    Some(json!({ "two_factor": false })),
                    Some(json!({ "two_factor": true })),
                )?;
                Ok(true)
            })
        })
        .await?;
    if !enabled {
        return Ok(Page::Redirect(Redirect::to("/admin/two-factor")));
    }
    let staff = reloaded(db, tf, &staff).await?;
    render(
        db,
        tf,
        app,
        &staff,
        Status::Ok,
        json!({ "codes": codes, "done": "Two-factor authentication is on." }),
    )
    .await
}

#[post("/two-factor/recovery-codes", data = "<form>")]
pub(super) async fn regenerate(
    db: &State<Db>,
    tf: &State<TwoFactor>,
    app: &State<AppInfo>,
    form: EnrollingForm<ConfirmForm>,
) -> AppResult<Page> {
    let EnrollingForm { staff, form } = form;
    if !staff.user.totp_enabled() {
        return Err(AppError::bad_request(
            "Two-factor authentication is off, so there are no recovery codes.",
        ));
    }
    let checked = twofactor::check(db, tf, staff.user.id, &form.code, false).await?;
    if !matches!(checked, Checked::Totp(_)) {
        let (status, message) = twofactor::refusal(checked);
        return render(db, tf, app, &staff, status, json!({ "error": message })).await;
    }
    let codes = twofactor::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| twofactor::recovery_hash(c)).collect();
    let s2 = staff.clone();
    db.run(move |conn| {
        conn.transaction(|conn| {
            User::replace_recovery_codes(conn, s2.user.id, &hashes)?;
            auth::audit(
                conn,
                &s2,
                "user.two_factor.recovery_codes",
                "user",
                Some(s2.user.id),
                None,
                Some(json!({ "recovery_codes": hashes.len() })),
            )
        })?;
        Ok(())
    })
    .await?;
    render(
        db,
        tf,
        app,
        &staff,
        Status::Ok,
        json!({ "codes": codes, "done": "New recovery codes made; the old ones no longer work." }),
    )
    .await
}

#[derive(FromForm)]
pub struct DisableForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    code: String,
    #[field(default = String::new())]
    password: String,
}

csrf_form!(DisableForm);

#[post("/two-factor/disable", data = "<form>")]
pub(super) async fn disable(
    db: &State<Db>,
    tf: &State<TwoFactor>,
    app: &State<AppInfo>,
    hasher: &State<crate::hashing::PasswordHasher>,
    limits: &State<auth::LoginLimits>,
    client: crate::net::ClientKey,
    form: EnrollingForm<DisableForm>,
) -> AppResult<Page> {
    let EnrollingForm { staff, form } = form;
    if !staff.user.totp_enabled() {
        return Ok(Page::Redirect(Redirect::to("/admin/two-factor")));
    }
    // A current code (under the limit of wrong codes), or the password (under the login
    // limits, on the hashing pool, as a password change checks it).
    let by_code = !form.code.trim().is_empty();
    let refused = if by_code {
        match twofactor::check(db, tf, staff.user.id, &form.code, false).await? {
            Checked::Totp(_) => None,
            other => Some(other),
        }
    } else if form.password.is_empty() {
        Some(Checked::Unusable)
    } else {
        let who = auth::authenticate(
            db,
            hasher,
            limits,
            client,
            &staff.user.email,
            &form.password,
        )
        .await?;
        match who {
            Ok(_) => None,
            Err(auth::Refused::NoMatch) => Some(Checked::Wrong),
            Err(auth::Refused::Limited) => Some(Checked::Limited),
            Err(auth::Refused::Busy) => {
                return Err(AppError::new(
                    Status::ServiceUnavailable,
                    "The site is busy checking passwords. Please try again in a moment.",
                ))
            }
        }
    };
    if let Some(refused) = refused {
        let (status, message) = match refused {
            Checked::Unusable => (
                Status::UnprocessableEntity,
                "Enter a current code from your authenticator app, or your password, to turn two-factor authentication off.",
            ),
            Checked::Wrong if !by_code => (Status::UnprocessableEntity, "That is not your password."),
            other => twofactor::refusal(other),
        };
        return render(db, tf, app, &staff, status, json!({ "error": message })).await;
    }
    let s2 = staff.clone();
    db.run(move |conn| {
        conn.transaction(|conn| {
            User::disable_totp(conn, s2.user.id)?;
            auth::audit(
                conn,
                &s2,
                "user.two_factor.disable",
                "user",
                Some(s2.user.id),
                Some(json!({ "two_factor": true })),
                Some(json!({ "two_factor": false })),
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(Page::Flash(Flash::success(
        Redirect::to("/admin/two-factor"),
        "Two-factor authentication is off; its recovery codes no longer work.",
    )))
}
