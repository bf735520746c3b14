//! Seed: fills an empty database, and a second run changes nothing and fails nothing.

use std::process::Command;

use diesel::prelude::*;
use ticketing::schema::{events, ticket_types, users};

use crate::helpers::TestDb;

fn counts(conn: &mut PgConnection) -> (i64, i64, i64) {
    (
        events::table.count().get_result(conn).unwrap(),
        ticket_types::table.count().get_result(conn).unwrap(),
        users::table.count().get_result(conn).unwrap(),
    )
}

#[test]
fn seed_command_runs_on_an_empty_database_and_twice() {
    let db = TestDb::empty();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .arg("seed")
            .env("APP_ENV", "local")
            .env("DATABASE_URL", &db.url)
            .env("BASE_URL", "http://tickets.test")
            .env("LOG_LEVEL", "warn")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("private event \"Founders' Private Dinner\": http://tickets.test/p/"),
        "{out}"
    );
    assert!(out.contains("admin account: admin@example.com / "), "{out}");
    let mut conn = db.conn();
    let after_first = counts(&mut conn);
    assert!(
        after_first.0 >= 6 && after_first.1 >= 7 && after_first.2 == 1,
        "{after_first:?}"
    );

    let second = run();
    let out2 = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{out2}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(out2.contains("0 event(s) created"), "{out2}");
    assert!(out2.contains("already exists"), "{out2}");
    assert_eq!(counts(&mut conn), after_first);

    // Demo data covers what the issue asks for: two or more zones, a free event, a draft.
    let zones: Vec<String> = events::table
        .select(events::timezone)
        .distinct()
        .load(&mut conn)
        .unwrap();
    assert!(zones.len() >= 2, "{zones:?}");
    let free: i64 = ticket_types::table
        .filter(ticket_types::price_minor.eq(0))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert!(free >= 1);
}

#[test]
fn create_admin_makes_one_account_and_refuses_a_second() {
    let db = TestDb::migrated();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .args([
                "create-admin",
                "--email",
                "boss@example.com",
                "--name",
                "Boss",
            ])
            .env("APP_ENV", "local")
            .env("DATABASE_URL", &db.url)
            .env("LOG_LEVEL", "warn")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success() && out.contains("admin account: boss@example.com / "),
        "{out}"
    );
    let password = out
        .split(" / ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut conn = db.conn();
    let user = ticketing::models::User::find_by_email(&mut conn, "boss@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(user.role, "admin");
    assert!(ticketing::passwords::verify(&password, &user.password_hash));
    assert!(
        !run().status.success(),
        "a second account with the same email is refused"
    );
}
