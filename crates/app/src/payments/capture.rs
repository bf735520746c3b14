//! Capturing an approved order: claim the capture under the booking's lock (so the hold
//! cannot run out and the booking cannot be cancelled while money moves), call PayPal with a
//! request id derived from our ids, and settle from the answer.

use chrono::Utc;
use diesel::prelude::*;

use super::service::{db_err, load_payment, lock_payment, CaptureOutcome, PayPal};
use ticketing_db::models::BookingState;
use ticketing_db::schema::payments;
use ticketing_db::Db;
use ticketing_db::Error;
use ticketing_domain::bookings::lifecycle::{reopen_expired, Reopen};

/// What the capture claim found.
enum Claim {
    /// The capture is ours to make, with this PayPal-Request-Id.
    Go {
        request_id: String,
        order_id: String,
    },
    /// PayPal already has (or is deciding on) a capture: read it instead of capturing.
    Known,
    /// No capture may be made; the buyer is told this.
    Refused(CaptureOutcome),
}

/// Claims the capture of `payment_id` for `claim_for`, in one transaction under the booking's
/// row lock: only a booking that holds its seats (an expired one takes them again first) may
/// be captured; a cancelled, released or otherwise closed one never is.
fn claim_capture(
    conn: &mut PgConnection,
    payment_id: i64,
    claim_for: chrono::Duration,
) -> QueryResult<Claim> {
    conn.transaction(|conn| {
        let (booking, payment) = lock_payment(conn, payment_id)?;
        if matches!(
            payment.capture_status.as_deref(),
            Some("COMPLETED" | "PENDING" | "PARTIALLY_REFUNDED" | "REFUNDED" | "REVERSED")
        ) {
            return Ok(Claim::Known);
        }
        match booking.state() {
            BookingState::Held | BookingState::AwaitingPayment => {}
            BookingState::Expired => match reopen_expired(conn, booking.id)? {
                Reopen::Holding => {}
                Reopen::SeatsGone => {
                    let first = diesel::update(
                        payments::table
                            .find(payment_id)
                            .filter(payments::late_refused.eq(false)),
                    )
                    .set((
                        payments::late_refused.eq(true),
                        payments::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                    if first == 1 {
                        ticketing_domain::outbox::late_payment(conn, booking.id)?;
                    }
                    tracing::info!(
                        booking = booking.id,
                        "late approval refused: seats are gone, nothing captured"
                    );
                    return Ok(Claim::Refused(CaptureOutcome::LateNoSeats));
                }
                Reopen::Closed => return Ok(Claim::Refused(CaptureOutcome::Closed)),
            },
            BookingState::Cancelled => {
                tracing::info!(
                    booking = booking.id,
                    "approval of a cancelled booking: not captured"
                );
                return Ok(Claim::Refused(CaptureOutcome::Cancelled));
            }
            _ => return Ok(Claim::Refused(CaptureOutcome::Closed)),
        }
        diesel::update(payments::table.find(payment_id))
            .set((
                payments::capture_claimed_until.eq(Utc::now() + claim_for),
                payments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        Ok(Claim::Go {
            request_id: format!("capture-{}-{}", payment.id, payment.capture_attempt),
            order_id: payment.order_id,
        })
    })
}

/// Ends a capture claim whose call got an answer that settles nothing by itself.
fn release_claim(conn: &mut PgConnection, payment_id: i64) -> QueryResult<()> {
    diesel::update(payments::table.find(payment_id))
        .set(payments::capture_claimed_until.eq(None::<chrono::DateTime<Utc>>))
        .execute(conn)?;
    Ok(())
}

impl PayPal {
    /// How long a capture claim lasts: longer than the capture call and the token call before
    /// it can take with all their retries, so that a claim only lapses after a crash.
    fn capture_claim(&self) -> chrono::Duration {
        let timeout = self.client().settings.timeout;
        chrono::Duration::from_std(timeout * 6).unwrap_or(chrono::Duration::minutes(5))
            + chrono::Duration::seconds(30)
    }

    /// Captures the order of `payment` (after the buyer approved), then settles the booking.
    /// Counted in `payment_captures_total` by outcome.
    pub async fn capture(&self, db: &Db, payment_id: i64) -> Result<CaptureOutcome, Error> {
        let result = self.try_capture(db, payment_id).await;
        ticketing_core::telemetry::capture(match &result {
            Ok(outcome) => outcome.label(),
            Err(_) => "error",
        });
        result
    }

    async fn try_capture(&self, db: &Db, payment_id: i64) -> Result<CaptureOutcome, Error> {
        let claim_for = self.capture_claim();
        let claim = db
            .run(move |conn| claim_capture(conn, payment_id, claim_for).map_err(db_err))
            .await?;
        let (request_id, order_id) = match claim {
            Claim::Go {
                request_id,
                order_id,
            } => (request_id, order_id),
            Claim::Known => return self.settle_known(db, payment_id).await,
            Claim::Refused(outcome) => return Ok(outcome),
        };
        match self.client().capture_order(&order_id, &request_id).await {
            Ok(order) => self.settle(db, payment_id, &order).await,
            Err(e) if e.has_issue("INSTRUMENT_DECLINED") => {
                self.declined(db, payment_id, true).await
            }
            Err(e) if e.has_issue("ORDER_ALREADY_CAPTURED") => {
                self.settle_known(db, payment_id).await
            }
            Err(e) if e.has_issue("ORDER_NOT_APPROVED") => {
                // PayPal answers a repeated request id with the same error: this id is used up.
                self.declined(db, payment_id, false).await?;
                // The approval webhook may have met the decline a moment before the buyer's
                // return did: then the buyer is told about the decline, not "not approved".
                let (fresh, _) = load_payment(db, payment_id).await?;
                if fresh.capture_status.as_deref() == Some("DECLINED") {
                    return Ok(CaptureOutcome::Declined {
                        approve_url: fresh.approve_url,
                    });
                }
                Ok(CaptureOutcome::NotApproved {
                    approve_url: fresh.approve_url,
                })
            }
            Err(e) if e.is_transient() => {
                // The claim stays until it lapses: PayPal may have captured, so the seats stay
                // held; reconciliation reads the order and settles it either way.
                tracing::warn!(error = %e, payment = payment_id, "capture failed for now; reconciliation will retry");
                Ok(CaptureOutcome::Unavailable)
            }
            Err(e) => {
                db.run(move |conn| release_claim(conn, payment_id).map_err(db_err))
                    .await?;
                Err(Error::internal(e))
            }
        }
    }

    /// A capture attempt that PayPal refused: the next one needs a new request id. `decline`:
    /// the buyer's funding was declined (remembered, so a later "not approved" answer to the
    /// same buyer is explained as the decline).
    async fn declined(
        &self,
        db: &Db,
        payment_id: i64,
        decline: bool,
    ) -> Result<CaptureOutcome, Error> {
        let (payment, _) = load_payment(db, payment_id).await?;
        // Only the first of several concurrent declines of the same attempt (the buyer's
        // return and the approval webhook) moves to the next request id.
        let used = payment.capture_attempt;
        db.run(move |conn| {
            conn.transaction(|conn| {
                diesel::update(
                    payments::table
                        .find(payment_id)
                        .filter(payments::capture_attempt.eq(used)),
                )
                .set((
                    payments::capture_attempt.eq(used + 1),
                    payments::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
                if decline {
                    diesel::update(payments::table.find(payment_id))
                        .set(payments::capture_status.eq("DECLINED"))
                        .execute(conn)?;
                }
                release_claim(conn, payment_id)
            })
            .map_err(db_err)
        })
        .await?;
        Ok(CaptureOutcome::Declined {
            approve_url: payment.approve_url,
        })
    }
}
