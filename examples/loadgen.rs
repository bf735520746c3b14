//! Load generator for `scripts/bench rush`: creates an event with 500 seats in the given
//! database, lets 2,000 buyers (64 at a time) race for them over HTTP on 127.0.0.1, then
//! checks the result against the database and prints one line of figures.
//!
//! usage: loadgen rush <base-url> <database-url>

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use rocket::tokio;
use ticketing::models::{Event, NewEvent, NewTicketType, TicketType};

const BUYERS: usize = 2000;
const PARALLEL: usize = 64;
const CAPACITY: i32 = 500;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 || args[0] != "rush" {
        eprintln!("usage: loadgen rush <base-url> <database-url>");
        std::process::exit(2);
    }
    let (base, db_url) = (args[1].clone(), args[2].clone());
    if !(base.starts_with("http://127.") || base.starts_with("http://localhost")) {
        eprintln!("loadgen only targets 127.0.0.0/8");
        std::process::exit(2);
    }
    let mut conn = PgConnection::establish(&db_url).expect("connect to the bench database");
    let slug = format!("rush-{}", Utc::now().timestamp_millis());
    let event = Event::insert(
        &mut conn,
        &NewEvent {
            slug,
            title: "Rush".into(),
            description: String::new(),
            venue: "Bench".into(),
            timezone: "Europe/Berlin".into(),
            starts_at: Utc::now() + chrono::Duration::days(7),
            ends_at: Utc::now() + chrono::Duration::days(7) + chrono::Duration::hours(2),
            capacity: CAPACITY,
            visibility: "public".into(),
            private_token: None,
            waiver_required: false,
            waiver_text: String::new(),
        },
    )
    .unwrap();
    let tt = TicketType::insert(
        &mut conn,
        &NewTicketType {
            event_id: event.id,
            name: "GA".into(),
            description: String::new(),
            price_minor: 2500,
            currency: "EUR".into(),
            capacity: CAPACITY,
            sales_open_at: None,
            sales_close_at: None,
            max_per_booking: 4,
            position: 0,
        },
    )
    .unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (latencies, sold, refused, errors, elapsed) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(PARALLEL)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let url = Arc::new(format!("{base}/checkout/hold"));
        let body = Arc::new(format!("event_id={}&qty[{}]=1", event.id, tt.id));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..PARALLEL {
            let (client, url, body, next) =
                (client.clone(), url.clone(), body.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let (mut lat, mut sold, mut refused, mut errors) =
                    (Vec::new(), 0usize, 0usize, 0usize);
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < BUYERS {
                    let t = Instant::now();
                    let res = client
                        .post(url.as_str())
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.to_string())
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().as_u16() == 303 => sold += 1,
                        Ok(r) if r.status().as_u16() == 422 => {
                            let _ = r.bytes().await;
                            refused += 1
                        }
                        _ => errors += 1,
                    }
                    lat.push(t.elapsed());
                }
                (lat, sold, refused, errors)
            }));
        }
        let (mut all, mut sold, mut refused, mut errors) = (Vec::new(), 0, 0, 0);
        for w in workers {
            let (l, s, r, e) = w.await.unwrap();
            all.extend(l);
            sold += s;
            refused += r;
            errors += e;
        }
        (all, sold, refused, errors, started.elapsed())
    });

    let mut latencies = latencies;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)].as_secs_f64()
            * 1000.0
    };
    let taken: i32 = ticketing::schema::events::table
        .find(event.id)
        .select(ticketing::schema::events::seats_taken)
        .first(&mut conn)
        .unwrap();
    let booked = diesel::sql_query(
        "SELECT COALESCE(sum(seats), 0)::bigint AS n FROM bookings \
         WHERE event_id = $1 AND state IN ('held','awaiting_payment','paid')",
    )
    .bind::<BigInt, _>(event.id)
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    let oversold = (booked - i64::from(CAPACITY)).max(0);
    let invariant = if i64::from(taken) == booked && booked == sold as i64 {
        "ok"
    } else {
        "BROKEN"
    };
    if errors > 0 || refused + sold != BUYERS {
        eprintln!("note: {errors} request(s) failed outright, {refused} refused");
    }
    println!(
        "rush: buyers={BUYERS} capacity={CAPACITY} sold={sold} oversold={oversold} holds_per_s={:.0} p50_ms={:.1} p99_ms={:.1} invariant={invariant}",
        BUYERS as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    );
}
