//! Admin two-factor authentication: TOTP (RFC 6238 through the `totp-rs` crate: SHA-1, six
//! digits, 30-second steps, one step of clock skew either way) and one-time recovery codes.
//!
//! A session's *stage* ([`Stage`]) is worked out by the session guard from the account and
//! the session's `second_factor_at`: a session of an account with TOTP on that has not passed
//! the code step is [`Stage::Code`] and opens nothing but the code page and logout (it ends
//! [`PENDING_MINUTES`] after the password); an account that must use a second factor
//! (`ADMIN_REQUIRE_TWO_FACTOR`, or marked by an admin) but has none is [`Stage::Enrol`] and
//! opens only the enrolment page and logout. The `Staff` and `Admin` guards let only
//! [`Stage::Full`] through (the guards of those two pages are in `routes::admin::twofactor`),
//! so no route can forget it (test
//! `two_factor::a_pending_session_opens_nothing_but_the_code_step`).
//!
//! Codes: an accepted TOTP code's time step is remembered per account and the same or an
//! earlier step is refused (`two_factor::a_code_is_accepted_once`); a recovery code works once
//! (`two_factor::a_recovery_code_works_once`); wrong codes of an account are limited, whatever
//! the session or network (5, then one more every 3 minutes; a limited try is not even
//! checked: `two_factor::wrong_codes_are_limited`).
//! The secret is never part of `User` (so never in a `Debug` line) and is shown only during
//! enrolment; recovery codes are stored as SHA-256 and shown once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Duration, Utc};
use rocket::http::Status;
use rocket::request::Request;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::db::Db;
use crate::error::AppResult;
use crate::limiter::FailureLimit;
use crate::models::User;
use ticketing_core::tokens::sha256_hex;

/// A session that passed the password but not yet the code ends this long after it began.
pub const PENDING_MINUTES: i64 = 5;
/// How many recovery codes an enrolment (or a regeneration) makes.
pub const RECOVERY_CODES: usize = 10;
const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
const SKEW_STEPS: u8 = 1;
/// Wrong codes per account before the limit: then one more every [`REFILL_SECONDS`].
const ATTEMPTS: u32 = 5;
const REFILL_SECONDS: u64 = 180;
/// Accounts the limiter remembers at most (keys are user ids, so this is never reached in
/// practice; it bounds memory all the same).
const LIMITER_CAPACITY: usize = 10_000;

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Signed in: everything the role allows.
    Full,
    /// Password passed, TOTP code still due: only the code page and logout.
    Code,
    /// The account must set up a second factor first: only the enrolment page and logout.
    Enrol,
}

/// The stage of a session of `user` begun at `created`, or None when it is a pending
/// session whose [`PENDING_MINUTES`] have run out.
pub fn stage(
    user: &User,
    created: DateTime<Utc>,
    second_factor_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    require_all: bool,
) -> Option<Stage> {
    if user.totp_enabled() {
        if second_factor_at.is_some() {
            Some(Stage::Full)
        } else if now - created > Duration::minutes(PENDING_MINUTES) {
            None
        } else {
            Some(Stage::Code)
        }
    } else if require_all || user.two_factor_required {
        Some(Stage::Enrol)
    } else {
        Some(Stage::Full)
    }
}

/// The two-factor state shared by every request (Rocket state): the policy, the per-account
/// attempt limiter and the TOTP clock.
pub struct TwoFactor {
    /// `ADMIN_REQUIRE_TWO_FACTOR`: every account must use a second factor.
    pub require_all: bool,
    failures: FailureLimit<i64>,
    /// Seconds added to the system clock for TOTP (0 unless a test moves time on).
    offset: AtomicI64,
}

impl TwoFactor {
    pub fn new(require_all: bool) -> TwoFactor {
        TwoFactor {
            require_all,
            failures: FailureLimit::new(
                ATTEMPTS,
                StdDuration::from_secs(REFILL_SECONDS),
                LIMITER_CAPACITY,
            ),
            offset: AtomicI64::new(0),
        }
    }

    /// Starts a code check of an account: false once its budget of wrong codes is spent (the
    /// code must then not even be looked at). The try is charged at once, so parallel guesses
    /// cannot all slip through one remaining try; [`TwoFactor::succeeded`] gives it back.
    pub fn begin(&self, user_id: i64) -> bool {
        if !self.failures.allows(&user_id) {
            return false;
        }
        self.failures.fail(&user_id);
        true
    }

    /// The code was right: that try was no failure.
    pub fn succeeded(&self, user_id: i64) {
        self.failures.refund(&user_id);
    }

    /// The TOTP clock: Unix seconds.
    pub fn now_unix(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (now + self.offset.load(Ordering::Relaxed)).max(0) as u64
    }

    /// Moves the TOTP clock on by `seconds`: for tests, which need fresh time steps without
    /// sleeping. Nothing in the app calls it.
    pub fn advance_clock(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// A new TOTP secret: 20 random bytes (160 bits, RFC 4226's recommendation), base32.
pub fn new_secret() -> String {
    Secret::Raw(ticketing_core::tokens::random_bytes(20))
        .to_encoded()
        .to_string()
}

/// The TOTP of a base32 secret, labelled for authenticator apps with the site and email.
fn totp(secret: &str, issuer: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    // The otpauth label separates issuer and account with ':'; neither may contain one.
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW_STEPS,
        STEP_SECONDS,
        bytes,
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
    .ok()
}

/// The `otpauth://totp/...` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret: &str, issuer: &str, account: &str) -> String {
    totp(secret, issuer, account)
        .map(|t| t.get_url())
        .unwrap_or_default()
}

/// The secret in groups of four for typing into an app by hand.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The time step (of those within the skew around `now`) whose code is `code`, if any.
/// Codes are compared in constant time.
pub fn matching_step(secret: &str, code: &str, now: u64) -> Option<i64> {
    let totp = totp(secret, "", "")?;
    let current = now / STEP_SECONDS;
    let skew = u64::from(SKEW_STEPS);
    (current.saturating_sub(skew)..=current + skew)
        .find(|step| ticketing_core::tokens::same(&totp.generate(step * STEP_SECONDS), code))
        .map(|step| step as i64)
}

/// What someone typed into a code field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Six digits: a TOTP code.
    Totp(String),
    /// A recovery code, normalised (lower case, no spaces or dashes).
    Recovery(String),
    /// Nothing, or something that is neither.
    Unusable,
}

const RECOVERY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
const RECOVERY_LEN: usize = 16;

/// Reads a typed code: spaces and dashes are ignored, letters in any case.
pub fn read_code(input: &str) -> Typed {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if cleaned.len() == DIGITS && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        Typed::Totp(cleaned)
    } else if cleaned.len() == RECOVERY_LEN
        && cleaned.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
    {
        Typed::Recovery(cleaned)
    } else {
        Typed::Unusable
    }
}

/// [`RECOVERY_CODES`] new recovery codes, 80 random bits each, shown as `abcd-efgh-jkmn-pqrs`
/// (no 0/o or 1/l/i to confuse).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = ticketing_core::tokens::random_bytes(RECOVERY_LEN);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[(*b as usize) % RECOVERY_ALPHABET.len()] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of its normalised text. The codes carry 80
/// random bits, so no salt or slow hash is needed.
pub fn recovery_hash(code: &str) -> String {
    match read_code(code) {
        Typed::Recovery(c) => sha256_hex(&c),
        _ => sha256_hex(code),
    }
}

/// The outcome of a code check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A fresh TOTP code of this time step.
    Totp(i64),
    /// An unused recovery code, now used.
    Recovery,
    /// Wrong, reused, or of the wrong kind.
    Wrong,
    /// Nothing usable was typed (not counted as an attempt).
    Unusable,
    /// Too many attempts: the code was not looked at.
    Limited,
}

/// Checks what `user_id` typed against the account's TOTP secret (a replayed step is
/// wrong), and against its unused recovery codes when `recovery` is true, under the
/// account's limit of wrong codes.
pub async fn check(
    db: &Db,
    tf: &TwoFactor,
    user_id: i64,
    input: &str,
    recovery: bool,
) -> AppResult<Checked> {
    let typed = read_code(input);
    if typed == Typed::Unusable {
        return Ok(Checked::Unusable);
    }
    if !tf.begin(user_id) {
        tracing::warn!(user_id, "two-factor code attempts limited");
        return Ok(Checked::Limited);
    }
    let now = tf.now_unix();
    let outcome = db
        .run(move |conn| {
            Ok(match typed {
                Typed::Totp(code) => {
                    let step = User::totp_secret(conn, user_id)?
                        .and_then(|secret| matching_step(&secret, &code, now));
                    match step {
                        Some(step) if User::accept_totp_step(conn, user_id, step)? => {
                            Checked::Totp(step)
                        }
                        _ => Checked::Wrong,
                    }
                }
                Typed::Recovery(code) if recovery => {
                    if User::use_recovery_code(conn, user_id, &sha256_hex(&code))? {
                        Checked::Recovery
                    } else {
                        Checked::Wrong
                    }
                }
                _ => Checked::Wrong,
            })
        })
        .await?;
    if outcome == Checked::Wrong {
        tracing::info!(user_id, "wrong two-factor code");
    } else {
        tf.succeeded(user_id);
    }
    Ok(outcome)
}

/// The message for a code that was not accepted.
pub fn refusal(checked: Checked) -> (Status, &'static str) {
    match checked {
        Checked::Limited => (
            Status::TooManyRequests,
            "Too many codes tried. Please wait a few minutes and try again.",
        ),
        Checked::Unusable => (
            Status::UnprocessableEntity,
            "Enter the 6-digit code from your authenticator app.",
        ),
        _ => (
            Status::UnprocessableEntity,
            "That code is not right, or was already used. Enter the current code from your authenticator app.",
        ),
    }
}

/// Marks a session as past the second factor (inside the caller's transaction).
pub fn mark_passed(conn: &mut diesel::PgConnection, session_id: i64) -> diesel::QueryResult<()> {
    use crate::schema::admin_sessions;
    use diesel::prelude::*;
    diesel::update(admin_sessions::table.find(session_id))
        .set(admin_sessions::second_factor_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}

/// Where a `next` parameter may send a browser after the code step: an admin page, never
/// the login pages or another site; else the dashboard.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin")
                && !n.starts_with("/admin/login")
                && !n.contains(['\\', '\r', '\n']) =>
        {
            n.to_string()
        }
        _ => "/admin".into(),
    }
}

/// Why the session guard refused a request of a signed-in session: the stage it is at, so
/// the 401 catcher sends it to the code step or the enrolment page instead of the login.
#[derive(Default)]
struct Detour(Option<Stage>);

/// Records that this request was refused because its session is at `stage`.
pub(crate) fn set_detour(req: &Request<'_>, stage: Stage) {
    req.local_cache(|| Detour(Some(stage)));
}

/// Where the 401 catcher sends a request the session guard refused for its stage: the code
/// step (coming back to `path` after it) or the enrolment page. None: not signed in at all.
pub fn detour(req: &Request<'_>, encoded_path: &str) -> Option<String> {
    match req.local_cache(Detour::default).0? {
        Stage::Code => Some(format!("/admin/login/code?next={encoded_path}")),
        Stage::Enrol => Some("/admin/two-factor".into()),
        Stage::Full => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_steps_around_now_match_and_others_do_not() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32, "20 bytes are 32 base32 characters");
        let t = totp(&secret, "Tickets", "a@example.com").unwrap();
        let now = 1_800_000_000;
        let step = (now / STEP_SECONDS) as i64;
        for (delta, expected) in [(-1, true), (0, true), (1, true), (-2, false), (2, false)] {
            let code = t.generate(((step + delta) as u64) * STEP_SECONDS);
            let found = matching_step(&secret, &code, now);
            if expected {
                assert_eq!(found, Some(step + delta), "step {delta}");
            } else {
                // A code of a far step may collide by chance with a near one (1 in 10^6).
                assert!(found != Some(step + delta), "step {delta}");
            }
        }
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
    }

    #[test]
    fn typed_codes_are_read_leniently_and_recovery_codes_are_high_entropy() {
        assert_eq!(read_code(" 123 456 "), Typed::Totp("123456".into()));
        assert_eq!(read_code("12345"), Typed::Unusable);
        assert_eq!(read_code(""), Typed::Unusable);
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            let upper = c.to_uppercase().replace('-', " ");
            assert_eq!(read_code(&upper), Typed::Recovery(c.replace('-', "")));
            assert_eq!(recovery_hash(&upper), recovery_hash(c));
        }
        assert_eq!(
            otpauth_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "My: Site", "a@b.c"),
            "otpauth://totp/My%20%20Site:a%40b.c?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=My%20%20Site"
        );
    }
}
