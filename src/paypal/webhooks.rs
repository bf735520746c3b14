//! Webhooks: recorded once by event id, then settled from a fresh look at the order.

use diesel::prelude::*;
use serde_json::Value;

use super::service::PayPal;
use crate::error::AppError;
use crate::models::Payment;
use crate::schema::webhook_events;
use crate::Db;

impl PayPal {
    /// Handles a verified webhook: records it once by event id, then settles the order it is
    /// about from a fresh GET. Returns a short outcome for the log.
    pub async fn handle_webhook(&self, db: &Db, body: &[u8]) -> Result<String, AppError> {
        let event: Value = serde_json::from_slice(body)
            .map_err(|_| AppError::bad_request("The body is not JSON."))?;
        let event_id = event["id"].as_str().unwrap_or_default().to_string();
        if event_id.is_empty() {
            return Err(AppError::bad_request("The event has no id."));
        }
        let event_type = event["event_type"].as_str().unwrap_or_default().to_string();
        let resource = &event["resource"];
        let order_id = order_id_of(&event_type, resource);
        let capture_id = capture_id_of(&event_type, resource);
        let (eid, etype, oid) = (event_id.clone(), event_type.clone(), order_id.clone());
        let rtype = event["resource_type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rid = resource["id"].as_str().unwrap_or_default().to_string();
        let stored = event.clone();
        let fresh = db
            .run(move |conn| {
                Ok(diesel::insert_into(webhook_events::table)
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
                    .execute(conn)?
                    == 1)
            })
            .await?;
        if !fresh {
            return Ok(format!("duplicate {event_type} {event_id}: ignored"));
        }
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
        let outcome = if !HANDLED.contains(&event_type.as_str()) {
            "stored".to_string()
        } else {
            let (oid, cid) = (order_id.clone(), capture_id.clone());
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
            match payment {
                None => "no matching payment".to_string(),
                Some(p) => match self.settle_fresh(db, p.id).await {
                    Ok(o) => format!("{o:?}"),
                    Err(e) => {
                        tracing::error!(error = %e, event = %event_id, "webhook settlement failed");
                        format!("error: {}", e.message)
                    }
                },
            }
        };
        let (eid, out) = (event_id.clone(), outcome.clone());
        db.run(move |conn| {
            diesel::update(webhook_events::table.filter(webhook_events::event_id.eq(&eid)))
                .set((
                    webhook_events::processed_at.eq(diesel::dsl::now),
                    webhook_events::outcome.eq(&out),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await?;
        Ok(format!("{event_type} {event_id}: {outcome}"))
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
            "{}/../shared/paypal/webhook-event-samples/{name}.json",
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
