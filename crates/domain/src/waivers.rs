//! Waivers: per-event waiver texts (each edit a new version, with its SHA-256), one personal
//! waiver per attendee with an unguessable link, and signing, which records the typed name,
//! consent, time, client IP, user agent and the hash of the exact text signed. A signed
//! waiver is final (a database trigger refuses changes).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ticketing_core::tokens::sha256_hex;
use ticketing_db::models::Event;
use ticketing_db::schema::{waiver_texts, waivers};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = waiver_texts, check_for_backend(diesel::pg::Pg))]
pub struct WaiverText {
    pub id: i64,
    pub event_id: i64,
    pub version: i32,
    pub body: String,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = waivers, check_for_backend(diesel::pg::Pg))]
pub struct Waiver {
    pub id: i64,
    pub attendee_id: i64,
    pub token: String,
    pub waiver_text_id: Option<i64>,
    pub signed_name: Option<String>,
    pub consent: bool,
    pub signed_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub text_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The newest version of the event's waiver text, creating version 1 (or the next one)
/// when `events.waiver_text` differs from the newest stored version.
pub fn ensure_current_text(conn: &mut PgConnection, event: &Event) -> QueryResult<WaiverText> {
    let latest = latest_text(conn, event.id)?;
    let hash = sha256_hex(&event.waiver_text);
    match latest {
        Some(t) if t.sha256 == hash => Ok(t),
        other => diesel::insert_into(waiver_texts::table)
            .values((
                waiver_texts::event_id.eq(event.id),
                waiver_texts::version.eq(other.map(|t| t.version + 1).unwrap_or(1)),
                waiver_texts::body.eq(&event.waiver_text),
                waiver_texts::sha256.eq(&hash),
            ))
            .returning(WaiverText::as_returning())
            .get_result(conn),
    }
}

pub fn latest_text(conn: &mut PgConnection, event_id: i64) -> QueryResult<Option<WaiverText>> {
    waiver_texts::table
        .filter(waiver_texts::event_id.eq(event_id))
        .order(waiver_texts::version.desc())
        .select(WaiverText::as_select())
        .first(conn)
        .optional()
}

/// The attendee's waiver, created (with a fresh 256-bit token) if it does not exist yet.
pub fn ensure_waiver(conn: &mut PgConnection, attendee_id: i64) -> QueryResult<Waiver> {
    diesel::insert_into(waivers::table)
        .values((
            waivers::attendee_id.eq(attendee_id),
            waivers::token.eq(ticketing_core::tokens::url_token(32)),
        ))
        .on_conflict(waivers::attendee_id)
        .do_nothing()
        .execute(conn)?;
    waivers::table
        .filter(waivers::attendee_id.eq(attendee_id))
        .select(Waiver::as_select())
        .first(conn)
}

pub fn find_by_token(conn: &mut PgConnection, token: &str) -> QueryResult<Waiver> {
    waivers::table
        .filter(waivers::token.eq(token))
        .select(Waiver::as_select())
        .first(conn)
}

/// The waivers of some attendees (for booking pages).
pub fn for_attendees(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<Waiver>> {
    waivers::table
        .filter(waivers::attendee_id.eq_any(ids))
        .select(Waiver::as_select())
        .load(conn)
}

/// What signing needs besides the waiver.
pub struct Signature<'a> {
    pub name: &'a str,
    pub text: &'a WaiverText,
    pub ip: String,
    pub user_agent: String,
}

/// Signs an unsigned waiver; `Ok(false)` when it was already signed (nothing changes).
pub fn sign(conn: &mut PgConnection, waiver_id: i64, s: &Signature<'_>) -> QueryResult<bool> {
    let n = diesel::update(
        waivers::table
            .find(waiver_id)
            .filter(waivers::signed_at.is_null()),
    )
    .set((
        waivers::waiver_text_id.eq(s.text.id),
        waivers::signed_name.eq(s.name),
        waivers::consent.eq(true),
        waivers::signed_at.eq(diesel::dsl::now),
        waivers::ip.eq(&s.ip),
        waivers::user_agent.eq(s.user_agent.chars().take(500).collect::<String>()),
        waivers::text_sha256.eq(sha256_hex(&s.text.body)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
