//! The payment flow: create an order when the buyer clicks Pay, capture it when they come
//! back (or when PayPal tells us they approved and they never came back), settle the booking
//! from PayPal's own view of the order, handle webhooks once each, reconcile bookings stuck
//! in `awaiting_payment`, and refund.
//!
//! Money never moves twice: every create, capture and refund carries a `PayPal-Request-Id`
//! derived from our ids (`order-<reference>`, `capture-<payment>-<attempt>`,
//! `refund-<refund row>`), so a retry after a timeout repeats the same operation at PayPal.
//! A booking only changes state from a fresh `GET` of the order (or the capture response).

use std::sync::Arc;

use diesel::prelude::*;
use tokio::sync::Mutex;

use super::client::PayPalClient;
use super::verify::{CertPolicy, TrustStore};
use ticketing_db::models::{Booking, Payment};
use ticketing_db::schema::payments;
use ticketing_db::Db;
use ticketing_db::Error;

/// What happened to a capture, for the page the buyer sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    Paid,
    /// PayPal is still deciding (eCheck, review): a webhook or reconciliation will settle it.
    Pending,
    /// The funding source was declined: the buyer goes back to PayPal to choose another.
    Declined {
        approve_url: String,
    },
    /// The buyer has not approved the order (yet).
    NotApproved {
        approve_url: String,
    },
    /// The hold had expired and its seats were gone: nothing was captured, nothing charged.
    LateNoSeats,
    /// The booking was cancelled (by the buyer or an admin) before the capture: nothing charged.
    Cancelled,
    /// Money arrived for a booking that could not be honoured: it is being refunded in full.
    Refunded,
    /// The booking is already settled (refunded, cancelled...) or has no payment.
    Closed,
    /// PayPal could not be reached; nothing is lost, reconciliation will retry.
    Unavailable,
}

impl CaptureOutcome {
    /// A short name for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            CaptureOutcome::Paid => "paid",
            CaptureOutcome::Pending => "pending",
            CaptureOutcome::Declined { .. } => "declined",
            CaptureOutcome::NotApproved { .. } => "not_approved",
            CaptureOutcome::LateNoSeats => "late_no_seats",
            CaptureOutcome::Cancelled => "cancelled",
            CaptureOutcome::Refunded => "refunded",
            CaptureOutcome::Closed => "closed",
            CaptureOutcome::Unavailable => "unavailable",
        }
    }
}

pub(super) struct Inner {
    pub(super) client: Arc<PayPalClient>,
    pub(super) trust: Mutex<TrustStore>,
    pub(super) simulator_ca_loaded: Mutex<bool>,
    pub(super) policy: CertPolicy,
    pub(super) base_url: String,
    pub(super) site_name: String,
    pub(super) hold_minutes: u32,
}

/// The PayPal service, managed as Rocket state (cheap to clone).
#[derive(Clone)]
pub struct PayPal {
    pub(super) inner: Arc<Inner>,
}

pub(super) fn db_err(e: impl std::fmt::Display) -> Error {
    Error::internal(e)
}

impl PayPal {
    pub fn new(
        client: Arc<PayPalClient>,
        trust: TrustStore,
        policy: CertPolicy,
        base_url: &str,
        site_name: &str,
        hold_minutes: u32,
    ) -> PayPal {
        PayPal {
            inner: Arc::new(Inner {
                client,
                trust: Mutex::new(trust),
                simulator_ca_loaded: Mutex::new(false),
                policy,
                base_url: base_url.trim_end_matches('/').to_string(),
                site_name: site_name.to_string(),
                hold_minutes,
            }),
        }
    }

    pub fn client(&self) -> &PayPalClient {
        &self.inner.client
    }
}

pub(super) async fn load_payment(db: &Db, payment_id: i64) -> Result<(Payment, Booking), Error> {
    db.run(move |conn| {
        let p = payments::table
            .find(payment_id)
            .select(Payment::as_select())
            .first(conn)?;
        let b = Booking::find(conn, p.booking_id)?;
        Ok((p, b))
    })
    .await
}

/// Locks a payment's booking row and then the payment row (the lock order everywhere is
/// booking first), returning both as they are under the locks. Call inside a transaction.
pub(super) fn lock_payment(
    conn: &mut PgConnection,
    payment_id: i64,
) -> QueryResult<(Booking, Payment)> {
    let booking_id: i64 = payments::table
        .find(payment_id)
        .select(payments::booking_id)
        .first(conn)?;
    let booking: Booking = ticketing_db::schema::bookings::table
        .find(booking_id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    let payment: Payment = payments::table
        .find(payment_id)
        .for_update()
        .select(Payment::as_select())
        .first(conn)?;
    Ok((booking, payment))
}
