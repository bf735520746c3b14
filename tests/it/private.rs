//! Private area: the secret link works with noindex; a wrong or rotated token gets exactly
//! the 404 of a missing page.

use rocket::http::Status;
use ticketing::models::Event;

use crate::helpers::{add_ticket_type, EventSpec, TestApp};

async fn get(app: &TestApp, path: &str) -> (Status, Option<String>, Option<String>, String) {
    let res = app.client.get(path.to_string()).dispatch().await;
    let status = res.status();
    let robots = res.headers().get_one("X-Robots-Tag").map(str::to_string);
    let ctype = res.content_type().map(|c| c.to_string());
    (
        status,
        robots,
        ctype,
        res.into_string().await.unwrap_or_default(),
    )
}

#[rocket::async_test]
async fn right_token_shows_the_event_with_noindex() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("members-dinner", 5)
        .title("Members Dinner")
        .visibility("private")
        .insert(&mut c);
    add_ticket_type(&mut c, &event, "Seat", 5000, 20);
    let token = event.private_token.clone().unwrap();
    assert!(token.len() >= 22, "token shorter than 128 bits");

    let res = app.client.get(format!("/p/{token}")).dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("X-Robots-Tag"), Some("noindex"));
    assert_eq!(
        res.headers().get_one("Cache-Control"),
        Some("private, no-store")
    );
    let body = res.into_string().await.unwrap();
    assert!(body.contains("Members Dinner"));
    assert!(body.contains("€50.00"));

    let (_, listing) = app.get_text("/").await;
    assert!(!listing.contains("Members Dinner"));
}

#[rocket::async_test]
async fn wrong_token_is_the_same_404_as_a_missing_page() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("vip", 5)
        .visibility("private")
        .insert(&mut c);
    let token = event.private_token.unwrap();
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });

    let missing = get(&app, "/definitely/not/here").await;
    assert_eq!(missing.0, Status::NotFound);
    for path in [
        format!("/p/{wrong}"),
        "/p/short".to_string(),
        "/p/x".repeat(40),
        format!("/p/{}", ticketing::tokens::private_event_token()),
    ] {
        let got = get(&app, &path).await;
        assert_eq!(got, missing, "{path} differs from a missing page");
    }
}

#[rocket::async_test]
async fn rotated_token_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("rotating", 5)
        .visibility("private")
        .insert(&mut c);
    let old = event.private_token.clone().unwrap();
    assert_eq!(get(&app, &format!("/p/{old}")).await.0, Status::Ok);

    let new = Event::rotate_private_token(&mut c, event.id).unwrap();
    assert_ne!(old, new);
    assert_eq!(get(&app, &format!("/p/{old}")).await.0, Status::NotFound);
    assert_eq!(get(&app, &format!("/p/{new}")).await.0, Status::Ok);
}
