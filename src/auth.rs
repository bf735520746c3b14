//! Staff authentication and authorisation: argon2id passwords (checked on the hashing pool;
//! unknown emails are checked against a dummy hash so timing does not reveal which exist),
//! server-side sessions referenced by a private cookie (HttpOnly, SameSite=Lax, Secure outside
//! local) with idle and absolute timeouts and instant revocation, bounded failure limits per
//! client network and per account on each network, CSRF tokens, request guards for the two roles, the data guards for a
//! signed-in staff member's state-changing form ([`StaffForm`], [`AdminForm`]), and the audit
//! log.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rocket::data::{self, Data, FromData};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use serde_json::Value;

use crate::db::Db;
use crate::hashing::{Busy, PasswordHasher};
use crate::limiter::FailureLimit;
use crate::models::User;
use crate::net::ClientKey;
use crate::schema::{admin_sessions, users};
use crate::twofactor::Stage;
use ticketing_core::tokens::sha256_hex;

pub const SESSION_COOKIE: &str = "admin_session";
/// A session unused for this long ends.
pub const IDLE_TIMEOUT_MINUTES: i64 = 120;
/// No session lives longer than this.
pub const ABSOLUTE_TIMEOUT_HOURS: i64 = 12;

/// The signed-in staff member of a request, with the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: User,
    pub session_id: i64,
    pub csrf: String,
    pub ip: String,
    /// How far the session has come: only [`Stage::Full`] passes the [`Staff`] guard.
    pub stage: Stage,
}

impl Staff {
    /// This staff member as the actor of an audit entry.
    pub fn actor(&self) -> ticketing_domain::audit::Actor<'_> {
        ticketing_domain::audit::Actor {
            user_id: Some(self.user.id),
            ip: &self.ip,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == "admin"
    }
}

/// An admin (everything, including users, pricing and refunds).
#[derive(Debug, Clone)]
pub struct Admin(pub Staff);

/// (session id, CSRF token, created, last seen, revoked, second factor passed, user).
type SessionRow = (
    i64,
    String,
    chrono::DateTime<Utc>,
    chrono::DateTime<Utc>,
    Option<chrono::DateTime<Utc>>,
    Option<chrono::DateTime<Utc>>,
    User,
);

/// The request's session at whatever stage it is (looked up once per request), or 401.
/// Only the guards of the code step and the enrolment page (`crate::twofactor`) take a
/// session that is not [`Stage::Full`].
pub(crate) async fn session<'r>(req: &'r Request<'_>) -> &'r Result<Staff, Status> {
    req.local_cache_async(async { staff_from_request(req).await })
        .await
}

async fn staff_from_request(req: &Request<'_>) -> Result<Staff, Status> {
    let cookie = req
        .cookies()
        .get_private(SESSION_COOKIE)
        .ok_or(Status::Unauthorized)?;
    let secret = cookie.value().to_string();
    let db = req
        .rocket()
        .state::<Db>()
        .ok_or(Status::InternalServerError)?
        .clone();
    let ip = crate::net::client_ip(req)
        .map(|i| i.to_string())
        .unwrap_or_default();
    let require_all = req
        .rocket()
        .state::<crate::twofactor::TwoFactor>()
        .is_some_and(|tf| tf.require_all);
    let found = db
        .run(move |conn| {
            let now = Utc::now();
            let row: Option<SessionRow> = admin_sessions::table
                .inner_join(users::table)
                .filter(admin_sessions::token_hash.eq(sha256_hex(&secret)))
                .select((
                    admin_sessions::id,
                    admin_sessions::csrf_token,
                    admin_sessions::created_at,
                    admin_sessions::last_seen_at,
                    admin_sessions::revoked_at,
                    admin_sessions::second_factor_at,
                    User::as_select(),
                ))
                .first(conn)
                .optional()?;
            let Some((id, csrf, created, seen, revoked, second, user)) = row else {
                return Ok(None);
            };
            let stage = crate::twofactor::stage(&user, created, second, now, require_all);
            let expired = stage.is_none()
                || revoked.is_some()
                || !user.active
                || now - seen > Duration::minutes(IDLE_TIMEOUT_MINUTES)
                || now - created > Duration::hours(ABSOLUTE_TIMEOUT_HOURS);
            if expired {
                return Ok(None);
            }
            if now - seen > Duration::minutes(1) {
                diesel::update(admin_sessions::table.find(id))
                    .set(admin_sessions::last_seen_at.eq(now))
                    .execute(conn)?;
            }
            Ok(stage.map(|stage| (id, csrf, user, stage)))
        })
        .await
        .map_err(|e| e.status)?;
    let (session_id, csrf, user, stage) = found.ok_or(Status::Unauthorized)?;
    Ok(Staff {
        user,
        session_id,
        csrf,
        ip,
        stage,
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Staff {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match session(req).await {
            Ok(s) if s.stage == Stage::Full => Outcome::Success(s.clone()),
            // Password passed, second factor not: the 401 catcher sends it on to the code
            // step or the enrolment page.
            Ok(s) => {
                crate::twofactor::set_detour(req, s.stage);
                Outcome::Error((Status::Unauthorized, ()))
            }
            Err(status) => Outcome::Error((*status, ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match Staff::from_request(req).await {
            Outcome::Success(s) if s.is_admin() => Outcome::Success(Admin(s)),
            Outcome::Success(_) => Outcome::Error((Status::Forbidden, ())),
            Outcome::Error(e) => Outcome::Error(e),
            Outcome::Forward(f) => Outcome::Forward(f),
        }
    }
}

/// A state-changing form of the admin area: it carries the session's CSRF token in its
/// hidden `csrf` field.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// What a staff member sees when a form's CSRF token is missing or wrong.
pub const CSRF_REFUSED: &str =
    "This form has expired or did not come from this site. Please reload the page and try again.";

/// The message for a request a guard refused with 403. Rocket 0.5 catchers see the status
/// but not the guard's error value, so the guard leaves the message in the request's local
/// cache and the admin area's 403 catcher renders it (see [`refusal`]).
#[derive(Default)]
struct Refusal(Option<&'static str>);

/// The message a guard left for this request's 403 page, if any.
pub fn refusal(req: &Request<'_>) -> Option<&'static str> {
    req.local_cache(Refusal::default).0
}

/// Why [`StaffForm`] or [`AdminForm`] refused a request (the outcome's status says how).
#[derive(Debug)]
pub enum FormRefused<'r> {
    /// Not signed in (401, which the admin catcher turns into the login redirect), or not
    /// an admin on an admin-only form (403).
    Session,
    /// The body is not this form (Rocket's form errors, with their status).
    Form(rocket::form::Errors<'r>),
    /// The CSRF token is missing or wrong (403, with [`CSRF_REFUSED`]).
    Csrf,
}

/// A signed-in staff member's form, its CSRF token checked: the whole preamble of a
/// state-changing admin handler. As a data guard it runs the [`Staff`] guard, then parses
/// the body as `Form<T>`, then compares the token with the session's.
pub struct StaffForm<T> {
    pub staff: Staff,
    pub form: T,
}

/// [`StaffForm`] for admin-only forms: runs the [`Admin`] guard instead (a staff member
/// without the admin role gets 403 before the body is read).
pub struct AdminForm<T> {
    pub staff: Staff,
    pub form: T,
}

/// The shared body of the form guards, after the session guard gave `who`.
pub(crate) async fn checked_form<'r, T>(
    req: &'r Request<'_>,
    data: Data<'r>,
    who: Outcome<Staff, ()>,
) -> data::Outcome<'r, (Staff, T), FormRefused<'r>>
where
    T: FromForm<'r> + CsrfForm + Send,
{
    let staff = match who {
        Outcome::Success(staff) => staff,
        Outcome::Error((status, ())) => {
            return data::Outcome::Error((status, FormRefused::Session))
        }
        Outcome::Forward(status) => return data::Outcome::Forward((data, status)),
    };
    let form = match Form::<T>::from_data(req, data).await {
        data::Outcome::Success(form) => form.into_inner(),
        data::Outcome::Error((status, e)) => {
            return data::Outcome::Error((status, FormRefused::Form(e)))
        }
        data::Outcome::Forward(f) => return data::Outcome::Forward(f),
    };
    if !same_secret(&staff.csrf, form.csrf()) {
        req.local_cache(|| Refusal(Some(CSRF_REFUSED)));
        return data::Outcome::Error((Status::Forbidden, FormRefused::Csrf));
    }
    data::Outcome::Success((staff, form))
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfForm + Send> FromData<'r> for StaffForm<T> {
    type Error = FormRefused<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let who = Staff::from_request(req).await;
        checked_form(req, data, who)
            .await
            .map(|(staff, form)| StaffForm { staff, form })
    }
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfForm + Send> FromData<'r> for AdminForm<T> {
    type Error = FormRefused<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let who = Admin::from_request(req).await.map(|admin| admin.0);
        checked_form(req, data, who)
            .await
            .map(|(staff, form)| AdminForm { staff, form })
    }
}

/// The longest email an account can have (RFC 5321's path limit); longer input is cut to
/// this before it becomes a limiter key, so a key never holds more than this.
const MAX_EMAIL_CHARS: usize = 254;

/// Failed-password limits, per client network ([`ClientKey`]) and per account on each client
/// network. Only failures count (a success gives its try back), the network is checked first
/// and a refused network touches nothing else, and both maps are bounded ([`FailureLimit`]).
/// Keying the account limit on the network too means a stranger's guesses cannot lock the
/// owner out from their own network; an admin can unlock an account everywhere.
/// Tests: `admin::login_limits_*`.
#[derive(Clone)]
pub struct LoginLimits {
    inner: std::sync::Arc<LimitMaps>,
}

struct LimitMaps {
    client: FailureLimit<ClientKey>,
    account: FailureLimit<(String, ClientKey)>,
}

/// A try the limits let through, charged as a failure until [`LoginLimits::succeeded`].
pub struct LoginTry {
    account: (String, ClientKey),
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            inner: std::sync::Arc::new(LimitMaps {
                // 20 failures, then 10 a minute per client network.
                client: FailureLimit::new(20, std::time::Duration::from_secs(6), 50_000),
                // 5 failures, then one more every 3 minutes per account and network.
                account: FailureLimit::new(5, std::time::Duration::from_secs(180), 20_000),
            }),
        }
    }
}

/// The account part of a limiter key: trimmed, lower-case, at most [`MAX_EMAIL_CHARS`].
fn account_key(email: &str) -> String {
    email
        .trim()
        .chars()
        .take(MAX_EMAIL_CHARS)
        .collect::<String>()
        .to_lowercase()
}

impl LoginLimits {
    /// Starts a password check for `email` from `client`: `None` when the network's or the
    /// account's budget is spent (then the password must not even be checked). The try is
    /// charged at once, so parallel guesses cannot all slip through one remaining try.
    pub fn begin(&self, email: &str, client: ClientKey) -> Option<LoginTry> {
        let maps = &self.inner;
        if !maps.client.allows(&client) {
            return None;
        }
        let account = (account_key(email), client);
        if !maps.account.allows(&account) {
            return None;
        }
        maps.client.fail(&client);
        maps.account.fail(&account);
        Some(LoginTry { account })
    }

    /// The password was right: this try is not a failure, and the account's budget on this
    /// network is full again.
    pub fn succeeded(&self, attempt: LoginTry) {
        self.inner.client.refund(&attempt.account.1);
        self.inner.account.clear(&attempt.account);
    }

    /// Forgets the failures of `email` on every network; how many networks were locked.
    pub fn unlock(&self, email: &str) -> usize {
        let email = account_key(email);
        self.inner.account.clear_where(|(e, _)| *e == email)
    }

    /// Whether `email` is refused on some network right now.
    pub fn is_locked(&self, email: &str) -> bool {
        let email = account_key(email);
        self.inner
            .account
            .refused()
            .iter()
            .any(|(e, _)| *e == email)
    }

    /// Drops entries whose budget is full again (run every minute by a job).
    pub fn tidy(&self) {
        self.inner.client.tidy();
        self.inner.account.tidy();
    }

    /// How many keys both maps hold (for the abuse benchmark and tests).
    pub fn len(&self) -> usize {
        self.inner.client.len() + self.inner.account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why [`authenticate`] gave no user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No active account has this email and password.
    NoMatch,
    /// The client's or the account's failure budget is spent.
    Limited,
    /// Too many password checks are waiting already (the hashing queue is full).
    Busy,
}

/// Checks an email and password under the login limits: the account is read in one short
/// database call, the hash is checked on the hashing pool (never inside a pooled
/// connection), and only failures are charged.
pub async fn authenticate(
    db: &Db,
    hasher: &PasswordHasher,
    limits: &LoginLimits,
    client: ClientKey,
    email: &str,
    password: &str,
) -> Result<Result<User, Refused>, crate::error::AppError> {
    let Some(attempt) = limits.begin(email, client) else {
        ticketing_core::telemetry::login_failure("limited");
        return Ok(Err(Refused::Limited));
    };
    let lookup = email
        .trim()
        .chars()
        .take(MAX_EMAIL_CHARS + 1)
        .collect::<String>();
    let user = if lookup.chars().count() > MAX_EMAIL_CHARS {
        None
    } else {
        db.run(move |conn| Ok(User::find_by_email(conn, &lookup)?))
            .await?
    };
    let phc = user
        .as_ref()
        .map_or(crate::passwords::UNKNOWN_ACCOUNT_HASH, |u| {
            u.password_hash.as_str()
        });
    let matched = match hasher.verify(password, phc).await {
        Ok(matched) => matched,
        Err(Busy) => {
            ticketing_core::telemetry::login_failure("busy");
            return Ok(Err(Refused::Busy));
        }
    };
    match user {
        Some(user) if matched && user.active => {
            limits.succeeded(attempt);
            Ok(Ok(user))
        }
        _ => {
            ticketing_core::telemetry::login_failure("no_match");
            Ok(Err(Refused::NoMatch))
        }
    }
}

/// Starts a session for `user` and sets its cookie.
pub async fn start_session(
    db: &Db,
    cookies: &CookieJar<'_>,
    user_id: i64,
    ip: String,
    user_agent: String,
    secure: bool,
) -> Result<(), crate::error::AppError> {
    let secret = crate::tokens::url_token(32);
    let hash = sha256_hex(&secret);
    db.run(move |conn| {
        diesel::insert_into(admin_sessions::table)
            .values((
                admin_sessions::token_hash.eq(hash),
                admin_sessions::user_id.eq(user_id),
                admin_sessions::csrf_token.eq(crate::tokens::url_token(24)),
                admin_sessions::ip.eq(ip),
                admin_sessions::user_agent.eq(user_agent.chars().take(300).collect::<String>()),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await?;
    let cookie = Cookie::build((SESSION_COOKIE, secret))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(rocket::time::Duration::hours(ABSOLUTE_TIMEOUT_HOURS));
    cookies.add_private(cookie);
    Ok(())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const LOGIN_CSRF_COOKIE: &str = "login_csrf";

/// The login form's CSRF token: before there is a session, the token lives in a private
/// (encrypted, signed) cookie and the form must carry the same value, so another site cannot
/// log a browser into an account of its choosing.
pub fn login_csrf_token(cookies: &CookieJar<'_>, secure: bool) -> String {
    if let Some(c) = cookies.get_private(LOGIN_CSRF_COOKIE) {
        return c.value().to_string();
    }
    let token = crate::tokens::url_token(24);
    cookies.add_private(
        Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
            .path("/admin")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure),
    );
    token
}

/// Whether a login form's token matches the browser's login cookie.
pub fn login_csrf_ok(cookies: &CookieJar<'_>, token: &str) -> bool {
    cookies
        .get_private(LOGIN_CSRF_COOKIE)
        .is_some_and(|c| same_secret(c.value(), token))
}

/// Ends every open session of `user_id` except `keep` (the one making the change), in the
/// caller's transaction: deactivation, a two-factor reset, a password change.
pub fn end_sessions(
    conn: &mut PgConnection,
    user_id: i64,
    keep: Option<i64>,
) -> QueryResult<usize> {
    let open = admin_sessions::table
        .filter(admin_sessions::user_id.eq(user_id))
        .filter(admin_sessions::revoked_at.is_null())
        .filter(admin_sessions::id.ne(keep.unwrap_or(-1)));
    diesel::update(open)
        .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
}

/// Ends a session at once.
pub async fn revoke(db: &Db, session_id: i64) -> Result<(), crate::error::AppError> {
    db.run(move |conn| {
        diesel::update(admin_sessions::table.find(session_id))
            .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
        Ok(())
    })
    .await
}

/// Writes an audit entry for `staff` (call inside the transaction of the change it records).
pub fn audit(
    conn: &mut PgConnection,
    staff: &Staff,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    before: Option<Value>,
    after: Option<Value>,
) -> QueryResult<()> {
    ticketing_domain::audit::record(
        conn,
        staff.actor(),
        action,
        entity,
        entity_id,
        before,
        after,
    )
}
