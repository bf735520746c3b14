//! Public area: listing (future public events only, in order, paginated), event pages,
//! sitemap, robots.txt, escaping, the 404 page and static caching.

use chrono::{Duration, Utc};
use rocket::http::{Accept, Status};

use crate::helpers::{add_ticket_type, EventSpec, TestApp};

fn position(body: &str, needle: &str) -> usize {
    body.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in page"))
}

#[rocket::async_test]
async fn listing_shows_only_upcoming_public_events_soonest_first() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    EventSpec::public("later", 20)
        .title("Later Show")
        .insert(&mut c);
    EventSpec::public("sooner", 2)
        .title("Sooner Show")
        .insert(&mut c);
    EventSpec::public("draft-one", 3)
        .title("Secret Draft")
        .visibility("draft")
        .insert(&mut c);
    EventSpec::public("private-one", 3)
        .title("Hidden Private")
        .visibility("private")
        .insert(&mut c);
    let mut past = EventSpec::public("past", -5).title("Past Show");
    past.hours = 2;
    past.insert(&mut c);

    let (status, body) = app.get_text("/").await;
    assert_eq!(status, 200);
    assert!(position(&body, "Sooner Show") < position(&body, "Later Show"));
    for hidden in ["Secret Draft", "Hidden Private", "Past Show"] {
        assert!(!body.contains(hidden), "{hidden} is listed");
    }
}

#[rocket::async_test]
async fn listing_is_paginated() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let per_page = ticketing::routes::public::PAGE_SIZE;
    for i in 0..(per_page + 1) {
        EventSpec::public(&format!("e{i:02}"), i + 1)
            .title(&format!("Show number {i:02}"))
            .insert(&mut c);
    }
    let (_, page1) = app.get_text("/").await;
    assert!(page1.contains("Show number 00"));
    assert!(page1.contains(&format!("Show number {:02}", per_page - 1)));
    assert!(!page1.contains(&format!("Show number {per_page:02}")));
    assert!(page1.contains("href=\"/?page=2\""));

    let (status, page2) = app.get_text("/?page=2").await;
    assert_eq!(status, 200);
    assert!(page2.contains(&format!("Show number {per_page:02}")));
    assert!(!page2.contains("Show number 00"));

    let (status, _) = app.get_text("/?page=3").await;
    assert_eq!(status, 404);
}

#[rocket::async_test]
async fn event_page_shows_local_time_prices_and_states() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let mut spec = EventSpec::public("jazz", 0);
    spec.starts_at = (Utc::now() + Duration::days(30))
        .date_naive()
        .and_hms_opt(18, 30, 0)
        .unwrap()
        .and_utc();
    spec.timezone = "America/New_York";
    let event = spec.title("Jazz Night").capacity(50).insert(&mut c);
    add_ticket_type(&mut c, &event, "Standing", 2500, 40);
    let sold_out = add_ticket_type(&mut c, &event, "Balcony", 4000, 0);
    let _ = sold_out;
    let later = add_ticket_type(&mut c, &event, "Late bird", 3000, 10);
    diesel::RunQueryDsl::execute(
        diesel::update(ticketing::schema::ticket_types::table)
            .filter(diesel::ExpressionMethods::eq(
                ticketing::schema::ticket_types::id,
                later.id,
            ))
            .set(diesel::ExpressionMethods::eq(
                ticketing::schema::ticket_types::sales_open_at,
                Some(Utc::now() + Duration::days(3)),
            )),
        &mut c,
    )
    .unwrap();

    let (status, body) = app.get_text("/events/jazz").await;
    assert_eq!(status, 200);
    assert!(body.contains("Jazz Night"));
    // 18:30 UTC in New York is 13:30 (EST) or 14:30 (EDT).
    assert!(
        body.contains("13:30") || body.contains("14:30"),
        "local time missing"
    );
    assert!(body.contains("€25.00"));
    assert!(body.contains("data-seats-left=\"") && body.contains(">40</span> left"));
    assert!(body.contains("Sold out"));
    assert!(body.contains("On sale from"));

    // The page is rendered once and cached, but every visitor gets a form token of their own.
    let token = |page: &str| {
        page.split(r#"name="form_token" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string()
    };
    let (_, again) = app.get_text("/events/jazz").await;
    let (first, second) = (token(&body), token(&again));
    assert_eq!(first.len(), 24, "{first}");
    assert_ne!(first, second);
    assert!(!body.contains("form-token-slot") && !again.contains("form-token-slot"));
}

#[rocket::async_test]
async fn drafts_and_private_events_have_no_public_page() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    EventSpec::public("d", 3).visibility("draft").insert(&mut c);
    EventSpec::public("p", 3)
        .visibility("private")
        .insert(&mut c);
    assert_eq!(app.get_text("/events/d").await.0, 404);
    assert_eq!(app.get_text("/events/p").await.0, 404);
}

#[rocket::async_test]
async fn sitemap_lists_public_events_only() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    EventSpec::public("open-air", 3).insert(&mut c);
    EventSpec::public("draft-x", 3)
        .visibility("draft")
        .insert(&mut c);
    let private = EventSpec::public("private-x", 3)
        .visibility("private")
        .insert(&mut c);

    let res = app.client.get("/sitemap.xml").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.content_type().unwrap().to_string(),
        "text/xml; charset=utf-8"
    );
    let body = res.into_string().await.unwrap();
    assert!(
        body.contains("<loc>http://tickets.test/events/open-air</loc>"),
        "{body}"
    );
    assert!(!body.contains("draft-x"));
    assert!(!body.contains("private-x"));
    assert!(!body.contains(private.private_token.as_deref().unwrap()));

    let (status, robots) = app.get_text("/robots.txt").await;
    assert_eq!(status, 200);
    assert!(robots.contains("Disallow: /p/"));
    assert!(robots.contains("Sitemap: http://tickets.test/sitemap.xml"));
}

#[rocket::async_test]
async fn titles_with_markup_are_escaped_everywhere() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let evil = "<script>alert('x')</script> & Friends";
    EventSpec::public("evil", 3).title(evil).insert(&mut c);
    let private = EventSpec::public("evil-private", 3)
        .title(evil)
        .visibility("private")
        .insert(&mut c);
    let token = private.private_token.unwrap();
    for path in [
        "/".to_string(),
        "/events/evil".to_string(),
        format!("/p/{token}"),
    ] {
        let (status, body) = app.get_text(&path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains("<script>alert"), "unescaped on {path}");
        assert!(
            body.contains("&lt;script&gt;"),
            "escaped title missing on {path}"
        );
    }
}

#[rocket::async_test]
async fn missing_pages_get_the_html_404_page_or_json() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/no/such/page").dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
    assert_eq!(res.headers().get_one("X-Robots-Tag"), Some("noindex"));
    let body = res.into_string().await.unwrap();
    assert!(body.contains("<h1>Not Found</h1>"), "{body}");
    assert!(body.contains("See upcoming events"));

    let res = app
        .client
        .get("/events/nothing-here")
        .header(Accept::JSON)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NotFound);
    let json: serde_json::Value = res.into_json().await.unwrap();
    assert_eq!(json["error"]["status"], 404);
}

#[rocket::async_test]
async fn static_files_are_cached_for_a_year_and_pages_link_versioned_urls() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/static/app.css").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.headers().get_one("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let (_, home) = app.get_text("/").await;
    assert!(home.contains("/static/app.css?v="), "{home}");
}

#[rocket::async_test]
async fn an_open_stream_ends_when_its_event_is_no_longer_public() {
    use diesel::prelude::*;
    let server = crate::helpers::TestServer::spawn().await;
    let mut c = server.conn();
    let event = EventSpec::public("fading", 5).insert(&mut c);
    add_ticket_type(&mut c, &event, "Seat", 1000, 10);
    let client = crate::helpers::http_client();
    let mut stream = client
        .get(server.url("/events/fading/availability"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(crate::private::read_to_end(&mut stream, 1).await.is_err());
    diesel::update(ticketing::schema::events::table.find(event.id))
        .set(ticketing::schema::events::visibility.eq("draft"))
        .execute(&mut c)
        .unwrap();
    crate::private::read_to_end(&mut stream, 5)
        .await
        .expect("the stream is still open 5 s after the event was unpublished");
}

/// Sets a ticket type's sales window (None leaves that end open).
fn sales_window(
    c: &mut diesel::PgConnection,
    id: i64,
    opens: Option<chrono::DateTime<Utc>>,
    closes: Option<chrono::DateTime<Utc>>,
) {
    use diesel::prelude::*;
    use ticketing::schema::ticket_types;
    diesel::update(ticket_types::table.find(id))
        .set((
            ticket_types::sales_open_at.eq(opens),
            ticket_types::sales_close_at.eq(closes),
        ))
        .execute(c)
        .unwrap();
}

#[rocket::async_test]
async fn the_listing_says_what_can_be_bought() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let card = |body: &str, title: &str| {
        let start = body
            .find(title)
            .unwrap_or_else(|| panic!("{title} not listed"));
        let end = body[start..].find("</li>").unwrap() + start;
        body[start..end].to_string()
    };
    let free = EventSpec::public("picnic", 3)
        .title("Picnic")
        .insert(&mut c);
    add_ticket_type(&mut c, &free, "Everyone", 0, 50);
    let priced = EventSpec::public("opera", 4).title("Opera").insert(&mut c);
    add_ticket_type(&mut c, &priced, "Stalls", 4500, 50);
    add_ticket_type(&mut c, &priced, "Gallery", 1200, 50);
    let one_price = EventSpec::public("recital", 4)
        .title("Recital")
        .insert(&mut c);
    add_ticket_type(&mut c, &one_price, "Seat", 3000, 50);
    let soon = EventSpec::public("gala", 20).title("Gala").insert(&mut c);
    let t = add_ticket_type(&mut c, &soon, "Seat", 9000, 50);
    sales_window(&mut c, t.id, Some(Utc::now() + Duration::days(5)), None);
    let closed = EventSpec::public("lecture", 6)
        .title("Lecture")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &closed, "Seat", 500, 50);
    sales_window(&mut c, t.id, None, Some(Utc::now() - Duration::hours(1)));
    let full = EventSpec::public("tiny-club", 7)
        .title("Tiny Club")
        .insert(&mut c);
    add_ticket_type(&mut c, &full, "Seat", 800, 0);

    let (status, body) = app.get_text("/").await;
    assert_eq!(status, 200);
    let picnic = card(&body, "Picnic");
    assert!(
        picnic.contains(">Free<") && !picnic.contains("from"),
        "{picnic}"
    );
    assert!(card(&body, "Opera").contains("from €12.00"));
    let recital = card(&body, "Recital");
    assert!(
        recital.contains("€30.00") && !recital.contains("from"),
        "{recital}"
    );
    assert!(card(&body, "Gala").contains("On sale from"));
    assert!(card(&body, "Lecture").contains("Sales closed"));
    assert!(card(&body, "Tiny Club").contains("Sold out"));
}

/// Prices are written by the currency's CLDR rules (crates/core/src/money.rs): a yen price
/// has no decimals and groups its thousands, a large euro price too.
#[tokio::test]
async fn prices_are_written_by_currency_rules() {
    use diesel::prelude::*;
    use ticketing::schema::ticket_types;
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let tokyo = EventSpec::public("tokyo-night", 5)
        .title("Tokyo Night")
        .insert(&mut c);
    add_ticket_type(&mut c, &tokyo, "Seat", 3500, 50);
    // The currency belongs to the event (issue 16); its ticket types follow it.
    diesel::update(ticket_types::table.filter(ticket_types::event_id.eq(tokyo.id)))
        .set(ticket_types::currency.eq("JPY"))
        .execute(&mut c)
        .unwrap_err();
    ticketing::models::Event::set_currency(&mut c, tokyo.id, "JPY").unwrap();
    let gala = EventSpec::public("grand-gala", 6)
        .title("Grand Gala")
        .insert(&mut c);
    add_ticket_type(&mut c, &gala, "Box", 123_450, 5);

    let (_, listing) = app.get_text("/").await;
    assert!(listing.contains("¥3,500"), "{listing}");
    assert!(listing.contains("€1,234.50"), "{listing}");
    let (status, page) = app.get_text("/events/tokyo-night").await;
    assert_eq!(status, 200);
    assert!(page.contains("¥3,500") && !page.contains("¥3500"), "{page}");
}
