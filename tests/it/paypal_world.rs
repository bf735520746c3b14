//! The app and the PayPal simulator wired to each other over real HTTP, and the steps of a
//! buyer paying (shared by the PayPal flow tests, the race tests and the chaos suite).

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use paypal_simulator::Sim;
use serde_json::{json, Value};
use ticketing::models::Event;
use ticketing::schema::bookings;

use crate::helpers::{
    add_ticket_type, free_port, hold_with_details, http_client, invariant_violations, EventSpec,
    TestServer,
};

/// The app and the simulator, wired to each other.
pub struct World {
    pub app: TestServer,
    pub sim: String,
    /// The simulator itself (signs webhooks the tests send).
    pub simulator: Arc<Sim>,
    pub client: reqwest::Client,
    pub event: Event,
    pub type_id: i64,
}

pub async fn world(capacity: i32) -> World {
    world_with(capacity, |_| {}).await
}

pub async fn world_with(
    capacity: i32,
    adjust: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> World {
    crate::helpers::install_crypto();
    let port = free_port();
    let sim_base = format!("http://127.0.0.1:{port}");
    let sim = Arc::new(Sim::new(&sim_base, "", "", "WH-SIMULATOR"));
    let figment = rocket::Config::figment()
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("log_level", rocket::config::LogLevel::Off));
    rocket::tokio::spawn(paypal_simulator::rocket(figment, sim.clone()).launch());
    let base = sim_base.clone();
    let app = TestServer::spawn_with(move |v| {
        v.insert("PAYPAL_MODE".into(), "simulator".into());
        v.insert("PAYPAL_API_BASE".into(), base);
        v.insert("PAYPAL_TIMEOUT_SECONDS".into(), "1".into());
        adjust(v);
    })
    .await;
    let client = http_client();
    for _ in 0..100 {
        if client
            .get(format!("{sim_base}/simulator/control"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control(
        &client,
        &sim_base,
        json!({ "webhook_url": app.url("/payments/paypal/webhook") }),
    )
    .await;
    let mut c = app.conn();
    let event = EventSpec::public("concert", 10)
        .capacity(capacity)
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 2500, capacity);
    World {
        app,
        sim: sim_base,
        simulator: sim,
        client,
        event,
        type_id: t.id,
    }
}

pub async fn control(client: &reqwest::Client, sim: &str, body: Value) {
    let res = client
        .post(format!("{sim}/simulator/control"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// Polls `done` every 50 ms for up to 5 s; fails the test naming `what` if it never holds.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never came");
}

/// No audit entry: these refunds are not made by a staff member.
pub fn unaudited(_: &mut diesel::PgConnection, _: i64) -> QueryResult<()> {
    Ok(())
}

impl World {
    pub async fn control(&self, body: Value) {
        control(&self.client, &self.sim, body).await;
    }

    /// Holds `qty` seats and fills in the details; returns the booking's access token.
    pub async fn hold(&self, qty: i32) -> String {
        let guests: Vec<(String, String)> = (0..qty)
            .map(|i| (format!("Guest {i}"), String::new()))
            .collect();
        hold_with_details(
            &self.client,
            &self.app,
            self.event.id,
            self.type_id,
            &guests,
        )
        .await
    }

    /// A booking of `qty` seats paid through the simulator: its token, order and id.
    pub async fn paid_booking(&self, qty: i32) -> (String, String, i64) {
        let token = self.hold(qty).await;
        let (_, order) = self.pay(&token).await;
        let back = self.approval(&order, "approve").await;
        self.follow(&back).await;
        self.wait_state(&token, "paid").await;
        let booking_id: i64 = bookings::table
            .filter(bookings::access_token.eq(&token))
            .select(bookings::id)
            .first(&mut self.app.conn())
            .unwrap();
        (token, order, booking_id)
    }

    /// Clicks Pay: returns the simulator's approval URL and the order id.
    pub async fn pay(&self, token: &str) -> (String, String) {
        let res = self
            .client
            .post(self.app.url(&format!("/checkout/{token}/confirm")))
            .form(&[("accept_terms", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{:?}", res.text().await);
        let url = location(&res);
        assert!(url.starts_with(&self.sim), "{url}");
        let order = url.rsplit("token=").next().unwrap().to_string();
        (url, order)
    }

    /// The buyer presses a button on the approval page; returns where they are sent.
    pub async fn approval(&self, order: &str, action: &str) -> String {
        let res = self
            .client
            .post(format!("{}/checkoutnow/{order}/{action}", self.sim))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        location(&res)
    }

    /// Follows the return URL; returns (status, location or body).
    pub async fn follow(&self, url: &str) -> (u16, String) {
        let res = self.client.get(url).send().await.unwrap();
        let status = res.status().as_u16();
        if status == 303 {
            (status, location(&res))
        } else {
            (status, res.text().await.unwrap())
        }
    }

    pub fn state(&self, token: &str) -> String {
        bookings::table
            .filter(bookings::access_token.eq(token))
            .select(bookings::state)
            .first(&mut self.app.conn())
            .unwrap()
    }

    pub async fn wait_state(&self, token: &str, want: &str) {
        wait_until(&format!("booking state {want}"), || {
            self.state(token) == want
        })
        .await;
    }

    pub async fn order(&self, order: &str) -> Value {
        self.client
            .get(format!("{}/v2/checkout/orders/{order}", self.sim))
            .bearer_auth("test")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Captures at the simulator that were not declined.
    pub async fn captures(&self, order: &str) -> usize {
        let o = self.order(order).await;
        o["purchase_units"][0]["payments"]["captures"]
            .as_array()
            .map(|c| c.iter().filter(|c| c["status"] != "DECLINED").count())
            .unwrap_or(0)
    }

    /// Makes every payment old enough for reconciliation to look at it.
    pub fn age_payments(&self) {
        let mut c = self.app.conn();
        diesel::sql_query(
            "UPDATE payments SET created_at = created_at - interval '11 minutes',
                                 updated_at = updated_at - interval '11 minutes'",
        )
        .execute(&mut c)
        .unwrap();
        diesel::sql_query("UPDATE bookings SET updated_at = updated_at - interval '11 minutes'")
            .execute(&mut c)
            .unwrap();
    }

    pub fn check_invariant(&self) {
        let v = invariant_violations(&mut self.app.conn());
        assert!(v.is_empty(), "{v:?}");
    }

    pub fn seats_taken(&self) -> i32 {
        ticketing::schema::events::table
            .find(self.event.id)
            .select(ticketing::schema::events::seats_taken)
            .first(&mut self.app.conn())
            .unwrap()
    }

    pub fn paypal(&self) -> ticketing::paypal::PayPal {
        let mut vars = crate::helpers::base_vars(&self.app.db.url);
        vars.insert("PAYPAL_MODE".into(), "simulator".into());
        vars.insert("PAYPAL_API_BASE".into(), self.sim.clone());
        let config = ticketing::Config::from_map(&vars).unwrap();
        ticketing::paypal::build(
            config.paypal.clone(),
            &config.base_url,
            "Tickets",
            15,
            false,
        )
        .unwrap()
    }

    pub fn db(&self) -> ticketing::Db {
        ticketing::Db::new(&self.app.db.url, 2, Duration::from_secs(2))
    }
}
