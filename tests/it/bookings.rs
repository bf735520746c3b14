//! Bookings: holds refused whole on bad input with nothing changed, double submission,
//! checkout details, free confirmation, the booking page, expiry, cancellation, live
//! availability, and the no-oversell guarantee under concurrent buyers over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use ticketing::models::{Event, TicketType};
use ticketing::schema::{bookings, ticket_types};

use crate::helpers::{
    add_ticket_type, http_client, invariant_violations, seat_state, EventSpec, TestApp, TestServer,
};

/// Posts a form through the local client; returns (status, Location, body).
async fn post_form(app: &TestApp, path: &str, body: &str) -> (Status, Option<String>, String) {
    let res = app
        .client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
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

struct Shop {
    event: Event,
    standard: TicketType,
    vip: TicketType,
}

fn shop(conn: &mut PgConnection, capacity: i32) -> Shop {
    let event = EventSpec::public("gig", 10).capacity(capacity).insert(conn);
    let standard = add_ticket_type(conn, &event, "Standard", 2500, capacity);
    let vip = add_ticket_type(conn, &event, "VIP", 9000, 5);
    diesel::update(ticket_types::table.find(vip.id))
        .set(ticket_types::max_per_booking.eq(2))
        .execute(conn)
        .unwrap();
    Shop {
        event,
        standard,
        vip,
    }
}

#[rocket::async_test]
async fn bad_quantities_are_refused_with_a_message_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let s = shop(&mut c, 20);
    let other = EventSpec::public("other", 5).insert(&mut c);
    let foreign = add_ticket_type(&mut c, &other, "Elsewhere", 100, 10);
    let not_yet = add_ticket_type(&mut c, &s.event, "Late", 100, 10);
    let closed = add_ticket_type(&mut c, &s.event, "Early", 100, 10);
    diesel::update(ticket_types::table.find(not_yet.id))
        .set(ticket_types::sales_open_at.eq(Some(Utc::now() + chrono::Duration::days(1))))
        .execute(&mut c)
        .unwrap();
    diesel::update(ticket_types::table.find(closed.id))
        .set(ticket_types::sales_close_at.eq(Some(Utc::now() - chrono::Duration::hours(1))))
        .execute(&mut c)
        .unwrap();
    let (e, st, vip) = (s.event.id, s.standard.id, s.vip.id);
    let cases: Vec<(String, &str)> = vec![
        (format!("qty[{st}]=0"), "Choose at least one ticket"),
        (format!("qty[{st}]="), "Choose at least one ticket"),
        (format!("qty[{st}]=-3"), "Enter 0 or more"),
        (format!("qty[{st}]=abc"), "Enter a whole number"),
        (format!("qty[{st}]=2.5"), "Enter a whole number"),
        (
            format!("qty[{st}]=99999999999999999999"),
            "far more than one booking",
        ),
        (format!("qty[{st}]=1000000"), "At most 10 per booking"),
        (format!("qty[{vip}]=3"), "At most 2 per booking"),
        (
            format!("qty[{st}]=1&qty[999999]=1"),
            "not sold for this event",
        ),
        (format!("qty[{}]=1", foreign.id), "not sold for this event"),
        (format!("qty[{}]=1", not_yet.id), "Not on sale yet"),
        (
            format!("qty[{}]=1", closed.id),
            "Sales for this ticket have closed",
        ),
        (format!("qty[x{st}]=1"), "not sold for this event"),
    ];
    let before = seat_state(&mut c, e);
    for (qty, message) in cases {
        let (status, _, body) =
            post_form(&app, "/checkout/hold", &format!("event_id={e}&{qty}")).await;
        assert_eq!(status, Status::UnprocessableEntity, "{qty}");
        assert!(
            body.contains(message),
            "{qty}: expected {message:?} in {:?}",
            body.lines()
                .filter(|l| l.contains("error"))
                .collect::<Vec<_>>()
        );
        assert!(
            body.contains("class=\"field-error\"") || body.contains("class=\"form-error\""),
            "{qty}"
        );
        assert_eq!(seat_state(&mut c, e), before, "{qty} changed the database");
    }
    // The buyer's input is kept in the field.
    let (_, _, body) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={e}&qty[{st}]=abc"),
    )
    .await;
    assert!(body.contains("value=\"abc\""));
    // Unknown event, draft event: 404 and nothing changed.
    let draft = EventSpec::public("draft", 5)
        .visibility("draft")
        .insert(&mut c);
    let dt = add_ticket_type(&mut c, &draft, "X", 100, 10);
    for body in [
        format!("event_id=999999&qty[{st}]=1"),
        format!("event_id={}&qty[{}]=1", draft.id, dt.id),
        format!("event_id=abc&qty[{st}]=1"),
    ] {
        let (status, _, _) = post_form(&app, "/checkout/hold", &body).await;
        assert_eq!(status, Status::NotFound, "{body}");
    }
    assert_eq!(seat_state(&mut c, draft.id), (0, 0));
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn a_hold_takes_seats_from_type_and_event_and_refuses_whole_when_short() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let s = shop(&mut c, 6);
    let (e, st, vip) = (s.event.id, s.standard.id, s.vip.id);
    let (status, location, _) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={e}&qty[{st}]=3&qty[{vip}]=2"),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert!(location.unwrap().starts_with("/checkout/"));
    assert_eq!(seat_state(&mut c, e), (5, 1));
    let vip_taken: i32 = ticket_types::table
        .find(vip)
        .select(ticket_types::seats_taken)
        .first(&mut c)
        .unwrap();
    assert_eq!(vip_taken, 2);

    // 2 more standard seats would pass the type's capacity (6) but not the event's (1 left).
    let (status, _, body) =
        post_form(&app, "/checkout/hold", &format!("event_id={e}&qty[{st}]=2")).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(body.contains("Only 1 left."), "{body}");
    assert!(body.contains("Only 1 seat is left for this event. Nothing was reserved."));
    assert_eq!(seat_state(&mut c, e), (5, 1));

    // Now the event has room, but the VIP type has 1 left (2 of 3 taken): 1 standard +
    // 2 VIP is refused whole, and the standard seat that was available is not kept either.
    diesel::update(ticket_types::table.find(vip))
        .set(ticket_types::capacity.eq(3))
        .execute(&mut c)
        .unwrap();
    diesel::update(ticketing::schema::events::table.find(e))
        .set(ticketing::schema::events::capacity.eq(20))
        .execute(&mut c)
        .unwrap();
    let (status, _, body) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={e}&qty[{st}]=1&qty[{vip}]=2"),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(body.contains("Only 1 left."), "{body}");
    assert_eq!(
        seat_state(&mut c, e),
        (5, 1),
        "the standard seat was not kept"
    );
    let st_taken: i32 = ticket_types::table
        .find(st)
        .select(ticket_types::seats_taken)
        .first(&mut c)
        .unwrap();
    assert_eq!(st_taken, 3);
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn a_private_event_is_bookable_only_with_its_token() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("secret", 5)
        .visibility("private")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 1000, 10);
    let token = event.private_token.clone().unwrap();
    let (status, _, _) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]=1", event.id, t.id),
    )
    .await;
    assert_eq!(status, Status::NotFound);
    let (status, _, _) = post_form(
        &app,
        "/checkout/hold",
        &format!(
            "event_id={}&private_token=wrongwrongwrongwrongwrong&qty[{}]=1",
            event.id, t.id
        ),
    )
    .await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(seat_state(&mut c, event.id), (0, 0));
    let (status, _, _) = post_form(
        &app,
        "/checkout/hold",
        &format!(
            "event_id={}&private_token={token}&qty[{}]=1",
            event.id, t.id
        ),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(seat_state(&mut c, event.id), (1, 1));
}

#[rocket::async_test]
async fn resubmitting_the_ticket_form_makes_one_booking() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let s = shop(&mut c, 10);
    let (_, page) = app.get_text("/events/gig").await;
    let token = page
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let body = format!(
        "event_id={}&form_token={token}&qty[{}]=2",
        s.event.id, s.standard.id
    );
    let (_, first, _) = post_form(&app, "/checkout/hold", &body).await;
    let (_, second, _) = post_form(&app, "/checkout/hold", &body).await;
    assert!(first.is_some());
    assert_eq!(
        first, second,
        "the second submission leads to the same booking"
    );
    assert_eq!(seat_state(&mut c, s.event.id), (2, 1));
}

#[rocket::async_test]
async fn concurrent_double_clicks_make_one_booking() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let s = shop(&mut c, 10);
    let client = http_client();
    // The buyer was shown the event page (which gives the browser its id).
    client.get(server.url("/events/gig")).send().await.unwrap();
    let body = format!(
        "event_id={}&form_token=doubleclickdoubleclick01&qty[{}]=2",
        s.event.id, s.standard.id
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, body) = (client.clone(), server.url("/checkout/hold"), body.clone());
        tasks.push(rocket::tokio::spawn(async move {
            let res = client
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            res.headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
        }));
    }
    let mut locations = Vec::new();
    for t in tasks {
        locations.push(
            t.await
                .unwrap()
                .expect("every click is redirected to the booking"),
        );
    }
    locations.dedup();
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert_eq!(seat_state(&mut c, s.event.id), (2, 1));
}

#[rocket::async_test]
async fn checkout_details_are_validated_then_a_free_booking_is_confirmed() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("free-talk", 4)
        .title("Free Talk")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Free", 0, 50);
    let (_, location, _) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]=2", event.id, t.id),
    )
    .await;
    let checkout = location.unwrap();
    let token = checkout.rsplit('/').next().unwrap().to_string();

    let long = "x".repeat(101);
    let cases: Vec<(String, &str, &str)> = vec![
        ("buyer_name=&buyer_email=a@b.co&attendees[0].name=A&attendees[1].name=B".to_string(), "buyer_name-error", "Enter a name."),
        ("buyer_name=Ann&buyer_email=not-an-email&attendees[0].name=A&attendees[1].name=B".to_string(), "buyer_email-error", "Enter an email address like"),
        ("buyer_name=Ann&buyer_email=a%40b&attendees[0].name=A&attendees[1].name=B".to_string(), "buyer_email-error", "Enter an email address like"),
        ("buyer_name=Ann&buyer_email=a@b.co&buyer_phone=call+me&attendees[0].name=A&attendees[1].name=B".to_string(), "buyer_phone-error", "Enter a phone number"),
        (format!("buyer_name={long}&buyer_email=a@b.co&attendees[0].name=A&attendees[1].name=B"), "buyer_name-error", "at most 100 characters"),
        ("buyer_name=Ann&buyer_email=a@b.co&attendees[0].name=A".to_string(), "attendee-1-name-error", "Enter a name."),
        ("buyer_name=Ann&buyer_email=a@b.co&attendees[0].name=A&attendees[1].name=B&attendees[1].email=b%40".to_string(), "attendee-1-email-error", "Enter an email address like"),
        (format!("buyer_name=Ann&buyer_email={}%40example.com&attendees[0].name=A&attendees[1].name=B", "a".repeat(300)), "buyer_email-error", "at most 254"),
    ];
    for (body, field, message) in cases {
        let (status, _, page) = post_form(&app, &checkout, &body).await;
        assert_eq!(status, Status::UnprocessableEntity, "{body}");
        assert!(
            page.contains(&format!("id=\"{field}\"")),
            "{body}: no error next to {field}"
        );
        assert!(page.contains(message), "{body}: {message}");
        let stored: String = bookings::table
            .filter(bookings::access_token.eq(&token))
            .select(bookings::buyer_email)
            .first(&mut c)
            .unwrap();
        assert_eq!(stored, "", "{body} changed the booking");
    }
    // Input is kept.
    let (_, _, page) = post_form(
        &app,
        &checkout,
        "buyer_name=Ann+Lee&buyer_email=bad&attendees[0].name=A",
    )
    .await;
    assert!(page.contains("value=\"Ann Lee\"") && page.contains("value=\"bad\""));

    let (status, next, _) = post_form(&app, &checkout, "buyer_name=Ann+Lee&buyer_email=ann%40example.com&attendees[0].name=Ann+Lee&attendees[1].name=%3Cb%3EBob%3C%2Fb%3E").await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(next.as_deref(), Some(format!("{checkout}/review").as_str()));
    let (status, review) = app.get_text(&format!("{checkout}/review")).await;
    assert_eq!(status, 200);
    assert!(review.contains("Confirm free booking"));
    assert!(review.contains("&lt;b&gt;Bob"), "names are escaped");
    assert!(!review.contains("<b>Bob"));

    let (status, done, _) =
        post_form(&app, &format!("{checkout}/confirm"), "accept_terms=true").await;
    assert_eq!(status, Status::SeeOther);
    let booking_url = format!("/bookings/{token}");
    assert_eq!(done.as_deref(), Some(booking_url.as_str()));
    let (_, page) = app.get_text(&booking_url).await;
    assert!(page.contains("data-state=\"paid\""));
    assert_eq!(page.matches("<svg").count(), 2, "one QR code per attendee");
    assert!(page.contains("Free Talk"));
    // "Add to Google Calendar" names the event and the reference, never the secret link.
    let google = page
        .split("href=\"")
        .find(|s| {
            s.starts_with("https:&#x2F;&#x2F;calendar.google.com")
                || s.starts_with("https://calendar.google.com")
        })
        .expect("a Google Calendar link")
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2F;", "/")
        .replace("&amp;", "&");
    assert!(
        google.contains("action=TEMPLATE") && google.contains("text=Free+Talk"),
        "{google}"
    );
    assert!(
        !google.contains(&token),
        "the booking's token went into {google}"
    );

    let res = app
        .client
        .get(format!("{booking_url}/calendar.ics"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.headers().get_one("Cache-Control"),
        Some("private, no-store")
    );
    assert!(res
        .content_type()
        .unwrap()
        .to_string()
        .starts_with("text/calendar"));
    let ics = res.into_string().await.unwrap();
    assert!(ics.contains("SUMMARY:Free Talk") && ics.contains("BEGIN:VEVENT"));

    // Confirming again changes nothing; the checkout now leads to the booking page.
    let (status, again, _) =
        post_form(&app, &format!("{checkout}/confirm"), "accept_terms=true").await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(again.as_deref(), Some(booking_url.as_str()));
    assert_eq!(seat_state(&mut c, event.id), (2, 1));
    // A wrong token is a 404.
    assert_eq!(
        app.get_text("/bookings/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .0,
        404
    );
}

#[rocket::async_test]
async fn releasing_or_expiring_returns_seats_exactly_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let s = shop(&mut c, 10);
    let (_, location, _) = post_form(
        &app,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]=3", s.event.id, s.standard.id),
    )
    .await;
    let token = location.unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(seat_state(&mut c, s.event.id).0, 3);
    post_form(&app, &format!("/checkout/{token}/release"), "").await;
    post_form(&app, &format!("/checkout/{token}/release"), "").await;
    diesel::update(bookings::table)
        .set(bookings::hold_expires_at.eq(Utc::now() - chrono::Duration::minutes(1)))
        .execute(&mut c)
        .unwrap();
    let expired = ticketing::bookings::expire_due(&mut c, Utc::now(), 100).unwrap();
    assert!(expired.is_empty(), "a cancelled booking cannot expire");
    assert_eq!(seat_state(&mut c, s.event.id).0, 0);
    assert!(invariant_violations(&mut c).is_empty());
    let (_, page) = app.get_text(&format!("/bookings/{token}")).await;
    assert!(page.contains("data-state=\"cancelled\""));
}

#[rocket::async_test]
async fn the_sweeper_releases_expired_holds_within_seconds() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let s = shop(&mut c, 10);
    let client = http_client();
    let res = client
        .post(server.url("/checkout/hold"))
        .form(&[
            ("event_id", s.event.id.to_string()),
            (&format!("qty[{}]", s.standard.id), "4".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let checkout = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(seat_state(&mut c, s.event.id).0, 4);
    diesel::update(bookings::table)
        .set(bookings::hold_expires_at.eq(Utc::now()))
        .execute(&mut c)
        .unwrap();
    let mut released = false;
    for _ in 0..50 {
        if seat_state(&mut c, s.event.id).0 == 0 {
            released = true;
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(released, "the sweeper did not release the seats within 5 s");
    let state: String = bookings::table
        .select(bookings::state)
        .first(&mut c)
        .unwrap();
    assert_eq!(state, "expired");
    // The buyer is told, and can start again.
    let page = client.get(server.url(&checkout)).send().await.unwrap();
    assert_eq!(page.status(), 303);
    let booking = client
        .get(server.url(page.headers()["location"].to_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(booking.contains("Your hold expired"));
    assert!(booking.contains("Choose tickets again"));
}

#[rocket::async_test]
async fn open_event_pages_see_seats_left_change_live() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let s = shop(&mut c, 10);
    let client = http_client();
    let mut stream = client
        .get(server.url("/events/gig/availability"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, &format!("\"{}\":10", s.standard.id)).await;

    client
        .post(server.url("/checkout/hold"))
        .form(&[
            ("event_id", s.event.id.to_string()),
            (&format!("qty[{}]", s.standard.id), "3".into()),
        ])
        .send()
        .await
        .unwrap();
    read_until(&mut stream, &mut seen, &format!("\"{}\":7", s.standard.id)).await;
}

/// Reads an event stream into `seen` until it contains `want` (5 s at most).
async fn read_until(stream: &mut reqwest::Response, seen: &mut String, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(want) && std::time::Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            rocket::tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains(want), "{want} never arrived: {seen}");
}

/// Races `buyers` buyers of one seat each, `parallel` at a time, over real HTTP.
/// Returns (winners, losers with a "left" message, other answers).
async fn race(
    server: &TestServer,
    event_id: i64,
    type_id: i64,
    buyers: usize,
) -> (usize, usize, Vec<String>) {
    let client = http_client();
    let body = Arc::new(format!("event_id={event_id}&qty[{type_id}]=1"));
    let url = Arc::new(server.url("/checkout/hold"));
    let mut tasks = Vec::new();
    for _ in 0..buyers {
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
    let (mut won, mut told, mut other) = (0, 0, Vec::new());
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            303 => won += 1,
            422 if body.contains("sold out")
                || body.contains("Sold out")
                || body.contains("left") =>
            {
                told += 1
            }
            _ => other.push(format!("{status}: {}", &body[..body.len().min(200)])),
        }
    }
    (won, told, other)
}

#[rocket::async_test]
async fn two_hundred_buyers_racing_for_fifty_seats_never_oversell() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let event = EventSpec::public("rush", 3).capacity(50).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 1500, 50);
    let (won, told, other) = race(&server, event.id, t.id, 200).await;
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!(won, 50, "exactly the capacity is sold");
    assert_eq!(told, 150, "every loser is told how many are left");
    assert_eq!(seat_state(&mut c, event.id), (50, 50));
    let violations = invariant_violations(&mut c);
    assert!(violations.is_empty(), "{violations:?}");
}

#[rocket::async_test]
async fn buyers_racing_expiring_holds_never_oversell() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let event = EventSpec::public("churn", 3).capacity(50).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 1500, 50);
    // 30 seats held by holds that expire while the next buyers race.
    let (won, _, other) = race(&server, event.id, t.id, 30).await;
    assert_eq!((won, other.len()), (30, 0));
    diesel::update(bookings::table)
        .set(bookings::hold_expires_at.eq(Utc::now() + chrono::Duration::milliseconds(300)))
        .execute(&mut c)
        .unwrap();
    let mut total_won = 0;
    for _ in 0..12 {
        if total_won == 50 {
            break;
        }
        let (won, _, other) = race(&server, event.id, t.id, 60).await;
        assert!(other.is_empty(), "{other:?}");
        total_won += won;
        let violations = invariant_violations(&mut c);
        assert!(violations.is_empty(), "{violations:?}");
        let (taken, _) = seat_state(&mut c, event.id);
        assert!(taken <= 50);
        rocket::tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // The 30 expired holds freed 30 seats: 20 + 30 could be won after them.
    assert_eq!(
        total_won, 50,
        "seats freed by expiry were sold again, and no more"
    );
    let expired: i64 = bookings::table
        .filter(bookings::state.eq("expired"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(expired, 30);
    assert!(invariant_violations(&mut c).is_empty());
}

/// Issue 12 item 7: a form token planted in a victim's form (the attacker took it from his
/// own page view) and replayed later by the attacker never leads to the victim's booking;
/// the victim's own double submission still finds its booking.
#[rocket::async_test]
async fn a_replayed_form_token_never_reveals_another_buyers_booking() {
    let server = TestServer::spawn().await;
    let mut c = server.conn();
    let s = shop(&mut c, 10);
    let (attacker, victim) = (http_client(), http_client());
    let page = attacker
        .get(server.url("/events/gig"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let planted = page
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    // The victim opened the event page, then sent a form carrying the attacker's token.
    victim.get(server.url("/events/gig")).send().await.unwrap();
    let post = |client: &reqwest::Client| {
        client
            .post(server.url("/checkout/hold"))
            .form(&[
                ("event_id", s.event.id.to_string()),
                ("form_token", planted.clone()),
                (&format!("qty[{}]", s.standard.id), "2".to_string()),
            ])
            .send()
    };
    let res = post(&victim).await.unwrap();
    assert_eq!(res.status(), 303);
    let victims = res.headers()["location"].to_str().unwrap().to_string();
    let again = post(&victim).await.unwrap();
    assert_eq!(
        again.headers()["location"].to_str().unwrap(),
        victims,
        "the victim's own resubmission finds the same booking"
    );
    let res = post(&attacker).await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = res.text().await.unwrap();
    assert_ne!(
        location.as_deref(),
        Some(victims.as_str()),
        "booking taken over"
    );
    let victim_token = victims.rsplit('/').next().unwrap();
    assert!(!body.contains(victim_token));
}
