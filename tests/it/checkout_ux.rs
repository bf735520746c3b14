//! The buyer's checkout tells them where they stand (issue 15): a hold that ran out while
//! the details were typed answers 409 with everything kept and offers the seats again
//! ("Hold my seats again", a new hold by the usual rules, refused whole when the seats are
//! gone, never for a booking in a terminal state); a bad field is listed in the error
//! summary and marked `aria-invalid`; the ticket form's total without JavaScript; page
//! titles name the step.

use chrono::Utc;
use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use ticketing::models::{Booking, Event, TicketType};
use ticketing::schema::bookings;

use crate::helpers::{add_ticket_type, invariant_violations, seat_state, EventSpec, TestApp};

/// Posts a form through the local client; returns (status, Location, body).
async fn post(app: &TestApp, path: &str, body: &str) -> (Status, Option<String>, String) {
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

fn shop(conn: &mut PgConnection, capacity: i32) -> (Event, TicketType) {
    let event = EventSpec::public("walk", 10)
        .capacity(capacity)
        .insert(conn);
    let t = add_ticket_type(conn, &event, "Walker", 3000, capacity);
    (event, t)
}

/// Holds `qty` seats of `t`; returns the booking's token.
async fn hold(app: &TestApp, event: &Event, t: &TicketType, qty: i32) -> String {
    let (status, location, body) = post(
        app,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]={qty}", event.id, t.id),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    location.unwrap().rsplit('/').next().unwrap().to_string()
}

fn booking(conn: &mut PgConnection, token: &str) -> Booking {
    bookings::table
        .filter(bookings::access_token.eq(token))
        .select(Booking::as_select())
        .first(conn)
        .unwrap()
}

fn run_out(conn: &mut PgConnection, token: &str) {
    diesel::update(bookings::table.filter(bookings::access_token.eq(token)))
        .set(bookings::hold_expires_at.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(conn)
        .unwrap();
}

const TYPED: &str = "buyer_name=Kenji+Sato&buyer_email=kenji%40example.com&buyer_phone=\
                     &attendees[0].name=Kenji+Sato&attendees[0].email=\
                     &attendees[1].name=Yui+Sato&attendees[1].email=yui%40example.com";

fn bookings_of(conn: &mut PgConnection, event: &Event) -> Vec<Booking> {
    bookings::table
        .filter(bookings::event_id.eq(event.id))
        .order(bookings::id)
        .select(Booking::as_select())
        .load(conn)
        .unwrap()
}

#[rocket::async_test]
async fn details_sent_after_the_hold_ran_out_come_back_409_with_everything_typed() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 10);
    let token = hold(&app, &event, &t, 2).await;
    run_out(&mut c, &token);

    let (status, location, page) = post(&app, &format!("/checkout/{token}"), TYPED).await;
    assert_eq!(status, Status::Conflict, "location {location:?}");
    assert!(page.contains("Your hold ran out at"), "{page}");
    assert!(page.contains("the seats were released"), "{page}");
    for kept in [
        "value=\"Kenji Sato\"",
        "value=\"kenji@example.com\"",
        "value=\"Yui Sato\"",
        "value=\"yui@example.com\"",
    ] {
        assert!(page.contains(kept), "{kept} not kept: {page}");
    }
    assert!(page.contains(&format!("action=\"/checkout/{token}/rehold\"")));
    assert!(page.contains("Hold my seats again"));
    assert!(
        page.contains("<title>Your hold ran out — Event walk"),
        "{page}"
    );
    // Nothing was revived: the booking stays expired and its seats free.
    assert_eq!(booking(&mut c, &token).state, "expired");
    assert_eq!(seat_state(&mut c, event.id).0, 0);
}

#[rocket::async_test]
async fn hold_my_seats_again_takes_the_same_seats_in_a_new_hold_and_keeps_the_input() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 10);
    let token = hold(&app, &event, &t, 2).await;
    run_out(&mut c, &token);
    post(&app, &format!("/checkout/{token}"), TYPED).await;

    let (status, _, page) = post(&app, &format!("/checkout/{token}/rehold"), TYPED).await;
    assert_eq!(status, Status::Ok, "{page}");
    let all = bookings_of(&mut c, &event);
    assert_eq!(all.len(), 2);
    let (old, new) = (&all[0], &all[1]);
    assert_eq!(old.state, "expired", "the expired booking is not revived");
    assert_eq!(new.state, "held");
    assert_eq!(new.seats, 2);
    assert!(new.hold_expires_at > Utc::now());
    assert_eq!(seat_state(&mut c, event.id).0, 2);
    // The new hold's details form, filled in with what was typed.
    assert!(page.contains(&format!("action=\"/checkout/{}\"", new.access_token)));
    assert!(page.contains("value=\"Yui Sato\"") && page.contains("value=\"yui@example.com\""));
    assert!(page.contains("Continue to review"));
    // A second click finds the same new hold.
    post(&app, &format!("/checkout/{token}/rehold"), TYPED).await;
    assert_eq!(bookings_of(&mut c, &event).len(), 2);
    // And it goes on like any hold.
    let (status, location, _) = post(&app, &format!("/checkout/{}", new.access_token), TYPED).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(
        location.as_deref(),
        Some(format!("/checkout/{}/review", new.access_token).as_str())
    );
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn hold_my_seats_again_is_refused_whole_when_the_seats_are_gone() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 3);
    let token = hold(&app, &event, &t, 2).await;
    run_out(&mut c, &token);
    // Someone else takes two of the three seats meanwhile (the expired hold is swept first).
    post(&app, &format!("/checkout/{token}"), TYPED).await;
    let _other = hold(&app, &event, &t, 2).await;

    let (status, _, page) = post(&app, &format!("/checkout/{token}/rehold"), TYPED).await;
    assert_eq!(status, Status::Conflict, "{page}");
    assert!(page.contains("not all free any more"), "{page}");
    assert!(page.contains("Walker: 1 left"), "{page}");
    assert!(page.contains("Nothing was"), "{page}");
    assert!(page.contains("value=\"Yui Sato\""), "input kept: {page}");
    assert_eq!(bookings_of(&mut c, &event).len(), 2, "no new hold");
    assert_eq!(seat_state(&mut c, event.id).0, 2);
    assert!(invariant_violations(&mut c).is_empty());
}

#[rocket::async_test]
async fn hold_my_seats_again_is_refused_for_a_booking_in_a_terminal_state() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 10);
    let token = hold(&app, &event, &t, 2).await;
    let (status, _, _) = post(&app, &format!("/checkout/{token}/release"), "").await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(booking(&mut c, &token).state, "cancelled");

    let (status, location, _) = post(&app, &format!("/checkout/{token}/rehold"), TYPED).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(
        location.as_deref(),
        Some(format!("/bookings/{token}").as_str())
    );
    assert_eq!(booking(&mut c, &token).state, "cancelled");
    assert_eq!(bookings_of(&mut c, &event).len(), 1, "no new hold");
    assert_eq!(seat_state(&mut c, event.id).0, 0);
}

#[rocket::async_test]
async fn a_bad_field_is_in_the_error_summary_linked_and_marked_invalid() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 10);
    let token = hold(&app, &event, &t, 1).await;

    let body = "buyer_name=Ana+Lima&buyer_email=ana-at-example&attendees[0].name=Ana+Lima";
    let (status, _, page) = post(&app, &format!("/checkout/{token}"), body).await;
    assert_eq!(status, Status::UnprocessableEntity);
    let summary = &page[page.find("data-error-summary").expect("a summary")..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(
        summary.contains("<a href=\"#buyer_email\">Your email: "),
        "{summary}"
    );
    assert!(!summary.contains("#buyer_name"), "{summary}");
    assert!(page.contains("id=\"errors\""));
    assert!(page.contains("autofocus"));
    assert!(page.contains(
        "id=\"buyer_email\" name=\"buyer_email\" type=\"email\" autocomplete=\"email\" \
         maxlength=\"300\" value=\"ana-at-example\" aria-invalid=\"true\" \
         aria-describedby=\"buyer_email-error\""
    ));
    assert!(page.contains("<p class=\"field-error\" id=\"buyer_email-error\">"));
    assert!(
        page.contains("<title>Error: Your details — Event walk"),
        "{page}"
    );

    // The ticket form too: a refused quantity is summarised and linked to its field.
    let (status, _, page) = post(
        &app,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]=lots", event.id, t.id),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        page.contains(&format!(
            "<a href=\"#qty-{}\">Walker: Enter a whole number.</a>",
            t.id
        )),
        "{page}"
    );
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(page.contains("<title>Error: Choose tickets — Event walk"));
}

#[rocket::async_test]
async fn the_total_without_javascript() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let (event, t) = shop(&mut c, 10);
    let vip = add_ticket_type(&mut c, &event, "Guide", 1250, 5);

    let (status, _, page) = post(
        &app,
        "/checkout/total",
        &format!(
            "event_id={}&form_token=abc&qty[{}]=2&qty[{}]=1",
            event.id, t.id, vip.id
        ),
    )
    .await;
    assert_eq!(status, Status::Ok, "{page}");
    assert!(page.contains("Walker: 2 × €30.00 = €60.00"), "{page}");
    assert!(page.contains("Guide: 1 × €12.50 = €12.50"), "{page}");
    assert!(page.contains("Total: <strong>€72.50</strong>"), "{page}");
    // The quantities stay in the form; no seat was taken.
    assert!(page.contains("value=\"2\""));
    assert!(bookings_of(&mut c, &event).is_empty());
    assert_eq!(seat_state(&mut c, event.id).0, 0);

    // The event page itself starts empty, with the button that asks for the total.
    let (status, page) = app.get_text("/events/walk").await;
    assert_eq!(status, 200);
    assert!(page.contains("No tickets chosen yet."));
    assert!(page.contains("formaction=\"/checkout/total\""));
    assert!(page.contains("<title>Choose tickets — Event walk"));
}
