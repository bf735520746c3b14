//! Paying with PayPal end to end, over real HTTP, against the project's PayPal simulator:
//! happy path, buyers who never come back, duplicate and reordered webhooks, pending and
//! declined captures, late approvals, forged webhooks, PayPal failing or slow, a crash
//! between capture and commit, refunds and reversals. After each: the seat invariant holds
//! and no order was captured twice.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::{json, Value};
use ticketing::schema::{bookings, payments, refunds, webhook_events};

use crate::paypal_world::{unaudited, wait_until, world, World};

#[rocket::async_test]
async fn happy_path_pays_once() {
    let w = world(10).await;
    let token = w.hold(2).await;
    let (approve_url, order) = w.pay(&token).await;
    let page = w
        .client
        .get(&approve_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("50.00 EUR"), "{page}");
    assert_eq!(w.state(&token), "awaiting_payment");
    let back = w.approval(&order, "approve").await;
    assert!(back.starts_with(&w.app.url("/payments/paypal/return")));
    let (status, next) = w.follow(&back).await;
    assert_eq!(status, 303);
    assert!(next.ends_with(&format!("/bookings/{token}")));
    w.wait_state(&token, "paid").await;
    rocket::tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.captures(&order).await, 1);
    let body = w
        .client
        .get(w.app.url(&next))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Your tickets"));
    assert_eq!(w.seats_taken(), 2);
    w.check_invariant();
}

#[rocket::async_test]
async fn a_buyer_who_never_comes_back_is_captured_from_the_approval_webhook() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let res = w
        .client
        .post(format!("{}/simulator/orders/{order}/approve", w.sim))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    w.wait_state(&token, "paid").await;
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

#[rocket::async_test]
async fn the_same_webhook_five_times_has_one_effect() {
    let w = world(10).await;
    w.control(json!({ "webhook_mode": "duplicate", "duplicates": 5 }))
        .await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    w.client
        .post(format!("{}/simulator/orders/{order}/approve", w.sim))
        .send()
        .await
        .unwrap();
    w.wait_state(&token, "paid").await;
    rocket::tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.captures(&order).await, 1);
    let mut c = w.app.conn();
    let approved: i64 = webhook_events::table
        .filter(webhook_events::event_type.eq("CHECKOUT.ORDER.APPROVED"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(
        approved, 1,
        "five deliveries of one event are recorded once"
    );
    let history: i64 = ticketing::schema::booking_history::table
        .filter(ticketing::schema::booking_history::to_state.eq("paid"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(history, 1);
    w.check_invariant();
}

#[rocket::async_test]
async fn capture_completed_arriving_before_approval_settles_once() {
    let w = world(10).await;
    w.control(json!({ "webhook_mode": "reorder" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    // The buyer approves, but does not come back; the app learns nothing yet.
    w.client
        .post(format!("{}/simulator/orders/{order}/approve", w.sim))
        .send()
        .await
        .unwrap();
    // Someone captures (as the app would from a lost earlier attempt): simulate with the API.
    let res = w
        .client
        .post(format!("{}/v2/checkout/orders/{order}/capture", w.sim))
        .bearer_auth("t")
        .header("PayPal-Request-Id", "external-capture")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Held webhooks arrive newest first: CAPTURE.COMPLETED, then ORDER.APPROVED.
    w.client
        .post(format!("{}/simulator/webhooks/flush", w.sim))
        .send()
        .await
        .unwrap();
    w.wait_state(&token, "paid").await;
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

#[rocket::async_test]
async fn pending_then_completed() {
    let w = world(10).await;
    w.control(json!({ "capture_outcome": "PENDING" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("Payment pending"), "{page}");
    rocket::tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.state(&token), "awaiting_payment");
    let o = w.order(&order).await;
    let capture_id = o["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.client
        .post(format!(
            "{}/simulator/captures/{capture_id}/complete",
            w.sim
        ))
        .send()
        .await
        .unwrap();
    w.wait_state(&token, "paid").await;
    w.check_invariant();
}

#[rocket::async_test]
async fn a_decline_the_webhook_met_first_is_still_shown_as_declined() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "decline").await;
    // The approval webhook captures first and meets the decline...
    wait_until("the webhook's capture attempt", || {
        payments::table
            .select(payments::capture_attempt)
            .first::<i32>(&mut w.app.conn())
            .unwrap()
            == 1
    })
    .await;
    // ...then the buyer's return asks again and PayPal says "not approved": the buyer is told
    // about the decline and sent back to choose another way to pay.
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("Payment declined"), "{page}");
    assert_eq!(w.state(&token), "awaiting_payment");
    assert_eq!(w.captures(&order).await, 0);
}

#[rocket::async_test]
async fn declined_then_paid_with_another_funding_source() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "decline").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("Payment declined"), "{page}");
    assert!(
        page.contains(&format!("checkoutnow?token={order}")),
        "a way back to PayPal"
    );
    assert_eq!(w.state(&token), "awaiting_payment");
    let back = w.approval(&order, "approve").await;
    let (status, _) = w.follow(&back).await;
    assert_eq!(status, 303);
    w.wait_state(&token, "paid").await;
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

async fn expire(w: &World, token: &str) {
    let mut c = w.app.conn();
    diesel::update(bookings::table.filter(bookings::access_token.eq(token)))
        .set(bookings::hold_expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut c)
        .unwrap();
    w.wait_state(token, "expired").await;
}

#[rocket::async_test]
async fn a_late_approval_is_captured_when_the_seats_are_still_free() {
    let w = world(10).await;
    let token = w.hold(2).await;
    let (_, order) = w.pay(&token).await;
    expire(&w, &token).await;
    assert_eq!(w.seats_taken(), 0);
    let back = w.approval(&order, "approve").await;
    w.follow(&back).await;
    w.wait_state(&token, "paid").await;
    assert_eq!(w.seats_taken(), 2);
    w.check_invariant();
}

#[rocket::async_test]
async fn a_late_approval_is_not_captured_when_the_seats_are_gone() {
    let w = world(1).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    expire(&w, &token).await;
    let other = w.hold(1).await; // someone else takes the last seat
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("your seats are gone") && page.contains("nothing was charged"),
        "{page}"
    );
    rocket::tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.captures(&order).await, 0, "no money moved");
    assert_eq!(w.state(&token), "expired");
    assert_eq!(w.state(&other), "held");
    let late: bool = payments::table
        .select(payments::late_refused)
        .first(&mut w.app.conn())
        .unwrap();
    assert!(late);
    w.check_invariant();
}

#[rocket::async_test]
async fn a_late_approval_is_not_captured_when_only_its_ticket_type_is_full() {
    let w = world(2).await;
    // The event has room to spare; the ticket type does not.
    diesel::update(ticketing::schema::events::table)
        .set(ticketing::schema::events::capacity.eq(10))
        .execute(&mut w.app.conn())
        .unwrap();
    let token = w.hold(2).await;
    let (_, order) = w.pay(&token).await;
    expire(&w, &token).await;
    let other = w.hold(1).await;
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("your seats are gone"), "{page}");
    rocket::tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.captures(&order).await, 0, "no money moved");
    assert_eq!(
        (w.state(&token).as_str(), w.state(&other).as_str()),
        ("expired", "held")
    );
    assert_eq!(w.seats_taken(), 1, "the event's count was given back too");
    w.check_invariant();
}

#[rocket::async_test]
async fn forged_webhooks_get_400_and_change_nothing() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let body = serde_json::to_vec(&json!({
        "id": "WH-FORGED-1",
        "event_type": "CHECKOUT.ORDER.APPROVED",
        "resource_type": "checkout-order",
        "resource": { "id": order, "status": "APPROVED" },
    }))
    .unwrap();
    let send = |headers: Vec<(&'static str, String)>| {
        let mut req = w
            .client
            .post(w.app.url("/payments/paypal/webhook"))
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let good_looking = |sig: &str, cert: &str| {
        vec![
            ("paypal-transmission-id", "f0rged".to_string()),
            (
                "paypal-transmission-time",
                // Now, so that the signature and the certificate URL are what is judged.
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("paypal-transmission-sig", sig.to_string()),
            ("paypal-cert-url", cert.to_string()),
            ("paypal-auth-algo", "SHA256withRSA".to_string()),
        ]
    };
    let sim_cert = format!("{}/v1/notifications/certs/CERT-SIMULATOR", w.sim);
    for headers in [
        good_looking("bm90IGEgc2lnbmF0dXJl", &sim_cert),
        good_looking("bm90IGEgc2lnbmF0dXJl", "https://evil.test/certs/CERT-1"),
        good_looking(
            "bm90IGEgc2lnbmF0dXJl",
            "https://api.paypal.com.evil.test/certs/CERT-1",
        ),
        vec![],
    ] {
        let res = send(headers).await.unwrap();
        assert_eq!(res.status(), 400);
    }
    let stored: i64 = webhook_events::table
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(stored, 0, "nothing recorded");
    assert_eq!(w.state(&token), "awaiting_payment");
    assert_eq!(w.captures(&order).await, 0);
}

#[rocket::async_test]
async fn paypal_failing_or_slow_on_capture_is_retried_with_the_same_request_id() {
    let w = world(10).await;
    w.control(json!({ "webhook_mode": "drop" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "approve").await;
    // The next two API calls (the capture and its first retry) answer 500.
    w.control(json!({ "fail_next": 2 })).await;
    let (status, _) = w.follow(&back).await;
    assert_eq!(status, 303);
    assert_eq!(w.state(&token), "paid");
    assert_eq!(w.captures(&order).await, 1);

    let token2 = w.hold(1).await;
    let (_, order2) = w.pay(&token2).await;
    let back = w.approval(&order2, "approve").await;
    // The capture times out once (the app waits 1 s; PayPal answers after 1.5 s, having
    // captured): the retry with the same request id gets the same capture back.
    w.control(json!({ "delay_ms": 1500, "delay_next": 1 }))
        .await;
    let (status, _) = w.follow(&back).await;
    assert_eq!(status, 303);
    assert_eq!(w.state(&token2), "paid");
    rocket::tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        w.captures(&order2).await,
        1,
        "captured once despite the retry"
    );
    w.check_invariant();
}

#[rocket::async_test]
async fn reconciliation_settles_a_capture_the_app_never_recorded() {
    let w = world(10).await;
    w.control(json!({ "webhook_mode": "drop" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    w.approval(&order, "approve").await;
    // The app captured and crashed before committing: PayPal has the capture, we do not.
    let res = w
        .client
        .post(format!("{}/v2/checkout/orders/{order}/capture", w.sim))
        .bearer_auth("t")
        .header("PayPal-Request-Id", "lost-capture")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(w.state(&token), "awaiting_payment");
    w.age_payments();
    let settled = w.paypal().reconcile(&w.db(), 20).await.unwrap();
    assert_eq!(settled, 1);
    assert_eq!(w.state(&token), "paid");
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

#[rocket::async_test]
async fn full_and_partial_refunds_and_a_reversal() {
    let w = world(10).await;
    let (token, _, booking_id) = w.paid_booking(2).await;
    let (paypal, db) = (w.paypal(), w.db());
    let send_form = || {
        paypal.refund(
            &db,
            booking_id,
            Some(1000),
            "partial",
            Some("form-1"),
            unaudited,
        )
    };
    send_form().await.unwrap();
    assert_eq!(w.state(&token), "paid");
    // The same admin form sent again finds its refund instead of refunding again.
    let twice = send_form().await.unwrap_err();
    let twice = ticketing::error::AppError::from(twice);
    assert_eq!(twice.status.code, 409, "{}", twice.message);
    let refunded: i64 = payments::table
        .select(payments::refunded_minor)
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(refunded, 1000);
    assert_eq!(w.seats_taken(), 2);
    assert!(paypal
        .refund(&db, booking_id, Some(999_999), "too much", None, unaudited)
        .await
        .is_err());
    paypal
        .refund(&db, booking_id, None, "the rest", None, unaudited)
        .await
        .unwrap();
    assert_eq!(w.state(&token), "refunded");
    assert_eq!(w.seats_taken(), 0, "a full refund returns the seats");
    rocket::tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.state(&token), "refunded");
    w.check_invariant();

    // A chargeback on another booking reverses it.
    let token2 = w.hold(1).await;
    let (_, order2) = w.pay(&token2).await;
    let back = w.approval(&order2, "approve").await;
    w.follow(&back).await;
    w.wait_state(&token2, "paid").await;
    let o = w.order(&order2).await;
    let capture_id = o["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.client
        .post(format!("{}/simulator/captures/{capture_id}/reverse", w.sim))
        .send()
        .await
        .unwrap();
    w.wait_state(&token2, "reversed").await;
    assert_eq!(w.seats_taken(), 0);
    w.check_invariant();
}

#[rocket::async_test]
async fn a_refund_whose_answer_is_lost_is_recorded_once_by_reconciliation() {
    let w = world(10).await;
    let (token, order, booking_id) = w.paid_booking(2).await;
    let (paypal, db) = (w.paypal(), w.db());
    // PayPal refunds, but its answer to the call and to both retries is lost.
    w.control(json!({ "lose_next": 3 })).await;
    let err = paypal
        .refund(&db, booking_id, Some(1000), "partial", None, unaudited)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("PayPal did not answer"),
        "{}",
        err.message
    );
    let capture = |o: Value| o["purchase_units"][0]["payments"]["captures"][0].clone();
    assert_eq!(
        capture(w.order(&order).await)["status"],
        "PARTIALLY_REFUNDED"
    );
    let (status, refunded): (String, i64) = refunds::table
        .inner_join(payments::table)
        .select((refunds::status, payments::refunded_minor))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!((status.as_str(), refunded), ("REQUESTED", 0));
    // While it is unanswered, no second refund can start.
    let again = paypal
        .refund(&db, booking_id, Some(500), "again", None, unaudited)
        .await
        .unwrap_err();
    let again = ticketing::error::AppError::from(again);
    assert_eq!(again.status.code, 409, "{}", again.message);
    // Too young for reconciliation (the admin's own call may still be running)...
    assert_eq!(paypal.reconcile_refunds(&db).await.unwrap(), 0);
    // ...once the claim has lapsed it asks again with the same request id and records it.
    backdate_refund_attempts(&w);
    assert_eq!(paypal.reconcile_refunds(&db).await.unwrap(), 1);
    assert_eq!(paypal.reconcile_refunds(&db).await.unwrap(), 0);
    let (status, refunded): (String, i64) = refunds::table
        .inner_join(payments::table)
        .select((refunds::status, payments::refunded_minor))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!((status.as_str(), refunded), ("COMPLETED", 1000));
    let mails: i64 = ticketing::schema::outbox::table
        .filter(ticketing::schema::outbox::kind.eq("partial_refund"))
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(mails, 1);
    assert_eq!(w.state(&token), "paid");
    // The rest, and its answer is lost too. PayPal's webhook marks the capture REFUNDED in
    // the meantime; the re-ask still goes out and records it.
    w.control(json!({ "lose_next": 3 })).await;
    paypal
        .refund(&db, booking_id, None, "the rest", None, unaudited)
        .await
        .unwrap_err();
    assert_eq!(capture(w.order(&order).await)["status"], "REFUNDED");
    wait_until("the REFUNDED webhook", || {
        payments::table
            .select(payments::capture_status)
            .first::<Option<String>>(&mut w.app.conn())
            .unwrap()
            .as_deref()
            == Some("REFUNDED")
    })
    .await;
    backdate_refund_attempts(&w);
    assert_eq!(paypal.reconcile_refunds(&db).await.unwrap(), 1);
    let (amount, refunded): (i64, i64) = payments::table
        .select((payments::amount_minor, payments::refunded_minor))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(
        refunded, amount,
        "PayPal refunded exactly what was left, once"
    );
    assert_eq!(w.state(&token), "refunded");
    assert_eq!(w.seats_taken(), 0);
    w.check_invariant();
}

/// Makes every refund's last ask old enough for the reconciliation job.
fn backdate_refund_attempts(w: &World) {
    diesel::update(refunds::table)
        .set(refunds::attempted_at.eq(chrono::Utc::now() - chrono::Duration::minutes(11)))
        .execute(&mut w.app.conn())
        .unwrap();
}

#[rocket::async_test]
async fn a_buyer_who_cancels_at_paypal_can_try_again() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "cancel").await;
    assert!(back.starts_with(&w.app.url("/payments/paypal/cancel")));
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Payment cancelled") && page.contains("Try paying again"),
        "{page}"
    );
    let (_, again) = w.pay(&token).await;
    assert_eq!(again, order, "the same PayPal order is reused");
}

#[rocket::async_test]
async fn a_cancel_at_paypal_is_said_on_the_booking_page() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let booking_url = w.app.url(&format!("/bookings/{token}"));
    let (_, waiting) = w.follow(&booking_url).await;
    assert!(waiting.contains("waiting for your payment to be confirmed"));
    let back = w.approval(&order, "cancel").await;
    w.follow(&back).await;
    let (status, page) = w.follow(&booking_url).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("You cancelled the payment at PayPal")
            && page.contains("Pay again with PayPal")
            && page.contains(&format!("/checkout/{token}/release")),
        "{page}"
    );
    assert!(!page.contains("waiting for your payment to be confirmed"));
    // Paying after all: the message is gone and the booking is paid.
    let (_, again) = w.pay(&token).await;
    let back = w.approval(&again, "approve").await;
    w.follow(&back).await;
    let (_, paid) = w.follow(&booking_url).await;
    assert!(!paid.contains("You cancelled the payment"), "{paid}");
    assert!(paid.contains("data-state=\"paid\""), "{paid}");
}
