//! Organiser and legal pages (issue 15): the footer on every page, the Markdown pages with
//! no raw HTML getting through, admin editing (versions, audit, admins only), the organiser
//! settings' validation, the terms box on the review page, and the organiser in every mail.

use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use ticketing::models::{NewUser, User};
use ticketing::schema::{audit_log, bookings, legal_pages, organiser, outbox};

use crate::helpers::{add_ticket_type, base_vars, hidden_csrf, EventSpec, TestApp};

async fn post(client: &Client, path: &str, body: &str) -> (Status, Option<String>, String) {
    let res = client
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

async fn get(client: &Client, path: &str) -> (Status, String) {
    let res = client.get(path.to_string()).dispatch().await;
    (res.status(), res.into_string().await.unwrap_or_default())
}

/// Creates an account with `role` and logs it in; returns the session's CSRF token.
async fn signed_in(app: &TestApp, email: &str, role: &str) -> String {
    User::insert(
        &mut app.conn(),
        &NewUser {
            email: email.into(),
            name: role.into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: role.into(),
        },
    )
    .unwrap();
    let (_, page) = get(&app.client, "/admin/login").await;
    let (status, _, _) = post(
        &app.client,
        "/admin/login",
        &format!(
            "csrf={}&email={}&password=correct+horse+battery",
            hidden_csrf(&page),
            email.replace('@', "%40")
        ),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let (_, page) = get(&app.client, "/admin/checkin").await;
    hidden_csrf(&page)
}

fn has_footer(page: &str) {
    assert!(
        page.contains("Tickets are sold by <strong>Beispiel Events GmbH</strong>"),
        "organiser name: {page}"
    );
    assert!(page.contains("kontakt@example.org"), "contact email");
    for slug in ["imprint", "privacy", "terms", "refunds"] {
        assert!(
            page.contains(&format!("href=\"/legal/{slug}\"")),
            "link to {slug}"
        );
    }
}

/// Holds one seat and fills in the details; returns the checkout path.
async fn held_with_details(app: &TestApp, event_id: i64, type_id: i64) -> String {
    let (status, location, _) = post(
        &app.client,
        "/checkout/hold",
        &format!("event_id={event_id}&qty[{type_id}]=1"),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let checkout = location.unwrap();
    let (status, _, _) = post(
        &app.client,
        &checkout,
        "buyer_name=Ana&buyer_email=ana%40example.com&attendees[0].name=Ana",
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    checkout
}

fn terms_of(app: &TestApp, checkout: &str) -> (String, Option<i32>, bool) {
    let token = checkout.rsplit('/').next().unwrap().to_string();
    let (state, version, at): (String, Option<i32>, Option<chrono::DateTime<chrono::Utc>>) =
        bookings::table
            .filter(bookings::access_token.eq(token))
            .select((
                bookings::state,
                bookings::terms_version,
                bookings::terms_accepted_at,
            ))
            .first(&mut app.conn())
            .unwrap();
    (state, version, at.is_some())
}

#[rocket::async_test]
async fn footer_names_the_organiser_and_links_the_legal_pages_everywhere() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());
    let t = add_ticket_type(&mut app.conn(), &event, "Standard", 0, 10);
    for path in [
        "/",
        "/events/gig",
        "/legal/privacy",
        "/admin/login",
        "/no-such-page",
    ] {
        let (_, page) = get(&app.client, path).await;
        assert!(page.contains("<footer"), "{path}: {page}");
        has_footer(&page);
    }
    let (_, event_page) = get(&app.client, "/events/gig").await;
    assert!(event_page.contains("Organised by <strong>Beispiel Events GmbH</strong>"));
    let checkout = held_with_details(&app, event.id, t.id).await;
    let (_, page) = get(&app.client, &checkout).await;
    has_footer(&page);
    let (_, page) = get(&app.client, &format!("{checkout}/review")).await;
    has_footer(&page);
}

#[rocket::async_test]
async fn terms_render_markdown_and_strip_script() {
    let app = TestApp::spawn().await;
    diesel::update(legal_pages::table.find("terms"))
        .set(legal_pages::body.eq(
            "## Our terms\n\n*Be kind.*\n\n<script>alert('x')</script>\n\n<a href=\"javascript:alert(1)\" onclick=\"alert(2)\">click</a>",
        ))
        .execute(&mut app.conn())
        .unwrap();
    let (status, page) = get(&app.client, "/legal/terms").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("<title>Terms and conditions ·"), "{page}");
    assert!(page.contains("<h2>Our terms</h2>"), "{page}");
    assert!(page.contains("<em>Be kind.</em>"), "{page}");
    assert!(!page.contains("alert("), "script got through: {page}");
    assert!(!page.contains("onclick"), "{page}");
    let (status, page) = get(&app.client, "/legal/imprint").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("§ 5 DDG"));
    assert_eq!(get(&app.client, "/legal/cookies").await.0, Status::NotFound);
    assert_eq!(
        get(&app.client, "/legal/..%2Fetc").await.0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn admin_edits_a_page_and_the_version_goes_up() {
    let app = TestApp::spawn().await;
    // Staff may not edit, and nothing changes.
    let staff_csrf = signed_in(&app, "staff@example.com", "staff").await;
    assert_eq!(
        get(&app.client, "/admin/legal/terms").await.0,
        Status::Forbidden
    );
    let (status, _, _) = post(
        &app.client,
        "/admin/legal/terms",
        &format!("csrf={staff_csrf}&title=Hacked&body=x"),
    )
    .await;
    assert_eq!(status, Status::Forbidden);
    let app = TestApp::spawn().await;
    let csrf = signed_in(&app, "admin@example.com", "admin").await;
    let (status, page) = get(&app.client, "/admin/settings").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("href=\"/admin/legal/terms\""));
    let (status, page) = get(&app.client, "/admin/legal/terms").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("version 1"));
    // An empty body is refused, with the input kept.
    let (status, _, page) = post(
        &app.client,
        "/admin/legal/terms",
        &format!("csrf={csrf}&title=New+terms&body=+"),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        page.contains("Write the page&#x27;s text.") || page.contains("Write the page's text.")
    );
    assert!(page.contains("value=\"New terms\""));
    let (status, location, _) = post(
        &app.client,
        "/admin/legal/terms",
        &format!("csrf={csrf}&title=New+terms&body=**Version+two**"),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(location.as_deref(), Some("/admin/legal/terms"));
    let (version, title): (i32, String) = legal_pages::table
        .find("terms")
        .select((legal_pages::version, legal_pages::title))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!((version, title.as_str()), (2, "New terms"));
    let audits: i64 = audit_log::table
        .filter(audit_log::action.eq("legal_page.update"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(audits, 1);
    // The footer shows the new title at once; the page its new text.
    let (_, home) = get(&app.client, "/").await;
    assert!(home.contains(">New terms</a>"), "{home}");
    let (_, page) = get(&app.client, "/legal/terms").await;
    assert!(page.contains("<strong>Version two</strong>"));
    assert_eq!(
        get(&app.client, "/admin/legal/cookies").await.0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn organiser_settings_are_validated() {
    let app = TestApp::spawn().await;
    let csrf = signed_in(&app, "admin@example.com", "admin").await;
    let (status, _, page) = post(
        &app.client,
        "/admin/settings",
        &format!("csrf={csrf}&name=&address=Street+1&contact_email=nope&phone=12&vat_id=%3Cb%3E"),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("Enter the organiser"), "{page}");
    assert!(page.contains("Enter an email address like name@example.com."));
    assert!(page.contains("Enter a phone number"));
    assert!(page.contains("Enter a VAT id like DE123456789"));
    assert!(page.contains("value=\"nope\""), "input kept");
    let name: String = organiser::table
        .select(organiser::name)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(name, "Beispiel Events GmbH", "nothing changed");
    let (status, _, _) = post(
        &app.client,
        "/admin/settings",
        &format!("csrf={csrf}&name=Neue+Events+UG&address=Hauptstr.+1%0D%0A80331+M%C3%BCnchen&contact_email=info%40neue.example&phone=%2B49+89+123456&vat_id="),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let (name, address, vat): (String, String, Option<String>) = organiser::table
        .select((organiser::name, organiser::address, organiser::vat_id))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(name, "Neue Events UG");
    assert_eq!(address, "Hauptstr. 1\n80331 München");
    assert_eq!(vat, None);
    let audits: i64 = audit_log::table
        .filter(audit_log::action.eq("organiser.update"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(audits, 1);
    let (_, home) = get(&app.client, "/").await;
    assert!(home.contains("Neue Events UG") && home.contains("info@neue.example"));
}

#[rocket::async_test]
async fn review_needs_the_terms_box() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());
    let t = add_ticket_type(&mut app.conn(), &event, "Standard", 2500, 10);
    let checkout = held_with_details(&app, event.id, t.id).await;
    let (_, review) = get(&app.client, &format!("{checkout}/review")).await;
    assert!(review.contains("name=\"accept_terms\""));
    assert!(review.contains("<label for=\"accept_terms\">I accept the"));
    for body in ["", "accept_terms=false", "accept_terms=maybe"] {
        let (status, _, page) = post(&app.client, &format!("{checkout}/confirm"), body).await;
        assert_eq!(status, Status::UnprocessableEntity, "{body}");
        assert!(page.contains("Tick the box to accept the terms"), "{page}");
        assert!(page.contains("aria-describedby=\"accept_terms-error\""));
        assert_eq!(terms_of(&app, &checkout), ("held".into(), None, false));
    }
    let payments: i64 = ticketing::schema::payments::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(payments, 0, "no PayPal order was started");
}

#[rocket::async_test]
async fn free_booking_records_terms() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());
    let t = add_ticket_type(&mut app.conn(), &event, "Free", 0, 10);
    diesel::update(legal_pages::table.find("terms"))
        .set(legal_pages::version.eq(7))
        .execute(&mut app.conn())
        .unwrap();
    let checkout = held_with_details(&app, event.id, t.id).await;
    let (status, _, _) = post(&app.client, &format!("{checkout}/confirm"), "").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(terms_of(&app, &checkout), ("held".into(), None, false));
    let (status, _, _) = post(
        &app.client,
        &format!("{checkout}/confirm"),
        "accept_terms=true",
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(terms_of(&app, &checkout), ("paid".into(), Some(7), true));
}

#[rocket::async_test]
async fn mails_name_the_organiser() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());
    let t = add_ticket_type(&mut app.conn(), &event, "Free", 0, 10);
    let checkout = held_with_details(&app, event.id, t.id).await;
    let (status, _, _) = post(
        &app.client,
        &format!("{checkout}/confirm"),
        "accept_terms=true",
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let ids: Vec<i64> = outbox::table
        .select(outbox::id)
        .load(&mut app.conn())
        .unwrap();
    assert!(!ids.is_empty(), "a confirmation was queued");
    let config = ticketing::Config::from_map(&base_vars(&app.db.url)).unwrap();
    let mailer = crate::helpers::mailer(&app.db.url);
    let base = config.base_url.trim_end_matches('/');
    for id in ids {
        let mail = mailer.renderer().render(&mut app.conn(), id).unwrap();
        for part in [&mail.text, &mail.html] {
            assert!(part.contains("Beispiel Events GmbH"), "{part}");
            assert!(part.contains("kontakt@example.org"), "{part}");
            for slug in ["imprint", "privacy", "terms", "refunds"] {
                assert!(
                    part.contains(&format!("{base}/legal/{slug}")),
                    "{slug}: {part}"
                );
            }
        }
    }
}
