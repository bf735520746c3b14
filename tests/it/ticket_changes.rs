//! Issues 15 and 16: the refund reason reaches the buyer (mail and booking page), and one
//! ticket of a booking is cancelled or refunded on its own: its seat returns, its code stops
//! working at the door, PayPal refunds its price once however often the form is sent, the
//! last ticket closes the booking, attendee names can be corrected, staff cannot refund.

use diesel::prelude::*;
use serde_json::Value;
use ticketing::schema::{attendees, audit_log, booking_items, bookings, outbox, payments, refunds};

use crate::helpers::{add_ticket_type, http_client, invariant_violations, EventSpec, TestServer};
use crate::paypal_world::{world, World};

/// A user of `role` logged in over HTTP with `client`'s cookies; returns a CSRF token of
/// the session.
async fn login(app: &TestServer, client: &reqwest::Client, email: &str, role: &str) -> String {
    ticketing::models::User::insert(
        &mut app.conn(),
        &ticketing::models::NewUser {
            email: email.into(),
            name: role.into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: role.into(),
        },
    )
    .unwrap();
    let page = text(client, &app.url("/admin/login")).await.1;
    let res = client
        .post(app.url("/admin/login"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("email", email),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    csrf_of(&text(client, &app.url("/admin/checkin")).await.1)
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string()
}

async fn text(client: &reqwest::Client, url: &str) -> (u16, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = client.post(url).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The attendees of a booking: (id, name, code), by position.
fn tickets_of(app: &TestServer, booking_id: i64) -> Vec<(i64, String, String)> {
    attendees::table
        .filter(attendees::booking_id.eq(booking_id))
        .order(attendees::position)
        .select((attendees::id, attendees::name, attendees::ticket_code))
        .load(&mut app.conn())
        .unwrap()
}

/// Renders every queued mail of `kind`: (subject, text, html).
fn mails(app: &TestServer, kind: &str) -> Vec<(String, String, String)> {
    let mailer = crate::helpers::mailer(&app.db.url);
    let ids: Vec<i64> = outbox::table
        .filter(outbox::kind.eq(kind))
        .order(outbox::id)
        .select(outbox::id)
        .load(&mut app.conn())
        .unwrap();
    ids.into_iter()
        .map(|id| {
            let m = mailer.renderer().render(&mut app.conn(), id).unwrap();
            assert_eq!(m.to.email.to_string(), "ana@example.com", "to the buyer");
            (m.subject, m.text, m.html)
        })
        .collect()
}

/// Checks in `code` at the world's event as `client` (staff): the result's kind and message.
async fn check_in(w: &World, client: &reqwest::Client, csrf: &str, code: &str) -> (String, String) {
    let (_, page) = post(
        client,
        &w.app.url("/admin/checkin"),
        &[
            ("csrf", csrf),
            ("event", &w.event.id.to_string()),
            ("code", code),
        ],
    )
    .await;
    let kind = page
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string();
    let message = page
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('>').nth(1))
        .and_then(|r| r.split('<').next())
        .unwrap_or_default()
        .to_string();
    (kind, message)
}

fn organiser_contact(part: &str) {
    assert!(
        part.contains("Questions: contact Beispiel Events GmbH at"),
        "{part}"
    );
    assert!(part.contains("kontakt@example.org"), "{part}");
}

#[rocket::async_test]
async fn the_refund_reason_reaches_the_buyer_in_mail_and_on_the_booking_page() {
    let w = world(10).await;
    let (token, _, id) = w.paid_booking(2).await;
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let page = text(&admin, &w.app.url(&format!("/admin/bookings/{id}")))
        .await
        .1;
    let form_token = page
        .split("name=\"refund_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let (status, _) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/refund")),
        &[
            ("csrf", csrf.as_str()),
            ("refund_token", &form_token),
            ("amount", "5.00"),
            ("reason", "  The support act cancelled  "),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let note: String = refunds::table
        .select(refunds::note)
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(note, "The support act cancelled", "stored trimmed");
    let sent = mails(&w.app, "partial_refund");
    assert_eq!(sent.len(), 1);
    for part in [&sent[0].1, &sent[0].2] {
        assert!(part.contains("Reason: The support act cancelled"), "{part}");
        assert!(part.contains("5.00"), "{part}");
        organiser_contact(part);
    }
    let (status, booking_page) = text(&w.client, &w.app.url(&format!("/bookings/{token}"))).await;
    assert_eq!(status, 200);
    assert!(
        booking_page.contains("data-booking-changes"),
        "{booking_page}"
    );
    assert!(
        booking_page.contains("<span data-refund-reason>The support act cancelled</span>"),
        "{booking_page}"
    );
    // The date is in the event's zone.
    let at: chrono::DateTime<chrono::Utc> = refunds::table
        .select(refunds::created_at)
        .first(&mut w.app.conn())
        .unwrap();
    let local = ticketing::timefmt::local_datetime(at, w.event.tz());
    assert!(
        booking_page.contains(&format!("refunded on {local}")),
        "{local}: {booking_page}"
    );

    // The rest, with a reason: the full refund's mail says it too.
    let (status, _) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/refund")),
        &[
            ("csrf", csrf.as_str()),
            ("amount", ""),
            ("reason", "Venue closed"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(w.state(&token), "refunded");
    let sent = mails(&w.app, "refund");
    assert_eq!(sent.len(), 1);
    for part in [&sent[0].1, &sent[0].2] {
        assert!(part.contains("Reason: Venue closed"), "{part}");
        organiser_contact(part);
    }
    w.check_invariant();
}

#[rocket::async_test]
async fn a_bad_reason_is_refused_and_changes_nothing() {
    let w = world(10).await;
    let (_, _, id) = w.paid_booking(2).await;
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let url = w.app.url(&format!("/admin/bookings/{id}/refund"));
    let long = "x".repeat(251);
    for (reason, message) in [
        ("Sorry\u{7}bell", "Remove the control characters"),
        ("two\nlines", "Remove the control characters"),
        (long.as_str(), "Use at most 250 characters."),
    ] {
        let (status, page) = post(
            &admin,
            &url,
            &[
                ("csrf", csrf.as_str()),
                ("amount", "5.00"),
                ("reason", reason),
                ("confirm", "true"),
            ],
        )
        .await;
        assert_eq!(status, 422, "{reason:?}");
        let error = page
            .split("id=\"refund-reason-error\">")
            .nth(1)
            .unwrap_or_else(|| panic!("{page}"));
        assert!(error.starts_with(message), "{error}");
        assert!(page.contains("aria-describedby=\"refund-reason-error\""));
        // The input is kept, and the amount too.
        assert!(page.contains(&format!("value=\"{reason}\"")), "{page}");
        assert!(page.contains("value=\"5.00\""));
    }
    // The same rule on the one-ticket form.
    let ticket = tickets_of(&w.app, id)[0].0.to_string();
    let (status, page) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/ticket")),
        &[
            ("csrf", csrf.as_str()),
            ("ticket", &ticket),
            ("action", "refund"),
            ("reason", "tab\there"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"ticket-reason-error\">Remove the control characters"));
    let n: i64 = refunds::table
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(n, 0, "nothing was refunded");
    let refunded: i64 = payments::table
        .select(payments::refunded_minor)
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(refunded, 0);
    let closed: i64 = attendees::table
        .filter(attendees::cancelled_at.is_not_null())
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(closed, 0);
    assert_eq!(w.seats_taken(), 2);
}

#[rocket::async_test]
async fn one_ticket_refunded_returns_its_seat_and_its_code_stops_working() {
    let w = world(10).await;
    let (token, order, id) = w.paid_booking(2).await;
    let people = tickets_of(&w.app, id);
    let (gone, kept) = (&people[0], &people[1]);
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let page = text(&admin, &w.app.url(&format!("/admin/bookings/{id}")))
        .await
        .1;
    assert!(page.contains("Refund this ticket through PayPal"), "{page}");
    let (status, _) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/ticket")),
        &[
            ("csrf", csrf.as_str()),
            ("ticket", &gone.0.to_string()),
            ("action", "refund"),
            ("reason", "Guest is ill"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    // PayPal refunded the ticket's price once, under the request id derived from the ticket.
    let (request_id, status, amount): (String, String, i64) = refunds::table
        .select((refunds::request_id, refunds::status, refunds::amount_minor))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(request_id, format!("refund-ticket-{}-1", gone.0));
    assert_eq!((status.as_str(), amount), ("COMPLETED", 2500));
    let capture = w.order(&order).await["purchase_units"][0]["payments"]["captures"][0].clone();
    assert_eq!(capture["status"], "PARTIALLY_REFUNDED", "{capture}");
    assert_eq!(w.state(&token), "paid");
    // Its seat is back, counters and booking agree.
    assert_eq!(w.seats_taken(), 1);
    w.check_invariant();
    let (seats, qty): (i32, i32) = bookings::table
        .inner_join(booking_items::table)
        .filter(bookings::id.eq(id))
        .select((bookings::seats, booking_items::quantity))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!((seats, qty), (1, 1));
    // The door refuses its code and lets the other one in.
    let door = http_client();
    let door_csrf = login(&w.app, &door, "door@example.com", "staff").await;
    let (kind, message) = check_in(&w, &door, &door_csrf, &gone.2).await;
    assert_eq!(kind, "cancelled");
    assert!(
        message.starts_with("This ticket was cancelled"),
        "{message}"
    );
    let (kind, _) = check_in(&w, &door, &door_csrf, &kept.2).await;
    assert_eq!(kind, "valid");
    // The buyer is mailed which ticket, how much and why.
    let sent = mails(&w.app, "ticket_cancelled");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.contains("was refunded"), "{}", sent[0].0);
    for part in [&sent[0].1, &sent[0].2] {
        assert!(part.contains(&gone.1) && part.contains(&gone.2), "{part}");
        assert!(part.contains("25.00"), "{part}");
        assert!(part.contains("Reason: Guest is ill"), "{part}");
        assert!(part.contains("stay valid"), "{part}");
        organiser_contact(part);
    }
    // The booking page lists it as no longer valid, without its QR code or PDF.
    let (_, page) = text(&w.client, &w.app.url(&format!("/bookings/{token}"))).await;
    assert!(
        page.contains(&format!("data-cancelled-ticket=\"{}\"", gone.2)),
        "{page}"
    );
    assert!(
        !page.contains(&format!("QR code for ticket {}", gone.2)),
        "{page}"
    );
    assert!(
        page.contains(&format!("QR code for ticket {}", kept.2)),
        "{page}"
    );
    assert!(page.contains("Guest is ill"));
    assert!(
        page.contains(
            "Questions? Contact Beispiel Events GmbH at <a href=\"mailto:kontakt@example.org\">"
        ),
        "{page}"
    );
    let (status, _) = text(
        &w.client,
        &w.app
            .url(&format!("/bookings/{token}/tickets/{}.pdf", gone.2)),
    )
    .await;
    assert_eq!(status, 404);
    // The same ticket cannot be refunded again.
    let (status, page) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/ticket")),
        &[
            ("csrf", csrf.as_str()),
            ("ticket", &gone.0.to_string()),
            ("action", "refund"),
            ("reason", "again"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("already cancelled or refunded"), "{page}");
    let n: i64 = refunds::table
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(n, 1);
}

#[rocket::async_test]
async fn two_refunds_of_one_ticket_at_once_refund_it_once() {
    let w = world(10).await;
    let (_, order, id) = w.paid_booking(3).await;
    let ticket = tickets_of(&w.app, id)[1].0.to_string();
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let url = w.app.url(&format!("/admin/bookings/{id}/ticket"));
    let send = || {
        let (admin, url) = (admin.clone(), url.clone());
        let form = vec![
            ("csrf", csrf.clone()),
            ("ticket", ticket.clone()),
            ("action", "refund".to_string()),
            ("reason", "double click".to_string()),
            ("confirm", "true".to_string()),
        ];
        async move {
            let res = admin.post(&url).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (a, b) = rocket::tokio::join!(send(), send());
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [303, 422],
        "one refunds, the other is refused: {a:?} {b:?}"
    );
    let rows: Vec<(String, String)> = refunds::table
        .select((refunds::request_id, refunds::status))
        .load(&mut w.app.conn())
        .unwrap();
    assert_eq!(
        rows,
        vec![(format!("refund-ticket-{ticket}-1"), "COMPLETED".to_string())]
    );
    let refunded: i64 = payments::table
        .select(payments::refunded_minor)
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(refunded, 2500);
    let capture = w.order(&order).await["purchase_units"][0]["payments"]["captures"][0].clone();
    let at_paypal = capture["refunded_minor"].as_i64().or_else(|| {
        capture["seller_receivable_breakdown"]["total_refunded_amount"]["value"]
            .as_str()
            .map(|v| (v.parse::<f64>().unwrap() * 100.0).round() as i64)
    });
    if let Some(at_paypal) = at_paypal {
        assert_eq!(at_paypal, 2500, "{capture}");
    }
    assert_eq!(capture["status"], "PARTIALLY_REFUNDED", "{capture}");
    assert_eq!(w.seats_taken(), 2);
    w.check_invariant();
}

#[rocket::async_test]
async fn the_last_ticket_closes_the_booking() {
    // A free booking: cancelling frees the seats with no PayPal at all.
    let app = TestServer::spawn().await;
    let event = EventSpec::public("free-gig", 10).insert(&mut app.conn());
    let t = add_ticket_type(&mut app.conn(), &event, "Free", 0, 10);
    let buyer = http_client();
    let guests = vec![
        ("Ana Lima".to_string(), String::new()),
        ("Bo Chen".to_string(), String::new()),
    ];
    let token = crate::helpers::hold_with_details(&buyer, &app, event.id, t.id, &guests).await;
    let res = buyer
        .post(app.url(&format!("/checkout/{token}/confirm")))
        .form(&[("accept_terms", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let id: i64 = bookings::table
        .filter(bookings::access_token.eq(&token))
        .select(bookings::id)
        .first(&mut app.conn())
        .unwrap();
    let state = || -> String {
        bookings::table
            .find(id)
            .select(bookings::state)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(state(), "paid");
    let admin = http_client();
    let csrf = login(&app, &admin, "boss@example.com", "admin").await;
    let page = text(&admin, &app.url(&format!("/admin/bookings/{id}")))
        .await
        .1;
    assert!(!page.contains("Refund this ticket"), "no money to refund");
    let people = tickets_of(&app, id);
    let cancel = |ticket: i64| {
        let (admin, csrf, url) = (
            &admin,
            &csrf,
            app.url(&format!("/admin/bookings/{id}/ticket")),
        );
        async move {
            post(
                admin,
                &url,
                &[
                    ("csrf", csrf.as_str()),
                    ("ticket", &ticket.to_string()),
                    ("action", "cancel"),
                    ("reason", "Plans changed"),
                    ("confirm", "true"),
                ],
            )
            .await
        }
    };
    // Without the confirmation box nothing happens.
    let (status, page) = post(
        &admin,
        &app.url(&format!("/admin/bookings/{id}/ticket")),
        &[
            ("csrf", csrf.as_str()),
            ("ticket", &people[0].0.to_string()),
            ("action", "cancel"),
            ("reason", "Plans changed"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Tick the box to confirm."));
    assert!(page.contains("value=\"Plans changed\""), "input kept");
    assert_eq!(cancel(people[0].0).await.0, 303);
    assert_eq!(state(), "paid");
    assert!(invariant_violations(&mut app.conn()).is_empty());
    let taken = |app: &TestServer| -> i32 {
        ticketing::schema::events::table
            .find(event.id)
            .select(ticketing::schema::events::seats_taken)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(taken(&app), 1);
    assert_eq!(cancel(people[1].0).await.0, 303);
    assert_eq!(state(), "cancelled", "the last ticket closes the booking");
    assert_eq!(taken(&app), 0);
    assert!(invariant_violations(&mut app.conn()).is_empty());
    // No PayPal, and no refund rows; the buyer got one mail per ticket and no second one
    // for the booking.
    let n: i64 = refunds::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(n, 0);
    let sent = mails(&app, "ticket_cancelled");
    assert_eq!(sent.len(), 2);
    assert!(sent[1].1.contains("last valid ticket"), "{}", sent[1].1);
    assert!(sent[0].1.contains("Reason: Plans changed"));
    assert!(mails(&app, "cancellation").is_empty());
    // The state machine refuses more: the booking is closed.
    let (status, page) = cancel(people[1].0).await;
    assert_eq!(status, 422, "{page}");
    let (_, page) = text(&buyer, &app.url(&format!("/bookings/{token}"))).await;
    assert!(page.contains("data-state=\"cancelled\""));
    assert!(page.contains(&format!("data-cancelled-ticket=\"{}\"", people[1].2)));

    // A paid booking's only ticket refunded: the booking is refunded.
    let w = world(10).await;
    let (token, _, id) = w.paid_booking(1).await;
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let ticket = tickets_of(&w.app, id)[0].0.to_string();
    let (status, _) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/ticket")),
        &[
            ("csrf", csrf.as_str()),
            ("ticket", &ticket),
            ("action", "refund"),
            ("reason", "Sold by mistake"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    w.wait_state(&token, "refunded").await;
    assert_eq!(w.seats_taken(), 0);
    w.check_invariant();
}

#[rocket::async_test]
async fn a_corrected_name_is_audited_and_shown_everywhere() {
    let w = world(10).await;
    let (token, _, id) = w.paid_booking(2).await;
    let people = tickets_of(&w.app, id);
    let staff = http_client();
    let csrf = login(&w.app, &staff, "desk@example.com", "staff").await;
    let url = w.app.url(&format!("/admin/bookings/{id}/attendee-name"));
    // A bad name is refused next to the field, kept, and nothing changes.
    let (status, page) = post(
        &staff,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("attendee", &people[0].0.to_string()),
            ("name", "  "),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"rename-error\">Enter a name."), "{page}");
    let (status, _) = post(
        &staff,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("attendee", &people[0].0.to_string()),
            ("name", " Joana Lima "),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (before, after): (Option<Value>, Option<Value>) = audit_log::table
        .filter(audit_log::action.eq("attendee.rename"))
        .select((audit_log::before, audit_log::after))
        .first(&mut w.app.conn())
        .unwrap();
    assert_eq!(before.unwrap()["name"], people[0].1.as_str());
    assert_eq!(after.unwrap()["name"], "Joana Lima");
    // The booking page, the PDF's tickets and check-in show the new name.
    let (_, page) = text(&w.client, &w.app.url(&format!("/bookings/{token}"))).await;
    assert!(page.contains("Joana Lima"), "{page}");
    let booking = ticketing::models::Booking::find(&mut w.app.conn(), id).unwrap();
    let pdf_tickets =
        ticketing::tickets_pdf::booking_tickets(&mut w.app.conn(), &booking, Some(&people[0].2))
            .unwrap();
    assert_eq!(pdf_tickets[0].attendee_name, "Joana Lima");
    let (kind, message) = check_in(&w, &staff, &csrf, &people[0].2).await;
    assert_eq!(kind, "valid");
    assert!(message.contains("Joana Lima"), "{message}");
}

#[rocket::async_test]
async fn staff_cannot_refund_or_cancel_a_ticket() {
    let w = world(10).await;
    let (token, _, id) = w.paid_booking(2).await;
    let staff = http_client();
    let csrf = login(&w.app, &staff, "desk@example.com", "staff").await;
    let page = text(&staff, &w.app.url(&format!("/admin/bookings/{id}")))
        .await
        .1;
    assert!(!page.contains("Cancel or refund one ticket"), "{page}");
    assert!(page.contains("Correct a name"));
    let ticket = tickets_of(&w.app, id)[0].0.to_string();
    for action in ["refund", "cancel"] {
        let (status, _) = post(
            &staff,
            &w.app.url(&format!("/admin/bookings/{id}/ticket")),
            &[
                ("csrf", csrf.as_str()),
                ("ticket", &ticket),
                ("action", action),
                ("reason", "no"),
                ("confirm", "true"),
            ],
        )
        .await;
        assert_eq!(status, 403, "{action}");
    }
    let n: i64 = refunds::table
        .count()
        .get_result(&mut w.app.conn())
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(w.seats_taken(), 2);
    assert_eq!(w.state(&token), "paid");
}

#[rocket::async_test]
async fn a_cancelled_booking_is_mailed_with_the_organiser_contact() {
    let w = world(10).await;
    let (token, _, id) = w.paid_booking(1).await;
    let admin = http_client();
    let csrf = login(&w.app, &admin, "boss@example.com", "admin").await;
    let (status, _) = post(
        &admin,
        &w.app.url(&format!("/admin/bookings/{id}/cancel")),
        &[
            ("csrf", csrf.as_str()),
            ("reason", "Event moved"),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(w.state(&token), "cancelled");
    let sent = mails(&w.app, "cancellation");
    assert_eq!(sent.len(), 1);
    for part in [&sent[0].1, &sent[0].2] {
        organiser_contact(part);
    }
    w.check_invariant();
}
