//! Contract test: every request our PayPal client sends is valid against PayPal's own OpenAPI
//! specs. Prism (`@stoplight/prism-cli`, installed by scripts/test into tests/contract) mocks
//! the Orders and Payments specs on 127.0.0.1 and answers 422 to any request that breaks them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ticketing::money::Money;
use ticketing::paypal::client::{
    NewOrder, PayPalClient, PayPalMode, PayPalSettings, WebhookVerification,
};

struct Prism {
    child: Child,
    base: String,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prism(spec: &str) -> Prism {
    let bin = std::env::var("PRISM_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/contract/node_modules/.bin/prism"
        )
        .to_string()
    });
    assert!(
        std::path::Path::new(&bin).exists(),
        "Prism is not installed at {bin}: run scripts/test (it runs npm install in tests/contract)"
    );
    let port = crate::helpers::free_port();
    let spec = format!("{}/../shared/paypal/{spec}", env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(bin)
        .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string(), &spec])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prism");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prism did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Prism {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn client(base: &str) -> PayPalClient {
    crate::helpers::install_crypto();
    let c = PayPalClient::new(PayPalSettings {
        mode: PayPalMode::Sandbox,
        api_base: base.to_string(),
        client_id: "contract".into(),
        client_secret: "contract".into(),
        webhook_id: "WH-CONTRACT".into(),
        verification: WebhookVerification::Offline,
        ca_files: vec![],
        timeout: Duration::from_secs(20),
    });
    c.preset_token("A21AAcontracttest", Duration::from_secs(3600))
        .await;
    c
}

#[rocket::async_test]
async fn our_requests_match_paypals_openapi_specs() {
    crate::helpers::install_crypto();
    let orders = prism("checkout_orders_v2.prism-compatible.json");
    let payments = prism("payments_payment_v2.json");

    // Prism really validates: a body that breaks the spec is refused.
    let raw = reqwest::Client::new()
        .post(format!("{}/v2/checkout/orders", orders.base))
        .bearer_auth("A21AAcontracttest")
        .json(&serde_json::json!({ "intent": "BOGUS", "purchase_units": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422, "Prism did not reject an invalid order");

    let c = client(&orders.base).await;
    let order = NewOrder {
        booking_id: 42,
        reference: "BK-7F3KQ9XM2D".into(),
        description: "Midwinter Jazz Night — 2 ticket(s)".into(),
        amount: Money::new(5000, "EUR"),
        return_url: "https://tickets.example.com/payments/paypal/return".into(),
        cancel_url: "https://tickets.example.com/payments/paypal/cancel".into(),
        brand_name: "Tickets".into(),
    };
    c.create_order(&order, "order-BK-7F3KQ9XM2D")
        .await
        .expect("create order is valid");
    let yen = NewOrder {
        amount: Money::new(3500, "JPY"),
        ..order
    };
    c.create_order(&yen, "order-BK-JPY")
        .await
        .expect("a JPY order is valid");
    c.get_order("5O190127TN364715T")
        .await
        .expect("get order is valid");
    c.capture_order("5O190127TN364715T", "capture-1-0")
        .await
        .expect("capture is valid");

    let p = client(&payments.base).await;
    p.refund_capture(
        "2GG279541U471931P",
        Some(&Money::new(1000, "EUR")),
        "BK-7F3KQ9XM2D",
        "partial",
        "refund-1-a",
    )
    .await
    .expect("partial refund is valid");
    p.refund_capture(
        "2GG279541U471931P",
        None,
        "BK-7F3KQ9XM2D",
        "full",
        "refund-1-b",
    )
    .await
    .expect("full refund is valid");
}
