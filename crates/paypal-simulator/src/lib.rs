//! A PayPal simulator: a separate program (`paypal-simulator`, never mounted in the app) that
//! speaks the subset of PayPal's REST API the app uses, with the same paths, shapes and error
//! bodies (Orders v2, Payments v2, Webhooks v1, OAuth token), an approval page with Approve /
//! Decline / Cancel, its own CA and RSA signing certificate served at its cert URL, and
//! signed webhooks sent to the app. Tests (or a developer) steer it through `/simulator/*`:
//! make captures PENDING or declined, answer 500s, delay answers, and drop, duplicate,
//! delay or reorder webhooks.

mod api;
mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Rocket, State};
use rsa::pkcs8::EncodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Deserialize;
use serde_json::{json, Value};

use ticketing_paypal::verify::{self, TransmissionHeaders};
use ticketing_paypal::SIMULATOR_CERT_NAME;

/// How the simulator behaves; changed with `POST /simulator/control`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Control {
    /// Outcome of the next captures: COMPLETED, PENDING, DECLINED or INSTRUMENT_DECLINED.
    pub capture_outcome: String,
    /// Answer this many next API calls with 500 INTERNAL_SERVER_ERROR.
    pub fail_next: u32,
    /// Carry out this many next API calls but answer 500 (the answer is lost on the way);
    /// a repeat with the same PayPal-Request-Id gets the real answer.
    pub lose_next: u32,
    /// Wait this long before answering API calls (timeouts)...
    pub delay_ms: u64,
    /// ...for this many next calls only (0: every call).
    pub delay_next: u32,
    /// normal, drop, duplicate, reorder (held until flushed, then sent newest first), delay.
    pub webhook_mode: String,
    pub webhook_delay_ms: u64,
    /// Deliveries per event in duplicate mode.
    pub duplicates: u32,
    /// Where webhooks go.
    pub webhook_url: String,
    /// Like PayPal, deliver a webhook again this many times when the app does not answer 2xx...
    pub redeliveries: u32,
    /// ...waiting this long between deliveries.
    pub redeliver_ms: u64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            capture_outcome: "COMPLETED".into(),
            fail_next: 0,
            lose_next: 0,
            delay_ms: 0,
            delay_next: 0,
            webhook_mode: "normal".into(),
            webhook_delay_ms: 0,
            duplicates: 2,
            webhook_url: String::new(),
            redeliveries: 0,
            redeliver_ms: 300,
        }
    }
}

#[derive(Debug, Clone)]
struct SimOrder {
    id: String,
    status: String,
    body: Value,
    return_url: String,
    cancel_url: String,
    /// Set by the approval page's Decline: the chosen funding source will be declined.
    decline_funding: bool,
    captures: Vec<Value>,
}

/// Keys and certificates: a CA (ECDSA) and an RSA leaf that signs webhooks.
pub struct Signer2 {
    key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
    pub ca_pem: String,
    pub cert_pem: String,
}

fn make_keys() -> Signer2 {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PKCS_RSA_SHA256,
    };
    let mut rng = rand::thread_rng();
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
    let der = rsa_key.to_pkcs8_der().expect("PKCS#8");
    let leaf_key = KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()),
        &PKCS_RSA_SHA256,
    )
    .expect("rcgen RSA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "PayPal Simulator CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf = CertificateParams::new(vec![SIMULATOR_CERT_NAME.to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf certificate");
    Signer2 {
        key: rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key),
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
    }
}

pub struct Sim {
    base: String,
    /// Where buyers' browsers reach the approval page (may differ from `base` in Docker).
    public: String,
    webhook_id: String,
    signer: Signer2,
    control: Mutex<Control>,
    orders: Mutex<HashMap<String, SimOrder>>,
    /// Responses already given, by PayPal-Request-Id (idempotency).
    replies: Mutex<HashMap<String, (u16, Value)>>,
    held: Mutex<Vec<(String, Vec<u8>)>>,
    http: reqwest::Client,
    counter: Mutex<u64>,
}

impl Sim {
    /// `base`: the API's URL as the app reaches it (also in certificate URLs); `public`: the
    /// approval page's URL as browsers reach it (empty: the same as `base`).
    pub fn new(base: &str, public: &str, webhook_url: &str, webhook_id: &str) -> Sim {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = base.trim_end_matches('/').to_string();
        let public = if public.is_empty() {
            base.clone()
        } else {
            public.trim_end_matches('/').to_string()
        };
        Sim {
            base,
            public,
            webhook_id: webhook_id.to_string(),
            signer: make_keys(),
            control: Mutex::new(Control {
                webhook_url: webhook_url.to_string(),
                ..Control::default()
            }),
            orders: Mutex::new(HashMap::new()),
            replies: Mutex::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            counter: Mutex::new(0),
        }
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut c = self.counter.lock().unwrap();
        *c += 1;
        format!(
            "{prefix}{}{:06}",
            ticketing_core::tokens::crockford_code(8),
            *c
        )
    }

    fn control(&self) -> Control {
        self.control.lock().unwrap().clone()
    }

    /// The headers PayPal would send with `body`, signed with the simulator's key.
    pub fn sign(&self, body: &[u8]) -> TransmissionHeaders {
        let mut h = TransmissionHeaders {
            transmission_id: ticketing_core::tokens::url_token(12),
            transmission_time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            transmission_sig: String::new(),
            cert_url: format!("{}/v1/notifications/certs/CERT-SIMULATOR", self.base),
            auth_algo: "SHA256withRSA".into(),
        };
        let message = verify::signed_message(&h, &self.webhook_id, body);
        let sig = self.signer.key.sign(message.as_bytes());
        h.transmission_sig = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        h
    }

    /// Sends (or holds, drops, duplicates, delays) a webhook for `event_type` about `resource`.
    fn webhook(self: &Arc<Self>, event_type: &str, resource_type: &str, resource: Value) {
        let event = json!({
            "id": self.next_id("WH-"),
            "create_time": chrono::Utc::now().to_rfc3339(),
            "resource_type": resource_type,
            "event_type": event_type,
            "summary": format!("{event_type} (simulator)"),
            "resource": resource,
            "event_version": "1.0",
            "resource_version": "2.0",
        });
        let body = serde_json::to_vec(&event).expect("JSON");
        let control = self.control();
        match control.webhook_mode.as_str() {
            "drop" => {}
            "reorder" => self
                .held
                .lock()
                .unwrap()
                .push((event_type.to_string(), body)),
            mode => {
                let times = if mode == "duplicate" {
                    control.duplicates.max(1)
                } else {
                    1
                };
                let delay = if mode == "delay" {
                    control.webhook_delay_ms
                } else {
                    0
                };
                let sim = self.clone();
                rocket::tokio::spawn(async move {
                    rocket::tokio::time::sleep(Duration::from_millis(delay)).await;
                    for _ in 0..times {
                        sim.deliver(&body).await;
                    }
                });
            }
        }
    }

    /// Delivers a signed webhook, again (up to `redeliveries` times) while the app answers
    /// anything but 2xx or cannot be reached.
    async fn deliver(&self, body: &[u8]) {
        let control = self.control();
        for attempt in 0..=control.redeliveries {
            if attempt > 0 {
                rocket::tokio::time::sleep(Duration::from_millis(control.redeliver_ms)).await;
            }
            let url = self.control().webhook_url;
            if url.is_empty() {
                return;
            }
            let h = self.sign(body);
            let res = self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("paypal-transmission-id", &h.transmission_id)
                .header("paypal-transmission-time", &h.transmission_time)
                .header("paypal-transmission-sig", &h.transmission_sig)
                .header("paypal-cert-url", &h.cert_url)
                .header("paypal-auth-algo", &h.auth_algo)
                .body(body.to_vec())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(status = r.status().as_u16(), "simulator: webhook delivered");
                    return;
                }
                Ok(r) => {
                    tracing::info!(status = r.status().as_u16(), "simulator: webhook refused")
                }
                Err(e) => tracing::warn!(error = %e, "simulator: webhook delivery failed"),
            }
        }
    }

    fn order_json(&self, o: &SimOrder) -> Value {
        let mut units = o.body["purchase_units"].clone();
        if let Some(unit) = units.get_mut(0) {
            if !o.captures.is_empty() {
                unit["payments"] = json!({ "captures": o.captures });
            }
        }
        json!({
            "id": o.id,
            "intent": "CAPTURE",
            "status": o.status,
            "purchase_units": units,
            "create_time": chrono::Utc::now().to_rfc3339(),
            "links": [
                { "href": format!("{}/v2/checkout/orders/{}", self.base, o.id), "rel": "self", "method": "GET" },
                { "href": format!("{}/checkoutnow?token={}", self.public, o.id), "rel": "payer-action", "method": "GET" },
            ],
        })
    }
}

/// The simulator as a Rocket application (its own binary mounts it; tests too).
/// The simulator keeps no cookies, but Rocket's `secrets` feature (the site's, unified into
/// the same build) refuses to start a release build without a key; a fresh random one per
/// start is all it needs (test: `compose check` in scripts/test-deploy starts the release
/// binary with the dev compose file's environment).
pub fn rocket(figment: rocket::figment::Figment, sim: Arc<Sim>) -> Rocket<Build> {
    let mut key = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
    let figment = figment.merge((
        "secret_key",
        base64::engine::general_purpose::STANDARD.encode(key),
    ));
    rocket::custom(figment).manage(sim).mount(
        "/",
        routes![
            api::token,
            api::create_order,
            api::get_order,
            api::capture,
            api::refund,
            api::verify_signature,
            pages::cert,
            pages::ca,
            pages::approval_page,
            pages::approval_action,
            pages::approve_only,
            pages::capture_action,
            pages::set_control,
            pages::get_control,
            pages::flush
        ],
    )
}
