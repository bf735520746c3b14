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

/// Posts a form through the local client; returns (status, Location).
async fn post(app: &TestApp, path: &str, body: &str) -> (Status, Option<String>) {
    let res = app
        .client
        .post(path.to_string())
        .header(rocket::http::ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    (
        res.status(),
        res.headers().get_one("Location").map(str::to_string),
    )
}

/// Holds one seat through the ticket form (with the private link's token when given) and
/// returns the booking's access token.
async fn hold_one(app: &TestApp, event_id: i64, type_id: i64, token: Option<&str>) -> String {
    let link = token
        .map(|t| format!("&private_token={t}"))
        .unwrap_or_default();
    let (status, location) = post(
        app,
        "/checkout/hold",
        &format!("event_id={event_id}&qty[{type_id}]=1{link}"),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    location.unwrap().rsplit('/').next().unwrap().to_string()
}

/// A page with Tera's escaped slashes (`&#x2F;`) written as `/`, to look for links.
async fn page_of(app: &TestApp, path: &str) -> (u16, String) {
    let (status, page) = app.get_text(path).await;
    (status, page.replace("&#x2F;", "/"))
}

fn current_token(conn: &mut diesel::PgConnection, id: i64) -> Option<String> {
    Event::find(conn, id).unwrap().private_token
}

#[rocket::async_test]
async fn a_booking_page_links_back_only_by_the_link_it_was_made_with_while_it_is_current() {
    use diesel::prelude::*;
    use ticketing::schema::{bookings, events};
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("soiree", 5)
        .visibility("private")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 5000, 20);
    let old = event.private_token.clone().unwrap();

    let cancelled = hold_one(&app, event.id, t.id, Some(&old)).await;
    post(&app, &format!("/checkout/{cancelled}/release"), "").await;
    let expired = hold_one(&app, event.id, t.id, Some(&old)).await;
    diesel::update(bookings::table.filter(bookings::access_token.eq(&expired)))
        .set(bookings::hold_expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut c)
        .unwrap();
    for token in [&cancelled, &expired] {
        let (_, page) = page_of(&app, &format!("/bookings/{token}")).await;
        assert!(page.contains(&format!("href=\"/p/{old}\"")), "{page}");
    }

    // After a rotation the buyer is not handed the new link.
    let new = Event::rotate_private_token(&mut c, event.id).unwrap();
    for token in [&cancelled, &expired] {
        let (status, page) = page_of(&app, &format!("/bookings/{token}")).await;
        assert_eq!(status, 200);
        assert!(!page.contains(&new), "the new link leaked: {page}");
        assert!(!page.contains("/p/"), "{page}");
        assert!(!page.contains("Back to the event") && !page.contains("Choose tickets again"));
    }

    // Made public: the public page is the way back.
    diesel::update(events::table.find(event.id))
        .set((
            events::visibility.eq("public"),
            events::private_token.eq(None::<String>),
        ))
        .execute(&mut c)
        .unwrap();
    let (_, page) = page_of(&app, &format!("/bookings/{cancelled}")).await;
    assert!(page.contains("href=\"/events/soiree\""), "{page}");

    // A booking made on the public page of an event that has since gone private.
    let public_booking = hold_one(&app, event.id, t.id, None).await;
    post(&app, &format!("/checkout/{public_booking}/release"), "").await;
    let fresh = ticketing::tokens::private_event_token();
    diesel::update(events::table.find(event.id))
        .set((
            events::visibility.eq("private"),
            events::private_token.eq(&fresh),
        ))
        .execute(&mut c)
        .unwrap();
    let (_, page) = page_of(&app, &format!("/bookings/{public_booking}")).await;
    assert!(
        !page.contains(&fresh) && !page.contains("/events/soiree"),
        "{page}"
    );
}

/// Logs a new admin in through the login form; returns the session's CSRF token.
async fn admin_session(app: &TestApp) -> String {
    let mut c = app.conn();
    ticketing::models::User::insert(
        &mut c,
        &ticketing::models::NewUser {
            email: "admin@example.com".into(),
            name: "Admin".into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: "admin".into(),
        },
    )
    .unwrap();
    let csrf_of = |page: &str| {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .expect("a csrf field")
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let (_, login) = app.get_text("/admin/login").await;
    let (status, _) = post(
        app,
        "/admin/login",
        &format!(
            "csrf={}&email=admin%40example.com&password=correct+horse+battery",
            csrf_of(&login)
        ),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let (_, page) = app.get_text("/admin/checkin").await;
    csrf_of(&page)
}

#[rocket::async_test]
async fn making_an_event_private_again_gives_it_a_new_link_and_old_links_stay_dead() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("again", 30)
        .visibility("private")
        .insert(&mut c);
    // An event without ticket types stays a draft (issue 16).
    add_ticket_type(&mut c, &event, "Seat", 1000, 10);
    let id = event.id;
    let csrf = admin_session(&app).await;
    let edit = |visibility: &str| {
        format!("csrf={csrf}&title=Again&slug=again&timezone=Europe%2FBerlin&starts_at=2030-01-01T10%3A00&ends_at=2030-01-01T12%3A00&capacity=50&visibility={visibility}")
    };
    let first = event.private_token.clone().unwrap();

    // Editing a private event and keeping it private keeps its link.
    assert_eq!(
        post(&app, &format!("/admin/events/{id}"), &edit("private"))
            .await
            .0,
        Status::SeeOther
    );
    assert_eq!(current_token(&mut c, id).as_deref(), Some(first.as_str()));

    // private → public → private: a new link, the old one is dead.
    assert_eq!(
        post(&app, &format!("/admin/events/{id}"), &edit("public"))
            .await
            .0,
        Status::SeeOther
    );
    assert_eq!(
        current_token(&mut c, id),
        None,
        "a public event keeps no secret link"
    );
    // A public event has no link to rotate: refused, nothing changed.
    let rotate = format!("/admin/events/{id}/rotate");
    let (status, _) = post(&app, &rotate, &format!("csrf={csrf}")).await;
    assert_eq!(status, Status::Conflict);
    assert_eq!(current_token(&mut c, id), None);
    assert_eq!(
        post(&app, &format!("/admin/events/{id}"), &edit("private"))
            .await
            .0,
        Status::SeeOther
    );
    let second = current_token(&mut c, id).unwrap();
    assert_ne!(second, first);
    assert_eq!(get(&app, &format!("/p/{first}")).await.0, Status::NotFound);
    assert_eq!(get(&app, &format!("/p/{second}")).await.0, Status::Ok);

    // private → draft (unpublish) → public (publish) → private: new again.
    let action = |what: &str| format!("/admin/events/{id}/{what}");
    assert_eq!(
        post(&app, &action("unpublish"), &format!("csrf={csrf}"))
            .await
            .0,
        Status::SeeOther
    );
    assert_eq!(current_token(&mut c, id), None);
    assert_eq!(
        post(&app, &action("publish"), &format!("csrf={csrf}"))
            .await
            .0,
        Status::SeeOther
    );
    assert_eq!(
        post(&app, &format!("/admin/events/{id}"), &edit("private"))
            .await
            .0,
        Status::SeeOther
    );
    let third = current_token(&mut c, id).unwrap();
    assert!(third != first && third != second);
    for dead in [&first, &second] {
        assert_eq!(get(&app, &format!("/p/{dead}")).await.0, Status::NotFound);
    }
    assert_eq!(get(&app, &format!("/p/{third}")).await.0, Status::Ok);
}

/// Reads an event stream until it ends; `Err` with what was read if it is still open after
/// `secs` seconds.
pub(crate) async fn read_to_end(
    stream: &mut reqwest::Response,
    secs: u64,
) -> Result<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        match rocket::tokio::time::timeout(std::time::Duration::from_millis(500), stream.chunk())
            .await
        {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) | Ok(Err(_)) => return Ok(seen),
            Err(_) => {}
        }
    }
    Err(seen)
}

#[rocket::async_test]
async fn a_stream_opened_with_an_old_link_ends_when_the_link_is_rotated() {
    let server = crate::helpers::TestServer::spawn().await;
    let mut c = server.conn();
    let event = EventSpec::public("streamed", 5)
        .visibility("private")
        .insert(&mut c);
    add_ticket_type(&mut c, &event, "Seat", 5000, 20);
    let old = event.private_token.clone().unwrap();
    let client = crate::helpers::http_client();
    let mut stream = client
        .get(server.url(&format!("/p/{old}/availability")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = read_to_end(&mut stream, 1).await.unwrap_err();
    assert!(first.contains("event:availability"), "{first}");

    let new = Event::rotate_private_token(&mut c, event.id).unwrap();
    let rest = read_to_end(&mut stream, 5)
        .await
        .expect("the stream of the old link is still open 5 s after the rotation");
    assert!(!rest.contains(&new), "{rest}");
    // The new link streams as before.
    let mut current = client
        .get(server.url(&format!("/p/{new}/availability")))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
    assert!(
        read_to_end(&mut current, 2).await.is_err(),
        "the current link's stream ended"
    );
    let again = client
        .get(server.url(&format!("/p/{old}/availability")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}
