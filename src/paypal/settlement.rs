//! Settlement: PayPal's view of an order applied to the booking.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::client::Order;
use super::service::{db_err, load_payment, CaptureOutcome, PayPal};
use crate::bookings::lifecycle::transition;
use crate::error::AppError;
use crate::models::{Booking, BookingState};
use crate::schema::{bookings, payments};
use crate::Db;

impl PayPal {
    /// Reads the order from PayPal and settles the booking from it; captures an approved
    /// order nobody captured yet (the buyer who never came back).
    pub async fn settle_fresh(&self, db: &Db, payment_id: i64) -> Result<CaptureOutcome, AppError> {
        let (payment, _) = load_payment(db, payment_id).await?;
        let order = match self.client().get_order(&payment.order_id).await {
            Ok(o) => o,
            Err(e) if e.is_transient() => return Ok(CaptureOutcome::Unavailable),
            Err(e) => return Err(AppError::internal(e)),
        };
        if order.status == "APPROVED" && order.capture().is_none() {
            return Box::pin(self.capture(db, payment_id)).await;
        }
        self.settle(db, payment_id, &order).await
    }

    /// Applies PayPal's view of `order` to the booking, in one synchronous transaction.
    pub async fn settle(
        &self,
        db: &Db,
        payment_id: i64,
        order: &Order,
    ) -> Result<CaptureOutcome, AppError> {
        let order = order.clone();
        let (payment, _) = load_payment(db, payment_id).await?;
        let capture = order.capture().cloned();
        let outcome = db
            .run(move |conn| {
                conn.transaction::<_, diesel::result::Error, _>(|conn| {
                    let booking = Booking::find(conn, payment.booking_id)?;
                    // A declined capture we have not seen yet moves to the next request id
                    // (seen again, e.g. from a webhook, it changes nothing).
                    if let Some(c) = capture.as_ref().filter(|c| c.status == "DECLINED" || c.status == "FAILED") {
                        diesel::update(
                            payments::table
                                .find(payment_id)
                                .filter(payments::capture_id.is_distinct_from(Some(c.id.clone()))),
                        )
                        .set(payments::capture_attempt.eq(payments::capture_attempt + 1))
                        .execute(conn)?;
                    }
                    diesel::update(payments::table.find(payment_id))
                        .set((
                            payments::order_status.eq(&order.status),
                            payments::capture_id.eq(capture.as_ref().map(|c| c.id.clone())),
                            payments::capture_status.eq(capture.as_ref().map(|c| c.status.clone())),
                            payments::updated_at.eq(diesel::dsl::now),
                        ))
                        .execute(conn)?;
                    let Some(capture) = capture else {
                        return Ok(match order.status.as_str() {
                            "VOIDED" => CaptureOutcome::Closed,
                            _ => CaptureOutcome::NotApproved { approve_url: payment.approve_url.clone() },
                        });
                    };
                    let note = format!("PayPal capture {} {}", capture.id, capture.status);
                    Ok(match capture.status.as_str() {
                        "COMPLETED" => {
                            let mut state = booking.state();
                            if !state.holds_seats() && matches!(state, BookingState::Expired | BookingState::Cancelled) && revive(conn, booking.id)? {
                                state = BookingState::AwaitingPayment;
                            }
                            if matches!(state, BookingState::Held | BookingState::AwaitingPayment) {
                                // The confirmation and waiver mails are queued by the transition.
                                transition(conn, booking.id, &[BookingState::Held, BookingState::AwaitingPayment], BookingState::Paid, &note)?;
                                CaptureOutcome::Paid
                            } else if state == BookingState::Paid {
                                CaptureOutcome::Paid
                            } else {
                                tracing::error!(booking = booking.id, state = ?state, "money captured for a booking without seats; refund it from the admin area");
                                CaptureOutcome::Closed
                            }
                        }
                        "PENDING" => {
                            // PayPal is still deciding: keep the seats until it does.
                            diesel::update(bookings::table.find(booking.id).filter(bookings::state.eq_any(["held", "awaiting_payment"])))
                                .set(bookings::hold_expires_at.eq(Utc::now() + Duration::days(7)))
                                .execute(conn)?;
                            transition(conn, booking.id, &[BookingState::Held], BookingState::AwaitingPayment, &note)?;
                            CaptureOutcome::Pending
                        }
                        "DECLINED" | "FAILED" => CaptureOutcome::Declined { approve_url: payment.approve_url.clone() },
                        "REFUNDED" => {
                            transition(conn, booking.id, &[BookingState::Paid], BookingState::Refunded, &note)?;
                            CaptureOutcome::Closed
                        }
                        "PARTIALLY_REFUNDED" => CaptureOutcome::Paid,
                        "REVERSED" => {
                            transition(conn, booking.id, &[BookingState::Paid], BookingState::Reversed, &note)?;
                            CaptureOutcome::Closed
                        }
                        _ => CaptureOutcome::Pending,
                    })
                })
                .map_err(db_err)
            })
            .await?;
        Ok(outcome)
    }
}

/// Takes the seats of an expired (or expired-then-cancelled) booking again for a late
/// approval: only if they are all still free. Moves it back to `awaiting_payment`.
pub(super) fn revive(conn: &mut PgConnection, booking_id: i64) -> QueryResult<bool> {
    let booking = bookings::table
        .find(booking_id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    if !matches!(
        booking.state(),
        BookingState::Expired | BookingState::Cancelled
    ) {
        return Ok(booking.state().holds_seats());
    }
    let items = booking.items(conn)?;
    let type_ids: Vec<i64> = items.iter().map(|i| i.ticket_type_id).collect();
    let qtys: Vec<i32> = items.iter().map(|i| i.quantity).collect();
    // The buyer agreed to pay while the sale was open, so the sale window is not checked again.
    if !crate::bookings::holds::take_seats(conn, booking.event_id, &type_ids, &qtys, false)? {
        return Ok(false);
    }
    diesel::update(bookings::table.find(booking_id))
        .set((
            bookings::state.eq(BookingState::AwaitingPayment.as_str()),
            bookings::closed_at.eq(None::<chrono::DateTime<Utc>>),
            bookings::hold_expires_at.eq(Utc::now() + Duration::minutes(30)),
            bookings::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    diesel::insert_into(crate::schema::booking_history::table)
        .values((
            crate::schema::booking_history::booking_id.eq(booking_id),
            crate::schema::booking_history::from_state.eq(booking.state.clone()),
            crate::schema::booking_history::to_state.eq("awaiting_payment"),
            crate::schema::booking_history::note.eq("late approval: seats taken again"),
        ))
        .execute(conn)?;
    Ok(true)
}
