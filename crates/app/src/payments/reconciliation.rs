//! Reconciliation: every payment whose PayPal order is not final is read from PayPal again,
//! whatever the booking's state, for as long as PayPal can still capture it, and the answer
//! goes through the same settlement as everything else. So a lost webhook, a lost capture
//! answer, or a crash between a PayPal call and its commit loses nothing
//! (test `payment_races::a_capture_that_lands_after_expiry_is_recorded_and_refunded`).

use ticketing_db::claim::{claim_due, Due};

use super::service::PayPal;
use ticketing_db::Db;
use ticketing_db::Error;

/// The payments reconciliation looks at, claimed (`reconciled_at`) so that several instances
/// never work on the same one:
/// - the order is not final: no capture yet (created, approved, awaiting the buyer), or a
///   capture PENDING or DECLINED (the buyer may pay another way), and not VOIDED;
/// - or money was captured for a booking that was never paid and is not known as
///   unhonoured (a capture recorded before the automatic refunds existed);
/// - made in the last four days (an approved order can be captured for three);
/// - untouched for two minutes and no capture in flight, so a buyer on their way back is
///   not raced; looked at again after two minutes, then less often as it ages
///   (a tenth of its age), so an abandoned order costs a few dozen GETs in all.
const DUE: Due<'static> = Due {
    table: "payments",
    alias: "p",
    from: "payments p JOIN bookings b ON b.id = p.booking_id",
    condition: "p.created_at > now() - interval '4 days'
       AND p.updated_at < now() - interval '2 minutes'
       AND (p.capture_claimed_until IS NULL OR p.capture_claimed_until < now())
       AND ((p.order_status <> 'VOIDED'
             AND (p.capture_status IS NULL OR p.capture_status IN ('PENDING', 'DECLINED', 'FAILED')))
         OR (p.capture_status IN ('COMPLETED', 'PARTIALLY_REFUNDED')
             AND b.paid_at IS NULL AND p.unhonoured_at IS NULL))
       AND (p.reconciled_at IS NULL
            OR p.reconciled_at < now() - greatest(interval '2 minutes', (now() - p.created_at) / 10))",
    order: "p.reconciled_at NULLS FIRST",
    lease: "reconciled_at = now()",
};

impl PayPal {
    /// Settles up to `limit` due payments (see [`DUE`]) from PayPal's view; returns how many
    /// were looked at.
    pub async fn reconcile(&self, db: &Db, limit: i64) -> Result<usize, Error> {
        let claimed: Vec<i64> = db
            .run(move |conn| Ok(claim_due(conn, &DUE, limit)?))
            .await?;
        for id in &claimed {
            match self.settle_fresh(db, *id).await {
                Ok(outcome) => tracing::info!(payment = id, ?outcome, "reconciled"),
                Err(e) => tracing::warn!(payment = id, error = %e, "reconciliation failed"),
            }
        }
        Ok(claimed.len())
    }
}
