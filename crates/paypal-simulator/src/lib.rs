//! A PayPal simulator: a separate program (`paypal-simulator`, never mounted in the app) that
//! speaks the subset of PayPal's REST API the app uses, with the same paths, shapes and error
//! bodies (Orders v2, Payments v2, Webhooks v1, OAuth token), an approval page with Approve /
//! Decline / Cancel, its own CA and RSA signing certificate served at its cert URL, and
//! signed webhooks sent to the app. Tests (or a developer) steer it through `/simulator/*`:
//! make captures PENDING or declined, answer 500s, delay answers, and drop, duplicate,
//! delay or reorder webhooks.

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

/// PayPal-style error body.
fn error(status: u16, name: &str, issue: Option<&str>, message: &str) -> (Status, Json<Value>) {
    let mut body = json!({
        "name": name,
        "message": message,
        "debug_id": ticketing_core::tokens::crockford_code(13).to_lowercase(),
    });
    if let Some(issue) = issue {
        body["details"] = json!([{ "issue": issue, "description": message }]);
    }
    (Status::new(status), Json(body))
}

/// Request guard for the simulator's API: bearer token, PayPal-Request-Id, and the
/// steerable failures (500s and delays).
pub struct Api {
    request_id: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Api {
    type Error = (Status, Json<Value>);

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let sim = req.rocket().state::<Arc<Sim>>().expect("Sim state");
        let auth = req.headers().get_one("Authorization").unwrap_or("");
        if !auth.starts_with("Bearer ") {
            let e = error(401, "AUTHENTICATION_FAILURE", None, "Authentication failed due to invalid authentication credentials or a missing Authorization header.");
            return Outcome::Error((Status::Unauthorized, e));
        }
        let delay = {
            let mut c = sim.control.lock().unwrap();
            match c.delay_next {
                0 => c.delay_ms,
                1 => {
                    c.delay_next = 0;
                    let d = c.delay_ms;
                    c.delay_ms = 0;
                    d
                }
                _ => {
                    c.delay_next -= 1;
                    c.delay_ms
                }
            }
        };
        if delay > 0 {
            rocket::tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let fail = {
            let mut c = sim.control.lock().unwrap();
            if c.fail_next > 0 {
                c.fail_next -= 1;
                true
            } else {
                false
            }
        };
        if fail {
            let e = error(
                500,
                "INTERNAL_SERVER_ERROR",
                None,
                "An internal server error occurred.",
            );
            return Outcome::Error((Status::InternalServerError, e));
        }
        Outcome::Success(Api {
            request_id: req
                .headers()
                .get_one("PayPal-Request-Id")
                .map(str::to_string),
        })
    }
}

type Reply = (Status, Json<Value>);

/// Runs `f` once per request id; a repeated id gets the first answer again.
/// With `lose_next` set, the answer (first or repeated) is replaced by a 500 after the work
/// is done.
fn idempotent(sim: &Sim, scope: &str, api: &Api, f: impl FnOnce() -> Reply) -> Reply {
    let key = api.request_id.as_ref().map(|id| format!("{scope}:{id}"));
    let (status, body) = {
        // Held while the work is done, so two requests with one id never both do it.
        let mut replies = sim.replies.lock().unwrap();
        match key.as_ref().and_then(|key| replies.get(key).cloned()) {
            Some((status, body)) => (Status::new(status), body),
            None => {
                let (status, Json(body)) = f();
                if let Some(key) = key {
                    replies.insert(key, (status.code, body.clone()));
                }
                (status, body)
            }
        }
    };
    let lose = {
        let mut c = sim.control.lock().unwrap();
        let lose = c.lose_next > 0;
        c.lose_next = c.lose_next.saturating_sub(1);
        lose
    };
    if lose {
        return error(
            500,
            "INTERNAL_SERVER_ERROR",
            None,
            "An internal server error occurred.",
        );
    }
    (status, Json(body))
}

#[post("/v1/oauth2/token")]
fn token(req_auth: BasicAuth) -> Reply {
    let _ = req_auth;
    (
        Status::Ok,
        Json(json!({
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": format!("A21AA{}", ticketing_core::tokens::url_token(24)),
            "token_type": "Bearer",
            "app_id": "APP-SIMULATOR",
            "expires_in": 32400,
            "nonce": ticketing_core::tokens::url_token(12),
        })),
    )
}

pub struct BasicAuth;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicAuth {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("Authorization") {
            Some(a) if a.starts_with("Basic ") => Outcome::Success(BasicAuth),
            _ => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[post("/v2/checkout/orders", data = "<body>")]
fn create_order(sim: &State<Arc<Sim>>, api: Api, body: Json<Value>) -> Reply {
    let body = body.into_inner();
    idempotent(sim, "create", &api, || {
        let unit = &body["purchase_units"][0];
        let amount = &unit["amount"];
        let valid = body["intent"] == "CAPTURE"
            && amount["currency_code"]
                .as_str()
                .is_some_and(|c| c.len() == 3)
            && amount["value"].as_str().is_some_and(|v| !v.is_empty());
        if !valid {
            return error(422, "UNPROCESSABLE_ENTITY", Some("INVALID_PARAMETER_VALUE"), "The requested action could not be performed, semantically incorrect, or failed business validation.");
        }
        let ctx = &body["payment_source"]["paypal"]["experience_context"];
        let order = SimOrder {
            id: sim.next_id(""),
            status: "PAYER_ACTION_REQUIRED".into(),
            return_url: ctx["return_url"].as_str().unwrap_or_default().to_string(),
            cancel_url: ctx["cancel_url"].as_str().unwrap_or_default().to_string(),
            body: body.clone(),
            decline_funding: false,
            captures: Vec::new(),
        };
        let reply = sim.order_json(&order);
        sim.orders.lock().unwrap().insert(order.id.clone(), order);
        (Status::Ok, Json(reply))
    })
}

#[get("/v2/checkout/orders/<id>")]
fn get_order(sim: &State<Arc<Sim>>, _api: Api, id: &str) -> Reply {
    match sim.orders.lock().unwrap().get(id) {
        Some(o) => (Status::Ok, Json(sim.order_json(o))),
        None => error(
            404,
            "RESOURCE_NOT_FOUND",
            Some("INVALID_RESOURCE_ID"),
            "Specified resource ID does not exist.",
        ),
    }
}

#[post("/v2/checkout/orders/<id>/capture")]
fn capture(sim: &State<Arc<Sim>>, api: Api, id: &str) -> Reply {
    let sim_arc: Arc<Sim> = (*sim).clone();
    idempotent(sim, "capture", &api, || {
        let mut orders = sim.orders.lock().unwrap();
        let Some(order) = orders.get_mut(id) else {
            return error(
                404,
                "RESOURCE_NOT_FOUND",
                Some("INVALID_RESOURCE_ID"),
                "Specified resource ID does not exist.",
            );
        };
        if order.captures.iter().any(|c| c["status"] != "DECLINED") {
            return error(422, "UNPROCESSABLE_ENTITY", Some("ORDER_ALREADY_CAPTURED"), "Order already captured. If intent is CAPTURE only one capture per order is allowed.");
        }
        if order.status != "APPROVED" {
            return error(
                422,
                "UNPROCESSABLE_ENTITY",
                Some("ORDER_NOT_APPROVED"),
                "Payer has not yet approved the Order for payment.",
            );
        }
        let control = sim.control();
        let outcome = if order.decline_funding {
            "INSTRUMENT_DECLINED".to_string()
        } else {
            control.capture_outcome.clone()
        };
        if outcome == "INSTRUMENT_DECLINED" {
            order.decline_funding = false;
            order.status = "PAYER_ACTION_REQUIRED".into();
            return error(422, "UNPROCESSABLE_ENTITY", Some("INSTRUMENT_DECLINED"), "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.");
        }
        let unit = &order.body["purchase_units"][0];
        let capture = json!({
            "id": sim.next_id("CAP"),
            "status": outcome,
            "amount": unit["amount"],
            "final_capture": true,
            "custom_id": unit["custom_id"],
            "invoice_id": unit["invoice_id"],
            "supplementary_data": { "related_ids": { "order_id": order.id } },
            "links": [
                { "href": format!("{}/v2/payments/captures/x", sim.base), "rel": "self", "method": "GET" },
                { "href": format!("{}/v2/checkout/orders/{}", sim.base, order.id), "rel": "up", "method": "GET" },
            ],
        });
        order.captures.push(capture.clone());
        order.status = if outcome == "DECLINED" {
            "PAYER_ACTION_REQUIRED".into()
        } else {
            "COMPLETED".into()
        };
        let reply = sim.order_json(order);
        drop(orders);
        let event = match outcome.as_str() {
            "COMPLETED" => "PAYMENT.CAPTURE.COMPLETED",
            "PENDING" => "PAYMENT.CAPTURE.PENDING",
            _ => "PAYMENT.CAPTURE.DECLINED",
        };
        sim_arc.webhook(event, "capture", capture);
        (Status::Created, Json(reply))
    })
}

fn find_capture<'a>(
    orders: &'a mut HashMap<String, SimOrder>,
    capture_id: &str,
) -> Option<(&'a mut SimOrder, usize)> {
    orders.values_mut().find_map(|o| {
        let i = o.captures.iter().position(|c| c["id"] == capture_id)?;
        Some((o, i))
    })
}

#[post("/v2/payments/captures/<id>/refund", data = "<body>")]
fn refund(sim: &State<Arc<Sim>>, api: Api, id: &str, body: Option<Json<Value>>) -> Reply {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let body = body.map(|b| b.into_inner()).unwrap_or(Value::Null);
    idempotent(sim, "refund", &api, || {
        let mut orders = sim.orders.lock().unwrap();
        let Some((order, i)) = find_capture(&mut orders, id) else {
            return error(
                404,
                "RESOURCE_NOT_FOUND",
                Some("INVALID_RESOURCE_ID"),
                "Specified resource ID does not exist.",
            );
        };
        let capture = &mut order.captures[i];
        if !matches!(
            capture["status"].as_str(),
            Some("COMPLETED" | "PARTIALLY_REFUNDED")
        ) {
            return error(
                422,
                "UNPROCESSABLE_ENTITY",
                Some("CAPTURE_FULLY_REFUNDED"),
                "The capture has already been fully refunded.",
            );
        }
        let to_minor = |v: &Value| -> i64 {
            let s = v.as_str().unwrap_or("0");
            let (a, b) = s.split_once('.').unwrap_or((s, ""));
            a.parse::<i64>().unwrap_or(0) * 10i64.pow(b.len() as u32)
                + b.parse::<i64>().unwrap_or(0)
        };
        let total = to_minor(&capture["amount"]["value"]);
        let done = capture["refunded_minor"].as_i64().unwrap_or(0);
        let amount = if body["amount"].is_object() {
            to_minor(&body["amount"]["value"])
        } else {
            total - done
        };
        if amount <= 0 || amount + done > total {
            return error(422, "UNPROCESSABLE_ENTITY", Some("REFUND_AMOUNT_EXCEEDED"), "The refund amount must be less than or equal to the capture amount that has not yet been refunded.");
        }
        capture["refunded_minor"] = json!(done + amount);
        capture["status"] = json!(if done + amount == total {
            "REFUNDED"
        } else {
            "PARTIALLY_REFUNDED"
        });
        let refund = json!({
            "id": sim.next_id("REF"),
            "status": "COMPLETED",
            "amount": body["amount"].clone(),
            "invoice_id": body["invoice_id"].clone(),
            "links": [
                { "href": format!("{}/v2/payments/captures/{}", sim.base, id), "rel": "up", "method": "GET" },
            ],
        });
        drop(orders);
        sim_arc.webhook("PAYMENT.CAPTURE.REFUNDED", "refund", refund.clone());
        (Status::Created, Json(refund))
    })
}

/// Verifies like PayPal: the signed CRC-32 is of `webhook_event`'s bytes exactly as
/// received, never of a re-serialisation. Test:
/// `the_simulator_verifies_the_webhook_event_as_received` (tests/it/paypal_verify.rs).
#[post("/v1/notifications/verify-webhook-signature", data = "<body>")]
async fn verify_signature(sim: &State<Arc<Sim>>, _api: Api, body: rocket::Data<'_>) -> Reply {
    /// The request, `webhook_event` as the raw text sent.
    #[derive(Deserialize)]
    struct VerifyRequest<'r> {
        #[serde(default)]
        auth_algo: String,
        #[serde(default)]
        cert_url: String,
        #[serde(default)]
        transmission_id: String,
        #[serde(default)]
        transmission_sig: String,
        #[serde(default)]
        transmission_time: String,
        #[serde(default)]
        webhook_id: String,
        #[serde(borrow)]
        webhook_event: &'r serde_json::value::RawValue,
    }
    let text = match body
        .open(rocket::data::ByteUnit::Mebibyte(1))
        .into_string()
        .await
    {
        Ok(text) if text.is_complete() => text.into_inner(),
        _ => {
            return error(
                413,
                "INVALID_REQUEST",
                None,
                "The request body is too large.",
            )
        }
    };
    let Ok(b) = serde_json::from_str::<VerifyRequest<'_>>(&text) else {
        return error(
            400,
            "INVALID_REQUEST",
            Some("MALFORMED_REQUEST_JSON"),
            "The request JSON is not well formed.",
        );
    };
    let h = TransmissionHeaders {
        transmission_id: b.transmission_id,
        transmission_time: b.transmission_time,
        transmission_sig: b.transmission_sig,
        cert_url: b.cert_url,
        auth_algo: b.auth_algo,
    };
    let trust = verify::TrustStore {
        certs: verify::pem_certs(sim.signer.ca_pem.as_bytes()).unwrap_or_default(),
    };
    let policy = verify::CertPolicy {
        extra_url_prefixes: vec![sim.base.clone()],
        extra_subject_names: vec![SIMULATOR_CERT_NAME.into()],
    };
    let ok = verify::verify(
        &h,
        b.webhook_event.get().as_bytes(),
        &b.webhook_id,
        sim.signer.cert_pem.as_bytes(),
        &trust,
        &policy,
        std::time::SystemTime::now(),
    )
    .is_ok();
    (
        Status::Ok,
        Json(json!({ "verification_status": if ok { "SUCCESS" } else { "FAILURE" } })),
    )
}

#[get("/v1/notifications/certs/<_name>")]
fn cert(sim: &State<Arc<Sim>>, _name: &str) -> (ContentType, String) {
    (ContentType::Plain, sim.signer.cert_pem.clone())
}

#[get("/simulator/ca.pem")]
fn ca(sim: &State<Arc<Sim>>) -> (ContentType, String) {
    (ContentType::Plain, sim.signer.ca_pem.clone())
}

#[get("/checkoutnow?<token>")]
fn approval_page(sim: &State<Arc<Sim>>, token: &str) -> Result<RawHtml<String>, Status> {
    let orders = sim.orders.lock().unwrap();
    let order = orders.get(token).ok_or(Status::NotFound)?;
    let amount = &order.body["purchase_units"][0]["amount"];
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Ok(RawHtml(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>PayPal Simulator</title><link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1rem;border-radius:8px;border:1px solid #888;cursor:pointer}}.approve{{background:#ffc439;border-color:#ffc439}}</style></head>
<body><h1>PayPal Simulator</h1><p>Pay <strong id="amount">{value} {currency}</strong> for <span>{desc}</span>.</p>
<form method="post" action="/checkoutnow/{id}/approve"><button class="approve" type="submit">Approve</button></form>
<form method="post" action="/checkoutnow/{id}/decline"><button type="submit">Decline (card will be refused)</button></form>
<form method="post" action="/checkoutnow/{id}/cancel"><button type="submit">Cancel and return</button></form>
<p><small>Test double of PayPal for local work. No money moves.</small></p></body></html>"#,
        value = esc(amount["value"].as_str().unwrap_or("")),
        currency = esc(amount["currency_code"].as_str().unwrap_or("")),
        desc = esc(order.body["purchase_units"][0]["description"]
            .as_str()
            .unwrap_or("")),
        id = esc(&order.id),
    )))
}

fn with_token(url: &str, id: &str, payer: bool) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    if payer {
        format!("{url}{sep}token={id}&PayerID=SIMPAYER01")
    } else {
        format!("{url}{sep}token={id}")
    }
}

#[post("/checkoutnow/<id>/<action>")]
fn approval_action(sim: &State<Arc<Sim>>, id: &str, action: &str) -> Result<Redirect, Status> {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let order = orders.get_mut(id).ok_or(Status::NotFound)?;
    match action {
        "approve" | "decline" => {
            order.status = "APPROVED".into();
            order.decline_funding = action == "decline";
            let reply = sim.order_json(order);
            let url = with_token(&order.return_url, id, true);
            drop(orders);
            sim_arc.webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", reply);
            Ok(Redirect::to(url))
        }
        "cancel" => Ok(Redirect::to(with_token(&order.cancel_url, id, false))),
        _ => Err(Status::NotFound),
    }
}

/// Approves an order without the browser (tests of a buyer who never comes back).
#[post("/simulator/orders/<id>/approve")]
fn approve_only(sim: &State<Arc<Sim>>, id: &str) -> Status {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let Some(order) = orders.get_mut(id) else {
        return Status::NotFound;
    };
    order.status = "APPROVED".into();
    let reply = sim.order_json(order);
    drop(orders);
    sim_arc.webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", reply);
    Status::Ok
}

/// Settles a PENDING capture as COMPLETED, or reverses a completed one (chargeback).
#[post("/simulator/captures/<id>/<action>")]
fn capture_action(sim: &State<Arc<Sim>>, id: &str, action: &str) -> Status {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let Some((order, i)) = find_capture(&mut orders, id) else {
        return Status::NotFound;
    };
    let (status, event, rtype) = match action {
        "complete" => ("COMPLETED", "PAYMENT.CAPTURE.COMPLETED", "capture"),
        "reverse" => ("REVERSED", "PAYMENT.CAPTURE.REVERSED", "refund"),
        "deny" => ("DECLINED", "PAYMENT.CAPTURE.DENIED", "capture"),
        _ => return Status::NotFound,
    };
    order.captures[i]["status"] = json!(status);
    let resource = if rtype == "refund" {
        json!({ "id": sim.next_id("REV"), "status": "COMPLETED", "links": [{ "href": format!("{}/v2/payments/captures/{}", sim.base, id), "rel": "up", "method": "GET" }] })
    } else {
        order.captures[i].clone()
    };
    drop(orders);
    sim_arc.webhook(event, rtype, resource);
    Status::Ok
}

#[post("/simulator/control", data = "<body>")]
fn set_control(sim: &State<Arc<Sim>>, body: Json<Value>) -> Json<Control> {
    let mut current = serde_json::to_value(sim.control()).unwrap_or_default();
    if let (Some(cur), Some(new)) = (current.as_object_mut(), body.as_object()) {
        for (k, v) in new {
            cur.insert(k.clone(), v.clone());
        }
    }
    let control: Control = serde_json::from_value(current).unwrap_or_default();
    *sim.control.lock().unwrap() = control.clone();
    Json(control)
}

#[get("/simulator/control")]
fn get_control(sim: &State<Arc<Sim>>) -> Json<Control> {
    Json(sim.control())
}

/// Sends every held webhook, newest first (the reorder mode).
#[post("/simulator/webhooks/flush")]
async fn flush(sim: &State<Arc<Sim>>) -> Json<Value> {
    let held: Vec<(String, Vec<u8>)> = std::mem::take(&mut *sim.held.lock().unwrap());
    let n = held.len();
    for (_, body) in held.into_iter().rev() {
        sim.deliver(&body).await;
    }
    Json(json!({ "sent": n }))
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
            token,
            create_order,
            get_order,
            capture,
            refund,
            verify_signature,
            cert,
            ca,
            approval_page,
            approval_action,
            approve_only,
            capture_action,
            set_control,
            get_control,
            flush
        ],
    )
}
