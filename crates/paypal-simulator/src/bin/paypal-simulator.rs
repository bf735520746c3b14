//! `paypal-simulator`: a stand-in for PayPal's REST API for local work and tests (see
//! `ticketing::simulator`). Settings from the environment:
//! BIND_ADDRESS (127.0.0.1), PORT (9000), SIM_BASE_URL (http://127.0.0.1:PORT),
//! SIM_PUBLIC_URL (where browsers reach the approval page; SIM_BASE_URL),
//! SIM_WEBHOOK_URL (http://127.0.0.1:8000/payments/paypal/webhook), SIM_WEBHOOK_ID (WH-SIMULATOR).

use std::sync::Arc;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[rocket::main]
async fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,rocket=warn"))
        .try_init();
    let address = var("BIND_ADDRESS", "127.0.0.1");
    let port: u16 = match var("PORT", "9000").parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("paypal-simulator: PORT: expected a port number");
            std::process::exit(78);
        }
    };
    let base = var("SIM_BASE_URL", &format!("http://127.0.0.1:{port}"));
    let webhook_url = var(
        "SIM_WEBHOOK_URL",
        "http://127.0.0.1:8000/payments/paypal/webhook",
    );
    let sim = Arc::new(paypal_simulator::Sim::new(
        &base,
        &var("SIM_PUBLIC_URL", &base),
        &webhook_url,
        &var("SIM_WEBHOOK_ID", "WH-SIMULATOR"),
    ));
    let figment = rocket::Config::figment()
        .merge(("address", address))
        .merge(("port", port))
        .merge(("log_level", rocket::config::LogLevel::Off))
        .merge(("ident", "paypal-simulator"));
    println!("paypal-simulator on {base} (webhooks to {webhook_url})");
    if let Err(e) = paypal_simulator::rocket(figment, sim).launch().await {
        eprintln!("paypal-simulator: {e}");
        std::process::exit(1);
    }
}
