//! Admin two-factor authentication end to end: enrolment with the QR page, the code step
//! after the password (a pending session opens nothing else), recovery codes once, replayed
//! and wrong codes refused and limited, enforcement by setting and per account, an admin's
//! reset, and turning it off. Codes are computed with totp-rs from the app's own TOTP clock,
//! which the tests move on instead of sleeping.

use diesel::prelude::*;
use rocket::http::{ContentType, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use ticketing::models::{NewUser, User};
use ticketing::schema::{admin_sessions, audit_log, two_factor_recovery_codes, users};
use ticketing::twofactor::TwoFactor;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{base_vars, TestApp};

const PASSWORD: &str = "correct horse battery";

fn user(conn: &mut PgConnection, email: &str, role: &str) -> User {
    User::insert(
        conn,
        &NewUser {
            email: email.into(),
            name: role.into(),
            password_hash: ticketing::passwords::hash(PASSWORD),
            role: role.into(),
        },
    )
    .unwrap()
}

/// Switches TOTP on for `id` directly in the database with these recovery codes; returns
/// the secret.
fn enrolled(conn: &mut PgConnection, id: i64, recovery: &[&str]) -> String {
    let secret = ticketing::twofactor::new_secret();
    assert!(User::begin_totp(conn, id, &secret).unwrap());
    let hashes: Vec<String> = recovery
        .iter()
        .map(|c| ticketing::twofactor::recovery_hash(c))
        .collect();
    assert!(User::enable_totp(conn, id, &hashes).unwrap());
    secret
}

fn clock(client: &Client) -> &TwoFactor {
    client.rocket().state::<TwoFactor>().unwrap()
}

/// The code an authenticator app shows now (by the app's TOTP clock), computed with totp-rs.
fn code_now(client: &Client, secret: &str) -> String {
    let totp = TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.to_string()).to_bytes().unwrap(),
        None,
        String::new(),
    )
    .unwrap();
    totp.generate(clock(client).now_unix())
}

/// The next time step's code, with the app's clock moved on to it.
fn next_code(client: &Client, secret: &str) -> String {
    clock(client).advance_clock(30);
    code_now(client, secret)
}

/// A code that is not the right one now.
fn wrong_code(client: &Client, secret: &str) -> String {
    let right = code_now(client, secret);
    let n: u32 = right.parse().unwrap();
    format!("{:06}", (n + 500_000) % 1_000_000)
}

fn hidden(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("a hidden {name} field in {page}"))
        .split('"')
        .next()
        .unwrap()
        // Tera escapes '/' in attributes; a browser sends the decoded value.
        .replace("&#x2F;", "/")
}

async fn get<'c>(client: &'c Client, path: &str) -> LocalResponse<'c> {
    client.get(path.to_string()).dispatch().await
}

async fn body(client: &Client, path: &str) -> (Status, String) {
    let res = get(client, path).await;
    (res.status(), res.into_string().await.unwrap_or_default())
}

async fn post<'c>(client: &'c Client, path: &str, body: &str) -> LocalResponse<'c> {
    client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

fn location(res: &LocalResponse<'_>) -> String {
    res.headers().get_one("Location").unwrap_or("").to_string()
}

/// The password step: returns where the browser is sent after it (following redirects up
/// to the first page that is not a redirect to another admin page).
async fn password_step(client: &Client, email: &str) -> String {
    let page = body(client, "/admin/login").await.1;
    let res = post(
        client,
        "/admin/login",
        &format!(
            "csrf={}&email={}&password={}&next=/admin/bookings",
            hidden(&page, "csrf"),
            email.replace('@', "%40"),
            PASSWORD.replace(' ', "+")
        ),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther, "password accepted");
    let mut at = location(&res);
    for _ in 0..3 {
        let res = get(client, &at).await;
        if res.status() != Status::SeeOther {
            break;
        }
        at = location(&res);
    }
    at
}

/// The code step's form, sent with `field` = `code`.
async fn send_code<'c>(client: &'c Client, field: &str, code: &str) -> LocalResponse<'c> {
    let (status, page) = body(client, "/admin/login/code?next=/admin/bookings").await;
    assert_eq!(status, Status::Ok, "{page}");
    post(
        client,
        "/admin/login/code",
        &format!(
            "csrf={}&next={}&{field}={code}",
            hidden(&page, "csrf"),
            hidden(&page, "next")
        ),
    )
    .await
}

/// The session CSRF token from the enrolment page.
async fn two_factor_page(client: &Client) -> (String, String) {
    let (status, page) = body(client, "/admin/two-factor").await;
    assert_eq!(status, Status::Ok, "{page}");
    (hidden(&page, "csrf"), page)
}

/// Logs out, from a signed-in session or one still at the code step.
async fn logout(client: &Client) {
    let (status, mut page) = body(client, "/admin/two-factor").await;
    if status != Status::Ok {
        page = body(client, "/admin/login/code").await.1;
    }
    let token = hidden(&page, "csrf");
    let res = post(client, "/admin/logout", &format!("csrf={token}")).await;
    assert_eq!(res.status(), Status::SeeOther);
}

fn actions(conn: &mut PgConnection) -> Vec<String> {
    audit_log::table
        .order(audit_log::id)
        .select(audit_log::action)
        .load(conn)
        .unwrap()
}

/// A second browser on the same database (its own app instance, cookie jar and clock).
async fn second_browser(app: &TestApp, vars: &[(&str, &str)]) -> Client {
    let mut map = base_vars(&app.db.url);
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    let config = ticketing::Config::from_map(&map).unwrap();
    Client::tracked(ticketing::rocket(&config, ticketing::connect(&config)))
        .await
        .unwrap()
}

#[rocket::async_test]
async fn enrol_on_the_qr_page_then_log_in_with_a_code() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    let client = &app.client;

    // No second factor yet: the password alone signs in.
    assert_eq!(
        password_step(client, "admin@example.com").await,
        "/admin/bookings"
    );
    let (token, page) = two_factor_page(client).await;
    assert!(page.contains("is <strong>off</strong>"), "{page}");
    assert!(
        page.contains("href=\"/admin/two-factor\""),
        "linked from the nav"
    );

    let res = post(client, "/admin/two-factor/setup", &format!("csrf={token}")).await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = two_factor_page(client).await;
    assert!(page.contains("<svg"), "a QR code inline");
    assert!(!page.contains("<script") && !page.contains("style="));
    let secret: String = page
        .split("by hand (time-based):<br><code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace(' ', "");
    assert_eq!(secret.len(), 32, "{secret}");
    let stored = User::totp_secret(&mut c, admin.id).unwrap().unwrap();
    assert_eq!(secret, stored);

    // A wrong code does not switch it on.
    let res = post(
        client,
        "/admin/two-factor/confirm",
        &format!("csrf={token}&code={}", wrong_code(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert!(res.into_string().await.unwrap().contains("not right"));
    let on: Option<chrono::DateTime<chrono::Utc>> = users::table
        .find(admin.id)
        .select(users::totp_enabled_at)
        .first(&mut c)
        .unwrap();
    assert!(on.is_none());

    let res = post(
        client,
        "/admin/two-factor/confirm",
        &format!("csrf={token}&code={}", code_now(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    let page = res.into_string().await.unwrap();
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    let hashes: Vec<String> = two_factor_recovery_codes::table
        .filter(two_factor_recovery_codes::user_id.eq(admin.id))
        .select(two_factor_recovery_codes::code_hash)
        .load(&mut c)
        .unwrap();
    assert_eq!(hashes.len(), 10);
    for code in &codes {
        assert!(!hashes.contains(code), "stored hashed");
        assert!(hashes.contains(&ticketing::twofactor::recovery_hash(code)));
    }
    // Shown once: neither the codes nor the secret appear again.
    let (_, page) = two_factor_page(client).await;
    assert!(page.contains("is <strong>on</strong>"), "{page}");
    assert!(!page.contains(&codes[0]) && !page.contains(&secret[..8]));
    assert!(!page.contains("<svg"));
    assert_eq!(actions(&mut c), vec!["user.two_factor.enable"]);

    // Log out, log in: the password leads to the code step, the code to the page asked for.
    logout(client).await;
    let at = password_step(client, "admin@example.com").await;
    assert_eq!(at, "/admin/login/code?next=/admin/bookings");
    let (status, page) = body(client, &at).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("autocomplete=\"one-time-code\""));
    assert!(page.contains("inputmode=\"numeric\""));
    assert!(page.contains("<label for=\"code\">"));
    let res = get(client, "/admin/bookings").await;
    assert_eq!(res.status(), Status::SeeOther, "pending: no bookings");
    assert_eq!(location(&res), "/admin/login/code?next=/admin/bookings");

    let res = send_code(client, "code", &next_code(client, &secret)).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/admin/bookings");
    assert_eq!(get(client, "/admin/bookings").await.status(), Status::Ok);

    // New recovery codes need a current code; the old ones stop working.
    let (token, _) = two_factor_page(client).await;
    let res = post(
        client,
        "/admin/two-factor/recovery-codes",
        &format!("csrf={token}&code={}", wrong_code(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let res = post(
        client,
        "/admin/two-factor/recovery-codes",
        &format!("csrf={token}&code={}", next_code(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    let page = res.into_string().await.unwrap();
    let fresh: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|f| !codes.contains(f)));
    let hashes: Vec<String> = two_factor_recovery_codes::table
        .filter(two_factor_recovery_codes::user_id.eq(admin.id))
        .select(two_factor_recovery_codes::code_hash)
        .load(&mut c)
        .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(!hashes.contains(&ticketing::twofactor::recovery_hash(&codes[0])));
    assert_eq!(
        actions(&mut c),
        vec!["user.two_factor.enable", "user.two_factor.recovery_codes"]
    );

    let passed: Vec<Option<chrono::DateTime<chrono::Utc>>> = admin_sessions::table
        .order(admin_sessions::id)
        .select(admin_sessions::second_factor_at)
        .load(&mut c)
        .unwrap();
    assert_eq!(passed.len(), 2);
    assert!(
        passed.iter().all(|p| p.is_some()),
        "both sessions passed the second factor: {passed:?}"
    );
}

#[rocket::async_test]
async fn a_pending_session_opens_nothing_but_the_code_step() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    enrolled(&mut c, admin.id, &[]);
    let client = &app.client;
    assert_eq!(
        password_step(client, "admin@example.com").await,
        "/admin/login/code?next=/admin/bookings"
    );
    let token = hidden(&body(client, "/admin/login/code").await.1, "csrf");
    let routes: Vec<(Method, String)> = client
        .rocket()
        .routes()
        .filter(|r| r.uri.to_string().starts_with("/admin"))
        .filter(|r| !crate::admin::signed_out(&r.uri.to_string()))
        .filter(|r| r.uri != "/admin/logout")
        .map(|r| (r.method, r.uri.to_string()))
        .collect();
    assert!(routes.len() >= 20, "{routes:?}");
    for (method, uri) in &routes {
        let mut path = uri
            .split('?')
            .next()
            .unwrap()
            .replace("<id>", &admin.id.to_string())
            .replace("<action>", "publish")
            .replace("<slug>", "terms");
        if path.ends_with(".csv") {
            path.push_str("?event=1");
        }
        let res = client
            .req(*method, path.clone())
            .header(ContentType::Form)
            .body(format!("csrf={token}&required=false&code=000000"))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::SeeOther, "{method} {uri}");
        assert!(
            location(&res).starts_with("/admin/login/code?next="),
            "{method} {uri} -> {}",
            location(&res)
        );
    }
    assert!(actions(&mut c).is_empty(), "nothing changed");
    let enabled: Option<chrono::DateTime<chrono::Utc>> = users::table
        .find(admin.id)
        .select(users::totp_enabled_at)
        .first(&mut c)
        .unwrap();
    assert!(enabled.is_some());

    // The pending session runs out after five minutes.
    diesel::update(admin_sessions::table)
        .set(admin_sessions::created_at.eq(chrono::Utc::now() - chrono::Duration::minutes(6)))
        .execute(&mut c)
        .unwrap();
    let res = get(client, "/admin/login/code").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(
        location(&res).starts_with("/admin/login?"),
        "{}",
        location(&res)
    );
}

#[rocket::async_test]
async fn a_code_is_accepted_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    let secret = enrolled(&mut c, admin.id, &[]);
    let client = &app.client;
    password_step(client, "admin@example.com").await;
    let code = code_now(client, &secret);
    assert_eq!(
        send_code(client, "code", &code).await.status(),
        Status::SeeOther
    );
    logout(client).await;
    password_step(client, "admin@example.com").await;
    let res = send_code(client, "code", &code).await;
    assert_eq!(res.status(), Status::UnprocessableEntity, "replayed");
    assert!(res.into_string().await.unwrap().contains("already used"));
    assert_eq!(get(client, "/admin").await.status(), Status::SeeOther);
    // The next step's code is fresh.
    assert_eq!(
        send_code(client, "code", &next_code(client, &secret))
            .await
            .status(),
        Status::SeeOther
    );
    assert_eq!(get(client, "/admin").await.status(), Status::Ok);
    // Right codes are not failures: signing in often never runs into the limit.
    for _ in 0..6 {
        logout(client).await;
        password_step(client, "admin@example.com").await;
        let res = send_code(client, "code", &next_code(client, &secret)).await;
        assert_eq!(res.status(), Status::SeeOther);
    }
}

#[rocket::async_test]
async fn a_recovery_code_works_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    enrolled(
        &mut c,
        admin.id,
        &["abcd-efgh-jkmn-pqrs", "stuv-wxyz-2345-6789"],
    );
    let client = &app.client;
    password_step(client, "admin@example.com").await;
    // Typed in capitals with spaces: still the code.
    let res = send_code(client, "recovery", "ABCD+EFGH+JKMN+PQRS").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(get(client, "/admin/bookings").await.status(), Status::Ok);
    assert_eq!(actions(&mut c), vec!["user.two_factor.recovery_used"]);
    assert_eq!(User::unused_recovery_codes(&mut c, admin.id).unwrap(), 1);

    logout(client).await;
    password_step(client, "admin@example.com").await;
    let res = send_code(client, "recovery", "abcd-efgh-jkmn-pqrs").await;
    assert_eq!(res.status(), Status::UnprocessableEntity, "used once only");
    assert_eq!(
        get(client, "/admin/bookings").await.status(),
        Status::SeeOther
    );
    let res = send_code(client, "recovery", "stuv-wxyz-2345-6789").await;
    assert_eq!(res.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn wrong_codes_are_limited() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    let secret = enrolled(&mut c, admin.id, &["abcd-efgh-jkmn-pqrs"]);
    let client = &app.client;
    password_step(client, "admin@example.com").await;
    for _ in 0..5 {
        let res = send_code(client, "code", &wrong_code(client, &secret)).await;
        assert_eq!(res.status(), Status::UnprocessableEntity);
    }
    let res = send_code(client, "code", &code_now(client, &secret)).await;
    assert_eq!(
        res.status(),
        Status::TooManyRequests,
        "refused even with the right code"
    );
    assert!(res.into_string().await.unwrap().contains("Too many codes"));
    let res = send_code(client, "recovery", "abcd-efgh-jkmn-pqrs").await;
    assert_eq!(res.status(), Status::TooManyRequests);
    assert_eq!(
        User::unused_recovery_codes(&mut c, admin.id).unwrap(),
        1,
        "a limited attempt uses no recovery code"
    );
    // A new pending session does not start a new budget.
    logout(client).await;
    password_step(client, "admin@example.com").await;
    let res = send_code(client, "code", &next_code(client, &secret)).await;
    assert_eq!(res.status(), Status::TooManyRequests);
    assert_eq!(get(client, "/admin").await.status(), Status::SeeOther);
    // Nothing typed at all is a plain 422 that spends nothing.
    assert_eq!(
        send_code(client, "code", "").await.status(),
        Status::UnprocessableEntity
    );
}

#[rocket::async_test]
async fn required_by_the_setting_forces_enrolment_first() {
    let app = TestApp::spawn_with(|v| {
        v.insert("ADMIN_REQUIRE_TWO_FACTOR".into(), "true".into());
    })
    .await;
    let mut c = app.conn();
    user(&mut c, "staff@example.com", "staff");
    let client = &app.client;
    assert_eq!(
        password_step(client, "staff@example.com").await,
        "/admin/two-factor"
    );
    for path in [
        "/admin",
        "/admin/bookings",
        "/admin/checkin",
        "/admin/password",
    ] {
        let res = get(client, path).await;
        assert_eq!(res.status(), Status::SeeOther, "{path}");
        assert_eq!(location(&res), "/admin/two-factor", "{path}");
    }
    let (token, page) = two_factor_page(client).await;
    assert!(page.contains("must use two-factor authentication"));
    assert!(
        !page.contains("href=\"/admin/bookings\""),
        "no nav but logout"
    );
    post(client, "/admin/two-factor/setup", &format!("csrf={token}")).await;
    let id = User::find_by_email(&mut c, "staff@example.com")
        .unwrap()
        .unwrap()
        .id;
    let secret = User::totp_secret(&mut c, id).unwrap().unwrap();
    let res = post(
        client,
        "/admin/two-factor/confirm",
        &format!("csrf={token}&code={}", code_now(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("href=\"/admin/bookings\""));
    assert_eq!(get(client, "/admin/bookings").await.status(), Status::Ok);

    // A pending enrolment can still log out.
    let other = user(&mut c, "door@example.com", "staff");
    let door = second_browser(&app, &[("ADMIN_REQUIRE_TWO_FACTOR", "true")]).await;
    assert_eq!(
        password_step(&door, "door@example.com").await,
        "/admin/two-factor"
    );
    logout(&door).await;
    let revoked: Option<chrono::DateTime<chrono::Utc>> = admin_sessions::table
        .filter(admin_sessions::user_id.eq(other.id))
        .select(admin_sessions::revoked_at)
        .first(&mut c)
        .unwrap();
    assert!(revoked.is_some());

    // A bad value stops the app at start, naming the variable.
    let mut vars = base_vars(&app.db.url);
    vars.insert("ADMIN_REQUIRE_TWO_FACTOR".into(), "sometimes".into());
    let e = ticketing::Config::from_map(&vars).unwrap_err();
    assert!(e.mentions("ADMIN_REQUIRE_TWO_FACTOR"), "{e}");
}

#[rocket::async_test]
async fn an_admin_requires_it_of_an_account_and_resets_a_lost_phone() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    let staff = user(&mut c, "staff@example.com", "staff");
    let client = &app.client;
    password_step(client, "admin@example.com").await;
    let token = hidden(&body(client, "/admin/users").await.1, "csrf");
    let res = post(
        client,
        &format!("/admin/users/{}/two-factor/require", staff.id),
        &format!("csrf={token}&required=true"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = body(client, "/admin/users").await;
    assert!(page.contains("must now sign in with two-factor"), "{page}");
    assert!(page.contains("(required)"));

    // The staff member must enrol before anything else.
    let door = second_browser(&app, &[]).await;
    assert_eq!(
        password_step(&door, "staff@example.com").await,
        "/admin/two-factor"
    );
    assert_eq!(
        location(&get(&door, "/admin/checkin").await),
        "/admin/two-factor"
    );
    let (door_token, _) = two_factor_page(&door).await;
    post(
        &door,
        "/admin/two-factor/setup",
        &format!("csrf={door_token}"),
    )
    .await;
    let secret = User::totp_secret(&mut c, staff.id).unwrap().unwrap();
    let res = post(
        &door,
        "/admin/two-factor/confirm",
        &format!("csrf={door_token}&code={}", code_now(&door, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(get(&door, "/admin/checkin").await.status(), Status::Ok);
    // Staff can neither require nor reset.
    for action in ["require", "reset"] {
        let res = post(
            &door,
            &format!("/admin/users/{}/two-factor/{action}", admin.id),
            &format!("csrf={door_token}&required=true"),
        )
        .await;
        assert_eq!(res.status(), Status::Forbidden, "{action}");
    }

    // Lost phone: the admin resets it; the staff member's sessions end.
    let res = post(
        client,
        &format!("/admin/users/{}/two-factor/reset", staff.id),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let res = get(&door, "/admin/checkin").await;
    assert!(location(&res).starts_with("/admin/login"), "signed out");
    assert!(User::totp_secret(&mut c, staff.id).unwrap().is_none());
    assert_eq!(User::unused_recovery_codes(&mut c, staff.id).unwrap(), 0);
    // Still required: the next login goes to enrolment again.
    assert_eq!(
        password_step(&door, "staff@example.com").await,
        "/admin/two-factor"
    );
    // One's own is turned off on one's own page, not reset.
    let res = post(
        client,
        &format!("/admin/users/{}/two-factor/reset", admin.id),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::BadRequest);
    // Unknown accounts: 404, nothing written.
    let res = post(
        client,
        "/admin/users/999999/two-factor/reset",
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(res.status(), Status::NotFound);

    assert_eq!(
        actions(&mut c),
        vec![
            "user.two_factor.require",
            "user.two_factor.enable",
            "user.two_factor.reset"
        ]
    );
}

#[rocket::async_test]
async fn turning_it_off_needs_a_current_code_or_the_password() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let admin = user(&mut c, "admin@example.com", "admin");
    let secret = enrolled(&mut c, admin.id, &["abcd-efgh-jkmn-pqrs"]);
    let client = &app.client;
    password_step(client, "admin@example.com").await;
    assert_eq!(
        send_code(client, "code", &code_now(client, &secret))
            .await
            .status(),
        Status::SeeOther
    );
    let (token, _) = two_factor_page(client).await;
    for body_ in [
        format!("csrf={token}"),
        format!("csrf={token}&code={}", wrong_code(client, &secret)),
        format!("csrf={token}&password=wrong"),
        format!("csrf={token}&code=abcd-efgh-jkmn-pqrs"),
    ] {
        let res = post(client, "/admin/two-factor/disable", &body_).await;
        assert_eq!(res.status(), Status::UnprocessableEntity, "{body_}");
    }
    assert!(User::totp_secret(&mut c, admin.id).unwrap().is_some());
    let res = post(
        client,
        "/admin/two-factor/disable",
        &format!("csrf={token}&code={}", next_code(client, &secret)),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = two_factor_page(client).await;
    assert!(
        page.contains("is off; its recovery codes no longer work"),
        "{page}"
    );
    assert!(User::totp_secret(&mut c, admin.id).unwrap().is_none());
    assert_eq!(User::unused_recovery_codes(&mut c, admin.id).unwrap(), 0);
    assert_eq!(actions(&mut c), vec!["user.two_factor.disable"]);
    // Signing in needs the password only again.
    logout(client).await;
    assert_eq!(
        password_step(client, "admin@example.com").await,
        "/admin/bookings"
    );
}
