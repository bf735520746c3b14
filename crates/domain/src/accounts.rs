//! One-time links for staff accounts: the invite a new account gets to set its first
//! password, and "forgot password". A link is 256 random bits; only its SHA-256 is stored,
//! and the token itself rides in the outbox row that mails it until that mail is sent
//! (`outbox::record` erases it). A link works once, until it expires, and issuing a new one
//! (or using one) voids the account's other links (tests `accounts::*`).

use chrono::{Duration, Utc};
use diesel::prelude::*;
use ticketing_core::tokens;
use ticketing_db::schema::{outbox, password_links, users};

/// What a link is for; each has its own lifetime and mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new account sets its first password (valid 7 days).
    Invite,
    /// A forgotten password is replaced (valid 1 hour).
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::Reset => "reset",
        }
    }

    fn mail_kind(self) -> &'static str {
        match self {
            Purpose::Invite => "account_invite",
            Purpose::Reset => "password_reset",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            Purpose::Invite => Duration::days(7),
            Purpose::Reset => Duration::hours(1),
        }
    }
}

/// Issues a fresh link for `user_id` (voiding the older ones) and queues its mail, in the
/// caller's transaction.
pub fn issue(conn: &mut PgConnection, user_id: i64, purpose: Purpose) -> QueryResult<()> {
    let token = tokens::url_token(32);
    let now = Utc::now();
    void_links(conn, user_id)?;
    let link_id: i64 = diesel::insert_into(password_links::table)
        .values((
            password_links::user_id.eq(user_id),
            password_links::purpose.eq(purpose.as_str()),
            password_links::token_hash.eq(tokens::sha256_hex(&token)),
            password_links::expires_at.eq(now + purpose.lifetime()),
        ))
        .returning(password_links::id)
        .get_result(conn)?;
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(purpose.mail_kind()),
            outbox::dedupe_key.eq(format!("{}:{link_id}", purpose.mail_kind())),
            outbox::user_id.eq(user_id),
            outbox::secret.eq(token),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks every unused link of the account as used (a new link, a new password).
fn void_links(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
    diesel::update(
        password_links::table
            .filter(password_links::user_id.eq(user_id))
            .filter(password_links::used_at.is_null()),
    )
    .set(password_links::used_at.eq(diesel::dsl::now))
    .execute(conn)
}

/// The active account a link still opens, if it does: unused, unexpired, account active.
pub fn holder(conn: &mut PgConnection, token: &str) -> QueryResult<Option<(i64, Purpose)>> {
    open_link(conn, token)
}

/// The account and purpose of an open link. Its row is locked until the caller's
/// transaction ends (at once outside one), so two uses of one link run one after the other.
fn open_link(conn: &mut PgConnection, token: &str) -> QueryResult<Option<(i64, Purpose)>> {
    let found: Option<(i64, String)> = password_links::table
        .filter(password_links::token_hash.eq(tokens::sha256_hex(token)))
        .filter(password_links::used_at.is_null())
        .filter(password_links::expires_at.gt(diesel::dsl::now))
        .select((password_links::user_id, password_links::purpose))
        .for_update()
        .first(conn)
        .optional()?;
    let Some((user_id, purpose)) = found else {
        return Ok(None);
    };
    let active: bool = users::table
        .find(user_id)
        .select(users::active)
        .first(conn)?;
    let purpose = if purpose == "invite" {
        Purpose::Invite
    } else {
        Purpose::Reset
    };
    Ok(active.then_some((user_id, purpose)))
}

/// Uses a link: sets the account's password hash and voids its links, once. Returns the
/// account id, or None when the link no longer opens anything (used meanwhile, expired).
/// The link row is locked, so two submits of the same link set the password once.
pub fn redeem(
    conn: &mut PgConnection,
    token: &str,
    password_hash: &str,
) -> QueryResult<Option<i64>> {
    conn.transaction(|conn| {
        let Some((user_id, _)) = open_link(conn, token)? else {
            return Ok(None);
        };
        diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(password_hash),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        void_links(conn, user_id)?;
        Ok(Some(user_id))
    })
}
