//! Reconciliation: payments PayPal may have moved without telling us.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::service::{IdRow, PayPal};
use crate::error::AppError;
use crate::Db;

impl PayPal {
    /// Settles up to `limit` bookings that have been `awaiting_payment` for over ten minutes,
    /// claiming them first so that several instances never work on the same one.
    pub async fn reconcile(&self, db: &Db, limit: i64) -> Result<usize, AppError> {
        let claimed: Vec<i64> = db
            .run(move |conn| {
                Ok(diesel::sql_query(
                    "UPDATE payments SET reconciled_at = now() WHERE id IN (
                        SELECT p.id FROM payments p JOIN bookings b ON b.id = p.booking_id
                        WHERE b.state = 'awaiting_payment'
                          AND b.updated_at < now() - interval '10 minutes'
                          AND (p.reconciled_at IS NULL OR p.reconciled_at < now() - interval '2 minutes')
                        ORDER BY p.reconciled_at NULLS FIRST
                        LIMIT $1
                        FOR UPDATE OF p SKIP LOCKED)
                     RETURNING id",
                )
                .bind::<BigInt, _>(limit)
                .load::<IdRow>(conn)?
                .into_iter()
                .map(|r| r.id)
                .collect())
            })
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
