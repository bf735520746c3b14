//! Webhooks: recorded by event id, settled from a fresh look at the order, and only then
//! marked processed. A settlement that fails for now (PayPal's GET fails, a database error)
//! leaves the row unprocessed and is answered 503, so PayPal delivers it again; a redelivery
//! of an unprocessed event is settled, of a processed one ignored; and a job settles rows
//! left unprocessed by a crash or a lost redelivery
//! (test `payment_races::a_webhook_whose_settlement_fails_is_retried_not_swallowed`).

use diesel::prelude::*;
use serde_json::Value;
use ticketing_db::ErrorKind;

use super::service::{CaptureOutcome, PayPal};
use ticketing_db::claim::{claim_due, Due};
use ticketing_db::models::Payment;
use ticketing_db::schema::webhook_events;
use ticketing_db::Db;
use ticketing_db::Error;

/// The event types that can change a booking; others are stored only.
const HANDLED: [&str; 8] = [
    "CHECKOUT.ORDER.APPROVED",
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.PENDING",
    "PAYMENT.CAPTURE.DECLINED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.REFUNDED",
    "PAYMENT.CAPTURE.REVERSED",
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED",
];

/// How long unprocessed rows are re-settled by the job before they are left to
/// reconciliation (PayPal itself redelivers for three days).
const RESETTLE_FOR_HOURS: i64 = 72;

impl PayPal {
    /// Handles a verified webhook: records it by event id (once), settles the order it is
    /// about from a fresh GET unless the event was processed before, then marks it processed.
    /// Returns a short outcome for the log; an error with a 5xx status asks for redelivery.
    pub async fn handle_webhook(&self, db: &Db, body: &[u8]) -> Result<String, Error> {
        let event: Value = serde_json::from_slice(body)
            .map_err(|_| Error::bad_request("The body is not JSON."))?;
        let event_id = event["id"].as_str().unwrap_or_default().to_string();
        if event_id.is_empty() || event_id.len() > 200 {
            return Err(Error::bad_request("The event has no usable id."));
        }
        let event_type = event["event_type"].as_str().unwrap_or_default().to_string();
        let resource = &event["resource"];
        let order_id = order_id_of(&event_type, resource);
        let (eid, etype, oid) = (event_id.clone(), event_type.clone(), order_id.clone());
        let rtype = event["resource_type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rid = resource["id"].as_str().unwrap_or_default().to_string();
        let stored = event.clone();
        let processed = db
            .run(move |conn| {
                diesel::insert_into(webhook_events::table)
                    .values((
                        webhook_events::event_id.eq(&eid),
                        webhook_events::event_type.eq(&etype),
                        webhook_events::resource_type.eq(&rtype),
                        webhook_events::resource_id.eq(&rid),
                        webhook_events::order_id.eq(&oid),
                        webhook_events::body.eq(&stored),
                    ))
                    .on_conflict(webhook_events::event_id)
                    .do_nothing()
                    .execute(conn)?;
                Ok(webhook_events::table
                    .filter(webhook_events::event_id.eq(&eid))
                    .select(webhook_events::processed_at)
                    .first::<Option<chrono::DateTime<chrono::Utc>>>(conn)?
                    .is_some())
            })
            .await?;
        if processed {
            return Ok(format!("duplicate {event_type} {event_id}: ignored"));
        }
        let outcome = self.process(db, &event_id, &event).await?;
        Ok(format!("{event_type} {event_id}: {outcome}"))
    }

    /// Settles a recorded event and marks it processed, or records the failure (and returns
    /// it as a 503) leaving it for a redelivery or the job.
    async fn process(&self, db: &Db, event_id: &str, event: &Value) -> Result<String, Error> {
        let event_type = event["event_type"].as_str().unwrap_or_default();
        let result = if HANDLED.contains(&event_type) {
            self.settle_event(db, event_type, &event["resource"]).await
        } else {
            Ok("stored".to_string())
        };
        let eid = event_id.to_string();
        match result {
            Ok(outcome) => {
                let out = outcome.clone();
                db.run(move |conn| {
                    diesel::update(webhook_events::table.filter(webhook_events::event_id.eq(&eid)))
                        .set((
                            webhook_events::processed_at.eq(diesel::dsl::now),
                            webhook_events::outcome.eq(&out),
                            webhook_events::attempts.eq(webhook_events::attempts + 1),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
                .await?;
                Ok(outcome)
            }
            Err(e) => {
                tracing::warn!(error = %e, event = %event_id, "webhook settlement failed; left for redelivery");
                let out = format!("failed: {}", e.message);
                // Best effort: if even this fails, the row stays unprocessed all the same.
                let _ = db
                    .run(move |conn| {
                        diesel::update(
                            webhook_events::table.filter(webhook_events::event_id.eq(&eid)),
                        )
                        .set((
                            webhook_events::outcome.eq(&out),
                            webhook_events::attempts.eq(webhook_events::attempts + 1),
                            webhook_events::attempted_at.eq(diesel::dsl::now),
                        ))
                        .execute(conn)?;
                        Ok(())
                    })
                    .await;
                Err(Error::new(
                    ErrorKind::Unavailable,
                    "The event could not be settled now; deliver it again.",
                )
                .with_source(e))
            }
        }
    }

    /// Settles the payment a webhook is about; PayPal being unreachable is a failure.
    async fn settle_event(
        &self,
        db: &Db,
        event_type: &str,
        resource: &Value,
    ) -> Result<String, Error> {
        let oid = order_id_of(event_type, resource);
        let cid = capture_id_of(event_type, resource);
        let payment = db
            .run(move |conn| {
                let by_order = match &oid {
                    Some(o) => Payment::find_by_order(conn, o)?,
                    None => None,
                };
                Ok(match (by_order, &cid) {
                    (Some(p), _) => Some(p),
                    (None, Some(c)) => Payment::find_by_capture(conn, c)?,
                    (None, None) => None,
                })
            })
            .await?;
        let Some(p) = payment else {
            return Ok("no matching payment".to_string());
        };
        match self.settle_fresh(db, p.id).await? {
            CaptureOutcome::Unavailable => Err(Error::new(
                ErrorKind::Unavailable,
                "PayPal could not be reached",
            )),
            o => Ok(format!("{o:?}")),
        }
    }

    /// Settles webhook rows left unprocessed for over a minute (a failed settlement whose
    /// redelivery was lost, a crash between recording and settling), claiming each for two
    /// minutes so that several instances never work on the same one. Returns how many.
    pub async fn resettle_webhooks(&self, db: &Db, limit: i64) -> Result<usize, Error> {
        let rows: Vec<(String, Value)> = db
            .run(move |conn| {
                let condition = format!(
                    "processed_at IS NULL
                     AND received_at < now() - interval '1 minute'
                     AND received_at > now() - interval '{RESETTLE_FOR_HOURS} hours'
                     AND (attempted_at IS NULL OR attempted_at < now() - interval '2 minutes')"
                );
                let due = Due {
                    table: "webhook_events",
                    alias: "webhook_events",
                    from: "webhook_events",
                    condition: &condition,
                    order: "received_at",
                    lease: "attempted_at = now()",
                };
                let ids = claim_due(conn, &due, limit)?;
                Ok(webhook_events::table
                    .filter(webhook_events::id.eq_any(ids))
                    .select((webhook_events::event_id, webhook_events::body))
                    .load(conn)?)
            })
            .await?;
        let n = rows.len();
        for (event_id, body) in rows {
            match self.process(db, &event_id, &body).await {
                Ok(outcome) => {
                    tracing::info!(event = %event_id, %outcome, "webhook settled by the job")
                }
                Err(e) => {
                    tracing::warn!(event = %event_id, error = %e, "webhook still not settled")
                }
            }
        }
        Ok(n)
    }
}

/// The order a webhook is about, from its resource.
fn order_id_of(event_type: &str, resource: &Value) -> Option<String> {
    if event_type.starts_with("CHECKOUT.ORDER.") {
        return resource["id"].as_str().map(str::to_string);
    }
    if let Some(id) = resource["order_id"].as_str() {
        return Some(id.to_string());
    }
    if let Some(id) = resource["supplementary_data"]["related_ids"]["order_id"].as_str() {
        return Some(id.to_string());
    }
    link_id(resource, "/v2/checkout/orders/")
}

/// The capture a webhook is about (refunds and reversals point at it with an `up` link).
fn capture_id_of(event_type: &str, resource: &Value) -> Option<String> {
    if event_type.starts_with("PAYMENT.CAPTURE.")
        && resource["status"].is_string()
        && !matches!(
            event_type,
            "PAYMENT.CAPTURE.REFUNDED" | "PAYMENT.CAPTURE.REVERSED"
        )
    {
        return resource["id"].as_str().map(str::to_string);
    }
    link_id(resource, "/v2/payments/captures/")
}

fn link_id(resource: &Value, marker: &str) -> Option<String> {
    resource["links"].as_array()?.iter().find_map(|l| {
        let href = l["href"].as_str()?;
        let rest = &href[href.find(marker)? + marker.len()..];
        let id = rest.split(['/', '?']).next()?;
        (!id.is_empty()).then(|| id.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/../../../shared/paypal/webhook-event-samples/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn finds_the_order_or_capture_of_paypals_sample_events() {
        let completed = sample("PAYMENT.CAPTURE.COMPLETED");
        assert!(order_id_of("PAYMENT.CAPTURE.COMPLETED", &completed["resource"]).is_some());
        let pending = sample("PAYMENT.CAPTURE.PENDING");
        assert!(
            order_id_of("PAYMENT.CAPTURE.PENDING", &pending["resource"]).is_some(),
            "via the up link"
        );
        let refunded = sample("PAYMENT.CAPTURE.REFUNDED");
        assert!(capture_id_of("PAYMENT.CAPTURE.REFUNDED", &refunded["resource"]).is_some());
        let reversed = sample("CHECKOUT.PAYMENT-APPROVAL.REVERSED");
        assert!(order_id_of("CHECKOUT.PAYMENT-APPROVAL.REVERSED", &reversed["resource"]).is_some());
    }
}
