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
        (
            "DATABASE_STATEMENT_TIMEOUT_SECONDS",
            "0",
            "seconds from 1 to 3600",
        ),
        (
            "DATABASE_LOCK_TIMEOUT_SECONDS",
            "forever",
            "seconds from 1 to 600",
        ),
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
        base64::engine::general_purpose::STANDARD.encode(ticketing::tokens::random_bytes(64)),
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn production_refuses_a_weak_secret_key() {
    let counting: Vec<u8> = (0..64).collect();
    for key in [
        vec![0u8; 64],
        vec![7u8; 64],
        counting,
        b"0123456789abcdef".repeat(4),
    ] {
        let e = err_with(|v| {
            production(v);
            v.insert("SECRET_KEY".into(), b64(&key));
        });
        assert!(e.mentions("SECRET_KEY"), "{key:?}: {e}");
        let line = e
            .to_string()
            .lines()
            .find(|l| l.trim_start().starts_with("SECRET_KEY:"))
            .unwrap_or_default()
            .to_string();
        assert!(line.contains("not random enough"), "{line}");
        assert!(line.contains("openssl rand -base64 64"), "{line}");
    }
    // A random key passes; locally a weak key is tolerated (development).
    let e = err_with(production);
    assert!(!e.mentions("SECRET_KEY"), "{e}");
    let mut v = vars();
    v.insert("SECRET_KEY".into(), b64(&[0u8; 64]));
    assert!(Config::from_map(&v).is_ok());
}

#[test]
fn a_ranges_file_wider_than_cloudflare_publishes_is_refused() {
    let dir = std::env::temp_dir().join(format!("ranges-{}", ticketing::tokens::url_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    for (range, says) in [
        ("0.0.0.0/0", "wider than any range Cloudflare publishes"),
        ("::/0", "wider than any range Cloudflare publishes"),
        ("104.0.0.0/8", "wider than any range Cloudflare publishes"),
        ("10.1.0.0/16", "non-public"),
        ("127.0.0.1/32", "non-public"),
    ] {
        let file = dir.join("ips.txt");
        std::fs::write(&file, format!("# Cloudflare\n173.245.48.0/20\n{range}\n")).unwrap();
        let e = err_with(|v| {
            v.insert("CLOUDFLARE_IPS_FILE".into(), file.display().to_string());
        });
        assert!(e.mentions("CLOUDFLARE_IPS_FILE"), "{range}: {e}");
        assert!(e.to_string().contains("line 3"), "{range}: {e}");
        assert!(e.to_string().contains(says), "{range}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_binary_refuses_weak_production_settings_and_names_them() {
    let dir = std::env::temp_dir().join(format!("weak-{}", ticketing::tokens::url_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let ranges = dir.join("ips.txt");
    std::fs::write(&ranges, "0.0.0.0/0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "production")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .env("SECRET_KEY", b64(&[0u8; 64]))
        .env("CLOUDFLARE_IPS_FILE", &ranges)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("SECRET_KEY: is not random enough"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "CLOUDFLARE_IPS_FILE: expected a file of CIDR ranges: line 1: \"0.0.0.0/0\" is wider"
        ),
        "{stderr}"
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
