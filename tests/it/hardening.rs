//! Hardening from the penetration test (issue 14): bad input in addresses, page numbers and
//! admin fields gets a clear 4xx and changes nothing; no input reaches a 500.

use diesel::prelude::*;
use rocket::http::{ContentType, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use ticketing::models::{NewUser, User};
use ticketing::schema::{audit_log, events, ticket_types, users};

use crate::helpers::{add_ticket_type, EventSpec, TestApp};

fn user(conn: &mut PgConnection, email: &str, role: &str) -> User {
    User::insert(
        conn,
        &NewUser {
            email: email.into(),
            name: role.into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: role.into(),
        },
    )
    .unwrap()
}

/// The value of a page's hidden `csrf` field.
fn hidden_csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

async fn post_form<'c>(client: &'c Client, path: &str, body: &str) -> LocalResponse<'c> {
    client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

/// Logs in `email` (created as an admin) and returns the session's CSRF token.
async fn admin_session(app: &TestApp, email: &str) -> String {
    user(&mut app.conn(), email, "admin");
    let page = app
        .client
        .get("/admin/login")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let res = post_form(
        &app.client,
        "/admin/login",
        &format!(
            "csrf={}&email={}&password=correct+horse+battery",
            hidden_csrf(&page),
            email.replace('@', "%40")
        ),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther, "login");
    let page = app
        .client
        .get("/admin/checkin")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    hidden_csrf(&page)
}

/// `pattern` (a route's URI) with every dynamic segment replaced by `value`; without a
/// dynamic path segment, `value` goes into the query instead.
fn with_bad_value(pattern: &str, value: &str) -> String {
    let path = pattern.split('?').next().unwrap_or(pattern);
    let mut dynamic = false;
    let segments: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('<') {
                dynamic = true;
                value.to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    let path = segments.join("/");
    if dynamic {
        path
    } else {
        format!("{path}?q={value}")
    }
}

#[rocket::async_test]
async fn control_characters_in_any_address_get_400() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("gala", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 100, 10);
    let token = admin_session(&app, "admin@example.com").await;

    // What the tester sent.
    for path in [
        "/events/a%00b",
        "/payments/paypal/return?token=a%00b",
        "/admin/bookings?q=%00",
    ] {
        let (status, body) = app.get_text(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body.contains("characters that are not allowed"),
            "{path}: {body}"
        );
    }

    // Every route, with each kind of bad character in each of its dynamic parts.
    let routes: Vec<(Method, String)> = app
        .client
        .rocket()
        .routes()
        .map(|r| (r.method, r.uri.to_string()))
        .collect();
    assert!(routes.len() > 30, "{routes:?}");
    for (method, pattern) in &routes {
        for bad in [
            "a%00b",
            "a%0Ab",
            "%1B%5B31m",
            "a%7F",
            "a%C2%85b",
            "a%FFb",
            "a%09b",
        ] {
            let uri = with_bad_value(pattern, bad);
            let res = app
                .client
                .req(*method, uri.clone())
                .header(ContentType::Form)
                .body(format!(
                    "csrf={token}&event_id={}&qty[{}]=1",
                    event.id, t.id
                ))
                .dispatch()
                .await;
            let status = res.status();
            let body = res.into_string().await.unwrap_or_default();
            assert_eq!(status, Status::BadRequest, "{method} {uri}: {body}");
            assert!(body.contains("not allowed"), "{method} {uri}: {body}");
        }
    }
    // None of those requests changed anything: no hold, no new event.
    assert_eq!(crate::helpers::seat_state(&mut c, event.id), (0, 0));
    let n: i64 = events::table.count().get_result(&mut c).unwrap();
    assert_eq!(n, 1);

    // Clean addresses still work, `+` and percent-encoded text included.
    assert_eq!(app.get_text("/events/gala").await.0, 200);
    assert_eq!(
        app.get_text("/admin/bookings?q=Ana+Lima%C3%A9").await.0,
        200
    );
}

#[rocket::async_test]
async fn nul_bytes_the_database_refuses_are_a_400() {
    // The second line of defence: text that reached PostgreSQL with a NUL in it.
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let err = diesel::sql_query("SELECT $1::text AS t")
        .bind::<diesel::sql_types::Text, _>("a\0b")
        .execute(&mut c)
        .expect_err("PostgreSQL refuses a NUL in text");
    let e = ticketing::error::AppError::from(err);
    assert_eq!(e.status, Status::BadRequest, "{e}");
    assert!(e.message.contains("cannot be stored"), "{e}");
}

#[rocket::async_test]
async fn page_numbers_never_fail() {
    let app = TestApp::spawn().await;
    EventSpec::public("gala", 5).insert(&mut app.conn());
    admin_session(&app, "admin@example.com").await;
    for page in [
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "0",
        "-1",
        "abc",
        "1e9",
        "100001",
    ] {
        for path in ["/", "/admin/bookings"] {
            let uri = format!("{path}?page={page}");
            let (status, body) = app.get_text(&uri).await;
            assert!(status == 200 || status == 404, "{uri}: {status} {body}");
        }
    }
}

#[rocket::async_test]
async fn deactivating_a_missing_user_is_404_and_not_audited() {
    let app = TestApp::spawn().await;
    let token = admin_session(&app, "admin@example.com").await;
    let mut c = app.conn();
    let before: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    let res = post_form(
        &app.client,
        "/admin/users/987654/deactivate",
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::NotFound);
    let after: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    assert_eq!(
        after, before,
        "no audit entry for a user that does not exist"
    );
}

#[rocket::async_test]
async fn admin_fields_refuse_control_characters() {
    let app = TestApp::spawn().await;
    let token = admin_session(&app, "admin@example.com").await;
    let mut c = app.conn();
    let good = "slug=gala&timezone=Europe%2FBerlin&starts_at=2030-05-01T19%3A00&ends_at=2030-05-01T23%3A00&capacity=10&visibility=draft";
    for (field, value, error_id) in [
        ("title", "Gala%01", "ev-title-error"),
        ("title", "Gala%0ANight", "ev-title-error"),
        ("venue", "Main%09Hall", "ev-venue-error"),
        ("venue", "Main%00Hall", "ev-venue-error"),
        ("description", "Fine%00evening", "ev-description-error"),
        ("waiver_text", "I%1Bagree", "ev-waiver-error"),
    ] {
        let base = if field == "title" {
            good.to_string()
        } else {
            format!("title=Gala&{good}")
        };
        let res = post_form(
            &app.client,
            "/admin/events",
            &format!("csrf={token}&{base}&{field}={value}"),
        )
        .await;
        assert_eq!(res.status(), Status::UnprocessableEntity, "{field}={value}");
        let body = res.into_string().await.unwrap();
        assert!(body.contains(error_id), "{field}={value}: {body}");
        assert!(body.contains("control characters"), "{field}={value}");
    }
    let n: i64 = events::table.count().get_result(&mut c).unwrap();
    assert_eq!(n, 0, "no event was stored");

    // Line breaks and tabs are fine in a text area.
    let res = post_form(
        &app.client,
        "/admin/events",
        &format!("csrf={token}&title=Gala&{good}&description=Line+one%0D%0A%09Line+two"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let id: i64 = events::table.select(events::id).first(&mut c).unwrap();

    for (name, description, field) in [
        ("V%0AIP", "", "name"),
        ("VIP", "Front%00row", "description"),
    ] {
        let res = post_form(
            &app.client,
            &format!("/admin/events/{id}/ticket-types"),
            &format!("csrf={token}&name={name}&description={description}&price=10&currency=EUR&capacity=5&max_per_booking=2"),
        )
        .await;
        assert_eq!(res.status(), Status::UnprocessableEntity, "{field}");
        let body = res.into_string().await.unwrap();
        assert!(
            body.contains(&format!("new-{field}-error")),
            "{field}: {body}"
        );
    }
    let n: i64 = ticket_types::table.count().get_result(&mut c).unwrap();
    assert_eq!(n, 0, "no ticket type was stored");

    let res = post_form(
        &app.client,
        "/admin/users",
        &format!("csrf={token}&email=bo%40example.com&name=Bo%07b&role=staff"),
    )
    .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let n: i64 = users::table.count().get_result(&mut c).unwrap();
    assert_eq!(n, 1, "only the admin exists");
}
