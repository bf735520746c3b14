//! Configuration: missing and malformed variables stop the app, each error naming the variable.

use std::collections::HashMap;
use std::process::Command;

use ticketing::config::{AppEnv, Config};

use crate::helpers::base_vars;

fn vars() -> HashMap<String, String> {
    base_vars("postgres://postgres@127.0.0.1:5432/x")
}

fn err_with(change: impl FnOnce(&mut HashMap<String, String>)) -> ticketing::config::ConfigError {
    let mut v = vars();
    change(&mut v);
    Config::from_map(&v).expect_err("configuration should be refused")
}

#[test]
fn valid_local_configuration_has_defaults() {
    let c = Config::from_map(&vars()).unwrap();
    assert_eq!(c.app_env, AppEnv::Local);
    assert_eq!(c.port, 8000);
    assert_eq!(c.hold_minutes, 15);
    assert_eq!(c.secret_key.len(), 64);
    assert!(c.secret_key_generated);
}

#[test]
fn missing_database_url_is_named() {
    let e = err_with(|v| {
        v.remove("DATABASE_URL");
    });
    assert!(e.mentions("DATABASE_URL"), "{e}");
    assert!(e.to_string().contains("DATABASE_URL: is required"), "{e}");
}

#[test]
fn malformed_values_are_named_with_what_is_expected() {
    let cases: &[(&str, &str, &str)] = &[
        ("PORT", "eighty", "port number"),
        ("PORT", "70000", "port number"),
        ("DATABASE_POOL_SIZE", "0", "whole number"),
        ("DATABASE_URL", "mysql://x/y", "postgres://"),
        ("APP_ENV", "staging", "\"local\" or \"production\""),
        ("SECRET_KEY", "too-short", "64 random bytes"),
        ("LOG_FORMAT", "xml", "\"pretty\" or \"json\""),
        ("BIND_ADDRESS", "localhost:80", "IP address"),
        ("HOLD_MINUTES", "-5", "minutes"),
        ("BASE_URL", "ftp://x", "http"),
        ("TEMPLATE_DIR", "/nonexistent/templates", "directory"),
    ];
    for (var, value, expected) in cases {
        let e = err_with(|v| {
            v.insert(var.to_string(), value.to_string());
        });
        assert!(e.mentions(var), "{var}={value}: {e}");
        let line = e
            .to_string()
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{var}:")))
            .unwrap_or_default()
            .to_string();
        assert!(line.contains(expected), "{var}={value}: {line}");
    }
}

#[test]
fn all_problems_are_reported_together() {
    let e = err_with(|v| {
        v.insert("PORT".into(), "x".into());
        v.insert("DATABASE_POOL_SIZE".into(), "y".into());
        v.remove("DATABASE_URL");
    });
    assert_eq!(e.problems.len(), 3, "{e}");
}

#[test]
fn production_requires_secret_key_and_https_base_url() {
    let e = err_with(|v| {
        v.insert("APP_ENV".into(), "production".into());
        v.insert("BASE_URL".into(), "http://tickets.example.com".into());
    });
    assert!(e.mentions("SECRET_KEY"), "{e}");
    assert!(e.mentions("BASE_URL"), "{e}");
}

#[test]
fn the_binary_refuses_to_start_and_names_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "local")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .env("PORT", "not-a-port")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("PORT: expected a port number"), "{stderr}");
}

fn production(v: &mut HashMap<String, String>) {
    v.insert("APP_ENV".into(), "production".into());
    v.insert("BASE_URL".into(), "https://tickets.example.com".into());
    use base64::Engine;
    v.insert(
        "SECRET_KEY".into(),
        base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
    );
}

#[test]
fn production_refuses_the_paypal_simulator_and_sandbox() {
    for mode in ["simulator", "sandbox"] {
        let e = err_with(|v| {
            production(v);
            v.insert("PAYPAL_MODE".into(), mode.into());
        });
        assert!(e.mentions("PAYPAL_MODE"), "{mode}: {e}");
    }
    let e = err_with(|v| {
        production(v);
        v.insert("PAYPAL_MODE".into(), "live".into());
        v.insert("PAYPAL_API_BASE".into(), "http://127.0.0.1:9000".into());
    });
    assert!(e.mentions("PAYPAL_API_BASE"), "{e}");
    let e = err_with(|v| {
        production(v);
        v.insert("PAYPAL_MODE".into(), "live".into());
    });
    for var in [
        "PAYPAL_CLIENT_ID",
        "PAYPAL_CLIENT_SECRET",
        "PAYPAL_WEBHOOK_ID",
    ] {
        assert!(e.mentions(var), "{var}: {e}");
    }
}

#[test]
fn a_live_production_configuration_is_accepted() {
    let mut v = vars();
    production(&mut v);
    for (k, val) in [
        ("PAYPAL_MODE", "live"),
        ("PAYPAL_CLIENT_ID", "id"),
        ("PAYPAL_CLIENT_SECRET", "secret"),
        ("PAYPAL_WEBHOOK_ID", "WH-1"),
        ("SMTP_HOST", "smtp.example.com"),
        ("MAIL_FROM", "tickets@example.com"),
    ] {
        v.insert(k.into(), val.into());
    }
    let c = Config::from_map(&v).unwrap();
    assert_eq!(c.paypal.api_base, "https://api-m.paypal.com");
    assert!(
        !format!("{c:?}").contains("secret\""),
        "the secret is redacted"
    );
}

#[test]
fn bad_mail_combinations_are_named() {
    let e = err_with(|v| {
        v.insert("SMTP_HOST".into(), "smtp.example.com".into());
    });
    assert!(e.mentions("MAIL_FROM"), "{e}");
    let e = err_with(|v| {
        v.insert("SMTP_HOST".into(), "smtp.example.com".into());
        v.insert("MAIL_FROM".into(), "tickets@example.com".into());
        v.insert("SMTP_USERNAME".into(), "user".into());
    });
    assert!(e.mentions("SMTP_PASSWORD"), "{e}");
    let e = err_with(|v| {
        v.insert("SMTP_HOST".into(), "smtp.example.com".into());
        v.insert("MAIL_FROM".into(), "tickets@example.com".into());
        v.insert("SMTP_SECURITY".into(), "none".into());
        v.insert("SMTP_USERNAME".into(), "user".into());
        v.insert("SMTP_PASSWORD".into(), "pw".into());
    });
    assert!(e.mentions("SMTP_SECURITY"), "{e}");
    let e = err_with(|v| {
        v.insert("SMTP_SECURITY".into(), "ssl3".into());
    });
    assert!(e.mentions("SMTP_SECURITY"), "{e}");
    let e = err_with(|v| {
        production(v);
        v.insert("PAYPAL_MODE".into(), "live".into());
    });
    assert!(e.mentions("SMTP_HOST"), "production needs SMTP: {e}");
}
