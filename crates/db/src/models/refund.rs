//! One refund of a payment (the `refunds` table): written down before PayPal is asked, with
//! the request id that makes the ask idempotent, then marked with PayPal's answer.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::refunds;

/// A refund's status while PayPal's answer is awaited.
pub const REFUND_REQUESTED: &str = "REQUESTED";
/// PayPal refused the first ask: nothing was refunded.
pub const REFUND_FAILED: &str = "FAILED";
/// Unclear whether PayPal refunded: a person checks PayPal's dashboard.
pub const REFUND_REVIEW: &str = "REVIEW";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
pub struct Refund {
    pub id: i64,
    pub payment_id: i64,
    pub request_id: String,
    pub paypal_refund_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub attempted_at: DateTime<Utc>,
    pub form_token: Option<String>,
    pub automatic: bool,
    /// The ticket this refund is for (a per-ticket refund), or `None` for an amount.
    pub attendee_id: Option<i64>,
}

impl Refund {
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Refund> {
        refunds::table
            .find(id)
            .select(Refund::as_select())
            .first(conn)
    }

    /// How many refunds of `payment_id` still wait for PayPal's answer.
    pub fn in_flight(conn: &mut PgConnection, payment_id: i64) -> QueryResult<i64> {
        refunds::table
            .filter(refunds::payment_id.eq(payment_id))
            .filter(refunds::status.eq(REFUND_REQUESTED))
            .count()
            .get_result(conn)
    }
}
