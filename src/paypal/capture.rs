//! Capturing an approved order.

use diesel::prelude::*;

use super::service::{load_payment, CaptureOutcome, PayPal};
use super::settlement::revive;
use crate::error::AppError;
use crate::models::{BookingState, Payment};
use crate::schema::payments;
use crate::Db;

impl PayPal {
    /// Captures the order of `payment` (after the buyer approved), then settles the booking.
    pub async fn capture(&self, db: &Db, payment_id: i64) -> Result<CaptureOutcome, AppError> {
        let (payment, booking) = load_payment(db, payment_id).await?;
        if payment.capture_status.as_deref() == Some("COMPLETED")
            || !matches!(
                booking.state(),
                BookingState::Held
                    | BookingState::AwaitingPayment
                    | BookingState::Expired
                    | BookingState::Cancelled
            )
        {
            return self.settle_fresh(db, payment_id).await;
        }
        // The seats must be ours before money moves (a late approval may have lost them).
        if !matches!(
            booking.state(),
            BookingState::Held | BookingState::AwaitingPayment
        ) {
            let revived = db
                .run(move |conn| Ok(conn.transaction(|conn| revive(conn, booking.id))?))
                .await?;
            if !revived {
                db.run(move |conn| {
                    diesel::update(payments::table.find(payment_id))
                        .set((
                            payments::late_refused.eq(true),
                            payments::updated_at.eq(diesel::dsl::now),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
                .await?;
                tracing::info!(
                    booking = booking.id,
                    "late approval refused: seats are gone, nothing captured"
                );
                return Ok(CaptureOutcome::LateNoSeats);
            }
        }
        let request_id = format!("capture-{}-{}", payment.id, payment.capture_attempt);
        match self
            .client()
            .capture_order(&payment.order_id, &request_id)
            .await
        {
            Ok(order) => self.settle(db, payment_id, &order).await,
            Err(e) if e.has_issue("INSTRUMENT_DECLINED") => self.declined(db, &payment, true).await,
            Err(e) if e.has_issue("ORDER_ALREADY_CAPTURED") => {
                self.settle_fresh(db, payment_id).await
            }
            Err(e) if e.has_issue("ORDER_NOT_APPROVED") => {
                // PayPal answers a repeated request id with the same error: this id is used up.
                self.declined(db, &payment, false).await?;
                // The approval webhook may have met the decline a moment before the buyer's
                // return did: then the buyer is told about the decline, not "not approved".
                let (fresh, _) = load_payment(db, payment.id).await?;
                if fresh.capture_status.as_deref() == Some("DECLINED") {
                    return Ok(CaptureOutcome::Declined {
                        approve_url: payment.approve_url.clone(),
                    });
                }
                Ok(CaptureOutcome::NotApproved {
                    approve_url: payment.approve_url.clone(),
                })
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, payment = payment.id, "capture failed for now; reconciliation will retry");
                Ok(CaptureOutcome::Unavailable)
            }
            Err(e) => Err(AppError::internal(e)),
        }
    }

    /// A capture attempt that PayPal refused: the next one needs a new request id. `decline`:
    /// the buyer's funding was declined (remembered, so a later "not approved" answer to the
    /// same buyer is explained as the decline).
    async fn declined(
        &self,
        db: &Db,
        payment: &Payment,
        decline: bool,
    ) -> Result<CaptureOutcome, AppError> {
        let id = payment.id;
        // Only the first of several concurrent declines of the same attempt (the buyer's
        // return and the approval webhook) moves to the next request id.
        let used = payment.capture_attempt;
        db.run(move |conn| {
            conn.transaction(|conn| {
                diesel::update(
                    payments::table
                        .find(id)
                        .filter(payments::capture_attempt.eq(used)),
                )
                .set((
                    payments::capture_attempt.eq(used + 1),
                    payments::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
                if decline {
                    diesel::update(payments::table.find(id))
                        .set(payments::capture_status.eq("DECLINED"))
                        .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?;
            Ok(())
        })
        .await?;
        Ok(CaptureOutcome::Declined {
            approve_url: payment.approve_url.clone(),
        })
    }
}
