//! Staff accounts by one-time link: a new account is invited by mail (no password on screen),
//! "forgot password" mails a reset link with the same answer for unknown addresses and a
//! budget per address, a link sets the password once and then never again, expires, and
//! ends the account's sessions; roles change, but not one's own
//! (so an admin always remains).

use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use ticketing::schema::{audit_log, outbox, password_links, users};

use crate::admin::{log_in, login, new_client, post_form, user};
use crate::helpers::{hidden_csrf, TestApp};

/// The raw token of the newest account mail to `email`, read from its outbox row (the only
/// place it is kept until that mail is sent).
fn newest_link(conn: &mut PgConnection, email: &str, kind: &str) -> String {
    outbox::table
        .inner_join(users::table.on(outbox::user_id.eq(users::id.nullable())))
        .filter(users::email.eq(email))
        .filter(outbox::kind.eq(kind))
        .order(outbox::id.desc())
        .select(outbox::secret.assume_not_null())
        .first(conn)
        .expect("an account mail with its link")
}

/// Renders outbox row `id` as the mailer would send it.
fn render(app: &TestApp, id: i64) -> ticketing::mail::Rendered {
    let mailer = crate::helpers::mailer(&app.db.url);
    mailer.renderer().render(&mut app.conn(), id).unwrap()
}

async fn page(client: &Client, path: &str) -> (Status, String) {
    let res = client.get(path.to_string()).dispatch().await;
    (res.status(), res.into_string().await.unwrap_or_default())
}

/// Sets a password through the link's form (with the form's own CSRF token).
async fn set_password(
    client: &Client,
    token: &str,
    password: &str,
    confirm: &str,
) -> (Status, String) {
    let path = format!("/admin/set-password/{token}");
    let (_, form) = page(client, &path).await;
    let csrf = if form.contains("name=\"csrf\"") {
        hidden_csrf(&form)
    } else {
        String::new()
    };
    let res = post_form(
        client,
        &path,
        &format!("csrf={csrf}&password={password}&confirm={confirm}"),
    )
    .await;
    (res.status(), res.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn a_new_account_is_invited_by_mail_and_sets_its_password_once() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let csrf = log_in(&app.client, "admin@example.com").await;
    let res = post_form(
        &app.client,
        "/admin/users",
        &format!("csrf={csrf}&email=door%40example.com&name=Door+Team&role=staff"),
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    let body = res.into_string().await.unwrap();
    assert!(
        body.contains("An invite to choose a password was mailed"),
        "{body}"
    );
    assert!(
        !body.contains("<code>"),
        "no password is shown on screen: {body}"
    );

    // The invite mail carries the link; the database keeps only its hash.
    let (id, user_id): (i64, Option<i64>) = outbox::table
        .filter(outbox::kind.eq("account_invite"))
        .select((outbox::id, outbox::user_id))
        .first(&mut c)
        .unwrap();
    let token = newest_link(&mut c, "door@example.com", "account_invite");
    let stored: String = password_links::table
        .filter(password_links::user_id.eq(user_id.unwrap()))
        .select(password_links::token_hash)
        .first(&mut c)
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored, ticketing::tokens::sha256_hex(&token));
    let mail = render(&app, id);
    assert_eq!(mail.to.email.to_string(), "door@example.com");
    assert!(mail.subject.starts_with("Your account at"));
    assert!(mail.text.contains(&format!("/admin/set-password/{token}")));
    assert!(mail.html.contains(&format!("/admin/set-password/{token}")));

    // A new browser follows the link: a mismatch comes back with the message by the field.
    let door = new_client(&app).await;
    let (status, form) = page(&door, &format!("/admin/set-password/{token}")).await;
    assert_eq!(status, Status::Ok);
    assert!(form.contains("Choose your password"), "{form}");
    let (status, again) =
        set_password(&door, &token, "a+long+enough+secret", "another+one+here").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        again.contains("confirm-password-error") && again.contains("The two passwords differ.")
    );
    let (status, _) = set_password(&door, &token, "short", "short").await;
    assert_eq!(status, Status::UnprocessableEntity);
    let (status, done) = set_password(
        &door,
        &token,
        "a+long+enough+secret",
        "a+long+enough+secret",
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert!(done.contains("Your password is set"), "{done}");
    assert_eq!(
        login(&door, "door@example.com", "a long enough secret").await,
        Status::SeeOther
    );

    // The link works once.
    let (status, used) = page(&door, &format!("/admin/set-password/{token}")).await;
    assert_eq!(status, Status::NotFound);
    assert!(used.contains("expired or was used"));
    let (status, _) = set_password(
        &door,
        &token,
        "yet+another+secret+x",
        "yet+another+secret+x",
    )
    .await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(
        login(&door, "door@example.com", "yet another secret x").await,
        Status::UnprocessableEntity
    );
    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("user.password_link"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(audited, 1);
}

#[rocket::async_test]
async fn a_sent_account_mail_forgets_its_link() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let u = user(&mut c, "ops@example.com", "staff");
    c.transaction(|conn| {
        ticketing_domain::accounts::issue(conn, u.id, ticketing_domain::accounts::Purpose::Reset)
    })
    .unwrap();
    let id: i64 = outbox::table.select(outbox::id).first(&mut c).unwrap();
    ticketing::outbox::record(&mut c, id, "ops@example.com", "Reset", Ok(())).unwrap();
    let secret: Option<String> = outbox::table
        .find(id)
        .select(outbox::secret)
        .first(&mut c)
        .unwrap();
    assert_eq!(secret, None, "the token leaves the database with its mail");
    // It cannot be sent again (its link is gone): a resend changes nothing.
    assert_eq!(ticketing::outbox::resend(&mut c, id).unwrap(), 0);
}

#[rocket::async_test]
async fn forgot_password_answers_the_same_and_mails_only_accounts_within_budget() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let ask = |email: &'static str| {
        let client = &app.client;
        async move {
            let (_, form) = page(client, "/admin/forgot-password").await;
            let res = client
                .post("/admin/forgot-password")
                .header(ContentType::Form)
                .body(format!(
                    "csrf={}&email={}",
                    hidden_csrf(&form),
                    email.replace('@', "%40")
                ))
                .dispatch()
                .await;
            (
                res.status(),
                res.into_string().await.unwrap().replace(email, "<email>"),
            )
        }
    };
    let (_, login_page) = page(&app.client, "/admin/login").await;
    assert!(login_page.contains("href=\"/admin/forgot-password\""));
    let (status, known) = ask("admin@example.com").await;
    assert_eq!(status, Status::Ok);
    let (_, unknown) = ask("nobody@example.com").await;
    assert_eq!(
        known, unknown,
        "the answer tells nobody whether an account exists"
    );
    let mails = || {
        outbox::table
            .filter(outbox::kind.eq("password_reset"))
            .count()
            .get_result::<i64>(&mut app.conn())
            .unwrap()
    };
    assert_eq!(mails(), 1, "only the account's address gets a mail");
    // Each link voids the older ones; the address's budget (3, shared with find-my-booking)
    // stops the fourth request from mailing anything, with the same answer.
    ask("admin@example.com").await;
    ask("admin@example.com").await;
    let (status, over) = ask("admin@example.com").await;
    assert_eq!((status, over), (Status::Ok, known));
    assert_eq!(mails(), 3);
    let open: i64 = password_links::table
        .filter(password_links::used_at.is_null())
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(open, 1, "only the newest link works");
    // Each mailed reset is in the audit log against the account, with no actor (nobody was
    // signed in) and the requester's IP; the unknown address and the refused request are not.
    let audited: Vec<(Option<i64>, Option<i64>, String)> = audit_log::table
        .filter(audit_log::action.eq("user.password_reset_requested"))
        .select((audit_log::user_id, audit_log::entity_id, audit_log::ip))
        .load(&mut c)
        .unwrap();
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert!(audited
        .iter()
        .all(|(by, on, ip)| by.is_none() && on.is_some() && !ip.is_empty()));

    // A wrong CSRF token is refused and mails nothing.
    let res = app
        .client
        .post("/admin/forgot-password")
        .header(ContentType::Form)
        .body("csrf=wrong&email=other%40example.com")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn a_reset_link_expires_and_ends_the_accounts_sessions() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    let u = user(&mut c, "staff@example.com", "staff");
    log_in(&app.client, "staff@example.com").await;
    c.transaction(|conn| {
        ticketing_domain::accounts::issue(conn, u.id, ticketing_domain::accounts::Purpose::Reset)
    })
    .unwrap();
    let token = newest_link(&mut c, "staff@example.com", "password_reset");
    let other = new_client(&app).await;
    diesel::update(password_links::table)
        .set(password_links::expires_at.eq(chrono::Utc::now() - chrono::Duration::minutes(1)))
        .execute(&mut c)
        .unwrap();
    let (status, _) = page(&other, &format!("/admin/set-password/{token}")).await;
    assert_eq!(status, Status::NotFound, "an expired link opens nothing");

    c.transaction(|conn| {
        ticketing_domain::accounts::issue(conn, u.id, ticketing_domain::accounts::Purpose::Reset)
    })
    .unwrap();
    let token = newest_link(&mut c, "staff@example.com", "password_reset");
    let (status, _) =
        set_password(&other, &token, "brand+new+password", "brand+new+password").await;
    assert_eq!(status, Status::Ok);
    // The session that was open before the reset has ended.
    let res = app.client.get("/admin").dispatch().await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(res
        .headers()
        .get_one("Location")
        .unwrap()
        .starts_with("/admin/login"));
}

#[rocket::async_test]
async fn roles_change_but_not_ones_own() {
    let app = TestApp::spawn().await;
    let mut c = app.conn();
    user(&mut c, "admin@example.com", "admin");
    let staff = user(&mut c, "staff@example.com", "staff");
    let csrf = log_in(&app.client, "admin@example.com").await;
    let me: i64 = users::table
        .filter(users::email.eq("admin@example.com"))
        .select(users::id)
        .first(&mut c)
        .unwrap();
    let role = |id: i64| {
        users::table
            .find(id)
            .select(users::role)
            .first::<String>(&mut app.conn())
            .unwrap()
    };
    let res = post_form(
        &app.client,
        &format!("/admin/users/{}/role", staff.id),
        &format!("csrf={csrf}&role=admin"),
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(role(staff.id), "admin");
    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("user.role"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(audited, 1);
    // Not one's own role.
    let res = post_form(
        &app.client,
        &format!("/admin/users/{me}/role"),
        &format!("csrf={csrf}&role=staff"),
    )
    .await;
    assert_eq!(res.status(), Status::BadRequest);
    assert_eq!(role(me), "admin");
    // A bad role is refused.
    let res = post_form(
        &app.client,
        &format!("/admin/users/{}/role", staff.id),
        &format!("csrf={csrf}&role=root"),
    )
    .await;
    assert_eq!(res.status(), Status::BadRequest);
}
