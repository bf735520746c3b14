//! Bookings that need a person (issue 16), across all events, at `/admin/attention`: money
//! without seats (a capture for a booking that cannot be honoured, not yet refunded), refunds
//! PayPal has not settled (`REVIEW`, or still `REQUESTED`/`PENDING` after a while), and
//! payments pending for more than 30 minutes. Each row links the booking and says what to do.
//!
//! The nav shows how many there are: [`AttentionCount`] holds the number per app (read by the
//! Tera function `attention_count()`), refreshed by [`fairing`] on admin requests at most
//! every [`REFRESH_SECONDS`] and at once whenever this page is shown.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use rocket::fairing::AdHoc;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Staff;
use crate::db::Db;
use crate::error::AppResult;
use crate::timefmt;

/// How old the nav's count may get before an admin request counts again.
pub const REFRESH_SECONDS: i64 = 20;

/// A payment pending for longer than this needs a look (the same number is in the SQL).
pub const PENDING_MINUTES: i64 = 30;

/// Every booking that needs attention, one row per reason (`kind`: `money`, `refund`,
/// `pending`), oldest first.
const ATTENTION_SQL: &str = "
SELECT 'money' AS kind, b.id AS booking_id, b.reference, e.title AS event, e.timezone,
       COALESCE(p.unhonoured_at, p.updated_at) AS since,
       (p.amount_minor - p.refunded_minor)::bigint AS amount_minor, p.currency::text AS currency,
       b.state AS detail
  FROM payments p JOIN bookings b ON b.id = p.booking_id JOIN events e ON e.id = b.event_id
 WHERE p.refunded_minor < p.amount_minor
   AND p.capture_status IN ('COMPLETED', 'PARTIALLY_REFUNDED')
   AND (p.unhonoured_at IS NOT NULL OR b.state IN ('held', 'awaiting_payment', 'expired'))
UNION ALL
SELECT 'refund', b.id, b.reference, e.title, e.timezone, r.created_at,
       r.amount_minor, r.currency::text, r.status
  FROM refunds r JOIN payments p ON p.id = r.payment_id
  JOIN bookings b ON b.id = p.booking_id JOIN events e ON e.id = b.event_id
 WHERE r.status = 'REVIEW'
    OR (r.status IN ('REQUESTED', 'PENDING') AND r.created_at < now() - interval '10 minutes')
UNION ALL
SELECT 'pending', b.id, b.reference, e.title, e.timezone, COALESCE(p.created_at, b.updated_at),
       b.total_minor, b.currency::text, COALESCE(p.capture_status, p.order_status, b.state)
  FROM bookings b JOIN events e ON e.id = b.event_id
  LEFT JOIN LATERAL (SELECT * FROM payments WHERE booking_id = b.id ORDER BY id DESC LIMIT 1) p
    ON true
 WHERE (b.state = 'awaiting_payment' OR p.capture_status = 'PENDING')
   AND COALESCE(p.created_at, b.updated_at) < now() - interval '30 minutes'
";

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    booking_id: i64,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = Timestamptz)]
    since: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    amount_minor: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many rows [`ATTENTION_SQL`] has now.
pub fn count(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query(format!(
        "SELECT count(*)::bigint AS n FROM ({ATTENTION_SQL}) rows"
    ))
    .get_result::<Count>(conn)
    .map(|c| c.n)
}

/// The nav's count of this app, and when it was taken (unix seconds; 0: never).
#[derive(Clone, Default)]
pub struct AttentionCount(Arc<(AtomicI64, AtomicI64)>);

impl AttentionCount {
    /// The last count taken (0 before the first).
    pub fn get(&self) -> i64 {
        self.0 .0.load(Ordering::Relaxed)
    }

    fn set(&self, n: i64) {
        self.0 .0.store(n, Ordering::Relaxed);
        self.0 .1.store(Utc::now().timestamp(), Ordering::Relaxed);
    }

    fn stale(&self) -> bool {
        Utc::now().timestamp() - self.0 .1.load(Ordering::Relaxed) >= REFRESH_SECONDS
    }
}

/// Counts again on an admin request when the count is older than [`REFRESH_SECONDS`].
pub fn fairing() -> AdHoc {
    AdHoc::on_request("Attention count", |req, _| {
        Box::pin(async move {
            if !req.uri().path().starts_with("/admin") {
                return;
            }
            let (Some(db), Some(shown)) = (
                req.rocket().state::<Db>(),
                req.rocket().state::<AttentionCount>(),
            ) else {
                return;
            };
            if !shown.stale() {
                return;
            }
            if let Ok(n) = db.run(|conn| Ok(count(conn)?)).await {
                shown.set(n);
            }
        })
    })
}

/// What a person does about a row.
fn advice(kind: &str, detail: &str) -> &'static str {
    match (kind, detail) {
        ("money", _) => "PayPal captured money for a booking that cannot be kept. It is refunded automatically; if no refund shows on the booking within the hour, refund it there.",
        ("refund", "REVIEW") => "Unclear whether PayPal refunded: look the capture up in PayPal's dashboard before refunding again.",
        ("refund", "PENDING") => "PayPal is still processing this refund. Check PayPal's dashboard if it stays pending for days.",
        ("refund", _) => "PayPal has not answered this refund; it is asked again automatically. Check PayPal's dashboard if it stays.",
        _ => "The payment is still pending at PayPal (checked again every 10 minutes). If it stays, look the order up in PayPal; cancel the booking if the buyer gave up.",
    }
}

/// "2 h 5 min", "3 days": how long ago `since` was.
pub fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    match minutes {
        0..=59 => format!("{minutes} min"),
        60..=2879 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} days", minutes / 1440),
    }
}

#[get("/attention")]
pub(super) async fn attention_page(
    db: &State<Db>,
    shown: &State<AttentionCount>,
    staff: Staff,
) -> AppResult<Template> {
    let rows: Vec<Row> = db
        .run(|conn| {
            Ok(
                diesel::sql_query(format!("{ATTENTION_SQL} ORDER BY since LIMIT 500"))
                    .load(conn)?,
            )
        })
        .await?;
    shown.set(rows.len() as i64);
    let now = Utc::now();
    let list = |kind: &str| -> Vec<serde_json::Value> {
        rows.iter()
            .filter(|r| r.kind == kind)
            .map(|r| {
                let tz = timefmt::parse_tz(&r.timezone).unwrap_or(chrono_tz::UTC);
                json!({
                    "booking_id": r.booking_id, "reference": r.reference, "event": r.event,
                    "since": timefmt::local_datetime(r.since, tz), "age": age(r.since, now),
                    "amount": crate::money::Money::new(r.amount_minor, &r.currency).display(),
                    "detail": r.detail, "advice": advice(&r.kind, &r.detail),
                })
            })
            .collect()
    };
    Ok(page(
        "admin/attention",
        &staff,
        json!({ "title": "Needs attention", "total": rows.len(), "money": list("money"),
                "refunds": list("refund"), "pending": list("pending"), "pending_minutes": PENDING_MINUTES }),
    ))
}

#[cfg(test)]
mod tests {
    use super::age;
    use chrono::{Duration, Utc};

    #[test]
    fn ages_read_in_minutes_hours_or_days() {
        let now = Utc::now();
        assert_eq!(age(now - Duration::minutes(45), now), "45 min");
        assert_eq!(age(now - Duration::minutes(125), now), "2 h 5 min");
        assert_eq!(age(now - Duration::days(3), now), "3 days");
        assert_eq!(age(now + Duration::minutes(5), now), "0 min");
    }
}
