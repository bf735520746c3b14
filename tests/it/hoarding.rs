//! Stock hoarding (issue 14): the seats one client may hold at once per event are capped
//! inside the hold's own lock (sequential and parallel), released, expired and paid holds
//! free the budget, a hold without details lasts `HOLD_DETAILS_MINUTES` until the details
//! form extends it to the full hold, event pages say how many seats sit in other buyers'
//! baskets, and one client may keep only a few availability streams open.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use ticketing::models::{Booking, Event, TicketType};
use ticketing::schema::{bookings, ticket_types};

use crate::helpers::{
    add_ticket_type, base_vars, http_client, invariant_violations, seat_state, EventSpec, TestApp,
    TestServer,
};

/// Posts the ticket form from client address `ip`; returns (status, Location, body).
async fn hold_from(
    app: &TestApp,
    ip: &str,
    event_id: i64,
    type_id: i64,
    qty: i32,
) -> (Status, Option<String>, String) {
    let ip: IpAddr = ip.parse().unwrap();
    let res = app
        .client
        .post("/checkout/hold")
        .remote(SocketAddr::new(ip, 4000))
        .header(ContentType::Form)
        .body(format!("event_id={event_id}&qty[{type_id}]={qty}"))
        .dispatch()
        .await;
    let status = res.status();
    let location = res.headers().get_one("Location").map(str::to_string);
    (
        status,
        location,
        res.into_string().await.unwrap_or_default(),
    )
}

async fn post(app: &TestApp, path: &str, body: &str) -> (Status, Option<String>) {
    let res = app
        .client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    (
        res.status(),
        res.headers().get_one("Location").map(str::to_string),
    )
}

/// The checkout token at the end of a hold's redirect.
fn token_of(location: &Option<String>) -> String {
    location
        .as_deref()
        .expect("a redirect")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// An event of 199 seats with one ticket type of at most 8 per booking (the pen test's).
fn small_event(conn: &mut PgConnection, slug: &str, price: i64) -> (Event, TicketType) {
    let event = EventSpec::public(slug, 10).capacity(199).insert(conn);
    let t = add_ticket_type(conn, &event, "Seat", price, 199);
    diesel::update(ticket_types::table.find(t.id))
        .set(ticket_types::max_per_booking.eq(8))
        .execute(conn)
        .unwrap();
    (event, t)
}

fn booking(conn: &mut PgConnection, token: &str) -> Booking {
    Booking::find_by_access_token(conn, token).unwrap()
}

#[rocket::async_test]
async fn one_client_cannot_hold_more_than_the_cap_and_another_client_still_can() {
    // The default cap: twice the largest "max per booking" of the event (2 × 8 = 16).
    let app = TestApp::spawn_with(|v| {
        v.remove("MAX_SEATS_HELD_PER_CLIENT");
    })
    .await;
    let mut c = app.conn();
    let (event, t) = small_event(&mut c, "small", 2500);
    let hoarder = "203.0.113.7";
    for _ in 0..2 {
        let (status, _, _) = hold_from(&app, hoarder, event.id, t.id, 8).await;
        assert_eq!(status, Status::SeeOther);
    }
    let before = seat_state(&mut c, event.id);
    assert_eq!(before, (16, 2));
    let (status, _, page) = hold_from(&app, hoarder, event.id, t.id, 1).await;
    assert_eq!(status, Status::TooManyRequests);
    // The event page again, the message next to the form, nothing changed.
    assert!(page.contains(r#"action="/checkout/hold""#), "{page}");
    assert!(page.contains(r#"id="form-error""#), "{page}");
    assert!(page.contains("You already hold 16 seats"), "{page}");
    assert!(page.contains("at most 16 at a time"), "{page}");
    assert!(page.contains("Nothing was reserved."), "{page}");
    assert_eq!(seat_state(&mut c, event.id), before);

    // Someone else is not affected.
    let (status, _, _) = hold_from(&app, "203.0.113.8", event.id, t.id, 8).await;
    assert_eq!(status, Status::SeeOther);

    // IPv6 clients are one client per /64.
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::99"] {
        assert_eq!(
            hold_from(&app, ip, event.id, t.id, 8).await.0,
            Status::SeeOther
        );
    }
    assert_eq!(
        hold_from(&app, "2001:db8:1:2::abcd", event.id, t.id, 1)
            .await
            .0,
        Status::TooManyRequests
    );
    assert_eq!(
        hold_from(&app, "2001:db8:1:3::1", event.id, t.id, 8)
            .await
            .0,
        Status::SeeOther
    );

    // The cap is per event: the hoarder may still hold seats elsewhere.
    let (other, ot) = small_event(&mut c, "other", 2500);
    assert_eq!(
        hold_from(&app, hoarder, other.id, ot.id, 8).await.0,
        Status::SeeOther
    );
    let key: Option<String> = bookings::table
        .filter(bookings::event_id.eq(other.id))
        .select(bookings::client_key)
        .first(&mut c)
        .unwrap();
    assert_eq!(key.as_deref(), Some(hoarder));
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn parallel_holds_of_one_client_never_pass_the_cap() {
    let server = TestServer::spawn_with(|v| {
        v.insert("MAX_SEATS_HELD_PER_CLIENT".into(), "16".into());
    })
    .await;
    let mut c = server.conn();
    let (event, t) = small_event(&mut c, "rush", 2500);
    let client = http_client();
    let body = Arc::new(format!("event_id={}&qty[{}]=4", event.id, t.id));
    let url = Arc::new(server.url("/checkout/hold"));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (client, body, url) = (client.clone(), body.clone(), url.clone());
        tasks.push(rocket::tokio::spawn(async move {
            let res = client
                .post(url.as_str())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap_or_default())
        }));
    }
    let (mut won, mut refused, mut other) = (0, 0, Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (303, _) => won += 1,
            (429, body) if body.contains("at most 16 at a time") => refused += 1,
            (status, body) => other.push(format!("{status}: {}", &body[..body.len().min(300)])),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!((won, refused), (4, 8));
    assert_eq!(seat_state(&mut c, event.id), (16, 4));
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn released_expired_and_paid_holds_free_the_budget() {
    let app = TestApp::spawn_with(|v| {
        v.insert("MAX_SEATS_HELD_PER_CLIENT".into(), "4".into());
    })
    .await;
    let mut c = app.conn();
    let event = EventSpec::public("free", 10).capacity(100).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Free", 0, 100);
    let ip = "198.51.100.4";

    let (status, first, _) = hold_from(&app, ip, event.id, t.id, 4).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(
        hold_from(&app, ip, event.id, t.id, 1).await.0,
        Status::TooManyRequests
    );

    // Released by the buyer: the budget is back.
    let first = token_of(&first);
    post(&app, &format!("/checkout/{first}/release"), "").await;
    // The client's address is kept only while the booking holds seats unpaid.
    assert_eq!(booking(&mut c, &first).client_key, None);
    let (status, second, _) = hold_from(&app, ip, event.id, t.id, 4).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(
        hold_from(&app, ip, event.id, t.id, 1).await.0,
        Status::TooManyRequests
    );

    // Past its deadline, even before the sweeper gets to it.
    let second = token_of(&second);
    diesel::update(bookings::table.filter(bookings::access_token.eq(&second)))
        .set(bookings::hold_expires_at.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut c)
        .unwrap();
    let (status, third, _) = hold_from(&app, ip, event.id, t.id, 4).await;
    assert_eq!(status, Status::SeeOther);

    // Paid: a bought ticket is no longer a hold.
    let third = token_of(&third);
    let body = "buyer_name=Ana+Lima&buyer_email=ana%40example.com\
                &attendees[0].name=A+One&attendees[1].name=A+Two\
                &attendees[2].name=A+Three&attendees[3].name=A+Four";
    assert_eq!(
        post(&app, &format!("/checkout/{third}"), body).await.0,
        Status::SeeOther
    );
    post(
        &app,
        &format!("/checkout/{third}/confirm"),
        "accept_terms=true",
    )
    .await;
    assert_eq!(booking(&mut c, &third).state, "paid");
    assert_eq!(booking(&mut c, &third).client_key, None);
    assert_eq!(
        hold_from(&app, ip, event.id, t.id, 4).await.0,
        Status::SeeOther
    );
    assert_eq!(
        hold_from(&app, ip, event.id, t.id, 1).await.0,
        Status::TooManyRequests
    );
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn a_hold_without_details_lasts_five_minutes_and_details_extend_it_to_the_full_hold() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = small_event(&mut c, "short", 2500);
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let minutes = |b: &Booking| (b.hold_expires_at - b.created_at).num_seconds() as f64 / 60.0;

    let (_, loc, _) = hold_from(&app, "192.0.2.1", event.id, t.id, 2).await;
    let idle = token_of(&loc);
    let b = booking(&mut c, &idle);
    assert!((minutes(&b) - 5.0).abs() < 0.1, "{}", minutes(&b));
    // The details page shows that deadline, in the event's time zone.
    let (_, page) = app.get_text(&format!("/checkout/{idle}")).await;
    let until = ticketing::timefmt::local_time(b.hold_expires_at, tz);
    assert!(page.contains(&format!("held until {until}")), "{page}");
    assert!(page.contains(">5 min</span> left"), "{page}");
    let full = ticketing::timefmt::local_time(b.created_at + chrono::Duration::minutes(15), tz);
    assert!(page.contains(&format!("until {full}")), "{page}");

    let (_, loc, _) = hold_from(&app, "192.0.2.2", event.id, t.id, 2).await;
    let keen = token_of(&loc);
    let body = "buyer_name=Bo+Chen&buyer_email=bo%40example.com\
                &attendees[0].name=Bo+Chen&attendees[1].name=Di+Chen";
    assert_eq!(
        post(&app, &format!("/checkout/{keen}"), body).await.0,
        Status::SeeOther
    );
    let b = booking(&mut c, &keen);
    assert!((minutes(&b) - 15.0).abs() < 0.1, "{}", minutes(&b));
    let (_, review) = app.get_text(&format!("/checkout/{keen}/review")).await;
    let until = ticketing::timefmt::local_time(b.hold_expires_at, tz);
    assert!(review.contains(&format!("Held until {until}")), "{review}");
    // Sending the details again does not stretch the hold further.
    post(&app, &format!("/checkout/{keen}"), body).await;
    assert_eq!(booking(&mut c, &keen).hold_expires_at, b.hold_expires_at);

    // Six minutes later: the idle hold is swept, the one with details is kept.
    diesel::sql_query(
        "UPDATE bookings SET created_at = created_at - interval '6 minutes',
                             hold_expires_at = hold_expires_at - interval '6 minutes'",
    )
    .execute(&mut c)
    .unwrap();
    let swept = ticketing::bookings::expire_due(&mut c, Utc::now(), 100).unwrap();
    assert_eq!(swept, vec![event.id]);
    assert_eq!(booking(&mut c, &idle).state, "expired");
    assert_eq!(booking(&mut c, &keen).state, "held");
    assert_eq!(seat_state(&mut c, event.id).0, 2);

    // Details sent after the deadline do not bring an expired hold back.
    let (_, loc, _) = hold_from(&app, "192.0.2.3", event.id, t.id, 1).await;
    let late = token_of(&loc);
    diesel::update(bookings::table.filter(bookings::access_token.eq(&late)))
        .set(bookings::hold_expires_at.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut c)
        .unwrap();
    let body = "buyer_name=Ed+Ko&buyer_email=ed%40example.com&attendees[0].name=Ed+Ko";
    let (status, location) = post(&app, &format!("/checkout/{late}"), body).await;
    // The buyer is told and keeps the input (see `checkout_ux`); nothing is revived.
    assert_eq!(status, Status::Conflict);
    assert_eq!(location, None);
    let b = booking(&mut c, &late);
    assert_eq!(b.state, "expired");
    assert!(b.hold_expires_at < Utc::now());
    assert!(invariant_violations(&mut c).is_empty());
}

#[test]
fn hold_settings_are_checked_at_start() {
    let vars = |pairs: &[(&str, &str)]| {
        let mut v = base_vars("postgres://postgres@127.0.0.1:5432/x");
        for (k, val) in pairs {
            v.insert(k.to_string(), val.to_string());
        }
        v
    };
    ticketing::Config::from_map(&vars(&[("HOLD_DETAILS_MINUTES", "15")])).unwrap();
    for (var, value, expected) in [
        ("HOLD_DETAILS_MINUTES", "0", "minutes"),
        ("HOLD_DETAILS_MINUTES", "20", "HOLD_MINUTES"),
        ("MAX_SEATS_HELD_PER_CLIENT", "lots", "seats"),
        ("MAX_STREAMS_PER_CLIENT", "-1", "streams"),
    ] {
        let e = ticketing::Config::from_map(&vars(&[(var, value)])).unwrap_err();
        assert!(e.mentions(var), "{var}={value}: {e}");
        assert!(e.to_string().contains(expected), "{var}={value}: {e}");
    }
}

/// Reads an event stream into `seen` until it contains `want` (5 s at most).
async fn read_until(stream: &mut reqwest::Response, seen: &mut String, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains(want) && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            rocket::tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains(want), "{want} never arrived: {seen}");
}

/// The event page once the one-second page cache has let go of the last rendering.
async fn fresh_page(client: &reqwest::Client, url: &str) -> String {
    rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
    client.get(url).send().await.unwrap().text().await.unwrap()
}

#[rocket::async_test]
async fn event_pages_say_how_many_seats_are_in_other_buyers_baskets() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let event = EventSpec::public("baskets", 10).capacity(50).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 0, 50);
    let client = http_client();
    let page_url = server.url("/events/baskets");
    let page = client
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("other buyers' baskets"), "{page}");
    let mut stream = client
        .get(server.url("/events/baskets/availability"))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"in_baskets\":0").await;

    let hold = |qty: i32| {
        let client = client.clone();
        let url = server.url("/checkout/hold");
        let form = vec![
            ("event_id".to_string(), event.id.to_string()),
            (format!("qty[{}]", t.id), qty.to_string()),
        ];
        async move {
            let res = client.post(url).form(&form).send().await.unwrap();
            assert_eq!(res.status(), 303);
            res.headers()["location"].to_str().unwrap().to_string()
        }
    };
    let first = hold(1).await;
    read_until(&mut stream, &mut seen, "\"in_baskets\":1").await;
    let page = fresh_page(&client, &page_url).await;
    assert!(
        page.contains("1 seat is in other buyers' baskets."),
        "{page}"
    );
    hold(2).await;
    read_until(&mut stream, &mut seen, "\"in_baskets\":3").await;
    let page = fresh_page(&client, &page_url).await;
    assert!(
        page.contains("3 seats are in other buyers' baskets."),
        "{page}"
    );

    // A paid booking is sold, not in a basket.
    let body = [
        ("buyer_name", "Ana Lima"),
        ("buyer_email", "ana@example.com"),
        ("attendees[0].name", "Ana Lima"),
    ];
    let res = client
        .post(server.url(&first))
        .form(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    client
        .post(server.url(&format!("{first}/confirm")))
        .form(&[("accept_terms", "true")])
        .send()
        .await
        .unwrap();
    read_until(&mut stream, &mut seen, "\"in_baskets\":2").await;
    let page = fresh_page(&client, &page_url).await;
    assert!(
        page.contains("2 seats are in other buyers' baskets."),
        "{page}"
    );

    // A private event's page says it too.
    let private = EventSpec::public("hidden", 10)
        .visibility("private")
        .insert(&mut c);
    let pt = add_ticket_type(&mut c, &private, "Seat", 0, 10);
    let token = private.private_token.clone().unwrap();
    let res = client
        .post(server.url("/checkout/hold"))
        .form(&[
            ("event_id", private.id.to_string()),
            ("private_token", token.clone()),
            (&format!("qty[{}]", pt.id), "1".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = client
        .get(server.url(&format!("/p/{token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("1 seat is in other buyers' baskets."),
        "{page}"
    );
}

#[rocket::async_test]
async fn one_client_may_keep_only_a_few_streams_open() {
    let server = TestServer::spawn_with(|v| {
        v.insert("MAX_STREAMS_PER_CLIENT".into(), "2".into());
    })
    .await;
    let mut c = server.conn();
    let event = EventSpec::public("streams", 10).insert(&mut c);
    add_ticket_type(&mut c, &event, "Seat", 1000, 10);
    let private = EventSpec::public("streams-p", 10)
        .visibility("private")
        .insert(&mut c);
    let token = private.private_token.clone().unwrap();
    let client = http_client();
    let open = |path: String| {
        let client = client.clone();
        let url = server.url(&path);
        async move { client.get(url).send().await.unwrap() }
    };
    let first = open("/events/streams/availability".into()).await;
    assert_eq!(first.status(), 200);
    let second = open(format!("/p/{token}/availability")).await;
    assert_eq!(second.status(), 200);
    for path in [
        "/events/streams/availability".to_string(),
        format!("/p/{token}/availability"),
    ] {
        let refused = open(path.clone()).await;
        assert_eq!(refused.status(), 429, "{path}");
        let text = refused.text().await.unwrap();
        assert!(text.contains("live updates"), "{text}");
    }
    // The page itself still works: the stream is only an enhancement.
    let page = open("/events/streams".into()).await;
    assert_eq!(page.status(), 200);

    // A closed stream gives its place back.
    drop(first);
    let started = Instant::now();
    let reopened = loop {
        let res = open("/events/streams/availability".into()).await;
        if res.status() == 200 || started.elapsed() > Duration::from_secs(30) {
            break res;
        }
        rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reopened.status(), 200);
    eprintln!(
        "a closed stream's place came back after {} ms",
        started.elapsed().as_millis()
    );
    drop(second);
}
