//! One queued email (the `outbox` table); the rules live in `ticketing_domain::outbox`.

use chrono::Utc;
use diesel::prelude::*;

use crate::schema::outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    /// The booking a buyer's mail is about; None for a staff account's mail (`user_id`).
    pub booking_id: Option<i64>,
    pub attendee_id: Option<i64>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<Utc>,
    pub last_error: String,
    pub to_email: String,
    pub subject: String,
    pub created_at: chrono::DateTime<Utc>,
    pub sent_at: Option<chrono::DateTime<Utc>>,
    /// The staff account an account mail (invite, password reset) goes to.
    pub user_id: Option<i64>,
}
