//! The PayPal REST client (reqwest): OAuth client-credentials token cached until shortly
//! before it expires; create, get and capture orders; refund captures; verify webhook
//! signatures through the API; download webhook certificates (cached; no redirects, at most
//! 64 KiB). Every call has a timeout and is retried on timeouts, 429 and 5xx: all of them are
//! idempotent (GETs, or POSTs carrying a `PayPal-Request-Id` derived from our own ids).
//!
//! About 600 lines on purpose: one client, whose calls share the token cache, the retry loop
//! and the typed answers; split, each part would need all three.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use ticketing_core::money::Money;

/// live, sandbox, or this project's simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayPalMode {
    Live,
    Sandbox,
    Simulator,
}

/// How webhook deliveries are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookVerification {
    /// Our own check of the signature and certificate chain.
    Offline,
    /// PayPal's `POST /v1/notifications/verify-webhook-signature`.
    Api,
}

#[derive(Clone)]
pub struct PayPalSettings {
    pub mode: PayPalMode,
    pub api_base: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_id: String,
    pub verification: WebhookVerification,
    pub ca_files: Vec<std::path::PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for PayPalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPalSettings")
            .field("mode", &self.mode)
            .field("api_base", &self.api_base)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("webhook_id", &self.webhook_id)
            .field("verification", &self.verification)
            .field("ca_files", &self.ca_files)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// PayPal's error, parsed from its body (`name`, `details[].issue`, `debug_id`), or a
/// transport failure.
#[derive(Debug, Clone)]
pub struct PayPalError {
    pub status: Option<u16>,
    pub name: String,
    pub issues: Vec<String>,
    pub debug_id: Option<String>,
    pub message: String,
}

impl PayPalError {
    fn transport(e: impl std::fmt::Display) -> PayPalError {
        PayPalError {
            status: None,
            name: "TRANSPORT".into(),
            issues: Vec::new(),
            debug_id: None,
            message: e.to_string(),
        }
    }

    /// Worth retrying with the same request id: no answer, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 429 || s >= 500,
        }
    }

    pub fn has_issue(&self, issue: &str) -> bool {
        self.issues.iter().any(|i| i == issue) || self.name == issue
    }
}

impl std::fmt::Display for PayPalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PayPal {} {}{}: {} (debug_id {})",
            self.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            self.name,
            if self.issues.is_empty() {
                String::new()
            } else {
                format!(" [{}]", self.issues.join(", "))
            },
            self.message,
            self.debug_id.as_deref().unwrap_or("-")
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Link {
    pub href: String,
    pub rel: String,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Amount {
    pub currency_code: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Capture {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: Option<Amount>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Payments {
    #[serde(default)]
    pub captures: Vec<Capture>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct PurchaseUnit {
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub invoice_id: Option<String>,
    #[serde(default)]
    pub payments: Option<Payments>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Order {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Order {
    /// Where the buyer approves the payment (`payer-action` with payment_source, or `approve`).
    pub fn approve_url(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == "payer-action" || l.rel == "approve")
            .map(|l| l.href.as_str())
    }

    /// The latest capture, if any.
    pub fn capture(&self) -> Option<&Capture> {
        self.purchase_units
            .iter()
            .filter_map(|u| u.payments.as_ref())
            .flat_map(|p| p.captures.iter())
            .last()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Refund {
    pub id: String,
    pub status: String,
}

/// What we ask PayPal to charge.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub booking_id: i64,
    pub reference: String,
    pub description: String,
    pub amount: Money,
    pub return_url: String,
    pub cancel_url: String,
    pub brand_name: String,
}

/// Request body of `POST /v2/checkout/orders` (Orders v2).
pub fn order_body(o: &NewOrder) -> Value {
    json!({
        "intent": "CAPTURE",
        "purchase_units": [{
            "reference_id": o.reference,
            "custom_id": o.booking_id.to_string(),
            "invoice_id": o.reference,
            "description": o.description.chars().take(127).collect::<String>(),
            "amount": {
                "currency_code": o.amount.currency,
                "value": o.amount.decimal_string(),
            },
        }],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "brand_name": o.brand_name.chars().take(127).collect::<String>(),
                    "shipping_preference": "NO_SHIPPING",
                    "user_action": "PAY_NOW",
                    "return_url": o.return_url,
                    "cancel_url": o.cancel_url,
                },
            },
        },
    })
}

/// The body of `POST /v1/notifications/verify-webhook-signature`.
#[derive(Serialize)]
struct VerifySignatureRequest<'a> {
    auth_algo: &'a str,
    cert_url: &'a str,
    transmission_id: &'a str,
    transmission_sig: &'a str,
    transmission_time: &'a str,
    webhook_id: &'a str,
    /// Written out verbatim.
    webhook_event: &'a RawValue,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

pub struct PayPalClient {
    http: reqwest::Client,
    /// For certificate downloads only: follows no redirect.
    cert_http: reqwest::Client,
    pub settings: PayPalSettings,
    token: Mutex<Option<(String, Instant)>>,
    certs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

/// Attempts per call (the first and two retries), with growing pauses.
const ATTEMPTS: u32 = 3;

/// The largest webhook certificate (PEM, with its chain) that is downloaded.
pub const CERT_MAX_BYTES: usize = 64 * 1024;

/// How long to wait before attempt number `attempt` (0 is the first: no wait).
async fn pause_before(attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(Duration::from_millis(200 * 4u64.pow(attempt - 1))).await;
    }
}

impl PayPalClient {
    pub fn new(settings: PayPalSettings) -> PayPalClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .timeout(settings.timeout)
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("ticketing/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder().build().expect("HTTP client");
        let cert_http = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        PayPalClient {
            http,
            cert_http,
            settings,
            token: Mutex::new(None),
            certs: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `token` as the access token for `lifetime` instead of asking `/v1/oauth2/token`
    /// (for servers without that endpoint, such as a mock of PayPal's OpenAPI specs).
    pub async fn preset_token(&self, token: &str, lifetime: Duration) {
        *self.token.lock().await = Some((token.to_string(), Instant::now() + lifetime));
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_base.trim_end_matches('/'))
    }

    /// The cached access token, renewed a minute before it expires.
    async fn access_token(&self) -> Result<String, PayPalError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let res = self
            .send_with_retries(|| {
                self.http
                    .post(self.url("/v1/oauth2/token"))
                    .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
                    .form(&[("grant_type", "client_credentials")])
            })
            .await?;
        let token: TokenResponse = res.json().await.map_err(PayPalError::transport)?;
        let lifetime = Duration::from_secs(token.expires_in.saturating_sub(60).max(1));
        *cached = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }

    /// Sends a request built by `build` up to [`ATTEMPTS`] times while failures are transient.
    async fn send_with_retries(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PayPalError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            pause_before(attempt).await;
            let err = match build().send().await {
                Ok(res) if res.status().is_success() => return Ok(res),
                Ok(res) => parse_error(res).await,
                Err(e) => PayPalError::transport(e),
            };
            tracing::warn!(attempt, error = %err, "PayPal call failed");
            if !err.is_transient() {
                return Err(err);
            }
            last = Some(err);
        }
        Err(last.expect("at least one attempt"))
    }

    /// An authorised JSON call with retries.
    async fn call<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: Option<&str>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, PayPalError> {
        let token = self.access_token().await?;
        let url = self.url(path);
        let res = self
            .send_with_retries(|| {
                let mut req = self
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .header("Prefer", "return=representation");
                if let Some(id) = request_id {
                    req = req.header("PayPal-Request-Id", id);
                }
                if let Some(body) = body {
                    req = req.json(body);
                }
                req
            })
            .await;
        if let Err(e) = &res {
            if e.status == Some(401) {
                // A revoked token: forget it so the next call gets a new one.
                *self.token.lock().await = None;
            }
        }
        res
    }

    pub async fn create_order(
        &self,
        order: &NewOrder,
        request_id: &str,
    ) -> Result<Order, PayPalError> {
        let body = order_body(order);
        let res = self
            .call(
                reqwest::Method::POST,
                "/v2/checkout/orders",
                Some(request_id),
                Some(&body),
            )
            .await?;
        res.json().await.map_err(PayPalError::transport)
    }

    pub async fn get_order(&self, order_id: &str) -> Result<Order, PayPalError> {
        let path = format!("/v2/checkout/orders/{}", encode(order_id));
        let res = self
            .call(reqwest::Method::GET, &path, None, None::<&Value>)
            .await?;
        res.json().await.map_err(PayPalError::transport)
    }

    pub async fn capture_order(
        &self,
        order_id: &str,
        request_id: &str,
    ) -> Result<Order, PayPalError> {
        let path = format!("/v2/checkout/orders/{}/capture", encode(order_id));
        let res = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(request_id),
                Some(&json!({})),
            )
            .await?;
        res.json().await.map_err(PayPalError::transport)
    }

    /// Refunds `amount` of a capture (the whole capture when `None`).
    pub async fn refund_capture(
        &self,
        capture_id: &str,
        amount: Option<&Money>,
        invoice_id: &str,
        note: &str,
        request_id: &str,
    ) -> Result<Refund, PayPalError> {
        let mut body = json!({ "invoice_id": invoice_id, "note_to_payer": note.chars().take(255).collect::<String>() });
        if let Some(m) = amount {
            body["amount"] = json!({ "currency_code": m.currency, "value": m.decimal_string() });
        }
        let path = format!("/v2/payments/captures/{}/refund", encode(capture_id));
        let res = self
            .call(reqwest::Method::POST, &path, Some(request_id), Some(&body))
            .await?;
        res.json().await.map_err(PayPalError::transport)
    }

    /// Asks PayPal whether a delivery is genuine (the `api` verification mode). `event` is
    /// the delivery's body exactly as received: it is sent as `webhook_event` byte for byte,
    /// never re-serialised (PayPal checks the CRC-32 of those bytes). Test:
    /// `api_mode_sends_paypal_the_delivered_body_byte_for_byte` (tests/it/paypal_verify.rs).
    pub async fn verify_webhook_signature(
        &self,
        headers: &super::verify::TransmissionHeaders,
        event: &RawValue,
    ) -> Result<bool, PayPalError> {
        let body = VerifySignatureRequest {
            auth_algo: &headers.auth_algo,
            cert_url: &headers.cert_url,
            transmission_id: &headers.transmission_id,
            transmission_sig: &headers.transmission_sig,
            transmission_time: &headers.transmission_time,
            webhook_id: &self.settings.webhook_id,
            webhook_event: event,
        };
        let res = self
            .call(
                reqwest::Method::POST,
                "/v1/notifications/verify-webhook-signature",
                None,
                Some(&body),
            )
            .await?;
        let v: Value = res.json().await.map_err(PayPalError::transport)?;
        Ok(v["verification_status"] == "SUCCESS")
    }

    /// Downloads (once: cached by URL, at most 64 URLs) the certificate PEM at an
    /// already-checked URL ([`super::verify::check_cert_url`]). No redirect is followed: a 3xx
    /// is an error. The body streams in under a hard cap of [`CERT_MAX_BYTES`]: a larger
    /// `Content-Length` is refused before reading, and reading stops as soon as more arrives.
    /// Transport failures, 429 and 5xx are tried again; other answers and oversized bodies
    /// are not. Tests (tests/it/paypal_verify.rs):
    /// `a_redirect_from_the_certificate_url_is_refused_and_not_followed`,
    /// `an_endless_certificate_body_is_cut_off_at_64_kib`,
    /// `a_content_length_over_64_kib_is_refused_before_reading`,
    /// `a_certificate_of_exactly_64_kib_is_read`.
    pub async fn certificate(&self, url: &url::Url) -> Result<Arc<Vec<u8>>, PayPalError> {
        if let Some(pem) = self.certs.lock().await.get(url.as_str()) {
            return Ok(pem.clone());
        }
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            pause_before(attempt).await;
            let err = match self.download_certificate(url).await {
                Ok(pem) => {
                    let pem = Arc::new(pem);
                    let mut certs = self.certs.lock().await;
                    if certs.len() >= 64 {
                        certs.clear();
                    }
                    certs.insert(url.as_str().to_string(), pem.clone());
                    return Ok(pem);
                }
                Err(e) => e,
            };
            tracing::warn!(attempt, error = %err, "certificate download failed");
            if !err.is_transient() {
                return Err(err);
            }
            last = Some(err);
        }
        Err(last.expect("at least one attempt"))
    }

    /// One download attempt (see [`PayPalClient::certificate`]).
    async fn download_certificate(&self, url: &url::Url) -> Result<Vec<u8>, PayPalError> {
        let mut res = self
            .cert_http
            .get(url.clone())
            .send()
            .await
            .map_err(PayPalError::transport)?;
        let status = res.status();
        let refused = |name: &str, message: String| PayPalError {
            status: Some(status.as_u16()),
            name: name.into(),
            issues: Vec::new(),
            debug_id: None,
            message,
        };
        if !status.is_success() {
            // Not even an error body is read from a certificate URL.
            let message = if status.is_redirection() {
                "redirects are not followed".to_string()
            } else {
                "no certificate".to_string()
            };
            return Err(refused("CERTIFICATE_DOWNLOAD", message));
        }
        let too_large = || {
            refused(
                "CERTIFICATE_TOO_LARGE",
                format!("certificate larger than {} KiB", CERT_MAX_BYTES / 1024),
            )
        };
        if res
            .content_length()
            .is_some_and(|n| n > CERT_MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut pem = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(PayPalError::transport)? {
            if pem.len() + chunk.len() > CERT_MAX_BYTES {
                return Err(too_large());
            }
            pem.extend_from_slice(&chunk);
        }
        Ok(pem)
    }
}

/// Percent-encodes an id for a URL path segment (PayPal ids are alphanumeric anyway).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn parse_error(res: reqwest::Response) -> PayPalError {
    let status = res.status().as_u16();
    let debug_header = res
        .headers()
        .get("paypal-debug-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let issues = body["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|i| i["issue"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let name = body["name"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("HTTP_ERROR")
        .to_string();
    let message = body["message"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .unwrap_or("")
        .to_string();
    let err = PayPalError {
        status: Some(status),
        name,
        issues,
        debug_id: body["debug_id"]
            .as_str()
            .map(str::to_string)
            .or(debug_header),
        message,
    };
    tracing::warn!(error = %err, "PayPal answered with an error");
    err
}
