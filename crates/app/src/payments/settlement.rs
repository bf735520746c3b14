//! Settlement: PayPal's view of an order applied to the booking, in one transaction under
//! the booking's row lock, through the state machine of `bookings::lifecycle`. Every path
//! that learns something about an order (the buyer's return, the capture answer, webhooks,
//! reconciliation) ends here.
//!
//! Money that arrives for a booking that cannot be honoured (it expired and its seats are
//! gone, or it was cancelled or released before the capture landed) marks the payment
//! `unhonoured_at`, queues the buyer's "payment returned" mail, and writes down an automatic
//! full refund (request id `refund-auto-<payment>`, so at most one) that is sent to PayPal
//! right after the commit and re-asked by refund reconciliation if the answer is lost
//! (test `payment_races::a_capture_that_lands_after_expiry_is_recorded_and_refunded`).

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::client::Order;
use super::refunds::REFUND_REQUESTED;
use super::service::{db_err, load_payment, lock_payment, CaptureOutcome, PayPal};
use ticketing_db::models::{Booking, BookingState, Payment};
use ticketing_db::schema::{booking_history, bookings, payments, refunds};
use ticketing_db::Db;
use ticketing_db::Error;
use ticketing_domain::bookings::lifecycle::{reopen_expired, transition, Reopen};

impl PayPal {
    /// Reads the order from PayPal and settles the booking from it; captures an approved
    /// order nobody captured yet (the buyer who never came back).
    pub async fn settle_fresh(&self, db: &Db, payment_id: i64) -> Result<CaptureOutcome, Error> {
        let (payment, _) = load_payment(db, payment_id).await?;
        let order = match self.client().get_order(&payment.order_id).await {
            Ok(o) => o,
            Err(e) if e.is_transient() => return Ok(CaptureOutcome::Unavailable),
            Err(e) => return Err(Error::internal(e)),
        };
        if order.status == "APPROVED" && order.capture().is_none() {
            return Box::pin(self.capture(db, payment_id)).await;
        }
        self.settle(db, payment_id, &order).await
    }

    /// Reads the order from PayPal and settles from it, never capturing.
    pub(super) async fn settle_known(
        &self,
        db: &Db,
        payment_id: i64,
    ) -> Result<CaptureOutcome, Error> {
        let (payment, _) = load_payment(db, payment_id).await?;
        match self.client().get_order(&payment.order_id).await {
            Ok(order) => self.settle(db, payment_id, &order).await,
            Err(e) if e.is_transient() => Ok(CaptureOutcome::Unavailable),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// Applies PayPal's view of `order` to the booking, then sends an automatic refund that
    /// the settlement wrote down (money without seats).
    pub async fn settle(
        &self,
        db: &Db,
        payment_id: i64,
        order: &Order,
    ) -> Result<CaptureOutcome, Error> {
        let order = order.clone();
        let (outcome, refund) = db
            .run(move |conn| {
                conn.transaction(|conn| apply(conn, payment_id, &order))
                    .map_err(db_err)
            })
            .await?;
        if let Some(refund_id) = refund {
            if let Err(e) = self.issue_refund(db, refund_id, false).await {
                tracing::warn!(refund = refund_id, error = %e, "automatic refund not confirmed yet; it will be asked again");
            }
        }
        Ok(outcome)
    }
}

/// The settlement transaction: returns the outcome and the id of an automatic refund to send.
fn apply(
    conn: &mut PgConnection,
    payment_id: i64,
    order: &Order,
) -> QueryResult<(CaptureOutcome, Option<i64>)> {
    let (booking, payment) = lock_payment(conn, payment_id)?;
    let capture = order.capture().cloned();
    // A declined capture we have not seen yet moves to the next request id (seen again,
    // e.g. from a webhook, it changes nothing).
    if let Some(c) = capture
        .as_ref()
        .filter(|c| c.status == "DECLINED" || c.status == "FAILED")
    {
        if payment.capture_id.as_deref() != Some(c.id.as_str()) {
            diesel::update(payments::table.find(payment_id))
                .set(payments::capture_attempt.eq(payments::capture_attempt + 1))
                .execute(conn)?;
        }
    }
    // The capture claim ends once PayPal's answer about a capture is known.
    let claim = if capture.is_some() || order.status != "APPROVED" {
        None
    } else {
        payment.capture_claimed_until
    };
    diesel::update(payments::table.find(payment_id))
        .set((
            payments::order_status.eq(&order.status),
            payments::capture_id.eq(capture.as_ref().map(|c| c.id.clone())),
            payments::capture_status.eq(capture.as_ref().map(|c| c.status.clone())),
            payments::capture_claimed_until.eq(claim),
            payments::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    let Some(capture) = capture else {
        return Ok((
            match order.status.as_str() {
                "VOIDED" => CaptureOutcome::Closed,
                _ => CaptureOutcome::NotApproved {
                    approve_url: payment.approve_url.clone(),
                },
            },
            None,
        ));
    };
    let note = format!("PayPal capture {} {}", capture.id, capture.status);
    let state = booking.state();
    Ok(match capture.status.as_str() {
        "COMPLETED" | "PARTIALLY_REFUNDED" => money_arrived(conn, &booking, &payment, &note)?,
        "PENDING" => {
            let holding = match state {
                BookingState::Held | BookingState::AwaitingPayment => true,
                BookingState::Expired => reopen_expired(conn, booking.id)? == Reopen::Holding,
                _ => false,
            };
            if holding {
                // PayPal is still deciding: keep the seats until it does.
                diesel::update(bookings::table.find(booking.id))
                    .set(bookings::hold_expires_at.eq(Utc::now() + Duration::days(7)))
                    .execute(conn)?;
                transition(
                    conn,
                    booking.id,
                    &[BookingState::Held],
                    BookingState::AwaitingPayment,
                    &note,
                )?;
            }
            (CaptureOutcome::Pending, None)
        }
        "DECLINED" | "FAILED" => (
            CaptureOutcome::Declined {
                approve_url: payment.approve_url.clone(),
            },
            None,
        ),
        "REFUNDED" => {
            if state == BookingState::Paid {
                transition(
                    conn,
                    booking.id,
                    &[BookingState::Paid],
                    BookingState::Refunded,
                    &note,
                )?;
            }
            (refunded_outcome(&payment), None)
        }
        "REVERSED" => {
            if state == BookingState::Paid {
                transition(
                    conn,
                    booking.id,
                    &[BookingState::Paid],
                    BookingState::Reversed,
                    &note,
                )?;
            }
            (CaptureOutcome::Closed, None)
        }
        _ => (CaptureOutcome::Pending, None),
    })
}

fn refunded_outcome(payment: &Payment) -> CaptureOutcome {
    if payment.unhonoured_at.is_some() {
        CaptureOutcome::Refunded
    } else {
        CaptureOutcome::Closed
    }
}

/// A completed capture: the booking is paid if it can be honoured, or the money goes back.
fn money_arrived(
    conn: &mut PgConnection,
    booking: &Booking,
    payment: &Payment,
    note: &str,
) -> QueryResult<(CaptureOutcome, Option<i64>)> {
    let pay = |conn: &mut PgConnection| {
        transition(
            conn,
            booking.id,
            &[BookingState::Held, BookingState::AwaitingPayment],
            BookingState::Paid,
            note,
        )
    };
    match booking.state() {
        BookingState::Paid => Ok((CaptureOutcome::Paid, None)),
        BookingState::Held | BookingState::AwaitingPayment => {
            // The confirmation and waiver mails are queued by the transition.
            pay(conn)?;
            Ok((CaptureOutcome::Paid, None))
        }
        BookingState::Expired => match reopen_expired(conn, booking.id)? {
            Reopen::Holding => {
                pay(conn)?;
                Ok((CaptureOutcome::Paid, None))
            }
            _ => unhonoured(
                conn,
                booking,
                payment,
                "its hold had expired and the seats are gone",
            ),
        },
        // A booking that was paid and then cancelled by an admin, refunded or reversed: what
        // happens to its money was decided then; a late word from PayPal changes nothing.
        _ if booking.paid_at.is_some() => Ok((refunded_outcome(payment), None)),
        _ => unhonoured(conn, booking, payment, "it had been cancelled"),
    }
}

/// Money without seats: recorded on the payment, the buyer mailed, a full refund written down.
fn unhonoured(
    conn: &mut PgConnection,
    booking: &Booking,
    payment: &Payment,
    why: &str,
) -> QueryResult<(CaptureOutcome, Option<i64>)> {
    if payment.unhonoured_at.is_none() {
        diesel::update(payments::table.find(payment.id))
            .set(payments::unhonoured_at.eq(diesel::dsl::now))
            .execute(conn)?;
        ticketing_domain::outbox::payment_returned(conn, booking.id)?;
        diesel::insert_into(booking_history::table)
            .values((
                booking_history::booking_id.eq(booking.id),
                booking_history::from_state.eq(&booking.state),
                booking_history::to_state.eq(&booking.state),
                booking_history::note
                    .eq(format!("money arrived after {why}: refunded automatically")),
            ))
            .execute(conn)?;
        tracing::warn!(
            booking = booking.id,
            payment = payment.id,
            "money arrived for a booking that cannot be honoured; refunding it"
        );
    }
    let left = payment.amount_minor - payment.refunded_minor;
    let in_flight = ticketing_db::models::Refund::in_flight(conn, payment.id)?;
    let refund = if left > 0 && in_flight == 0 {
        diesel::insert_into(refunds::table)
            .values((
                refunds::payment_id.eq(payment.id),
                refunds::request_id.eq(format!("refund-auto-{}", payment.id)),
                refunds::amount_minor.eq(left),
                refunds::currency.eq(&payment.currency),
                refunds::status.eq(REFUND_REQUESTED),
                refunds::note.eq(format!("Automatic refund: {why}.")),
                refunds::attempted_at.eq(Utc::now()),
                refunds::automatic.eq(true),
            ))
            .on_conflict(refunds::request_id)
            .do_nothing()
            .returning(refunds::id)
            .get_result::<i64>(conn)
            .optional()?
    } else {
        None
    };
    if refund.is_some() {
        // Written down by the site itself: no staff member asked for it.
        ticketing_domain::audit::record(
            conn,
            ticketing_domain::audit::Actor::SYSTEM,
            "booking.refund",
            "booking",
            Some(booking.id),
            Some(serde_json::json!({ "state": booking.state })),
            Some(serde_json::json!({
                "automatic": true,
                "amount": ticketing_core::money::Money::new(left, &payment.currency).display(),
                "reason": why,
            })),
        )?;
    }
    Ok((CaptureOutcome::Refunded, refund))
}
