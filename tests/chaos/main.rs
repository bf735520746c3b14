//! Randomized fault injection of the money flow (issue 12): many seeded runs, each an
//! interleaving of a buyer's returns from PayPal (0–3, some at once), approval or decline,
//! webhooks dropped, duplicated, delayed or reordered, the hold running out, a competing
//! buyer, an admin cancelling or refunding, the buyer releasing, PayPal answering 500s,
//! losing answers or timing out, and the app killed with SIGKILL and restarted. Everything
//! goes over real HTTP: the app runs as its own process (the `ticketing` binary) on a fresh
//! database, the PayPal simulator runs here.
//!
//! After every run the money invariant is checked against the simulator's own books: for
//! the run's order, what PayPal captured and refunded equals what the app recorded; money
//! still held sits on a booking that was paid (or on a queued refund); no booking was paid
//! twice; no terminal booking changed state; the seat counters match the bookings; the buyer
//! was sent the mail the outcome calls for. A failing run prints its seed; replay it with
//! `CHAOS_SEED=<seed> CHAOS_RUNS=1` (`CHAOS_VERBOSE=1` prints every run's steps). `CHAOS_RUNS` sets the number of runs (default 12, the
//! short version `scripts/test` runs; `scripts/chaos` runs 500). The last line is
//! `chaos: runs=<n> seed=<first seed> violations=<n> captured=<minor units> refunded=<minor units>`.

#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use paypal_simulator::Sim;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use ticketing::models::{Booking, BookingState, Payment};
use ticketing::schema::{booking_history, bookings, outbox, refunds};

use helpers::{add_ticket_type, base_vars, free_port, http_client, EventSpec, TestDb};

/// The app as a separate process that can be killed with SIGKILL.
struct AppProcess {
    child: Option<Child>,
    vars: HashMap<String, String>,
    base: String,
    log: std::path::PathBuf,
}

impl AppProcess {
    fn start(vars: HashMap<String, String>, base: String) -> AppProcess {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos");
        std::fs::create_dir_all(&dir).unwrap();
        let mut app = AppProcess {
            child: None,
            vars,
            base,
            log: dir.join("app.log"),
        };
        app.spawn();
        app
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .arg("serve")
            .env_clear()
            .envs(&self.vars)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the ticketing binary starts");
        self.child = Some(child);
    }

    async fn ready(&self) {
        let client = http_client();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the app did not become ready (log: {})", self.log.display());
    }

    /// SIGKILL, then start again and wait until it answers.
    async fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
        self.ready().await;
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Everything a run needs.
struct Rig {
    app: AppProcess,
    sim: String,
    db: TestDb,
    paypal: ticketing::paypal::PayPal,
    pool: ticketing::Db,
    client: reqwest::Client,
}

impl Rig {
    async fn start() -> Rig {
        helpers::install_crypto();
        let sim_port = free_port();
        let sim_base = format!("http://127.0.0.1:{sim_port}");
        let sim = Arc::new(Sim::new(&sim_base, "", "", "WH-SIMULATOR"));
        let figment = rocket::Config::figment()
            .merge(("address", "127.0.0.1"))
            .merge(("port", sim_port))
            .merge(("log_level", rocket::config::LogLevel::Off));
        tokio::spawn(paypal_simulator::rocket(figment, sim).launch());
        let db = TestDb::migrated();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut vars = base_vars(&db.url);
        vars.insert("PORT".into(), port.to_string());
        vars.insert("BIND_ADDRESS".into(), "127.0.0.1".into());
        vars.insert("BASE_URL".into(), base.clone());
        vars.insert("DATABASE_POOL_SIZE".into(), "10".into());
        vars.insert("PAYPAL_MODE".into(), "simulator".into());
        vars.insert("PAYPAL_API_BASE".into(), sim_base.clone());
        vars.insert("PAYPAL_TIMEOUT_SECONDS".into(), "1".into());
        vars.insert("LOG_FORMAT".into(), "json".into());
        let config = ticketing::Config::from_map(&vars).expect("valid configuration");
        let paypal = ticketing::paypal::build(
            config.paypal.clone(),
            &config.base_url,
            "Tickets",
            15,
            false,
        )
        .unwrap();
        let app = AppProcess::start(vars, base.clone());
        app.ready().await;
        let client = http_client();
        let rig = Rig {
            app,
            sim: sim_base,
            pool: ticketing::Db::new(&db.url, 4, Duration::from_secs(5)),
            db,
            paypal,
            client,
        };
        rig.control(json!({ "webhook_url": format!("{base}/payments/paypal/webhook") }))
            .await;
        rig
    }

    async fn control(&self, body: Value) {
        for _ in 0..50 {
            if let Ok(r) = self
                .client
                .post(format!("{}/simulator/control", self.sim))
                .json(&body)
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the simulator did not answer");
    }

    fn conn(&self) -> PgConnection {
        self.db.conn()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }
}

/// One buyer's booking in a run.
struct Buyer {
    client: reqwest::Client,
    token: String,
    booking_id: i64,
}

async fn hold(rig: &Rig, event: &str, event_id: i64, type_id: i64, qty: i32) -> Option<Buyer> {
    let client = http_client();
    client
        .get(rig.url(&format!("/events/{event}")))
        .send()
        .await
        .ok()?;
    let res = client
        .post(rig.url("/checkout/hold"))
        .form(&[
            ("event_id", event_id.to_string()),
            (&format!("qty[{type_id}]"), qty.to_string()),
        ])
        .send()
        .await
        .ok()?;
    if res.status() != 303 {
        return None;
    }
    let token = res.headers()["location"]
        .to_str()
        .ok()?
        .rsplit('/')
        .next()?
        .to_string();
    let mut form = vec![
        ("buyer_name".to_string(), "Chaos Buyer".to_string()),
        ("buyer_email".to_string(), "chaos@example.com".to_string()),
    ];
    for i in 0..qty {
        form.push((format!("attendees[{i}].name"), format!("Guest {i}")));
        form.push((format!("attendees[{i}].email"), String::new()));
    }
    let res = client
        .post(rig.url(&format!("/checkout/{token}")))
        .form(&form)
        .send()
        .await
        .ok()?;
    if res.status() != 303 {
        return None;
    }
    let booking_id = bookings::table
        .filter(bookings::access_token.eq(&token))
        .select(bookings::id)
        .first(&mut rig.conn())
        .ok()?;
    Some(Buyer {
        client,
        token,
        booking_id,
    })
}

/// The buyer presses Approve or Decline at the simulator; returns where they are sent back.
async fn approval(rig: &Rig, order: &str, action: &str) -> Option<String> {
    let res = rig
        .client
        .post(format!("{}/checkoutnow/{order}/{action}", rig.sim))
        .send()
        .await
        .ok()?;
    res.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string)
}

/// What a run did, for the report of a failing seed.
#[derive(Default)]
struct Trace(Vec<String>);

impl Trace {
    fn push(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
}

/// Totals over all runs.
#[derive(Default)]
struct Totals {
    violations: Vec<String>,
    /// How the runs' bookings ended (state, or "money returned" for money without seats).
    outcomes: std::collections::BTreeMap<String, u64>,
    captured: i64,
    refunded: i64,
}

async fn run(rig: &mut Rig, seed: u64, totals: &mut Totals) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut trace = Trace::default();
    let capacity = rng.gen_range(1..=2);
    let qty = rng.gen_range(1..=capacity);
    let slug = format!("chaos-{seed}");
    let (event_id, type_id) = {
        let mut c = rig.conn();
        let event = EventSpec::public(&slug, 10)
            .capacity(capacity)
            .insert(&mut c);
        let t = add_ticket_type(&mut c, &event, "GA", 2500, capacity);
        (event.id, t.id)
    };
    rig.control(
        json!({ "capture_outcome": "COMPLETED", "fail_next": 0, "lose_next": 0,
                        "delay_ms": 0, "delay_next": 0, "webhook_mode": "normal",
                        "redeliveries": 5, "redeliver_ms": 300 }),
    )
    .await;
    let Some(buyer) = hold(rig, &slug, event_id, type_id, qty).await else {
        totals
            .violations
            .push(format!("seed={seed}: the first buyer could not hold seats"));
        return;
    };
    // Clicks Pay: the order is created.
    let res = buyer
        .client
        .post(rig.url(&format!("/checkout/{}/confirm", buyer.token)))
        .form(&[("accept_terms", "true")])
        .send()
        .await
        .unwrap();
    let Some(order) = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.split("token=").nth(1))
        .map(str::to_string)
    else {
        totals
            .violations
            .push(format!("seed={seed}: no PayPal order was created"));
        return;
    };
    let mut back: Option<String> = None;
    let mut returns = Vec::new();
    let steps = rng.gen_range(3..=9);
    for step in 0..steps {
        // Most runs approve first, so that money moves in most of them.
        let pick = if step == 0 && rng.gen_bool(0.6) {
            0
        } else {
            rng.gen_range(0..100)
        };
        match pick {
            0..=17 => {
                let action = if rng.gen_bool(0.85) {
                    "approve"
                } else {
                    "decline"
                };
                back = approval(rig, &order, action).await;
                trace.push(action);
            }
            18..=35 => {
                if let Some(url) = back.clone() {
                    let n = rng.gen_range(1..=3);
                    for _ in 0..n {
                        let client = buyer.client.clone();
                        let url = url.clone();
                        returns.push(tokio::spawn(async move {
                            client.get(url).send().await.map(|r| r.status().as_u16())
                        }));
                    }
                    trace.push(format!("return x{n}"));
                }
            }
            36..=44 => {
                diesel::update(bookings::table.find(buyer.booking_id))
                    .set(bookings::hold_expires_at.eq(chrono::Utc::now()))
                    .execute(&mut rig.conn())
                    .unwrap();
                trace.push("hold runs out");
            }
            45..=51 => {
                let got = hold(rig, &slug, event_id, type_id, capacity)
                    .await
                    .is_some();
                trace.push(format!("competitor holds all seats: {got}"));
            }
            52..=57 => {
                let moved = rig
                    .conn()
                    .transaction(|c| {
                        ticketing::bookings::lifecycle::transition(
                            c,
                            buyer.booking_id,
                            &[
                                BookingState::Held,
                                BookingState::AwaitingPayment,
                                BookingState::Paid,
                            ],
                            BookingState::Cancelled,
                            "cancelled by an admin (chaos)",
                        )
                    })
                    .unwrap();
                trace.push(format!("admin cancels: {}", moved.is_some()));
            }
            58..=62 => {
                let amount = if rng.gen_bool(0.5) { None } else { Some(1000) };
                let r = rig
                    .paypal
                    .refund(
                        &rig.pool,
                        buyer.booking_id,
                        amount,
                        "chaos",
                        None,
                        |_, _| Ok(()),
                    )
                    .await;
                trace.push(format!("admin refunds {amount:?}: {}", r.is_ok()));
            }
            63..=67 => {
                let r = buyer
                    .client
                    .post(rig.url(&format!("/checkout/{}/release", buyer.token)))
                    .send()
                    .await;
                trace.push(format!(
                    "buyer releases: {:?}",
                    r.map(|r| r.status().as_u16())
                ));
            }
            68..=85 => {
                let fault = match rng.gen_range(0..7) {
                    0 => json!({ "fail_next": rng.gen_range(1..=3) }),
                    1 => json!({ "lose_next": rng.gen_range(1..=3) }),
                    2 => json!({ "delay_ms": 1300, "delay_next": 1 }),
                    3 => json!({ "webhook_mode": "drop" }),
                    4 => json!({ "webhook_mode": "duplicate", "duplicates": 3 }),
                    5 => {
                        json!({ "webhook_mode": "delay", "webhook_delay_ms": rng.gen_range(100..900) })
                    }
                    _ => json!({ "webhook_mode": "reorder" }),
                };
                trace.push(format!("fault {fault}"));
                rig.control(fault).await;
            }
            86..=89 => {
                // Time passes beyond a capture's worst case (as after a crash mid-capture).
                diesel::sql_query("UPDATE payments SET capture_claimed_until = NULL")
                    .execute(&mut rig.conn())
                    .unwrap();
                trace.push("capture claims lapse");
            }
            94..=98 => {
                // A capture PayPal makes but whose every answer is lost, and whose claim then
                // lapses: the app must find the money later, whatever happened meanwhile.
                // Its notifications are lost too (from now on in this run).
                rig.control(json!({ "webhook_mode": "drop" })).await;
                if back.is_none() {
                    back = approval(rig, &order, "approve").await;
                }
                if let Some(url) = back.clone() {
                    rig.control(json!({ "lose_next": 3 })).await;
                    let status = buyer
                        .client
                        .get(url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    rig.control(json!({ "lose_next": 0 })).await;
                    diesel::sql_query("UPDATE payments SET capture_claimed_until = NULL")
                        .execute(&mut rig.conn())
                        .unwrap();
                    trace.push(format!(
                        "webhooks dropped; a return whose capture answers are lost: {status:?}; the claim lapses"
                    ));
                }
            }
            90..=93 => {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..250))).await;
                rig.app.kill_and_restart().await;
                trace.push("app killed (SIGKILL) and restarted");
            }
            _ => {
                let n = rig.paypal.reconcile(&rig.pool, 20).await;
                trace.push(format!("reconciliation: {n:?}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
    }
    for r in returns {
        let _ = r.await;
    }
    settle_everything(rig, buyer.booking_id).await;
    let found = check(rig, &order, &buyer).await;
    let (captured, refunded, outcome, violations) = found;
    *totals.outcomes.entry(outcome).or_default() += 1;
    if std::env::var_os("CHAOS_VERBOSE").is_some() {
        eprintln!("chaos: seed={seed} steps: {}", trace.0.join(" → "));
    }
    totals.captured += captured;
    totals.refunded += refunded;
    for v in violations {
        totals.violations.push(format!(
            "seed={seed}: {v}\n    steps: {}",
            trace.0.join(" → ")
        ));
    }
}

/// Lets time pass as it would in production: faults stop, held webhooks are delivered,
/// capture claims lapse, and the jobs (webhook re-settlement, reconciliation, refund
/// reconciliation) run until nothing is left for them. Only this run's booking is aged:
/// the database holds every earlier run's payments, which would otherwise all become due at
/// once and crowd this one out of reconciliation's batches.
async fn settle_everything(rig: &Rig, booking_id: i64) {
    rig.control(
        json!({ "fail_next": 0, "lose_next": 0, "delay_ms": 0, "delay_next": 0,
                        "webhook_mode": "normal" }),
    )
    .await;
    let _ = rig
        .client
        .post(format!("{}/simulator/webhooks/flush", rig.sim))
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..3 {
        {
            let mut c = rig.conn();
            for sql in [
                format!(
                    "UPDATE payments SET capture_claimed_until = NULL, reconciled_at = NULL,
                            updated_at = updated_at - interval '3 minutes'
                      WHERE booking_id = {booking_id}"
                ),
                "UPDATE webhook_events SET received_at = received_at - interval '2 minutes',
                        attempted_at = NULL WHERE processed_at IS NULL"
                    .to_string(),
                format!(
                    "UPDATE refunds SET attempted_at = attempted_at - interval '11 minutes'
                      WHERE status = 'REQUESTED'
                        AND payment_id IN (SELECT id FROM payments WHERE booking_id = {booking_id})"
                ),
            ] {
                diesel::sql_query(sql).execute(&mut c).unwrap();
            }
        }
        let _ = rig.paypal.resettle_webhooks(&rig.pool, 50).await;
        let _ = rig.paypal.reconcile(&rig.pool, 50).await;
        let _ = rig.paypal.reconcile_refunds(&rig.pool).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the invariants for the run's order; returns (captured, refunded, how the booking
/// ended, violations).
async fn check(rig: &Rig, order: &str, buyer: &Buyer) -> (i64, i64, String, Vec<String>) {
    let mut v = Vec::new();
    let o: Value = rig
        .client
        .get(format!("{}/v2/checkout/orders/{order}", rig.sim))
        .bearer_auth("chaos")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let captures = o["purchase_units"][0]["payments"]["captures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let minor = |c: &Value| -> i64 {
        let s = c["amount"]["value"].as_str().unwrap_or("0");
        let (a, b) = s.split_once('.').unwrap_or((s, "00"));
        a.parse::<i64>().unwrap_or(0) * 100 + b.parse::<i64>().unwrap_or(0)
    };
    let money: Vec<&Value> = captures
        .iter()
        .filter(|c| {
            matches!(
                c["status"].as_str(),
                Some("COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED")
            )
        })
        .collect();
    if money.len() > 1 {
        v.push(format!("the order was captured {} times", money.len()));
    }
    let sim_captured: i64 = money.iter().map(|c| minor(c)).sum();
    let sim_refunded: i64 = money
        .iter()
        .map(|c| c["refunded_minor"].as_i64().unwrap_or(0))
        .sum();
    let mut c = rig.conn();
    let booking = Booking::find(&mut c, buyer.booking_id).unwrap();
    let payment = Payment::find_by_booking(&mut c, buyer.booking_id).unwrap();
    let outcome = match &payment {
        Some(p) if p.unhonoured_at.is_some() => "money_returned".to_string(),
        Some(p) if p.late_refused && booking.state() == BookingState::Expired => {
            "late_refused".to_string()
        }
        _ => booking.state.clone(),
    };
    let (app_captured, app_refunded) = match &payment {
        Some(p)
            if matches!(
                p.capture_status.as_deref(),
                Some("COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED")
            ) =>
        {
            (p.amount_minor, p.refunded_minor)
        }
        Some(p) => (0, p.refunded_minor),
        None => (0, 0),
    };
    if (sim_captured, sim_refunded) != (app_captured, app_refunded) {
        v.push(format!(
            "PayPal captured {sim_captured} and refunded {sim_refunded}; the app recorded {app_captured} and {app_refunded}"
        ));
    }
    let queued: i64 = match &payment {
        Some(p) => refunds::table
            .filter(refunds::payment_id.eq(p.id))
            .filter(refunds::status.eq("REQUESTED"))
            .select(refunds::amount_minor)
            .load::<i64>(&mut c)
            .unwrap()
            .into_iter()
            .sum(),
        None => 0,
    };
    let held = sim_captured - sim_refunded;
    let honoured = booking.state() == BookingState::Paid || booking.paid_at.is_some();
    if held > 0 && !honoured && held > queued {
        v.push(format!(
            "{held} held by PayPal for a booking that is {} and was never paid, with {queued} queued for refund",
            booking.state
        ));
    }
    let history: Vec<(Option<String>, String)> = booking_history::table
        .filter(booking_history::booking_id.eq(booking.id))
        .order(booking_history::id.asc())
        .select((booking_history::from_state, booking_history::to_state))
        .load(&mut c)
        .unwrap();
    // Rows from a state to itself are notes (a partial refund, money returned).
    let paid = history
        .iter()
        .filter(|(from, to)| to == "paid" && from.as_deref() != Some("paid"))
        .count();
    if paid > 1 {
        v.push(format!("the booking became paid {paid} times"));
    }
    for (from, to) in &history {
        if let Some(from) = from {
            if matches!(from.as_str(), "cancelled" | "refunded" | "reversed") && from != to {
                v.push(format!("a terminal booking moved: {from} → {to}"));
            }
        }
    }
    let seats = helpers::invariant_violations(&mut c);
    if !seats.is_empty() {
        v.push(format!(
            "seat counters disagree with the bookings: {seats:?}"
        ));
    }
    let mails: Vec<String> = outbox::table
        .filter(outbox::booking_id.eq(booking.id))
        .select(outbox::kind)
        .load(&mut c)
        .unwrap();
    let has = |k: &str| mails.iter().any(|m| m == k);
    if booking.paid_at.is_some() != has("confirmation") {
        v.push(format!(
            "paid_at {:?} but confirmation mail queued: {}",
            booking.paid_at,
            has("confirmation")
        ));
    }
    if let Some(p) = &payment {
        if p.unhonoured_at.is_some() && !has("payment_returned") {
            v.push("money returned without telling the buyer".into());
        }
        if p.late_refused && !has("late_payment") {
            v.push("late approval refused without telling the buyer".into());
        }
    }
    (sim_captured, sim_refunded, outcome, v)
}

fn main() {
    let runs: u64 = std::env::var("CHAOS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let first: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let totals = rt.block_on(async {
        let mut rig = Rig::start().await;
        let mut totals = Totals::default();
        for i in 0..runs {
            let before = totals.violations.len();
            run(&mut rig, first + i, &mut totals).await;
            for v in &totals.violations[before..] {
                eprintln!("chaos: violation {v}");
            }
        }
        totals
    });
    let outcomes: Vec<String> = totals
        .outcomes
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    println!("chaos: outcomes {}", outcomes.join(" "));
    println!(
        "chaos: runs={runs} seed={first} violations={} captured={} refunded={}",
        totals.violations.len(),
        totals.captured,
        totals.refunded
    );
    if !totals.violations.is_empty() {
        std::process::exit(1);
    }
}
