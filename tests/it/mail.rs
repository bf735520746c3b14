//! Mail and waivers, through a real SMTP server (aiosmtpd, started per test on 127.0.0.1):
//! the mails a paid booking sends, an SMTP outage, a permanent refusal, escaping, and waiver
//! signing, versions and reminders.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::Value;
use ticketing::schema::{bookings, events, outbox, waivers};

use crate::helpers::{
    add_ticket_type, free_port, hold_with_details, http_client, EventSpec, TestServer,
};

const WAIVER: &str = "I take part at my own risk.\n\nI will follow the marshals' instructions.";

struct Smtp {
    child: Child,
    dir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("SMTP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Starts aiosmtpd on `port`, storing mail in a maildir, or refusing every recipient.
fn smtp(port: u16, reject: bool) -> Smtp {
    let dir = std::env::temp_dir().join(format!("maildir-{}", ticketing::tokens::url_token(6)));
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let handler = if reject {
        "reject_handler.Reject".to_string()
    } else {
        "aiosmtpd.handlers.Mailbox".to_string()
    };
    let mut args = vec![
        "-m".to_string(),
        "aiosmtpd".into(),
        "-n".into(),
        "-l".into(),
        format!("127.0.0.1:{port}"),
        "-c".into(),
        handler,
    ];
    if !reject {
        args.push(dir.display().to_string());
    }
    let child = Command::new(python())
        .args(&args)
        .env(
            "PYTHONPATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd (pip install aiosmtpd; scripts/test does)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "aiosmtpd did not start (is it installed?)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Smtp { child, dir }
}

impl Smtp {
    fn messages(&self) -> Vec<Value> {
        let out = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/dump.py"))
            .arg(&self.dir)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..150 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            rocket::tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {:?}", self.messages());
    }
}

async fn app_with_smtp(port: u16) -> TestServer {
    TestServer::spawn_with(move |v| {
        v.insert("SMTP_HOST".into(), "127.0.0.1".into());
        v.insert("SMTP_PORT".into(), port.to_string());
        v.insert("SMTP_SECURITY".into(), "none".into());
        v.insert("MAIL_FROM".into(), "tickets@example.com".into());
    })
    .await
}

/// Books `names.len()` free tickets and confirms; returns the booking's access token.
async fn book_free(
    app: &TestServer,
    event_id: i64,
    type_id: i64,
    names: &[(&str, &str)],
) -> String {
    let client = http_client();
    let attendees: Vec<(String, String)> = names
        .iter()
        .map(|(n, e)| (n.to_string(), e.to_string()))
        .collect();
    let token = hold_with_details(&client, app, event_id, type_id, &attendees).await;
    let res = client
        .post(app.url(&format!("/checkout/{token}/confirm")))
        .form(&[("accept_terms", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    token
}

#[rocket::async_test]
async fn a_paid_booking_sends_one_confirmation_and_one_waiver_request_per_attendee() {
    // Bo, with an address of their own, also gets their ticket (with the waiver link):
    // see `each_attendee_with_an_email_gets_their_own_ticket_once`.
    let port = free_port();
    let server = smtp(port, false);
    let app = app_with_smtp(port).await;
    let mut c = app.conn();
    let event = EventSpec::public("trail-run", 5)
        .title("Trail Run")
        .waiver(WAIVER)
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Runner", 0, 20);
    let token = book_free(
        &app,
        event.id,
        t.id,
        &[("Ana Lima", ""), ("<b>Bo</b> Jo", "bo@example.com")],
    )
    .await;

    let messages = server.wait_for(4).await;
    rocket::tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = if server.messages().len() > messages.len() {
        server.messages()
    } else {
        messages
    };
    assert_eq!(messages.len(), 4, "exactly four mails: {messages:#?}");
    let confirmation: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Your tickets for Trail Run")
        })
        .collect();
    assert_eq!(confirmation.len(), 1);
    let conf = confirmation[0];
    assert!(conf["to"].as_str().unwrap().contains("ana@example.com"));
    let booking_url = format!("{}/bookings/{token}", app.base);
    assert!(
        conf["text"].as_str().unwrap().contains(&booking_url),
        "text part links the booking page"
    );
    assert!(
        conf["html"].as_str().unwrap().contains(&booking_url),
        "html part links the booking page"
    );
    let ics = conf["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "event.ics")
        .expect("event.ics attached");
    assert!(ics["body"].as_str().unwrap().contains("SUMMARY:Trail Run"));
    // User-supplied names are escaped in the HTML part.
    let html = conf["html"].as_str().unwrap();
    assert!(
        html.contains("&lt;b&gt;Bo&lt;/b&gt; Jo") || html.contains("&lt;b&gt;Bo&lt;&#x2F;b&gt; Jo"),
        "{html}"
    );
    assert!(!html.contains("<b>Bo</b>"));

    let waiver_mails: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Please sign the waiver")
        })
        .collect();
    assert_eq!(waiver_mails.len(), 2);
    let tokens: Vec<String> = waivers::table.select(waivers::token).load(&mut c).unwrap();
    assert_eq!(tokens.len(), 2);
    for m in &waiver_mails {
        let text = m["text"].as_str().unwrap();
        assert!(
            tokens
                .iter()
                .any(|t| text.contains(&format!("{}/waivers/{t}", app.base))),
            "{text}"
        );
        assert!(!m["html"].as_str().unwrap().is_empty());
    }
    assert!(
        waiver_mails
            .iter()
            .any(|m| m["to"].as_str().unwrap().contains("bo@example.com")),
        "the attendee's own address"
    );
    assert!(
        waiver_mails
            .iter()
            .any(|m| m["to"].as_str().unwrap().contains("ana@example.com")),
        "else the buyer's"
    );
    let ticket_mail = messages
        .iter()
        .find(|m| m["subject"] == "Your ticket for Trail Run")
        .expect("Bo's own ticket mail");
    assert!(ticket_mail["to"]
        .as_str()
        .unwrap()
        .contains("bo@example.com"));
    let bo_token = waiver_token(&app, "<b>Bo</b> Jo").await;
    for part in ["text", "html"] {
        assert!(
            ticket_mail[part]
                .as_str()
                .unwrap()
                .contains(&format!("{}/waivers/{bo_token}", app.base)),
            "the ticket mail carries the attendee's waiver link ({part})"
        );
    }
    let sent: i64 = outbox::table
        .filter(outbox::state.eq("sent"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(sent, 4);
}

fn pdf_of(mail: &Value) -> Vec<String> {
    use base64::Engine;
    let pdfs: Vec<&Value> = mail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "application/pdf")
        .collect();
    assert_eq!(pdfs.len(), 1, "one PDF attached: {mail:#?}");
    assert!(pdfs[0]["name"].as_str().unwrap().ends_with(".pdf"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pdfs[0]["base64"].as_str().unwrap())
        .unwrap();
    crate::tickets::pdf_pages(&bytes)
}

/// The inline QR images of a mail, each referenced from its HTML part by `cid:`.
fn inline_qrs(mail: &Value) -> usize {
    let html = mail["html"].as_str().unwrap();
    let inline = mail["inline"].as_array().unwrap();
    for i in inline {
        assert_eq!(i["type"], "image/png");
        let cid = i["cid"].as_str().unwrap();
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} not in {html}"
        );
    }
    inline.len()
}

#[rocket::async_test]
async fn each_attendee_with_an_email_gets_their_own_ticket_once() {
    let port = free_port();
    let server = smtp(port, false);
    let app = app_with_smtp(port).await;
    let mut c = app.conn();
    let event = EventSpec::public("quiz", 5)
        .title("Quiz Night")
        .insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Table seat", 0, 20);
    // Ana (the buyer, no address of her own), Bo (his own), Cy (the buyer's address).
    let token = book_free(
        &app,
        event.id,
        t.id,
        &[
            ("Ana Lima", ""),
            ("Bo Jo", "bo@example.com"),
            ("Cy Ray", "ANA@example.com"),
        ],
    )
    .await;
    let booking: ticketing::models::Booking = bookings::table
        .filter(bookings::access_token.eq(&token))
        .select(ticketing::models::Booking::as_select())
        .first(&mut c)
        .unwrap();
    let codes: Vec<(String, String)> = ticketing::schema::attendees::table
        .filter(ticketing::schema::attendees::booking_id.eq(booking.id))
        .order(ticketing::schema::attendees::position)
        .select((
            ticketing::schema::attendees::name,
            ticketing::schema::attendees::ticket_code,
        ))
        .load(&mut c)
        .unwrap();

    let messages = server.wait_for(2).await;
    // A second settlement of the same payment (webhook and return both) queues nothing new.
    for _ in 0..2 {
        ticketing::outbox::on_transition(
            &mut c,
            &booking,
            ticketing::models::BookingState::AwaitingPayment,
            ticketing::models::BookingState::Paid,
        )
        .unwrap();
    }
    rocket::tokio::time::sleep(Duration::from_millis(2500)).await;
    let messages = if server.messages().len() > messages.len() {
        server.messages()
    } else {
        messages
    };
    assert_eq!(
        messages.len(),
        2,
        "a confirmation and Bo's ticket: {messages:#?}"
    );

    let conf = messages
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Your tickets for Quiz Night")
        })
        .expect("confirmation");
    assert!(conf["to"].as_str().unwrap().contains("ana@example.com"));
    let pages = pdf_of(conf);
    assert_eq!(pages.len(), 3, "all tickets in the buyer's PDF");
    for (page, (name, code)) in pages.iter().zip(&codes) {
        assert!(
            page.contains(name) && page.contains(code.as_str()),
            "{page}"
        );
        assert!(page.contains("Quiz Night") && page.contains("Table seat"));
    }
    assert_eq!(inline_qrs(conf), 3, "one inline QR per ticket");
    assert!(conf["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "event.ics"));

    let own = messages
        .iter()
        .find(|m| m["subject"] == "Your ticket for Quiz Night")
        .expect("Bo's ticket mail");
    assert!(own["to"].as_str().unwrap().contains("bo@example.com"));
    let pages = pdf_of(own);
    assert_eq!(pages.len(), 1, "only Bo's ticket");
    assert!(pages[0].contains("Bo Jo") && pages[0].contains(codes[1].1.as_str()));
    assert!(!pages[0].contains("Ana Lima"));
    assert_eq!(inline_qrs(own), 1);
    for part in ["text", "html"] {
        let body = own[part].as_str().unwrap();
        assert!(body.contains(codes[1].1.as_str()), "{body}");
        assert!(!body.contains(codes[0].1.as_str()), "no one else's ticket");
        assert!(!body.contains("/waivers/"), "no waiver on this event");
    }
    let rows: i64 = outbox::table
        .filter(outbox::booking_id.eq(booking.id))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(rows, 2);
}

#[rocket::async_test]
async fn an_smtp_outage_delays_mail_and_loses_none_sends_none_twice() {
    let port = free_port();
    let app = app_with_smtp(port).await; // no SMTP server yet
    let mut c = app.conn();
    let event = EventSpec::public("talk", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 0, 20);
    book_free(&app, event.id, t.id, &[("A One", "")]).await;
    book_free(&app, event.id, t.id, &[("B Two", "")]).await;
    // The worker tries, fails, and schedules a retry.
    let started = Instant::now();
    loop {
        let tried: i64 = outbox::table
            .filter(outbox::attempts.ge(1))
            .count()
            .get_result(&mut c)
            .unwrap();
        if tried == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "worker never tried"
        );
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<(String, String)> = outbox::table
        .select((outbox::state, outbox::last_error))
        .load(&mut c)
        .unwrap();
    assert!(
        rows.iter().all(|(s, e)| s == "pending" && !e.is_empty()),
        "{rows:?}"
    );

    let server = smtp(port, false);
    diesel::update(outbox::table)
        .set(outbox::next_attempt_at.eq(chrono::Utc::now()))
        .execute(&mut c)
        .unwrap();
    server.wait_for(2).await;
    rocket::tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.messages().len(), 2, "each mail exactly once");
    let sent: i64 = outbox::table
        .filter(outbox::state.eq("sent"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(sent, 2);
}

#[rocket::async_test]
async fn a_permanent_refusal_marks_the_mail_failed_with_its_error() {
    let port = free_port();
    let _server = smtp(port, true);
    let app = app_with_smtp(port).await;
    let mut c = app.conn();
    let event = EventSpec::public("talk", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 0, 20);
    book_free(&app, event.id, t.id, &[("A One", "")]).await;
    let started = Instant::now();
    loop {
        let rows: Vec<(String, i32, String)> = outbox::table
            .select((outbox::state, outbox::attempts, outbox::last_error))
            .load(&mut c)
            .unwrap();
        if rows.len() == 1 && rows[0].0 == "failed" {
            assert!(rows[0].2.contains("550"), "{rows:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not failed: {rows:?}"
        );
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn waiver_token(app: &TestServer, name: &str) -> String {
    use ticketing::schema::attendees;
    waivers::table
        .inner_join(attendees::table)
        .filter(attendees::name.eq(name))
        .select(waivers::token)
        .first(&mut app.conn())
        .unwrap()
}

#[rocket::async_test]
async fn waivers_are_signed_once_with_the_hash_of_the_text_shown() {
    let app = TestServer::spawn().await; // mail to .eml files: not what this test looks at
    let mut c = app.conn();
    let event = EventSpec::public("climb", 5).waiver(WAIVER).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Climber", 0, 20);
    let booking = book_free(&app, event.id, t.id, &[("Ana Lima", ""), ("Bo Jo", "")]).await;
    let client = http_client();
    let token = waiver_token(&app, "Ana Lima").await;
    let url = app.url(&format!("/waivers/{token}"));
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("I take part at my own risk.") && page.contains("Ana Lima"));
    let version: String = page
        .split("name=\"version\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .into();

    // Missing name or consent: refused with the message next to the field; nothing stored.
    let res = client
        .post(&url)
        .form(&[("full_name", ""), ("version", &version)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("full_name-error") && body.contains("consent-error"));
    let res = client
        .post(&url)
        .form(&[("full_name", "Ana Lima"), ("version", &version)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let res = client
        .post(&url)
        .header("User-Agent", "TestBrowser/1.0")
        .form(&[
            ("full_name", "Ana Lima"),
            ("consent", "true"),
            ("version", &version),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Your waiver is signed"));
    let (hash, ip, agent, name): (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = waivers::table
        .filter(waivers::token.eq(&token))
        .select((
            waivers::text_sha256,
            waivers::ip,
            waivers::user_agent,
            waivers::signed_name,
        ))
        .first(&mut c)
        .unwrap();
    assert_eq!(
        hash.as_deref(),
        Some(ticketing::tokens::sha256_hex(WAIVER).as_str()),
        "hash of the exact text shown"
    );
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(agent.as_deref(), Some("TestBrowser/1.0"));
    assert_eq!(name.as_deref(), Some("Ana Lima"));

    // Again: refused, nothing changes (the database refuses too).
    let res = client
        .post(&url)
        .form(&[
            ("full_name", "Someone Else"),
            ("consent", "true"),
            ("version", &version),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let name: Option<String> = waivers::table
        .filter(waivers::token.eq(&token))
        .select(waivers::signed_name)
        .first(&mut c)
        .unwrap();
    assert_eq!(name.as_deref(), Some("Ana Lima"));
    let direct = diesel::update(waivers::table.filter(waivers::token.eq(&token)))
        .set(waivers::signed_name.eq("Mallory"))
        .execute(&mut c);
    assert!(
        direct.is_err(),
        "a signed waiver cannot be changed even in SQL"
    );

    // A wrong token is a 404.
    let res = client
        .get(app.url("/waivers/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A new text version leaves the old signature as it was; the next signer sees v2.
    let new_text = format!("{WAIVER}\n\nHelmets are required.");
    diesel::update(events::table.find(event.id))
        .set(events::waiver_text.eq(&new_text))
        .execute(&mut c)
        .unwrap();
    let fresh = ticketing::models::Event::find(&mut c, event.id).unwrap();
    let v2 = ticketing::waivers::ensure_current_text(&mut c, &fresh).unwrap();
    assert_eq!(v2.version, 2);
    let hash: Option<String> = waivers::table
        .filter(waivers::token.eq(&token))
        .select(waivers::text_sha256)
        .first(&mut c)
        .unwrap();
    assert_eq!(
        hash.as_deref(),
        Some(ticketing::tokens::sha256_hex(WAIVER).as_str())
    );
    let bo = waiver_token(&app, "Bo Jo").await;
    let bo_url = app.url(&format!("/waivers/{bo}"));
    let page = client
        .get(&bo_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Helmets are required."));
    // Signing with the old version's form is refused and shows the new text.
    let res = client
        .post(&bo_url)
        .form(&[
            ("full_name", "Bo Jo"),
            ("consent", "true"),
            ("version", &version),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // The booking page shows each attendee's waiver state.
    let page = client
        .get(app.url(&format!("/bookings/{booking}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-waiver-state=\"signed\"")
            && page.contains("data-waiver-state=\"unsigned\"")
    );
}

#[rocket::async_test]
async fn reminders_go_to_unsigned_attendees_once() {
    let app = TestServer::spawn().await;
    let mut c = app.conn();
    let mut spec = EventSpec::public("soon", 0).waiver(WAIVER);
    spec.starts_at = chrono::Utc::now() + chrono::Duration::hours(12);
    let event = spec.insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "Seat", 0, 20);
    book_free(
        &app,
        event.id,
        t.id,
        &[("Signed Person", ""), ("Unsigned Person", "")],
    )
    .await;
    let token = waiver_token(&app, "Signed Person").await;
    let w = ticketing::waivers::find_by_token(&mut c, &token).unwrap();
    let text = ticketing::waivers::latest_text(&mut c, event.id)
        .unwrap()
        .unwrap();
    let sig = ticketing::waivers::Signature {
        name: "Signed Person",
        text: &text,
        ip: "127.0.0.1".into(),
        user_agent: "t".into(),
    };
    assert!(ticketing::waivers::sign(&mut c, w.id, &sig).unwrap());
    // An event further away gets no reminder yet.
    let far = EventSpec::public("later", 3).waiver(WAIVER).insert(&mut c);
    let tf = add_ticket_type(&mut c, &far, "Seat", 0, 20);
    book_free(&app, far.id, tf.id, &[("Far Person", "")]).await;

    assert_eq!(
        ticketing::outbox::queue_waiver_reminders(&mut c).unwrap(),
        1
    );
    assert_eq!(
        ticketing::outbox::queue_waiver_reminders(&mut c).unwrap(),
        0,
        "once"
    );
    let reminded: Vec<Option<i64>> = outbox::table
        .filter(outbox::kind.eq("waiver_reminder"))
        .select(outbox::attendee_id)
        .load(&mut c)
        .unwrap();
    let unsigned: i64 = ticketing::schema::attendees::table
        .filter(ticketing::schema::attendees::name.eq("Unsigned Person"))
        .select(ticketing::schema::attendees::id)
        .first(&mut c)
        .unwrap();
    assert_eq!(reminded, vec![Some(unsigned)]);
    let _ = bookings::table.count().get_result::<i64>(&mut c).unwrap();
}

/// Posts the find-my-booking form; (status, page).
async fn find_booking(app: &TestServer, email: &str) -> (u16, String) {
    let res = http_client()
        .post(app.url("/find-booking"))
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[rocket::async_test]
async fn find_my_booking_mails_every_booking_and_tells_strangers_the_same() {
    let port = free_port();
    let server = smtp(port, false);
    let app = app_with_smtp(port).await;
    let mut c = app.conn();
    let event = EventSpec::public("river-walk", 5).insert(&mut c);
    let free = add_ticket_type(&mut c, &event, "Walker", 0, 20);
    let first = book_free(&app, event.id, free.id, &[("Ana Lima", "")]).await;
    let second = book_free(&app, event.id, free.id, &[("Ana Lima", "")]).await;
    let before = server.wait_for(2).await.len();

    let (status, page) = find_booking(&app, "  ANA@example.com ").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("If there are bookings made with"), "{page}");
    let mails = server.wait_for(before + 1).await;
    let found = mails
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Your bookings at")
        })
        .expect("a bookings mail");
    assert!(found["to"].as_str().unwrap().contains("ana@example.com"));
    let text = found["text"].as_str().unwrap();
    for token in [&first, &second] {
        assert!(text.contains(&format!("/bookings/{token}")), "{text}");
        assert!(found["html"]
            .as_str()
            .unwrap()
            .contains(&format!("/bookings/{token}")));
    }

    // An address without bookings gets the same answer and no mail.
    let (status, stranger) = find_booking(&app, "nobody@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        stranger.replace("nobody@example.com", "X"),
        page.replace("ANA@example.com", "X")
            .replace("ana@example.com", "X")
    );
    let queued: i64 = outbox::table
        .filter(outbox::kind.eq("booking_links"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(queued, 1);

    // A bad address comes back with the message next to the field and the input kept.
    let (status, page) = find_booking(&app, "ana-at-example").await;
    assert_eq!(status, 422);
    assert!(page.contains("find-email-error") && page.contains("value=\"ana-at-example\""));

    // Three mails per address, then a pause.
    for _ in 0..2 {
        assert_eq!(find_booking(&app, "ana@example.com").await.0, 200);
    }
    let (status, page) = find_booking(&app, "ana@example.com").await;
    assert_eq!(status, 429);
    assert!(page.contains("try again in a while"));
}
