//! PayPal payments (SPEC §4): the flow (on the `ticketing-paypal` client and verifier)
//! that turns PayPal's answers into booking states without ever losing a payment or taking
//! one twice. PayPal's word is always read fresh (`GET /v2/checkout/orders/{id}`) before a
//! booking changes; webhook bodies only say *which* order to look at.

mod capture;
pub mod order;
mod reconciliation;
pub mod refunds;
pub mod service;
mod settlement;
mod webhook_verify;
mod webhooks;

use std::sync::Arc;

pub use service::{CaptureOutcome, PayPal};
pub use ticketing_paypal::{
    client, verify, PayPalClient, PayPalError, PayPalMode, PayPalSettings, WebhookVerification,
    SIMULATOR_CERT_NAME,
};

/// Builds the PayPal service from settings; fails when the trusted CA files cannot be read.
pub fn build(
    settings: PayPalSettings,
    base_url: &str,
    site_name: &str,
    hold_minutes: u32,
    production: bool,
) -> Result<PayPal, String> {
    let mut ca_files = settings.ca_files.clone();
    if ca_files.is_empty() {
        for default in [
            "/etc/ssl/certs/ca-certificates.crt",
            "config/paypal-webhook-ca.pem",
        ] {
            if std::path::Path::new(default).is_file() {
                ca_files.push(default.into());
            }
        }
    }
    let trust = verify::TrustStore::from_files(&ca_files)?;
    let mut policy = verify::CertPolicy::default();
    if settings.mode == PayPalMode::Simulator && !production {
        policy
            .extra_url_prefixes
            .push(settings.api_base.trim_end_matches('/').to_string());
        policy
            .extra_subject_names
            .push(SIMULATOR_CERT_NAME.to_string());
    }
    Ok(PayPal::new(
        Arc::new(PayPalClient::new(settings)),
        trust,
        policy,
        base_url,
        site_name,
        hold_minutes,
    ))
}
