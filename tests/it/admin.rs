//! Admin area: every route is guarded (checked from the route table), CSRF on every form,
//! login rate limits, logout and revocation, check-in, CSV export, audit entries.

use diesel::prelude::*;
use rocket::http::{ContentType, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use ticketing::models::{NewUser, User};
use ticketing::schema::{admin_sessions, attendees, audit_log, bookings};

use crate::helpers::{add_ticket_type, hidden_csrf, EventSpec, TestApp};

/// Routes only admins may use (the rest are open to staff too).
const ADMIN_ONLY: &[&str] = &[
    "/admin/audit?<action>",
    "/admin/bookings/<id>/cancel",
    "/admin/bookings/<id>/refund",
    "/admin/bookings/<id>/ticket",
    "/admin/settings",
    "/admin/legal/<slug>",
];

/// Admin pages open without a session: the login, and the one-time password links (their
/// own tests, including CSRF, are in `accounts`).
const SIGNED_OUT: [&str; 3] = [
    "/admin/login",
    "/admin/forgot-password",
    "/admin/set-password/",
];

pub(crate) fn signed_out(uri: &str) -> bool {
    SIGNED_OUT.iter().any(|p| uri.starts_with(p))
}

pub(crate) fn user(conn: &mut PgConnection, email: &str, role: &str) -> User {
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

/// Logs in through the form, with the token the login page hands out.
pub(crate) async fn login(client: &Client, email: &str, password: &str) -> Status {
    let page = client
        .get("/admin/login")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    client
        .post("/admin/login")
        .header(ContentType::Form)
        .body(format!(
            "csrf={}&email={}&password={}",
            hidden_csrf(&page),
            email.replace('@', "%40"),
            password.replace(' ', "+")
        ))
        .dispatch()
        .await
        .status()
}

/// Posts a form body from `client` (a logged-in browser, or not).
pub(crate) async fn post_form<'c>(client: &'c Client, path: &str, body: &str) -> LocalResponse<'c> {
    client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

/// Logs `email` in with the test password (must succeed) and returns the session's CSRF token.
pub(crate) async fn log_in(client: &Client, email: &str) -> String {
    assert_eq!(
        login(client, email, "correct horse battery").await,
        Status::SeeOther
    );
    csrf(client).await
}

async fn csrf(client: &Client) -> String {
    let page = client
        .get("/admin/checkin")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    hidden_csrf(&page)
}

/// Books and confirms one free seat for "Ana" through the checkout pages.
async fn book_free_seat(app: &TestApp, event_id: i64, type_id: i64) {
    let res = post_form(
        &app.client,
        "/checkout/hold",
        &format!("event_id={event_id}&qty[{type_id}]=1"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let checkout = res.headers().get_one("Location").unwrap().to_string();
    post_form(
        &app.client,
        &checkout.clone(),
        "buyer_name=Ana&buyer_email=ana%40example.com&attendees[0].name=Ana",
    )
    .await;
    let res = app
        .client
        .post(format!("{checkout}/confirm"))
        .header(ContentType::Form)
        .body("accept_terms=true")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
}

/// A concrete URL for a route: `<id>` → 1, required query parameters filled in.
fn concrete(uri: &str) -> String {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = path
        .replace("<id>", "1")
        .replace("<action>", "publish")
        .replace("<slug>", "terms");
    if query.contains("<event>") && path.ends_with(".csv") {
        format!("{path}?event=1")
    } else {
        path
    }
}

/// A second browser on the same app database.
pub(crate) async fn new_client(app: &TestApp) -> Client {
    let config = ticketing::Config::from_map(&crate::helpers::base_vars(&app.db.url)).unwrap();
    Client::tracked(ticketing::rocket(&config, ticketing::connect(&config)))
        .await
        .unwrap()
}

#[rocket::async_test]
async fn every_admin_route_needs_login_and_admin_routes_refuse_staff() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "staff@example.com", "staff");
    let routes: Vec<(Method, String)> = app
        .client
        .rocket()
        .routes()
        .filter(|r| r.uri.to_string().starts_with("/admin"))
        .filter(|r| !signed_out(&r.uri.to_string()))
        .map(|r| (r.method, r.uri.to_string()))
        .collect();
    assert!(routes.len() >= 12, "{routes:?}");
    for (method, uri) in &routes {
        let res = app
            .client
            .req(*method, concrete(uri))
            .header(ContentType::Form)
            .body("csrf=x")
            .dispatch()
            .await;
        assert_eq!(
            res.status(),
            Status::SeeOther,
            "{method} {uri} lets an anonymous user in"
        );
        assert!(
            res.headers()
                .get_one("Location")
                .unwrap()
                .starts_with("/admin/login"),
            "{method} {uri}"
        );
    }
    let staff = new_client(&app).await;
    assert_eq!(
        login(&staff, "staff@example.com", "correct horse battery").await,
        Status::SeeOther
    );
    for (method, uri) in &routes {
        let res = staff
            .req(*method, concrete(uri))
            .header(ContentType::Form)
            .body("csrf=x")
            .dispatch()
            .await;
        if ADMIN_ONLY.contains(&uri.as_str()) {
            assert_eq!(
                res.status(),
                Status::Forbidden,
                "{method} {uri} must be admin-only"
            );
        } else {
            assert_ne!(
                res.status(),
                Status::SeeOther,
                "{method} {uri} sent staff to login"
            );
            assert_ne!(res.status(), Status::Unauthorized);
        }
    }
}

#[rocket::async_test]
async fn forms_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let event = EventSpec::public("gig", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 0, 10);
    let res = post_form(
        &app.client,
        "/checkout/hold",
        &format!("event_id={}&qty[{}]=1", event.id, t.id),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let booking_id: i64 = bookings::table.select(bookings::id).first(&mut c).unwrap();
    let good = log_in(&app.client, "admin@example.com").await;
    let posts: Vec<String> = app
        .client
        .rocket()
        .routes()
        .filter(|r| {
            r.method == Method::Post
                && r.uri.to_string().starts_with("/admin")
                && !signed_out(&r.uri.to_string())
        })
        .map(|r| r.uri.to_string())
        .collect();
    assert!(posts.len() >= 5, "{posts:?}");
    for uri in &posts {
        let path = uri
            .replace("<id>", &booking_id.to_string())
            .replace("<action>", "publish")
            .replace("<slug>", "terms");
        for body in [
            "".to_string(),
            "csrf=wrong-token".to_string(),
            format!("csrf={}x", good),
        ] {
            let res = post_form(
                &app.client,
                &path.clone(),
                &format!("{body}&event={}&code=X&reason=r", event.id),
            )
            .await;
            assert_eq!(res.status(), Status::Forbidden, "POST {uri} with {body:?}");
        }
    }
    let state: String = bookings::table
        .find(booking_id)
        .select(bookings::state)
        .first(&mut c)
        .unwrap();
    assert_eq!(state, "held");
    let audits: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    assert_eq!(audits, 0);
    // Still logged in: logout with a wrong token did nothing.
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn repeated_bad_passwords_are_rate_limited() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    for _ in 0..5 {
        assert_eq!(
            login(&app.client, "admin@example.com", "wrong").await,
            Status::UnprocessableEntity
        );
    }
    let page = app.get_text("/admin/login").await.1;
    let res = post_form(
        &app.client,
        "/admin/login",
        &format!(
            "csrf={}&email=admin%40example.com&password=wrong",
            hidden_csrf(&page)
        ),
    )
    .await;
    assert_eq!(res.status(), Status::TooManyRequests);
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("Too many login attempts"));
    assert_eq!(
        login(&app.client, "admin@example.com", "correct horse battery").await,
        Status::TooManyRequests,
        "locked even with the right password"
    );
    // Unknown accounts get the same answer as wrong passwords.
    assert_eq!(
        login(&app.client, "nobody@example.com", "x").await,
        Status::UnprocessableEntity
    );
}

#[rocket::async_test]
async fn logout_and_revocation_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    assert_eq!(
        login(&app.client, "admin@example.com", "correct horse battery").await,
        Status::SeeOther
    );
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::Ok
    );
    let token = csrf(&app.client).await;
    let res = post_form(&app.client, "/admin/logout", &format!("csrf={token}")).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::SeeOther
    );

    assert_eq!(
        login(&app.client, "admin@example.com", "correct horse battery").await,
        Status::SeeOther
    );
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::Ok
    );
    diesel::update(admin_sessions::table)
        .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::SeeOther,
        "revoked sessions end at once"
    );
}

#[rocket::async_test]
async fn checkin_twice_says_already_checked_in_and_is_audited() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "door@example.com", "staff");
    let event = EventSpec::public("gig", 5).insert(&mut c);
    let other = EventSpec::public("other", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 0, 10);
    book_free_seat(&app, event.id, t.id).await;
    let code: String = attendees::table
        .select(attendees::ticket_code)
        .first(&mut c)
        .unwrap();

    assert_eq!(
        login(&app.client, "door@example.com", "correct horse battery").await,
        Status::SeeOther
    );
    let token = csrf(&app.client).await;
    let check = |event_id: i64, code: String| {
        let token = token.clone();
        let client = &app.client;
        async move {
            post_form(
                client,
                "/admin/checkin",
                &format!("csrf={token}&event={event_id}&code={code}"),
            )
            .await
            .into_string()
            .await
            .unwrap()
        }
    };
    assert!(check(other.id, code.clone())
        .await
        .contains("data-result=\"wrong_event\""));
    assert!(
        check(event.id, code.to_lowercase())
            .await
            .contains("data-result=\"valid\""),
        "typed codes are normalised"
    );
    assert!(check(event.id, code.clone())
        .await
        .contains("Already checked in"));
    assert!(check(event.id, "NOPE".into())
        .await
        .contains("data-result=\"unknown\""));
    let audits: i64 = audit_log::table
        .filter(audit_log::action.eq("attendee.checkin"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(audits, 1);
}

#[rocket::async_test]
async fn csv_export_has_the_rows_with_formulas_neutralised_and_changes_are_audited() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let event = EventSpec::public("gig", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 0, 10);
    let mut tokens = Vec::new();
    for names in [
        ["=HYPERLINK(\"x\")", "+1 Plus"],
        ["-2 Minus", "@Sum, \"quoted\""],
    ] {
        let res = post_form(
            &app.client,
            "/checkout/hold",
            &format!("event_id={}&qty[{}]=2", event.id, t.id),
        )
        .await;
        let checkout = res.headers().get_one("Location").unwrap().to_string();
        let enc = |s: &str| {
            s.replace('%', "%25")
                .replace('=', "%3D")
                .replace('+', "%2B")
                .replace('@', "%40")
                .replace('"', "%22")
                .replace(',', "%2C")
                .replace(' ', "+")
                .replace('(', "%28")
                .replace(')', "%29")
        };
        let body = format!(
            "buyer_name={}&buyer_email=b%40example.com&attendees[0].name={}&attendees[1].name={}",
            enc(names[0]),
            enc(names[0]),
            enc(names[1])
        );
        let res = post_form(&app.client, &checkout.clone(), &body).await;
        assert_eq!(res.status(), Status::SeeOther);
        app.client
            .post(format!("{checkout}/confirm"))
            .header(ContentType::Form)
            .body("accept_terms=true")
            .dispatch()
            .await;
        tokens.push(checkout);
    }
    assert_eq!(
        login(&app.client, "admin@example.com", "correct horse battery").await,
        Status::SeeOther
    );
    let res = app
        .client
        .get(format!("/admin/export/attendees.csv?event={}", event.id))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body = res.into_string().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4, "{body}");
    let names: Vec<&str> = rows.iter().map(|r| &r[4]).collect();
    assert_eq!(
        names,
        vec![
            "'=HYPERLINK(\"x\")",
            "'+1 Plus",
            "'-2 Minus",
            "'@Sum, \"quoted\""
        ]
    );

    // A cancellation is audited with before and after.
    let booking_id: i64 = bookings::table
        .order(bookings::id)
        .select(bookings::id)
        .first(&mut c)
        .unwrap();
    let token = csrf(&app.client).await;
    let unconfirmed = post_form(
        &app.client,
        &format!("/admin/bookings/{booking_id}/cancel"),
        &format!("csrf={token}&reason=duplicate"),
    )
    .await;
    assert_eq!(
        unconfirmed.status(),
        Status::UnprocessableEntity,
        "needs the confirmation box"
    );
    assert!(unconfirmed
        .into_string()
        .await
        .unwrap()
        .contains("Tick the box to confirm the cancellation."));
    let audits: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    assert_eq!(audits, 0, "nothing changed without confirmation");
    let res = post_form(
        &app.client,
        &format!("/admin/bookings/{booking_id}/cancel"),
        &format!("csrf={token}&reason=duplicate&confirm=true"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, shown) = app.get_text(&format!("/admin/bookings/{booking_id}")).await;
    assert!(
        shown.contains("Booking cancelled and its seats released; the buyer is told by mail."),
        "{shown}"
    );
    // Cancelling again changes nothing and says so.
    post_form(
        &app.client,
        &format!("/admin/bookings/{booking_id}/cancel"),
        &format!("csrf={token}&reason=again&confirm=true"),
    )
    .await;
    let (_, again) = app.get_text(&format!("/admin/bookings/{booking_id}")).await;
    assert!(again.contains("Nothing to cancel: the booking is no longer active."));
    let (action, before, after): (String, Option<serde_json::Value>, Option<serde_json::Value>) =
        audit_log::table
            .select((audit_log::action, audit_log::before, audit_log::after))
            .first(&mut c)
            .unwrap();
    assert_eq!(action, "booking.cancel");
    assert_eq!(before.unwrap()["state"], "paid");
    assert_eq!(after.unwrap()["state"], "cancelled");
    let page = app
        .client
        .get("/admin/audit")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(page.contains("booking.cancel"));
}

#[rocket::async_test]
async fn admins_create_and_publish_events_and_capacity_cannot_go_below_seats_taken() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let token = log_in(&app.client, "admin@example.com").await;
    let client = &app.client;
    let post = |path: String, body: String| async move { post_form(client, &path, &body).await };
    // Bad input: messages next to the fields, input kept, nothing stored.
    let res = post("/admin/events".into(), format!("csrf={token}&title=Gala&slug=Bad+Slug&timezone=Mars%2FBase&starts_at=2027-05-01T19%3A00&ends_at=2027-05-01T18%3A00&capacity=-1&visibility=draft")).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body = res.into_string().await.unwrap();
    for field in ["ev-slug-error", "ev-timezone-error", "ev-capacity-error"] {
        assert!(body.contains(field), "{field}");
    }
    assert!(body.contains("value=\"Gala\""));
    let count: i64 = ticketing::schema::events::table
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(count, 0);

    let res = post("/admin/events".into(), format!("csrf={token}&title=Spring+Gala&slug=spring-gala&timezone=Europe%2FBerlin&starts_at=2030-05-01T19%3A00&ends_at=2030-05-01T23%3A00&capacity=2&visibility=draft&venue=Hall")).await;
    assert_eq!(res.status(), Status::SeeOther);
    let id: i64 = ticketing::schema::events::table
        .select(ticketing::schema::events::id)
        .first(&mut c)
        .unwrap();
    let res = post(
        format!("/admin/events/{id}/ticket-types"),
        format!("csrf={token}&name=Seat&description=Balcony+view&price=25.00&currency=EUR&capacity=2&max_per_booking=2"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    // The edit form shows the description, so saving the type again keeps it.
    let (_, edit) = app.get_text(&format!("/admin/events/{id}")).await;
    assert!(
        edit.contains(r#"name="description" type="text" value="Balcony view""#),
        "{edit}"
    );
    assert_eq!(
        app.get_text("/events/spring-gala").await.0,
        404,
        "a draft is not public"
    );
    let res = post(
        format!("/admin/events/{id}/publish"),
        format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (status, page) = app.get_text("/events/spring-gala").await;
    assert_eq!(status, 200);
    assert!(page.contains("Spring Gala") && page.contains("€25.00"));
    // 19:00 in Berlin is stored as UTC.
    let starts: chrono::DateTime<chrono::Utc> = ticketing::schema::events::table
        .find(id)
        .select(ticketing::schema::events::starts_at)
        .first(&mut c)
        .unwrap();
    assert_eq!(starts.to_rfc3339(), "2030-05-01T17:00:00+00:00");

    // Two seats are taken; neither capacity may go below that.
    let tt: i64 = ticketing::schema::ticket_types::table
        .select(ticketing::schema::ticket_types::id)
        .first(&mut c)
        .unwrap();
    let res = post_form(
        &app.client,
        "/checkout/hold",
        &format!("event_id={id}&qty[{tt}]=2"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let res = post(format!("/admin/events/{id}"), format!("csrf={token}&title=Spring+Gala&slug=spring-gala&timezone=Europe%2FBerlin&starts_at=2030-05-01T19%3A00&ends_at=2030-05-01T23%3A00&capacity=1&visibility=public")).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("2 seats are already taken"));
    let res = post(
        format!("/admin/ticket-types/{tt}"),
        format!("csrf={token}&name=Seat&description=Balcony+view&price=25.00&currency=EUR&capacity=1&max_per_booking=2"),
    )
    .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    // The message sits next to the capacity field, which keeps what was typed.
    let body = res.into_string().await.unwrap();
    assert!(
        body.contains(&format!(
            r#"id="tt{tt}-capacity" name="capacity" type="text" value="1" aria-invalid="true""#
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<p class="field-error" id="tt{tt}-capacity-error">"#
        )),
        "{body}"
    );
    let cap: i32 = ticketing::schema::ticket_types::table
        .find(tt)
        .select(ticketing::schema::ticket_types::capacity)
        .first(&mut c)
        .unwrap();
    assert_eq!(cap, 2);

    let actions: Vec<String> = audit_log::table
        .order(audit_log::id)
        .select(audit_log::action)
        .load(&mut c)
        .unwrap();
    assert_eq!(
        actions,
        vec!["event.create", "ticket_type.create", "event.publish"]
    );
}

#[rocket::async_test]
async fn user_changes_mail_resends_and_password_changes_are_audited_and_idle_sessions_end() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let token = log_in(&app.client, "admin@example.com").await;
    let res = post_form(
        &app.client,
        "/admin/users",
        &format!("csrf={token}&email=door%40example.com&name=Door&role=staff"),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("An invite to choose a password was mailed"));
    let door: i64 = ticketing::schema::users::table
        .filter(ticketing::schema::users::email.eq("door@example.com"))
        .select(ticketing::schema::users::id)
        .first(&mut c)
        .unwrap();
    let res = post_form(
        &app.client,
        &format!("/admin/users/{door}/deactivate"),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);

    // A booking with a mail to resend.
    let event = EventSpec::public("gig", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 0, 10);
    book_free_seat(&app, event.id, t.id).await;
    let mail: i64 = ticketing::schema::outbox::table
        .filter(ticketing::schema::outbox::booking_id.is_not_null())
        .select(ticketing::schema::outbox::id)
        .first(&mut c)
        .unwrap();
    let res = post_form(
        &app.client,
        &format!("/admin/outbox/{mail}/resend"),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let csv = app
        .client
        .get(format!("/admin/export/bookings.csv?event={}", event.id))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(
        csv.starts_with("reference,state,buyer_name") && csv.contains(",paid,Ana,"),
        "{csv}"
    );

    let res = post_form(
        &app.client,
        "/admin/password",
        &format!("csrf={token}&current=wrong&new=short"),
    )
    .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let res = post_form(
        &app.client,
        "/admin/password",
        &format!("csrf={token}&current=correct+horse+battery&new=a+much+longer+passphrase"),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);

    let actions: Vec<String> = audit_log::table
        .order(audit_log::id)
        .select(audit_log::action)
        .load(&mut c)
        .unwrap();
    assert_eq!(
        actions,
        vec![
            "user.create",
            "user.deactivate",
            "mail.resend",
            "user.password"
        ]
    );

    // A session idle for longer than the limit has ended.
    diesel::update(admin_sessions::table)
        .set(admin_sessions::last_seen_at.eq(chrono::Utc::now()
            - chrono::Duration::minutes(ticketing::auth::IDLE_TIMEOUT_MINUTES + 1)))
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        app.client.get("/admin").dispatch().await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn event_and_ticket_type_edits_are_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let event = EventSpec::public("edit-me", 30)
        .visibility("private")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 1000, 10);
    let token = log_in(&app.client, "admin@example.com").await;
    let client = &app.client;
    let post =
        |path: String, body: String| async move { post_form(client, &path, &body).await.status() };
    let id = event.id;
    assert_eq!(post(format!("/admin/events/{id}"), format!("csrf={token}&title=Edited&slug=edit-me&timezone=Europe%2FBerlin&starts_at=2030-01-01T10%3A00&ends_at=2030-01-01T12%3A00&capacity=50&visibility=private")).await, Status::SeeOther);
    assert_eq!(
        post(
            format!("/admin/ticket-types/{}", t.id),
            format!(
                "csrf={token}&name=Seat&price=12.50&currency=EUR&capacity=20&max_per_booking=4"
            )
        )
        .await,
        Status::SeeOther
    );
    assert_eq!(
        post(
            format!("/admin/events/{id}/rotate"),
            format!("csrf={token}")
        )
        .await,
        Status::SeeOther
    );
    assert_eq!(
        post(
            format!("/admin/events/{id}/duplicate"),
            format!("csrf={token}")
        )
        .await,
        Status::SeeOther
    );
    assert_eq!(
        post(
            format!("/admin/events/{id}/unpublish"),
            format!("csrf={token}")
        )
        .await,
        Status::SeeOther
    );
    let entries: Vec<(String, Option<serde_json::Value>, Option<serde_json::Value>)> =
        audit_log::table
            .order(audit_log::id)
            .select((audit_log::action, audit_log::before, audit_log::after))
            .load(&mut c)
            .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "event.update",
            "ticket_type.update",
            "event.rotate",
            "event.duplicate",
            "event.unpublish"
        ]
    );
    assert_eq!(entries[0].1.as_ref().unwrap()["title"], event.title);
    assert_eq!(entries[0].2.as_ref().unwrap()["title"], "Edited");
    assert_eq!(entries[1].1.as_ref().unwrap()["price_minor"], 1000);
    assert_eq!(entries[1].2.as_ref().unwrap()["price_minor"], 1250);
    let old = event.private_token.unwrap();
    assert_eq!(
        app.get_text(&format!("/p/{old}")).await.0,
        404,
        "the rotated link stops working"
    );
}

#[rocket::async_test]
async fn login_needs_the_token_of_its_own_login_page() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    let client = &app.client;
    let post = |body: String| async move { post_form(client, "/admin/login", &body).await };
    let password = "email=admin%40example.com&password=correct+horse+battery";
    // No token, or a token from another browser's login page: refused, no session.
    let other = new_client(&app).await;
    let foreign = hidden_csrf(
        &other
            .get("/admin/login")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    );
    for body in [password.to_string(), format!("csrf={foreign}&{password}")] {
        let res = post(body).await;
        assert_eq!(res.status(), Status::Forbidden);
        assert!(res
            .into_string()
            .await
            .unwrap()
            .contains("This login form has expired or did not come from this site."));
    }
    let sessions: i64 = ticketing::schema::admin_sessions::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(sessions, 0);
    // The refused form comes back with a token that works.
    assert_eq!(
        login(&app.client, "admin@example.com", "correct horse battery").await,
        Status::SeeOther
    );
}

/// Posts the login form from the client address `from` (a request's peer address; with no
/// trusted proxy in tests it is the client).
async fn login_from(client: &Client, from: &str, email: &str, password: &str) -> (Status, String) {
    let remote: std::net::SocketAddr = if from.contains(':') {
        format!("[{from}]:40000")
    } else {
        format!("{from}:40000")
    }
    .parse()
    .unwrap();
    let page = client
        .get("/admin/login")
        .remote(remote)
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let res = client
        .post("/admin/login")
        .remote(remote)
        .header(ContentType::Form)
        .body(format!(
            "csrf={}&email={}&password={}",
            hidden_csrf(&page),
            email.replace('@', "%40"),
            password.replace(' ', "+")
        ))
        .dispatch()
        .await;
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

fn login_limits(client: &Client) -> &ticketing::auth::LoginLimits {
    client
        .rocket()
        .state::<ticketing::auth::LoginLimits>()
        .expect("login limits are managed")
}

#[rocket::async_test]
async fn login_limits_count_failures_only() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    for n in 0..8 {
        let (status, _) = login_from(
            &app.client,
            "192.0.2.10",
            "admin@example.com",
            "correct horse battery",
        )
        .await;
        assert_eq!(status, Status::SeeOther, "successful login {n} was refused");
    }
    // Failures still count: 5, then refused even with the right password.
    for _ in 0..5 {
        assert_eq!(
            login_from(&app.client, "192.0.2.10", "admin@example.com", "wrong")
                .await
                .0,
            Status::UnprocessableEntity
        );
    }
    assert_eq!(
        login_from(
            &app.client,
            "192.0.2.10",
            "admin@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn login_limits_a_stranger_cannot_lock_the_owner_out() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    for _ in 0..6 {
        login_from(&app.client, "203.0.113.5", "admin@example.com", "guess").await;
    }
    assert_eq!(
        login_from(
            &app.client,
            "203.0.113.5",
            "admin@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::TooManyRequests,
        "the guesser's network is refused"
    );
    assert_eq!(
        login_from(
            &app.client,
            "198.51.100.7",
            "admin@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::SeeOther,
        "the owner's own network still gets in"
    );
}

#[rocket::async_test]
async fn login_limits_an_admin_unlocks_an_account() {
    let app = TestApp::spawn().await;
    let owner = user(&mut app.conn(), "door@example.com", "staff");
    user(&mut app.conn(), "admin@example.com", "admin");
    for _ in 0..6 {
        login_from(&app.client, "192.0.2.20", "door@example.com", "typo").await;
    }
    assert_eq!(
        login_from(
            &app.client,
            "192.0.2.20",
            "door@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::TooManyRequests
    );
    // An admin elsewhere sees the lock and lifts it.
    assert_eq!(
        login_from(
            &app.client,
            "192.0.2.99",
            "admin@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::SeeOther
    );
    let page = app.get_text("/admin/users").await.1;
    assert!(page.contains("locked out by failed logins"), "{page}");
    let token = csrf(&app.client).await;
    let res = post_form(
        &app.client,
        &format!("/admin/users/{}/unlock", owner.id),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(!app
        .get_text("/admin/users")
        .await
        .1
        .contains("locked out by failed logins"));
    let mut c = app.conn();
    let unlocks: i64 = audit_log::table
        .filter(audit_log::action.eq("user.unlock"))
        .filter(audit_log::entity_id.eq(owner.id))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(unlocks, 1);
    assert_eq!(
        login_from(
            &app.client,
            "192.0.2.20",
            "door@example.com",
            "correct horse battery"
        )
        .await
        .0,
        Status::SeeOther
    );
    // Unlocking an account that does not exist is a 404 and writes nothing.
    let token = log_in(&app.client, "admin@example.com").await;
    let audits: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    let res = post_form(
        &app.client,
        "/admin/users/999999/unlock",
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::NotFound);
    let after: i64 = audit_log::table.count().get_result(&mut c).unwrap();
    assert_eq!(after, audits);
}

#[rocket::async_test]
async fn login_limits_count_an_ipv6_network_as_one_client() {
    let app = TestApp::spawn().await;
    let started = std::time::Instant::now();
    // 20 failures from 20 addresses of one /64, each with another email.
    for n in 1..=20 {
        let (status, _) = login_from(
            &app.client,
            &format!("2001:db8:1:2::{n:x}"),
            &format!("user{n}@example.com"),
            "x",
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity);
    }
    // Yet another address of the same /64 is the same client: refused, after at most the
    // tries the budget won back meanwhile (one per 6 s; a loaded machine hashes slowly).
    let regained = started.elapsed().as_secs() / 6 + 1;
    let mut refused = false;
    for n in 0..=regained {
        let from = format!("2001:db8:1:2:ffff::{:x}", n + 1);
        if login_from(&app.client, &from, "new@example.com", "x")
            .await
            .0
            == Status::TooManyRequests
        {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "another address of the same /64 is the same client"
    );
    assert_eq!(
        login_from(&app.client, "2001:db8:1:3::1", "new@example.com", "x")
            .await
            .0,
        Status::UnprocessableEntity,
        "the next /64 is another client"
    );
}

#[rocket::async_test]
async fn login_limits_stay_bounded_under_distinct_emails() {
    let app = TestApp::spawn().await;
    let limits = login_limits(&app.client);
    // A refused network adds nothing more, whatever it types. Its budget is spent first
    // (failing until refused: a loaded machine hashes slowly, and the budget regains one try
    // per 6 s meanwhile).
    let mut n = 0;
    while login_from(&app.client, "192.0.2.30", &format!("u{n}@example.com"), "x")
        .await
        .0
        != Status::TooManyRequests
    {
        n += 1;
        assert!(n < 40, "the network is never refused");
    }
    let held = limits.len();
    let started = std::time::Instant::now();
    let long = "a".repeat(30_000);
    let mut let_through = 0;
    for n in 0..50 {
        let (status, _) = login_from(
            &app.client,
            "192.0.2.30",
            &format!("{n}{long}@example.com"),
            "x",
        )
        .await;
        if status != Status::TooManyRequests {
            let_through += 1;
        }
    }
    // Only the tries regained while these ran may pass, each adding at most one entry.
    let regained = (started.elapsed().as_secs() / 6 + 1) as usize;
    assert!(let_through <= regained, "{let_through} tries let through");
    assert!(
        limits.len() <= held + let_through,
        "refused tries must not add entries"
    );
    // Huge emails from a fresh network are cut to a bounded key (and answered like any
    // unknown account).
    let (status, body) = login_from(
        &app.client,
        "192.0.2.31",
        &format!("{long}@example.com"),
        "x",
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(body.contains("do not match an active account"));
    limits.unlock(&format!("{long}@example.com"));
}

#[rocket::async_test]
async fn login_next_is_checked() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    for (next, expect) in [
        ("/admin/bookings?page=2", "/admin/bookings?page=2"),
        ("/admin%0D%0ASet-Cookie:%20x=1", "/admin"),
        ("/admin/x%0Ay", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("/admin/../..//evil", "/admin"),
        ("https://evil.example/admin", "/admin"),
        ("/admin/login", "/admin"),
        ("/admin/%00", "/admin"),
    ] {
        let page = app.get_text("/admin/login").await.1;
        let res = post_form(
            &app.client,
            "/admin/login",
            &format!(
                "csrf={}&email=admin%40example.com&password=correct+horse+battery&next={}",
                hidden_csrf(&page),
                next.replace('%', "%25")
                    .replace('?', "%3F")
                    .replace('&', "%26")
            ),
        )
        .await;
        assert_eq!(res.status(), Status::SeeOther, "next={next}");
        assert_eq!(
            res.headers().get_one("Location"),
            Some(expect),
            "next={next}"
        );
    }
    // Raw control characters in the form value are refused the same way.
    let page = app.get_text("/admin/login").await.1;
    let res = post_form(
        &app.client,
        "/admin/login",
        &format!(
            "csrf={}&email=admin%40example.com&password=correct+horse+battery&next=%2Fadmin%0D%0AX%3A+y",
            hidden_csrf(&page)
        ),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(res.headers().get_one("Location"), Some("/admin"));
}

#[rocket::async_test]
async fn password_change_is_limited_like_login() {
    let app = TestApp::spawn().await;
    user(&mut app.conn(), "admin@example.com", "admin");
    let token = log_in(&app.client, "admin@example.com").await;
    let change = |current: &'static str| {
        let token = token.clone();
        let client = &app.client;
        async move {
            let res = post_form(
                client,
                "/admin/password",
                &format!(
                    "csrf={token}&current={}&new=a+brand+new+passphrase",
                    current.replace(' ', "+")
                ),
            )
            .await;
            let status = res.status();
            (status, res.into_string().await.unwrap_or_default())
        }
    };
    for _ in 0..5 {
        let (status, body) = change("not it").await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert!(body.contains("That is not your current password."));
    }
    let (status, body) = change("correct horse battery").await;
    assert_eq!(status, Status::UnprocessableEntity, "{body}");
    assert!(body.contains("Too many login attempts"), "{body}");
}
