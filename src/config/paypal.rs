//! Reads the PayPal client's settings (`ticketing_paypal::PayPalSettings`).

use std::path::PathBuf;

use super::Reader;

/// PayPal's settings. The simulator needs no credentials; live and sandbox need all of
/// them; production accepts only live, on PayPal's live API host.
pub(super) fn read(r: &mut Reader, production: bool) -> crate::paypal::PayPalSettings {
    use crate::paypal::{PayPalMode, PayPalSettings, WebhookVerification};
    let mode = match r.raw("PAYPAL_MODE").as_deref() {
        None if production => {
            r.problem(
                "PAYPAL_MODE",
                "is required in production; expected \"live\"",
            );
            PayPalMode::Live
        }
        None => PayPalMode::Simulator,
        Some("live") => PayPalMode::Live,
        Some("sandbox") => PayPalMode::Sandbox,
        Some("simulator") => PayPalMode::Simulator,
        Some(other) => {
            r.problem(
                "PAYPAL_MODE",
                format!("expected \"live\", \"sandbox\" or \"simulator\", got {other:?}"),
            );
            PayPalMode::Simulator
        }
    };
    if production && mode != PayPalMode::Live {
        r.problem(
            "PAYPAL_MODE",
            "must be \"live\" in production: the simulator and sandbox credentials take no real money",
        );
    }
    let default_base = match mode {
        PayPalMode::Live => "https://api-m.paypal.com",
        PayPalMode::Sandbox => "https://api-m.sandbox.paypal.com",
        PayPalMode::Simulator => "http://127.0.0.1:9000",
    };
    let api_base = r
        .raw("PAYPAL_API_BASE")
        .unwrap_or_else(|| default_base.into())
        .trim_end_matches('/')
        .to_string();
    if !(api_base.starts_with("https://")
        || (mode == PayPalMode::Simulator && api_base.starts_with("http://")))
    {
        r.problem(
            "PAYPAL_API_BASE",
            format!("expected an https:// URL, got {api_base:?}"),
        );
    }
    if production && api_base != "https://api-m.paypal.com" {
        r.problem(
            "PAYPAL_API_BASE",
            "must be https://api-m.paypal.com in production (or unset)",
        );
    }
    let credential = |r: &mut Reader, var: &'static str, sim_default: &str| -> String {
        match (r.raw(var), mode) {
            (Some(v), _) => v,
            (None, PayPalMode::Simulator) => sim_default.to_string(),
            (None, _) => {
                r.problem(
                    var,
                    "is required for PayPal live and sandbox (from the PayPal developer dashboard)",
                );
                String::new()
            }
        }
    };
    let client_id = credential(r, "PAYPAL_CLIENT_ID", "simulator-client");
    let client_secret = credential(r, "PAYPAL_CLIENT_SECRET", "simulator-secret");
    let webhook_id = credential(r, "PAYPAL_WEBHOOK_ID", "WH-SIMULATOR");
    let verification = match r.raw("PAYPAL_WEBHOOK_VERIFY").as_deref() {
        None | Some("offline") => WebhookVerification::Offline,
        Some("api") => WebhookVerification::Api,
        Some(other) => {
            r.problem(
                "PAYPAL_WEBHOOK_VERIFY",
                format!("expected \"offline\" or \"api\", got {other:?}"),
            );
            WebhookVerification::Offline
        }
    };
    let ca_files: Vec<PathBuf> = r
        .raw("PAYPAL_WEBHOOK_CA_FILE")
        .map(|v| v.split(',').map(|p| PathBuf::from(p.trim())).collect())
        .unwrap_or_default();
    for f in &ca_files {
        if !f.is_file() {
            r.problem(
                "PAYPAL_WEBHOOK_CA_FILE",
                format!("expected PEM files, but {f:?} does not exist"),
            );
        }
    }
    let timeout = r.parsed(
        "PAYPAL_TIMEOUT_SECONDS",
        15u64,
        "a whole number of seconds from 1 to 120",
        |n| (1..=120).contains(n),
    );
    PayPalSettings {
        mode,
        api_base,
        client_id,
        client_secret,
        webhook_id,
        verification,
        ca_files,
        timeout: std::time::Duration::from_secs(timeout),
    }
}
