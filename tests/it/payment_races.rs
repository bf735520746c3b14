//! The races at the edges of the payment flow that once lost money (issue 12), each replayed
//! over real HTTP against the app and the PayPal simulator: a hold running out during a slow
//! capture, cancelled bookings revived by a late return or webhook, a webhook whose
//! settlement failed, a capture that landed after expiry, the late-payment mail, and the
//! PayPal order id working as a password.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::{json, Value};
use ticketing::schema::{bookings, outbox, payments, refunds, webhook_events};

use crate::paypal_world::{wait_until, world, world_with, World};

impl World {
    fn booking_id(&self, token: &str) -> i64 {
        bookings::table
            .filter(bookings::access_token.eq(token))
            .select(bookings::id)
            .first(&mut self.app.conn())
            .unwrap()
    }

    async fn app_page(&self, path: &str) -> (u16, String) {
        let res = self.client.get(self.app.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Mail kinds queued for the booking.
    fn mails(&self, token: &str) -> Vec<String> {
        outbox::table
            .filter(outbox::booking_id.eq(self.booking_id(token)))
            .order(outbox::id.asc())
            .select(outbox::kind)
            .load(&mut self.app.conn())
            .unwrap()
    }

    /// Sends a webhook signed by the simulator's key, as PayPal would; returns the status.
    async fn send_webhook(&self, body: &[u8]) -> u16 {
        let h = self.simulator.sign(body);
        self.client
            .post(self.app.url("/payments/paypal/webhook"))
            .header("Content-Type", "application/json")
            .header("paypal-transmission-id", &h.transmission_id)
            .header("paypal-transmission-time", &h.transmission_time)
            .header("paypal-transmission-sig", &h.transmission_sig)
            .header("paypal-cert-url", &h.cert_url)
            .header("paypal-auth-algo", &h.auth_algo)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Tries to hold one seat as another buyer (own cookies); true when the seats were given.
    async fn other_buyer_holds(&self, qty: i32) -> bool {
        let res = crate::helpers::http_client()
            .post(self.app.url("/checkout/hold"))
            .form(&[
                ("event_id", self.event.id.to_string()),
                (&format!("qty[{}]", self.type_id), qty.to_string()),
            ])
            .send()
            .await
            .unwrap();
        res.status() == 303
    }

    /// Moves the booking's hold deadline into the past and waits for the sweeper.
    fn run_out(&self, token: &str) {
        diesel::update(bookings::table.filter(bookings::access_token.eq(token)))
            .set(bookings::hold_expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
            .execute(&mut self.app.conn())
            .unwrap();
    }

    /// Lets every capture claim lapse, as if the claim's worst case had passed.
    fn lapse_capture_claims(&self) {
        let _ = diesel::sql_query("UPDATE payments SET capture_claimed_until = NULL")
            .execute(&mut self.app.conn());
    }

    /// A booking of one seat whose capture PayPal made but whose every answer was lost (with
    /// webhooks dropped), and whose capture claim has lapsed: its token, order and return URL.
    async fn lost_capture(&self) -> (String, String, String) {
        self.control(json!({ "webhook_mode": "drop" })).await;
        let token = self.hold(1).await;
        let (_, order) = self.pay(&token).await;
        let back = self.approval(&order, "approve").await;
        // The capture happens at PayPal, but every answer (the first and both retries) is lost.
        self.control(json!({ "lose_next": 3 })).await;
        let (status, _) = self.follow(&back).await;
        assert_eq!(status, 200);
        assert_eq!(self.captures(&order).await, 1, "PayPal holds the money");
        (token, order, back)
    }

    /// The buyer clicks "Give the seats back".
    async fn release(&self, token: &str) {
        let res = self
            .client
            .post(self.app.url(&format!("/checkout/{token}/release")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }

    fn cancel_as_admin(&self, token: &str) {
        let id = self.booking_id(token);
        let moved = self
            .app
            .conn()
            .transaction(|c| {
                ticketing::bookings::lifecycle::transition(
                    c,
                    id,
                    &[
                        ticketing::models::BookingState::Held,
                        ticketing::models::BookingState::AwaitingPayment,
                        ticketing::models::BookingState::Paid,
                    ],
                    ticketing::models::BookingState::Cancelled,
                    "cancelled by an admin",
                )
            })
            .unwrap();
        assert!(moved.is_some());
    }
}

/// Item 1: the sweeper must not expire a booking while its capture is in flight, so the
/// seats are never sold twice and the buyer who paid has a paid booking.
#[rocket::async_test]
async fn a_hold_running_out_during_a_slow_capture_is_paid_and_its_seats_stay_taken() {
    let w = world_with(1, |v| {
        v.insert("PAYPAL_TIMEOUT_SECONDS".into(), "5".into());
    })
    .await;
    w.control(json!({ "webhook_mode": "drop" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "approve").await;
    w.control(json!({ "delay_ms": 2500, "delay_next": 1 }))
        .await;
    let client = w.client.clone();
    let returning = rocket::tokio::spawn(async move { client.get(back).send().await.unwrap() });
    // The capture is in flight (PayPal answers after 2.5 s) once its claim is written.
    wait_until("the capture claim", || {
        payments::table
            .select(payments::capture_claimed_until)
            .first::<Option<chrono::DateTime<chrono::Utc>>>(&mut w.app.conn())
            .unwrap()
            .is_some()
    })
    .await;
    w.run_out(&token); // the buyer approved at the last moment
    rocket::tokio::time::sleep(Duration::from_millis(1500)).await; // the sweeper runs
    assert!(
        !w.other_buyer_holds(1).await,
        "the seat of a booking being captured was given to someone else"
    );
    let res = returning.await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(w.state(&token), "paid");
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

/// Item 2: a cancelled booking stays cancelled when the buyer reopens the return URL or a
/// late capture webhook arrives.
#[rocket::async_test]
async fn a_cancelled_paid_booking_stays_cancelled_on_a_second_return_and_a_late_webhook() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "approve").await;
    w.follow(&back).await;
    w.wait_state(&token, "paid").await;
    rocket::tokio::time::sleep(Duration::from_millis(300)).await; // webhooks settle
    w.cancel_as_admin(&token);
    let (status, _) = w.follow(&back).await;
    assert!(status == 303 || status == 200);
    let capture: String = payments::table
        .select(payments::capture_id.assume_not_null())
        .first(&mut w.app.conn())
        .unwrap();
    let res = w
        .client
        .post(format!("{}/simulator/captures/{capture}/complete", w.sim))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    rocket::tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.state(&token), "cancelled");
    assert_eq!(
        w.mails(&token)
            .iter()
            .filter(|k| *k == "confirmation")
            .count(),
        1
    );
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

/// Item 2: seats the buyer gave back are never paid for by an approval that comes later.
#[rocket::async_test]
async fn an_approval_after_the_buyer_released_the_seats_is_never_captured() {
    let w = world(10).await;
    let token = w.hold(2).await;
    let (_, order) = w.pay(&token).await;
    w.release(&token).await;
    assert_eq!(w.state(&token), "cancelled");
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("nothing was charged"), "{page}");
    rocket::tokio::time::sleep(Duration::from_millis(600)).await; // the approval webhook
    assert_eq!(w.captures(&order).await, 0, "no money moved");
    assert_eq!(w.state(&token), "cancelled");
    assert_eq!(w.seats_taken(), 0);
    w.check_invariant();
}

/// Item 2: the same for a booking an admin cancelled while it awaited payment.
#[rocket::async_test]
async fn an_approval_after_an_admin_cancelled_is_never_captured() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    w.cancel_as_admin(&token);
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200, "{page}");
    rocket::tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.captures(&order).await, 0, "no money moved");
    assert_eq!(w.state(&token), "cancelled");
}

/// Item 3: a webhook whose settlement fails is answered 5xx (PayPal redelivers), stays
/// unprocessed, and its redelivery is settled instead of being ignored as a duplicate.
#[rocket::async_test]
async fn a_webhook_whose_settlement_fails_is_retried_not_swallowed() {
    let w = world(10).await;
    w.control(json!({ "webhook_mode": "drop" })).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    let res = w
        .client
        .post(format!("{}/simulator/orders/{order}/approve", w.sim))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let body = serde_json::to_vec(&json!({
        "id": "WH-RETRY-1",
        "event_type": "CHECKOUT.ORDER.APPROVED",
        "resource_type": "checkout-order",
        "resource": { "id": order, "status": "APPROVED" },
    }))
    .unwrap();
    // PayPal's API fails for the GET and both of its retries.
    w.control(json!({ "fail_next": 3 })).await;
    let status = w.send_webhook(&body).await;
    assert!(status >= 500, "a failed settlement was answered {status}");
    let processed: Option<chrono::DateTime<chrono::Utc>> = webhook_events::table
        .select(webhook_events::processed_at)
        .first(&mut w.app.conn())
        .unwrap();
    assert!(processed.is_none(), "marked processed although it failed");
    assert_eq!(w.state(&token), "awaiting_payment");
    // PayPal delivers it again.
    assert_eq!(w.send_webhook(&body).await, 200);
    assert_eq!(w.state(&token), "paid");
    assert_eq!(w.captures(&order).await, 1);
    // A third delivery is a duplicate of a processed event: no effect.
    assert_eq!(w.send_webhook(&body).await, 200);
    assert_eq!(w.captures(&order).await, 1);
    w.check_invariant();
}

/// Item 4: a capture whose answer was lost and whose booking then expired (seats sold to
/// someone else) is found by reconciliation, refunded through PayPal, and the buyer is told
/// the truth by mail and on the return page.
#[rocket::async_test]
async fn a_capture_that_lands_after_expiry_is_recorded_and_refunded() {
    let w = world(1).await;
    let (token, order, back) = w.lost_capture().await;
    w.lapse_capture_claims();
    w.run_out(&token);
    w.wait_state(&token, "expired").await;
    assert!(
        w.other_buyer_holds(1).await,
        "the seat went to someone else"
    );
    w.age_payments();
    let settled = w.paypal().reconcile(&w.db(), 20).await.unwrap();
    assert!(settled >= 1, "reconciliation did not look at the payment");
    let o: Value = w.order(&order).await;
    let capture_status = o["purchase_units"][0]["payments"]["captures"][0]["status"].clone();
    assert_eq!(capture_status, "REFUNDED", "{o}");
    let (status, amount): (String, i64) = refunds::table
        .select((refunds::status, refunds::amount_minor))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!((status.as_str(), amount), ("COMPLETED", 2500));
    // The automatic refund is in the audit log, by the system (no user).
    let audited: Vec<(Option<i64>, String)> = ticketing::schema::audit_log::table
        .filter(ticketing::schema::audit_log::action.eq("booking.refund"))
        .select((
            ticketing::schema::audit_log::user_id,
            ticketing::schema::audit_log::entity,
        ))
        .load(&mut w.app.conn())
        .unwrap();
    assert_eq!(audited, vec![(None, "booking".to_string())]);
    assert_eq!(w.state(&token), "expired");
    assert!(
        w.mails(&token).contains(&"payment_returned".to_string()),
        "{:?}",
        w.mails(&token)
    );
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("refunded"), "{page}");
    let (_, page) = w.app_page(&format!("/bookings/{token}")).await;
    assert!(
        page.contains("data-unhonoured") && !page.contains("nothing was charged"),
        "{page}"
    );
    w.check_invariant();
}

/// Item 5: a buyer whose late approval was refused (seats gone) is told by mail.
#[rocket::async_test]
async fn a_refused_late_approval_mails_the_buyer() {
    let w = world(1).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    w.run_out(&token);
    w.wait_state(&token, "expired").await;
    assert!(w.other_buyer_holds(1).await);
    let back = w.approval(&order, "approve").await;
    let (status, page) = w.follow(&back).await;
    assert_eq!(status, 200);
    assert!(page.contains("nothing was charged"), "{page}");
    wait_until("the late-payment mail", || {
        w.mails(&token).contains(&"late_payment".to_string())
    })
    .await;
    assert_eq!(w.captures(&order).await, 0);
}

/// Item 9: the PayPal order id alone (which staff see) opens no booking; the real return URL
/// works and every /payments page is private and not indexed.
#[rocket::async_test]
async fn the_paypal_order_id_alone_opens_nothing() {
    let w = world(10).await;
    let token = w.hold(1).await;
    let (_, order) = w.pay(&token).await;
    for path in [
        format!("/payments/paypal/return?token={order}&PayerID=X"),
        format!("/payments/paypal/cancel?token={order}"),
    ] {
        let res = w.client.get(w.app.url(&path)).send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains(&token));
    }
    let back = w.approval(&order, "cancel").await;
    let res = w.client.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(
        cache.contains("no-store") && cache.contains("private"),
        "{cache}"
    );
    let robots = res.headers()["x-robots-tag"].to_str().unwrap().to_string();
    assert!(robots.contains("noindex"), "{robots}");
}

/// Logs an admin in over HTTP with `client`'s cookies.
async fn admin_login(w: &World, client: &reqwest::Client) {
    ticketing::models::User::insert(
        &mut w.app.conn(),
        &ticketing::models::NewUser {
            email: "boss@example.com".into(),
            name: "Boss".into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: "admin".into(),
        },
    )
    .unwrap();
    let page = client
        .get(w.app.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let res = client
        .post(w.app.url("/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "boss@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

/// Money without seats whose automatic refund is not confirmed yet is listed for admins
/// (dashboard, and the booking page offers the refund form) until PayPal confirms it.
#[rocket::async_test]
async fn money_without_seats_is_listed_for_admins_until_refunded() {
    let w = world(1).await;
    let (token, _, _) = w.lost_capture().await;
    w.lapse_capture_claims();
    w.run_out(&token);
    w.wait_state(&token, "expired").await;
    assert!(w.other_buyer_holds(1).await);
    w.age_payments();
    // The automatic refund is made at PayPal, but its answers are lost.
    w.control(json!({ "lose_next": 3 })).await;
    w.paypal().reconcile(&w.db(), 20).await.unwrap();
    let admin = crate::helpers::http_client();
    admin_login(&w, &admin).await;
    let dashboard = admin
        .get(w.app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("Money without seats"), "{dashboard}");
    let id = w.booking_id(&token);
    let page = admin
        .get(w.app.url(&format!("/admin/bookings/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Money without seats"), "{page}");
    assert!(
        page.contains(&format!("/admin/bookings/{id}/refund")),
        "{page}"
    );
    // Refund reconciliation asks again with the same request id and records the refund once.
    diesel::update(refunds::table)
        .set(refunds::attempted_at.eq(chrono::Utc::now() - chrono::Duration::minutes(11)))
        .execute(&mut w.app.conn())
        .unwrap();
    w.paypal().reconcile_refunds(&w.db()).await.unwrap();
    let dashboard = admin
        .get(w.app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dashboard.contains("Money without seats"), "{dashboard}");
    let refunded: i64 = payments::table
        .select(payments::refunded_minor)
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(refunded, 2500);
    w.check_invariant();
}

/// Money that lands for a booking the buyer released after its capture's answers were lost
/// (the claim lapsed) is refunded automatically, never kept.
#[rocket::async_test]
async fn a_capture_that_lands_after_the_buyer_released_is_refunded() {
    let w = world(5).await;
    let (token, order, _) = w.lost_capture().await;
    w.release(&token).await;
    assert_eq!(
        w.state(&token),
        "awaiting_payment",
        "a release is refused while the capture claim is live"
    );
    w.lapse_capture_claims();
    w.release(&token).await;
    assert_eq!(w.state(&token), "cancelled");
    w.age_payments();
    w.paypal().reconcile(&w.db(), 20).await.unwrap();
    let o = w.order(&order).await;
    assert_eq!(
        o["purchase_units"][0]["payments"]["captures"][0]["status"], "REFUNDED",
        "{o}"
    );
    assert_eq!(w.state(&token), "cancelled");
    assert!(w.mails(&token).contains(&"payment_returned".to_string()));
    w.check_invariant();
}
