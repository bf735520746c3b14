//! PDF tickets from the booking page: all tickets of a paid booking in one PDF, or one
//! attendee's; nothing for an unknown token or code, or for a booking without valid tickets.

use diesel::prelude::*;
use ticketing::schema::{attendees, bookings};

use crate::helpers::{add_ticket_type, hold_with_details, http_client, EventSpec, TestServer};

/// The text shown on each page of a PDF ticket file: its `Tj` strings in WinAnsi (the
/// encoding of the built-in Helvetica the tickets are set in).
pub fn pdf_pages(pdf: &[u8]) -> Vec<String> {
    let doc = lopdf::Document::load_mem(pdf).expect("the PDF parses");
    doc.get_pages()
        .values()
        .map(|page| {
            let content =
                lopdf::content::Content::decode(&doc.get_page_content(*page).unwrap()).unwrap();
            content
                .operations
                .iter()
                .filter(|op| op.operator == "Tj")
                .filter_map(|op| op.operands.first()?.as_str().ok())
                .map(|bytes| lopdf::Document::decode_text(Some("WinAnsiEncoding"), bytes))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// A free two-attendee booking, confirmed (so paid): (server, token, ticket codes).
async fn paid_booking() -> (TestServer, String, Vec<String>) {
    let app = TestServer::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("pdf-night", 5)
        .title("PDF Night")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Front row", 0, 20);
    let client = http_client();
    let people = vec![
        ("Zoë Müller".to_string(), String::new()),
        ("Bo Jo".to_string(), "bo@example.com".to_string()),
    ];
    let token = hold_with_details(&client, &app, event.id, t.id, &people).await;
    let res = client
        .post(app.url(&format!("/checkout/{token}/confirm")))
        .form(&[("accept_terms", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let codes: Vec<String> = attendees::table
        .inner_join(bookings::table)
        .filter(bookings::access_token.eq(&token))
        .order(attendees::position)
        .select(attendees::ticket_code)
        .load(&mut c)
        .unwrap();
    (app, token, codes)
}

async fn get(app: &TestServer, path: &str) -> reqwest::Response {
    http_client().get(app.url(path)).send().await.unwrap()
}

#[rocket::async_test]
async fn a_paid_booking_downloads_all_its_tickets_or_one() {
    let (app, token, codes) = paid_booking().await;
    let res = get(&app, &format!("/bookings/{token}/tickets.pdf")).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=") && disposition.contains(".pdf"),
        "{disposition}"
    );
    assert_eq!(h["cache-control"], "private, no-store");
    assert_eq!(h["x-robots-tag"], "noindex");
    let pages = pdf_pages(&res.bytes().await.unwrap());
    assert_eq!(pages.len(), 2);
    for (page, (name, code)) in pages
        .iter()
        .zip([("Zoë Müller", &codes[0]), ("Bo Jo", &codes[1])])
    {
        for field in ["PDF Night", name, "Front row", code.as_str()] {
            assert!(page.contains(field), "{field:?} missing from {page}");
        }
    }

    let res = get(&app, &format!("/bookings/{token}/tickets/{}.pdf", codes[1])).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&codes[1]));
    let pages = pdf_pages(&res.bytes().await.unwrap());
    assert_eq!(pages.len(), 1);
    assert!(pages[0].contains("Bo Jo") && !pages[0].contains("Zoë"));

    // The booking page links both.
    let res = get(&app, &format!("/bookings/{token}")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("/bookings/{token}/tickets.pdf")),
        "{html}"
    );
    for code in &codes {
        assert!(html.contains(&format!("/bookings/{token}/tickets/{code}.pdf")));
    }
}

#[rocket::async_test]
async fn no_tickets_for_unknown_tokens_or_codes_or_bookings_without_valid_tickets() {
    let (app, token, codes) = paid_booking().await;
    let unknown = "A".repeat(32);
    for path in [
        format!("/bookings/{unknown}/tickets.pdf"),
        format!("/bookings/{unknown}/tickets/{}.pdf", codes[0]),
        format!("/bookings/{token}/tickets/NOPE0000NOPE.pdf"),
        format!("/bookings/{token}/tickets/{}", codes[0]),
        format!("/bookings/{token}/tickets/{}.png", codes[0]),
        format!("/bookings/{token}/tickets/a%20b%3C%3E.pdf"),
        format!("/bookings/{token}/tickets/{}.pdf", "x".repeat(500)),
        "/bookings/short/tickets.pdf".to_string(),
    ] {
        let res = get(&app, &path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.headers()["x-robots-tag"], "noindex");
    }
    // An unpaid booking, and a paid one that was cancelled or refunded, have no tickets.
    let mut c = app.conn();
    for state in ["held", "cancelled", "refunded", "reversed", "expired"] {
        diesel::update(bookings::table.filter(bookings::access_token.eq(&token)))
            .set(bookings::state.eq(state))
            .execute(&mut c)
            .unwrap();
        for path in [
            format!("/bookings/{token}/tickets.pdf"),
            format!("/bookings/{token}/tickets/{}.pdf", codes[0]),
        ] {
            let res = get(&app, &path).await;
            assert_eq!(res.status(), 404, "{state}: {path}");
        }
        let html = get(&app, &format!("/bookings/{token}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!html.contains("tickets.pdf"), "{state}: no download link");
    }
}

/// Paid through PayPal: the return captures, the simulator's webhooks settle the same payment
/// again, and the buyer reloads the return page; the buyer's confirmation and the second
/// attendee's own ticket mail are each queued once.
#[rocket::async_test]
async fn a_repeated_paypal_settlement_queues_each_ticket_mail_once() {
    use ticketing::schema::outbox;
    let w = crate::paypal_world::world(10).await;
    let people = vec![
        ("Ana Lima".to_string(), String::new()),
        ("Bo Jo".to_string(), "bo@example.com".to_string()),
    ];
    let token = hold_with_details(&w.client, &w.app, w.event.id, w.type_id, &people).await;
    let (_, order) = w.pay(&token).await;
    let back = w.approval(&order, "approve").await;
    w.follow(&back).await;
    w.wait_state(&token, "paid").await;
    rocket::tokio::time::sleep(std::time::Duration::from_millis(800)).await; // webhooks settle
    w.follow(&back).await;
    let kinds: Vec<String> = outbox::table
        .inner_join(bookings::table)
        .filter(bookings::access_token.eq(&token))
        .order(outbox::id)
        .select(outbox::kind)
        .load(&mut w.app.conn())
        .unwrap();
    assert_eq!(kinds, ["confirmation", "attendee_ticket"]);
}
