//! Payments: one PayPal order per booking, and what PayPal said about it.

use chrono::Utc;
use diesel::prelude::*;

use crate::schema::payments;

/// A payment row: one PayPal order per booking.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: i64,
    pub booking_id: i64,
    pub provider: String,
    pub order_id: String,
    pub order_status: String,
    pub capture_id: Option<String>,
    pub capture_status: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub approve_url: String,
    pub capture_attempt: i32,
    pub refunded_minor: i64,
    pub late_refused: bool,
    pub reconciled_at: Option<chrono::DateTime<Utc>>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    /// A capture is in flight until then (see `bookings::lifecycle`).
    pub capture_claimed_until: Option<chrono::DateTime<Utc>>,
    /// Money arrived for a booking that could not be honoured; refunded automatically.
    pub unhonoured_at: Option<chrono::DateTime<Utc>>,
    /// The buyer last left PayPal with "cancel" then (cleared when they come back approved).
    pub buyer_cancelled_at: Option<chrono::DateTime<Utc>>,
}

impl Payment {
    /// Records that the buyer cancelled at PayPal (`cancelled`) or came back approved.
    pub fn mark_buyer_cancelled(
        conn: &mut PgConnection,
        id: i64,
        cancelled: bool,
    ) -> QueryResult<()> {
        let at = cancelled.then(Utc::now);
        diesel::update(payments::table.find(id))
            .set(payments::buyer_cancelled_at.eq(at))
            .execute(conn)?;
        Ok(())
    }
}

impl Payment {
    pub fn find_by_booking(
        conn: &mut PgConnection,
        booking_id: i64,
    ) -> QueryResult<Option<Payment>> {
        payments::table
            .filter(payments::booking_id.eq(booking_id))
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_order(conn: &mut PgConnection, order_id: &str) -> QueryResult<Option<Payment>> {
        payments::table
            .filter(payments::order_id.eq(order_id))
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_capture(
        conn: &mut PgConnection,
        capture_id: &str,
    ) -> QueryResult<Option<Payment>> {
        payments::table
            .filter(payments::capture_id.eq(capture_id))
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }
}
