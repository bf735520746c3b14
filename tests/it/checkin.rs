//! Door check-in: the amber result for an unsigned required waiver and signing it at the
//! door, the event's waiver policy, undo, counts, search, cancelled and forged tickets, the
//! offline attendee list and the sync of offline scans (first to reach the server wins).

use diesel::prelude::*;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use ticketing::schema::{attendees, audit_log, bookings, users, waivers};

use crate::admin::{log_in, new_client, post_form, user};
use crate::helpers::{add_ticket_type, EventSpec, TestApp};

/// Books and confirms `n` free seats of `type_id` (attendees named `names`); returns the
/// booking's id.
async fn book(app: &TestApp, event_id: i64, type_id: i64, names: &[&str]) -> i64 {
    let client = new_client(app).await;
    let res = post_form(
        &client,
        "/checkout/hold",
        &format!("event_id={event_id}&qty[{type_id}]={}", names.len()),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let checkout = res.headers().get_one("Location").unwrap().to_string();
    let mut body = "buyer_name=Ana&buyer_email=ana%40example.com".to_string();
    for (i, n) in names.iter().enumerate() {
        body.push_str(&format!("&attendees[{i}].name={}", n.replace(' ', "+")));
    }
    post_form(&client, &checkout, &body).await;
    let res = client
        .post(format!("{checkout}/confirm"))
        .header(ContentType::Form)
        .body("accept_terms=true")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    bookings::table
        .order(bookings::id.desc())
        .select(bookings::id)
        .first(&mut app.conn())
        .unwrap()
}

/// The codes of a booking's tickets, by position.
fn codes(app: &TestApp, booking_id: i64) -> Vec<String> {
    attendees::table
        .filter(attendees::booking_id.eq(booking_id))
        .order(attendees::position)
        .select(attendees::ticket_code)
        .load(&mut app.conn())
        .unwrap()
}

fn checked_in(app: &TestApp, code: &str) -> bool {
    attendees::table
        .filter(attendees::ticket_code.eq(code))
        .select(attendees::checked_in_at)
        .first::<Option<chrono::DateTime<chrono::Utc>>>(&mut app.conn())
        .unwrap()
        .is_some()
}

/// Posts `code` to the check-in form of `event_id`: (status, page).
async fn scan(client: &Client, csrf: &str, event_id: i64, code: &str) -> (Status, String) {
    let res = post_form(
        client,
        "/admin/checkin",
        &format!("csrf={csrf}&event={event_id}&code={}", urlencode(code)),
    )
    .await;
    let status = res.status();
    (status, res.into_string().await.unwrap())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `data-result` kind of a check-in page.
fn kind(page: &str) -> String {
    page.split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

#[rocket::async_test]
async fn an_unsigned_required_waiver_is_amber_not_valid() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "door@example.com", "staff");
    let event = EventSpec::public("climb", 5)
        .waiver("I climb at my own risk.")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Day pass", 0, 10);
    let booking = book(&app, event.id, t.id, &["Ana Silva"]).await;
    let code = codes(&app, booking).remove(0);
    let csrf = log_in(&app.client, "door@example.com").await;
    let (_, page) = scan(&app.client, &csrf, event.id, &code).await;
    assert_eq!(kind(&page), "waiver_unsigned", "{page}");
    assert!(page.contains("waiver not signed"), "{page}");
    assert!(
        !checked_in(&app, &code),
        "not in before the waiver is signed"
    );
}

/// The value of the hidden input `name` on `page`.
fn hidden(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no hidden {name} in {page}"))
        .to_string()
}

fn audits(app: &TestApp, action: &str) -> i64 {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .count()
        .get_result(&mut app.conn())
        .unwrap()
}

fn user_id(app: &TestApp, email: &str) -> i64 {
    users::table
        .filter(users::email.eq(email))
        .select(users::id)
        .first(&mut app.conn())
        .unwrap()
}

/// A waiver event with one booked ticket for "Ana Silva", and a staff member logged in:
/// (app, event id, code, csrf).
async fn waiver_world() -> (TestApp, i64, String, String) {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "door@example.com", "staff");
    user(&mut c, "boss@example.com", "admin");
    let event = EventSpec::public("climb", 5)
        .waiver("I climb at my own risk.")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Day pass", 0, 10);
    let booking = book(&app, event.id, t.id, &["Ana Silva"]).await;
    let code = codes(&app, booking).remove(0);
    let csrf = log_in(&app.client, "door@example.com").await;
    (app, event.id, code, csrf)
}

#[rocket::async_test]
async fn signing_at_the_door_records_the_waiver_with_the_staff_member_and_checks_in() {
    let (app, event_id, code, csrf) = waiver_world().await;
    let (_, page) = scan(&app.client, &csrf, event_id, &code).await;
    assert!(
        page.contains("I climb at my own risk."),
        "the waiver text is shown"
    );
    let version = hidden(&page, "version");
    let sign = |body: String| {
        let client = &app.client;
        async move {
            let res = post_form(client, &format!("/admin/checkin/{event_id}/sign"), &body).await;
            (res.status(), res.into_string().await.unwrap())
        }
    };
    // Without consent: the message next to the box, the typed name kept, nothing signed.
    let (status, page) = sign(format!(
        "csrf={csrf}&code={code}&version={version}&full_name=Ana+Silva"
    ))
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("id=\"consent-error\""), "{page}");
    assert!(page.contains("value=\"Ana Silva\""), "input kept");
    assert!(!checked_in(&app, &code));
    let (status, page) = sign(format!(
        "csrf={csrf}&code={code}&version={version}&full_name=Ana+Silva&consent=true"
    ))
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(kind(&page), "valid", "{page}");
    assert!(page.contains("Waiver signed at the door."), "{page}");
    assert!(checked_in(&app, &code));
    let (name, at_door, by, sha): (Option<String>, bool, Option<i64>, Option<String>) =
        waivers::table
            .inner_join(attendees::table)
            .filter(attendees::ticket_code.eq(&code))
            .select((
                waivers::signed_name,
                waivers::signed_at_door,
                waivers::signed_by_user_id,
                waivers::text_sha256,
            ))
            .first(&mut app.conn())
            .unwrap();
    assert_eq!(name.as_deref(), Some("Ana Silva"));
    assert!(at_door);
    assert_eq!(by, Some(user_id(&app, "door@example.com")));
    assert_eq!(
        sha,
        Some(ticketing::tokens::sha256_hex("I climb at my own risk."))
    );
    assert_eq!(audits(&app, "waiver.signed_at_door"), 1);
    assert_eq!(audits(&app, "attendee.checkin"), 1);
    // Signed now: the next scan says it was used, not amber.
    let (_, page) = scan(&app.client, &csrf, event_id, &code).await;
    assert_eq!(kind(&page), "already");
}

#[rocket::async_test]
async fn with_the_refuse_policy_amber_refuses_entry_and_offers_no_signing() {
    let (app, event_id, code, csrf) = waiver_world().await;
    // Staff may not change the policy; admins may (audited).
    let res = post_form(
        &app.client,
        &format!("/admin/checkin/{event_id}/policy"),
        &format!("csrf={csrf}&policy=refuse"),
    )
    .await;
    assert_eq!(res.status(), Status::Forbidden);
    let admin = new_client(&app).await;
    let admin_csrf = log_in(&admin, "boss@example.com").await;
    let res = post_form(
        &admin,
        &format!("/admin/checkin/{event_id}/policy"),
        &format!("csrf={admin_csrf}&policy=refuse"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(audits(&app, "event.door_waiver_policy"), 1);
    let (_, page) = scan(&app.client, &csrf, event_id, &code).await;
    assert_eq!(kind(&page), "waiver_unsigned");
    assert!(
        page.contains("Entry refused until the waiver is signed"),
        "{page}"
    );
    assert!(!page.contains("Sign and check in"), "no signing form");
    // A signing posted anyway changes nothing.
    let res = post_form(
        &app.client,
        &format!("/admin/checkin/{event_id}/sign"),
        &format!("csrf={csrf}&code={code}&version=0&full_name=Ana+Silva&consent=true"),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    assert!(!checked_in(&app, &code));
    let signed: i64 = waivers::table
        .filter(waivers::signed_at.is_not_null())
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(signed, 0);
}

/// An event without a waiver, GA (two tickets) and VIP (one), and a staff member logged
/// in: (app, event id, [GA codes..., VIP code], csrf).
async fn plain_world() -> (TestApp, i64, Vec<String>, String) {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "door@example.com", "staff");
    user(&mut c, "door2@example.com", "staff");
    let event = EventSpec::public("gig", 5).insert(&mut c);
    let ga = add_ticket_type(&mut c, &event, "GA", 0, 10);
    let vip = add_ticket_type(&mut c, &event, "VIP", 0, 10);
    let mut all = codes(
        &app,
        book(&app, event.id, ga.id, &["Ana Silva", "Bo Chen"]).await,
    );
    all.extend(codes(
        &app,
        book(&app, event.id, vip.id, &["Cy Okafor"]).await,
    ));
    let csrf = log_in(&app.client, "door@example.com").await;
    (app, event.id, all, csrf)
}

#[rocket::async_test]
async fn counts_search_and_every_result_names_the_attendee_and_ticket_type() {
    let (app, event_id, codes, csrf) = plain_world().await;
    let (_, page) = scan(&app.client, &csrf, event_id, &codes[2]).await;
    assert_eq!(kind(&page), "valid");
    assert!(
        page.contains("<dd>Cy Okafor</dd>") && page.contains("<dd>VIP</dd>"),
        "{page}"
    );
    assert!(
        page.contains("<strong>1</strong> of 3 checked in"),
        "{page}"
    );
    assert!(
        page.contains("GA: 0 of 2") && page.contains("VIP: 1 of 1"),
        "{page}"
    );
    let (_, page) = scan(&app.client, &csrf, event_id, &codes[2]).await;
    assert_eq!(kind(&page), "already");
    assert!(page.contains("<dd>Cy Okafor</dd>") && page.contains("<dd>VIP</dd>"));
    // Search by part of a name, any case; by the start of a code.
    let (_, page) = app
        .get_text(&format!("/admin/checkin/{event_id}?q=silv"))
        .await;
    assert!(page.contains("<strong>Ana Silva</strong>"), "{page}");
    assert!(!page.contains("<strong>Bo Chen</strong>"));
    assert!(
        page.contains(&format!("name=\"code\" value=\"{}\"", codes[0])),
        "a check-in button"
    );
    let (_, page) = app
        .get_text(&format!(
            "/admin/checkin/{event_id}?q={}",
            &codes[1][..6].to_lowercase()
        ))
        .await;
    assert!(page.contains("<strong>Bo Chen</strong>"), "{page}");
    let (_, page) = app
        .get_text(&format!("/admin/checkin/{event_id}?q=okafor"))
        .await;
    assert!(page.contains("Checked in at"), "{page}");
    let (_, page) = app
        .get_text(&format!("/admin/checkin/{event_id}?q=nobody"))
        .await;
    assert!(page.contains("No attendee matches"));
}

#[rocket::async_test]
async fn undo_clears_my_last_check_in_only_and_is_audited() {
    let (app, event_id, codes, csrf) = plain_world().await;
    let other = new_client(&app).await;
    let other_csrf = log_in(&other, "door2@example.com").await;
    scan(&app.client, &csrf, event_id, &codes[0]).await;
    scan(&other, &other_csrf, event_id, &codes[1]).await;
    let res = post_form(
        &app.client,
        &format!("/admin/checkin/{event_id}/undo"),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(!checked_in(&app, &codes[0]), "mine undone");
    assert!(
        checked_in(&app, &codes[1]),
        "the other staff member's stays"
    );
    assert_eq!(audits(&app, "attendee.checkin_undone"), 1);
    let (_, page) = app.get_text(&format!("/admin/checkin/{event_id}")).await;
    assert!(page.contains("Check-in of Ana Silva undone"), "{page}");
    // Nothing more of mine to undo.
    post_form(
        &app.client,
        &format!("/admin/checkin/{event_id}/undo"),
        &format!("csrf={csrf}"),
    )
    .await;
    let (_, page) = app.get_text(&format!("/admin/checkin/{event_id}")).await;
    assert!(
        page.contains("You have no check-in at this event to undo"),
        "{page}"
    );
    assert!(checked_in(&app, &codes[1]));
    assert_eq!(audits(&app, "attendee.checkin_undone"), 1);
    // The undone ticket can be checked in again.
    assert_eq!(
        kind(&scan(&app.client, &csrf, event_id, &codes[0]).await.1),
        "valid"
    );
}

#[rocket::async_test]
async fn a_cancelled_ticket_is_refused_and_its_signed_qr_too() {
    let (app, event_id, codes, csrf) = plain_world().await;
    let mut c = app.conn();
    let payload = ticketing_domain::door::key(&mut c, event_id)
        .unwrap()
        .payload(&codes[0]);
    let id: i64 = attendees::table
        .filter(attendees::ticket_code.eq(&codes[0]))
        .select(attendees::id)
        .first(&mut c)
        .unwrap();
    c.transaction(|c| {
        ticketing_domain::bookings::tickets::close_ticket(
            c,
            id,
            ticketing_domain::bookings::tickets::TicketState::Cancelled,
            "Cannot come",
            "",
        )
    })
    .unwrap()
    .expect("cancelled");
    let (_, page) = scan(&app.client, &csrf, event_id, &codes[0]).await;
    assert_eq!(kind(&page), "cancelled", "{page}");
    assert!(page.contains("door-red"));
    assert_eq!(
        kind(&scan(&app.client, &csrf, event_id, &payload).await.1),
        "cancelled"
    );
    assert!(!checked_in(&app, &codes[0]));
}

#[rocket::async_test]
async fn a_signed_qr_is_accepted_and_a_forged_one_refused() {
    let (app, event_id, codes, csrf) = plain_world().await;
    let mut c = app.conn();
    let key = ticketing_domain::door::key(&mut c, event_id).unwrap();
    let genuine = key.payload(&codes[0]);
    // Another code's signature, a flipped character, garbage: all forged.
    let sig_of_other = key
        .payload(&codes[1])
        .split_once('.')
        .unwrap()
        .1
        .to_string();
    let mut flipped = genuine.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    for forged in [
        format!("{}.{sig_of_other}", codes[0]),
        String::from_utf8(flipped).unwrap(),
        format!("{}.nonsense", codes[0]),
        format!("AAAAAAAAAAAA.{sig_of_other}"),
    ] {
        let (_, page) = scan(&app.client, &csrf, event_id, &forged).await;
        assert_eq!(kind(&page), "forged", "{forged}");
        assert!(page.contains("door-red"));
    }
    assert!(!checked_in(&app, &codes[0]));
    let (_, page) = scan(&app.client, &csrf, event_id, &genuine).await;
    assert_eq!(kind(&page), "valid", "{page}");
}

#[rocket::async_test]
async fn the_offline_list_is_for_staff_and_has_no_contact_details() {
    let (app, event_id, code, _) = waiver_world().await;
    let anonymous = new_client(&app).await;
    let res = anonymous
        .get(format!("/admin/checkin/{event_id}/attendees.json"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther, "staff only");
    let res = app
        .client
        .get(format!("/admin/checkin/{event_id}/attendees.json"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body = res.into_string().await.unwrap();
    assert!(
        !body.contains("ana@example.com") && !body.contains("@"),
        "no emails: {body}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let a = &json["attendees"][0];
    assert_eq!(a["code"], code.as_str());
    assert_eq!(a["name"], "Ana Silva");
    assert_eq!(a["ticket_type"], "Day pass");
    assert_eq!(a["usability"], "valid");
    assert_eq!(a["waiver"], "unsigned");
    assert!(a["checked_in_at"].is_null());
    assert_eq!(json["policy"], "sign_at_door");
    let key = ticketing_domain::door::key(&mut app.conn(), event_id).unwrap();
    assert_eq!(json["public_key"], key.public_b64().as_str());
}

async fn sync(
    client: &Client,
    csrf: Option<&str>,
    event_id: i64,
    body: serde_json::Value,
) -> (Status, serde_json::Value) {
    let mut req = client
        .post(format!("/admin/checkin/{event_id}/sync"))
        .header(ContentType::JSON)
        .body(body.to_string());
    if let Some(t) = csrf {
        req = req.header(Header::new("X-CSRF-Token", t.to_string()));
    }
    let res = req.dispatch().await;
    let status = res.status();
    let text = res.into_string().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[rocket::async_test]
async fn offline_scans_sync_idempotently_and_the_first_to_reach_the_server_wins() {
    let (app, event_id, codes, csrf) = plain_world().await;
    let b = new_client(&app).await;
    let b_csrf = log_in(&b, "door2@example.com").await;
    let key = ticketing_domain::door::key(&mut app.conn(), event_id).unwrap();
    // B scanned the same ticket earlier than A, but A's sync reaches the server first.
    let ago = |s: i64| {
        (chrono::Utc::now() - chrono::Duration::seconds(s))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let a_at = ago(55);
    let a_scans = serde_json::json!({ "device": "device-a", "scans": [
        { "code": key.payload(&codes[0]), "scanned_at": a_at },
    ]});
    let b_scans = serde_json::json!({ "device": "device-b", "scans": [
        { "code": codes[0], "scanned_at": ago(59) },
        { "code": codes[1], "scanned_at": ago(58) },
        { "code": "NOSUCHCODE12", "scanned_at": ago(57) },
    ]});
    // The sync carries the session's CSRF token.
    assert_eq!(
        sync(&app.client, None, event_id, a_scans.clone()).await.0,
        Status::Forbidden
    );
    assert_eq!(
        sync(&app.client, Some("wrong"), event_id, a_scans.clone())
            .await
            .0,
        Status::Forbidden
    );
    assert!(!checked_in(&app, &codes[0]));

    let (status, a1) = sync(&app.client, Some(&csrf), event_id, a_scans.clone()).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(a1["results"][0]["outcome"], "checked_in", "{a1}");
    let (_, b1) = sync(&b, Some(&b_csrf), event_id, b_scans.clone()).await;
    let outcomes: Vec<&str> = b1["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["duplicate", "checked_in", "refused"], "{b1}");
    let told = b1["results"][0]["message"].as_str().unwrap();
    assert!(
        told.contains("by another device") && told.contains("Already checked in at"),
        "{told}"
    );
    // Sent again (a lost answer): the same answers, nothing changes.
    let (_, b2) = sync(&b, Some(&b_csrf), event_id, b_scans).await;
    assert_eq!(b1, b2);
    let (_, a2) = sync(&app.client, Some(&csrf), event_id, a_scans).await;
    assert_eq!(a1, a2);
    assert_eq!(audits(&app, "attendee.checkin"), 2);
    let (at, device): (Option<chrono::DateTime<chrono::Utc>>, Option<String>) = attendees::table
        .filter(attendees::ticket_code.eq(&codes[0]))
        .select((attendees::checked_in_at, attendees::checked_in_device))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(device.as_deref(), Some("device-a"));
    assert_eq!(
        at.unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        a_at,
        "the time of the scan"
    );
}

#[rocket::async_test]
async fn the_start_page_lists_published_events_not_drafts_or_long_past_ones() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "door@example.com", "staff");
    let on = EventSpec::public("on", 1)
        .title("Open Night")
        .insert(&mut c);
    let draft = EventSpec::public("draft", 1)
        .title("Secret Draft")
        .visibility("draft")
        .insert(&mut c);
    EventSpec::public("private", 2)
        .title("Members Only")
        .visibility("private")
        .insert(&mut c);
    EventSpec::public("old", -10)
        .title("Long Gone")
        .insert(&mut c);
    log_in(&app.client, "door@example.com").await;
    let (_, page) = app.get_text("/admin/checkin").await;
    assert!(
        page.contains("Open Night") && page.contains("Members Only"),
        "{page}"
    );
    assert!(
        !page.contains("Secret Draft") && !page.contains("Long Gone"),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"/admin/checkin/{}\"", on.id)));
    let (status, _) = app.get_text(&format!("/admin/checkin/{}", draft.id)).await;
    assert_eq!(status, 404, "a draft has no door");
}
