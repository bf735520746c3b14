//! Webhook verification. Offline: the real PayPal-signed webhook in ../shared/paypal is valid
//! at its transmission time and invalid for every kind of tampering; the certificate download
//! (over real HTTP on 127.0.0.1, against a stub server counting connections) happens only
//! after every cheap check, only from an allowed URL as parsed, follows no redirect and reads
//! at most 64 KiB. Through PayPal's API: the body goes out as `webhook_event` byte for byte,
//! and the simulator verifies those bytes as received.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, UNIX_EPOCH};

use ticketing::paypal::verify::{self, CertPolicy, TransmissionHeaders, TrustStore};
use ticketing::paypal::PayPal;
use ticketing::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WEBHOOK_ID: &str = "4JH86294D6297924G";
/// 2015-05-18T15:45:13Z, the transmission time.
const SENT_AT: u64 = 1_431_963_913;

fn sample_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/paypal/real-webhook-sample"
    ))
}

struct Vector {
    headers: TransmissionHeaders,
    body: Vec<u8>,
    cert: Vec<u8>,
    trust: TrustStore,
}

fn vector() -> Vector {
    let dir = sample_dir();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("headers.json")).unwrap()).unwrap();
    Vector {
        headers: serde_json::from_value(json["headers"].clone()).unwrap(),
        body: std::fs::read(dir.join("body.json")).unwrap(),
        cert: std::fs::read(dir.join("cert.pem")).unwrap(),
        trust: TrustStore::from_files(&[dir.join("ca-chain/DigiCertHighAssuranceEVRootCA.pem")])
            .unwrap(),
    }
}

impl Vector {
    fn check(
        &self,
        headers: &TransmissionHeaders,
        body: &[u8],
        webhook_id: &str,
        at: u64,
    ) -> Result<(), String> {
        // The root only: the intermediate must come from the trust store's intermediates
        // (the repository's config/paypal-webhook-ca.pem) as it does in production.
        let mut trust = self.trust.clone();
        trust.certs.extend(
            TrustStore::from_files(&[PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/paypal-webhook-ca.pem"
            ))])
            .unwrap()
            .certs,
        );
        verify::verify(
            headers,
            body,
            webhook_id,
            &self.cert,
            &trust,
            &CertPolicy::default(),
            UNIX_EPOCH + Duration::from_secs(at),
        )
    }
}

#[test]
fn the_real_webhook_verifies_at_its_transmission_time() {
    let v = vector();
    assert_eq!(verify::body_crc32(&v.body), 2_771_810_304);
    assert_eq!(
        verify::signed_message(&v.headers, WEBHOOK_ID, &v.body),
        "dfb3be50-fd74-11e4-8bf3-77339302725b|2015-05-18T15:45:13Z|4JH86294D6297924G|2771810304"
    );
    assert_eq!(v.check(&v.headers, &v.body, WEBHOOK_ID, SENT_AT), Ok(()));
}

#[test]
fn every_kind_of_tampering_fails() {
    let v = vector();
    let mut one_byte = v.body.clone();
    let pos = one_byte.windows(5).position(|w| w == b"20.00").unwrap();
    one_byte[pos + 4] = b'1';
    assert!(
        v.check(&v.headers, &one_byte, WEBHOOK_ID, SENT_AT).is_err(),
        "one byte changed"
    );

    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&v.body).unwrap()).unwrap();
    assert_ne!(reserialised, v.body);
    assert!(
        v.check(&v.headers, &reserialised, WEBHOOK_ID, SENT_AT)
            .is_err(),
        "re-serialised body"
    );

    assert!(
        v.check(&v.headers, &v.body, "4JH86294D6297924H", SENT_AT)
            .is_err(),
        "other webhook id"
    );

    let mut sig = v.headers.clone();
    sig.transmission_sig = format!("A{}", &sig.transmission_sig[1..]);
    assert!(
        v.check(&sig, &v.body, WEBHOOK_ID, SENT_AT).is_err(),
        "changed signature"
    );

    let mut host = v.headers.clone();
    host.cert_url = "https://api.sandbox.paypal.com.evil.test/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77".into();
    let err = v.check(&host, &v.body, WEBHOOK_ID, SENT_AT).unwrap_err();
    assert!(err.contains("not on paypal.com"), "{err}");

    let err = v
        .check(&v.headers, &v.body, WEBHOOK_ID, 1_795_000_000)
        .unwrap_err();
    assert!(
        err.contains("Expired"),
        "certificate outside its validity: {err}"
    );
    let err = v
        .check(&v.headers, &v.body, WEBHOOK_ID, 1_400_000_000)
        .unwrap_err();
    assert!(err.contains("NotValidYet"), "before its validity: {err}");
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn the_command_line_verifier_says_valid_or_invalid() {
    let dir = sample_dir();
    let (body, headers, cert) = (
        dir.join("body.json"),
        dir.join("headers.json"),
        dir.join("cert.pem"),
    );
    let args = |id: &'static str, at: Option<&'static str>| {
        let mut a = vec![
            "paypal".to_string(),
            "verify-webhook".into(),
            "--body".into(),
            body.display().to_string(),
            "--headers".into(),
            headers.display().to_string(),
            "--webhook-id".into(),
            id.into(),
            "--cert".into(),
            cert.display().to_string(),
        ];
        if let Some(at) = at {
            a.extend(["--at".to_string(), at.to_string()]);
        }
        a
    };
    let run = |a: Vec<String>| cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        run(args(WEBHOOK_ID, Some("2015-05-18T15:45:13Z"))),
        (0, "valid".to_string())
    );
    let (code, out) = run(args("WRONG", Some("2015-05-18T15:45:13Z")));
    assert_eq!(code, 1);
    assert!(out.starts_with("invalid: "), "{out}");
    let (code, out) = run(args(WEBHOOK_ID, None));
    assert_eq!(code, 1, "expired today");
    assert!(out.contains("Expired"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Fetching the certificate (offline mode) over real HTTP on 127.0.0.1.

/// What a stub server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a stub server answers one request.
enum Reply {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// `Content-Length: n`, then silence with the connection held open (for 20 s at most).
    ClaimLength(u64),
    /// A chunked body that never ends: 16 KiB chunks about every millisecond until the
    /// client goes away (or 256 MiB, or 20 s).
    Endless,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: vec![],
        }
    }

    fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
        }
    }
}

/// A tiny HTTP/1.1 server for these tests: one request per connection, every connection
/// counted (a TLS handshake too), every request recorded.
struct Stub {
    base: String,
    connections: Arc<AtomicUsize>,
    seen: Arc<StdMutex<Vec<Seen>>>,
    /// Body bytes written by `Reply::Endless`, and whether its client went away.
    streamed: Arc<AtomicUsize>,
    stream_ended: Arc<AtomicBool>,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

impl Stub {
    /// Listens on `ip:port` (port 0: any free one).
    async fn start(
        ip: &str,
        port: u16,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Stub> {
        let listener = TcpListener::bind((ip, port)).await?;
        let addr = listener.local_addr()?;
        let stub = Stub {
            base: format!("http://{addr}"),
            connections: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(StdMutex::new(Vec::new())),
            streamed: Arc::new(AtomicUsize::new(0)),
            stream_ended: Arc::new(AtomicBool::new(false)),
        };
        let handler: Handler = Arc::new(handler);
        let (connections, seen, streamed, ended) = (
            stub.connections.clone(),
            stub.seen.clone(),
            stub.streamed.clone(),
            stub.stream_ended.clone(),
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (handler, seen, streamed, ended) = (
                    handler.clone(),
                    seen.clone(),
                    streamed.clone(),
                    ended.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(socket, handler, seen, streamed, ended).await;
                });
            }
        });
        Ok(stub)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut socket: TcpStream,
    handler: Handler,
    seen: Arc<StdMutex<Vec<Seen>>>,
    streamed: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let read = tokio::time::timeout(Duration::from_secs(5), read_request(&mut socket)).await;
    let Ok(Ok(Some(request))) = read else {
        return Ok(()); // not HTTP (a TLS handshake, say), or nothing came
    };
    seen.lock().unwrap().push(request.clone());
    match handler(&request) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Stub\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
            socket.shutdown().await?;
        }
        Reply::ClaimLength(n) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).await?;
            // Wait (bounded) until the client hangs up.
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(20), async {
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
        Reply::Endless => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = [b"4000\r\n".as_slice(), &[b'A'; 0x4000], b"\r\n"].concat();
            let started = std::time::Instant::now();
            while streamed.load(Ordering::SeqCst) < 256 << 20
                && started.elapsed() < Duration::from_secs(20)
            {
                if socket.write_all(&chunk).await.is_err() {
                    ended.store(true, Ordering::SeqCst);
                    break;
                }
                streamed.fetch_add(0x4000, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Ok(())
}

/// Reads one request (head and a Content-Length body); `None` when it is not HTTP.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Seen>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if data.len() > 64 * 1024 {
            return Ok(None);
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        data.extend_from_slice(&buf[..n]);
    };
    let Ok(head) = std::str::from_utf8(&data[..head_end]) else {
        return Ok(None);
    };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(Some(Seen {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    }))
}

/// The PayPal service exactly as the app builds it (`ticketing::rocket`), from `Config`
/// with PayPal's variables; the simulator mode with `api_base` as its API (outside
/// production, so its `http://127.0.0.1:<port>` is an allowed certificate URL prefix).
fn paypal_at(
    api_base: &str,
    adjust: impl FnOnce(&mut std::collections::HashMap<String, String>),
    tweak: impl FnOnce(&mut ticketing::paypal::PayPalSettings),
) -> PayPal {
    crate::helpers::install_crypto();
    let mut vars = crate::helpers::base_vars("postgres://postgres@127.0.0.1:1/unused");
    vars.insert("PAYPAL_MODE".into(), "simulator".into());
    vars.insert("PAYPAL_API_BASE".into(), api_base.into());
    vars.insert("PAYPAL_TIMEOUT_SECONDS".into(), "30".into());
    adjust(&mut vars);
    let mut config = Config::from_map(&vars).expect("test configuration is valid");
    tweak(&mut config.paypal);
    ticketing::paypal::build(
        config.paypal.clone(),
        &config.base_url,
        &config.site_name,
        config.hold_minutes,
        config.app_env.is_production(),
    )
    .expect("PayPal service")
}

/// Headers that pass every check that needs no network, for a certificate at `cert_url`.
fn fresh_headers(cert_url: &str) -> TransmissionHeaders {
    use base64::Engine;
    TransmissionHeaders {
        transmission_id: "0a1b2c3d-test".into(),
        transmission_time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        transmission_sig: base64::engine::general_purpose::STANDARD.encode([7u8; 256]),
        cert_url: cert_url.into(),
        auth_algo: "SHA256withRSA".into(),
    }
}

const BODY: &[u8] = br#"{"id":"WH-TEST-1","event_type":"CHECKOUT.ORDER.APPROVED"}"#;

/// The stub as the simulator's API: 404 for everything (no CA, no certificate).
async fn counting_stub() -> Stub {
    Stub::start("127.0.0.1", 0, |_| Reply::status(404))
        .await
        .unwrap()
}

#[rocket::async_test]
async fn a_delivery_failing_a_cheap_check_makes_no_request() {
    let stub = counting_stub().await;
    let cert_url = format!("{}/v1/notifications/certs/CERT-TEST", stub.base);
    let paypal = paypal_at(&stub.base, |_| {}, |_| {});
    let old = chrono::Utc::now() - chrono::Duration::hours(2);
    let ahead = chrono::Utc::now() + chrono::Duration::hours(2);
    let cases: Vec<(&str, TransmissionHeaders)> = vec![
        ("transmission time in 2015", {
            let mut h = fresh_headers(&cert_url);
            h.transmission_time = "2015-05-18T15:45:13Z".into();
            h
        }),
        ("transmission two hours old", {
            let mut h = fresh_headers(&cert_url);
            h.transmission_time = old.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            h
        }),
        ("transmission two hours ahead", {
            let mut h = fresh_headers(&cert_url);
            h.transmission_time = ahead.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            h
        }),
        ("transmission time unreadable", {
            let mut h = fresh_headers(&cert_url);
            h.transmission_time = "yesterday".into();
            h
        }),
        ("SHA-1", {
            let mut h = fresh_headers(&cert_url);
            h.auth_algo = "SHA1withRSA".into();
            h
        }),
        ("signature not base64", {
            let mut h = fresh_headers(&cert_url);
            h.transmission_sig = "not base64!".into();
            h
        }),
        (
            "not a certificate path",
            fresh_headers(&format!("{}/simulator/ca.pem", stub.base)),
        ),
        (
            "path outside the certificates",
            fresh_headers(&format!("{}/v1/oauth2/token", stub.base)),
        ),
    ];
    for (what, headers) in &cases {
        assert!(
            paypal.verify_webhook(headers, BODY).await.is_err(),
            "{what}"
        );
        assert_eq!(stub.connections(), 0, "{what}: no request");
    }

    let no_id = paypal_at(&stub.base, |_| {}, |s| s.webhook_id = String::new());
    let err = no_id
        .verify_webhook(&fresh_headers(&cert_url), BODY)
        .await
        .unwrap_err();
    assert!(err.contains("webhook id"), "{err}");
    assert_eq!(stub.connections(), 0, "no webhook id: no request");

    // The control: a delivery passing every cheap check does fetch the certificate.
    let err = paypal
        .verify_webhook(&fresh_headers(&cert_url), BODY)
        .await
        .unwrap_err();
    assert!(err.contains("certificate download failed"), "{err}");
    assert!(
        stub.seen()
            .iter()
            .any(|s| s.path == "/v1/notifications/certs/CERT-TEST"),
        "{:?}",
        stub.seen()
    );
}

#[rocket::async_test]
async fn tricky_certificate_urls_are_refused_without_a_request() {
    // Each URL that names an address gets a listener there (port 443 on its own loopback
    // address), so a fetch that got through would be counted.
    let mut listeners = Vec::new();
    for (i, url) in [
        "https://127.7.7.1\\.paypal.com/v1/notifications/certs/CERT-1",
        "https://127.7.7.2\\.paypal.com:443/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@127.7.7.3/v1/notifications/certs/CERT-1",
        "https://127.7.7.4/v1/notifications/certs/CERT-1",
        "https://0x7f.7.7.5/v1/notifications/certs/CERT-1",
        "https://2131166982/v1/notifications/certs/CERT-1", // 127.7.7.6
    ]
    .into_iter()
    .enumerate()
    {
        let ip = format!("127.7.7.{}", i + 1);
        match Stub::start(&ip, 443, |_| Reply::status(200)).await {
            Ok(stub) => listeners.push((url.to_string(), Some(stub))),
            Err(e) => {
                eprintln!("cannot listen on {ip}:443 ({e}): {url} is checked without counting");
                listeners.push((url.to_string(), None));
            }
        }
    }
    let sim = counting_stub().await;
    let port = sim.base.rsplit(':').next().unwrap().to_string();
    // The simulator's allowed prefix is compared as parsed too: scheme, host, port, no user.
    let near_misses = [
        format!("https://127.0.0.1:{port}/v1/notifications/certs/CERT-1"),
        format!("http://u:p@127.0.0.1:{port}/v1/notifications/certs/CERT-1"),
        format!("http://127.0.0.1:{port}\\@127.7.7.1/v1/notifications/certs/CERT-1"),
        format!("http://localhost:{port}/v1/notifications/certs/CERT-1"),
    ];
    let paypal = paypal_at(&sim.base, |_| {}, |_| {});
    let urls = listeners
        .iter()
        .map(|(u, _)| u.clone())
        .chain(near_misses.iter().cloned());
    for url in urls {
        let err = paypal
            .verify_webhook(&fresh_headers(&url), BODY)
            .await
            .unwrap_err();
        assert!(
            err.starts_with("certificate URL"),
            "{url}: refused by the URL policy, not by a failed download: {err}"
        );
    }
    for (url, stub) in &listeners {
        if let Some(stub) = stub {
            assert_eq!(stub.connections(), 0, "{url}: no connection");
        }
    }
    assert_eq!(
        sim.connections(),
        0,
        "nothing asked of the simulator either"
    );
    // Names that would need a DNS lookup are not sent through a fetch here (no lookup may
    // leave this machine); the same policy refuses them before any lookup.
    for url in [
        "https://api.paypal.com.evil.test/v1/notifications/certs/CERT-1",
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/notifications/CERT-1",
        "https://api.paypal.com/v1/oauth2/token",
    ] {
        assert!(
            verify::check_cert_url(url, &CertPolicy::default()).is_err(),
            "{url}"
        );
    }
}

#[rocket::async_test]
async fn a_redirect_from_the_certificate_url_is_refused_and_not_followed() {
    let elsewhere = counting_stub().await;
    let target = format!("{}/v1/notifications/certs/CERT-ELSEWHERE", elsewhere.base);
    let sim = Stub::start("127.0.0.1", 0, move |s| {
        if s.path.starts_with("/v1/notifications/certs/") {
            Reply::Full {
                status: 302,
                headers: vec![("Location", target.clone())],
                body: vec![],
            }
        } else {
            Reply::status(404)
        }
    })
    .await
    .unwrap();
    let paypal = paypal_at(&sim.base, |_| {}, |_| {});
    let headers = fresh_headers(&format!("{}/v1/notifications/certs/CERT-1", sim.base));
    let err = paypal.verify_webhook(&headers, BODY).await.unwrap_err();
    assert!(err.contains("certificate download failed"), "{err}");
    assert_eq!(
        elsewhere.connections(),
        0,
        "the redirect target got no request"
    );
    assert!(sim
        .seen()
        .iter()
        .any(|s| s.path == "/v1/notifications/certs/CERT-1"));
}

#[rocket::async_test]
async fn an_endless_certificate_body_is_cut_off_at_64_kib() {
    let sim = Stub::start("127.0.0.1", 0, |s| {
        if s.path.starts_with("/v1/notifications/certs/") {
            Reply::Endless
        } else {
            Reply::status(404)
        }
    })
    .await
    .unwrap();
    let paypal = paypal_at(&sim.base, |_| {}, |_| {});
    let headers = fresh_headers(&format!("{}/v1/notifications/certs/CERT-1", sim.base));
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        paypal.verify_webhook(&headers, BODY),
    )
    .await
    .expect("the download failed promptly instead of reading on");
    let err = result.unwrap_err();
    assert!(err.contains("64 KiB"), "{err}");
    for _ in 0..100 {
        if sim.stream_ended.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sim.stream_ended.load(Ordering::SeqCst),
        "the client hung up"
    );
    let streamed = sim.streamed.load(Ordering::SeqCst);
    eprintln!(
        "endless body: failed after {:?}, {streamed} bytes written by the server",
        started.elapsed()
    );
    // 64 KiB read, plus what the sockets' buffers took in the meantime.
    assert!(streamed < 1 << 20, "{streamed} bytes were sent");
    let cert_requests = sim
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v1/notifications/certs/"))
        .count();
    assert_eq!(cert_requests, 1, "an oversized answer is not asked again");
}

#[rocket::async_test]
async fn a_content_length_over_64_kib_is_refused_before_reading() {
    let sim = Stub::start("127.0.0.1", 0, |s| {
        if s.path.starts_with("/v1/notifications/certs/") {
            Reply::ClaimLength(200 << 20)
        } else {
            Reply::status(404)
        }
    })
    .await
    .unwrap();
    let paypal = paypal_at(&sim.base, |_| {}, |_| {});
    let headers = fresh_headers(&format!("{}/v1/notifications/certs/CERT-1", sim.base));
    let err = tokio::time::timeout(
        Duration::from_secs(3),
        paypal.verify_webhook(&headers, BODY),
    )
    .await
    .expect("refused at once, without waiting for the body")
    .unwrap_err();
    assert!(err.contains("64 KiB"), "{err}");
}

#[rocket::async_test]
async fn a_certificate_of_exactly_64_kib_is_read() {
    let pem = std::fs::read(sample_dir().join("cert.pem")).unwrap();
    let sim = Stub::start("127.0.0.1", 0, move |s| {
        let mut body = pem.clone();
        body.resize(64 * 1024 + usize::from(s.path.ends_with("/BIG")), b'\n');
        if s.path.starts_with("/v1/notifications/certs/") {
            Reply::Full {
                status: 200,
                headers: vec![],
                body,
            }
        } else {
            Reply::status(404)
        }
    })
    .await
    .unwrap();
    let paypal = paypal_at(&sim.base, |_| {}, |_| {});
    let at = |name: &str| fresh_headers(&format!("{}/v1/notifications/certs/{name}", sim.base));
    // Read whole: it then fails as a certificate (the sample's is long expired and its CA
    // is not trusted here), not as a download.
    let err = paypal.verify_webhook(&at("FITS"), BODY).await.unwrap_err();
    assert!(
        !err.contains("download") && !err.contains("PEM"),
        "read whole: {err}"
    );
    let err = paypal.verify_webhook(&at("BIG"), BODY).await.unwrap_err();
    assert!(err.contains("64 KiB"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The `api` verification mode: PayPal is sent the delivery exactly as it came.

/// What the app sent to `POST /v1/notifications/verify-webhook-signature`, its
/// `webhook_event` as the raw bytes it sent.
#[derive(serde::Deserialize)]
struct VerifyRequest<'a> {
    auth_algo: String,
    cert_url: String,
    transmission_id: String,
    transmission_sig: String,
    transmission_time: String,
    webhook_id: String,
    #[serde(borrow)]
    webhook_event: &'a serde_json::value::RawValue,
}

#[rocket::async_test]
async fn api_mode_sends_paypal_the_delivered_body_byte_for_byte() {
    let v = Arc::new(vector());
    let checker = v.clone();
    // PayPal's API as a stub: a token, and a verification of the webhook_event it receives
    // as PayPal would (the signed CRC is of those bytes), with the sample's certificate at
    // the sample's time.
    let api = Stub::start("127.0.0.1", 0, move |s| match s.path.as_str() {
        "/v1/oauth2/token" => Reply::json(
            200,
            &serde_json::json!({
                "access_token": "A21-TEST-TOKEN",
                "token_type": "Bearer",
                "expires_in": 32400,
            }),
        ),
        "/v1/notifications/verify-webhook-signature" => {
            let ok = serde_json::from_slice::<VerifyRequest>(&s.body).is_ok_and(|r| {
                let h = TransmissionHeaders {
                    transmission_id: r.transmission_id,
                    transmission_time: r.transmission_time,
                    transmission_sig: r.transmission_sig,
                    cert_url: r.cert_url,
                    auth_algo: r.auth_algo,
                };
                let event = r.webhook_event.get().as_bytes();
                checker.check(&h, event, &r.webhook_id, SENT_AT).is_ok()
            });
            let status = if ok { "SUCCESS" } else { "FAILURE" };
            Reply::json(200, &serde_json::json!({ "verification_status": status }))
        }
        _ => Reply::status(404),
    })
    .await
    .unwrap();
    let paypal = paypal_at(
        &api.base,
        |vars| {
            vars.insert("PAYPAL_WEBHOOK_VERIFY".into(), "api".into());
            vars.insert("PAYPAL_WEBHOOK_ID".into(), WEBHOOK_ID.into());
        },
        |_| {},
    );

    // Today the 2015 delivery is far outside the transmission window: PayPal is not asked.
    let err = paypal
        .verify_webhook(&v.headers, &v.body)
        .await
        .unwrap_err();
    assert!(err.contains("transmission time"), "{err}");
    assert_eq!(api.connections(), 0, "a stale delivery costs no request");

    // At its own time it goes to PayPal's API.
    let result = paypal
        .verify_webhook_at(
            &v.headers,
            &v.body,
            UNIX_EPOCH + Duration::from_secs(SENT_AT),
        )
        .await;
    let seen = api.seen();
    let call = seen
        .iter()
        .find(|s| s.path == "/v1/notifications/verify-webhook-signature")
        .expect("the verification API was called");
    assert_eq!(call.method, "POST");
    assert_eq!(call.header("authorization"), Some("Bearer A21-TEST-TOKEN"));
    let sent: VerifyRequest = serde_json::from_slice(&call.body).expect("a JSON request");
    assert_eq!(
        sent.webhook_event.get(),
        std::str::from_utf8(&v.body).unwrap(),
        "webhook_event is the delivered body, byte for byte"
    );
    assert_eq!(
        (
            sent.transmission_id.as_str(),
            sent.transmission_time.as_str(),
            sent.transmission_sig.as_str(),
            sent.cert_url.as_str(),
            sent.auth_algo.as_str(),
            sent.webhook_id.as_str(),
        ),
        (
            v.headers.transmission_id.as_str(),
            v.headers.transmission_time.as_str(),
            v.headers.transmission_sig.as_str(),
            v.headers.cert_url.as_str(),
            v.headers.auth_algo.as_str(),
            WEBHOOK_ID,
        )
    );
    // The bytes PayPal got verify offline (the sample's certificate and CA chain, at the
    // sample's time)...
    assert_eq!(
        v.check(
            &v.headers,
            sent.webhook_event.get().as_bytes(),
            WEBHOOK_ID,
            SENT_AT
        ),
        Ok(())
    );
    // ...and so PayPal (the stub) said SUCCESS.
    assert_eq!(result, Ok(()));
}

#[rocket::async_test]
async fn the_simulator_verifies_the_webhook_event_as_received() {
    crate::helpers::install_crypto();
    let port = crate::helpers::free_port();
    let sim_base = format!("http://127.0.0.1:{port}");
    let sim = Arc::new(paypal_simulator::Sim::new(
        &sim_base,
        "",
        "",
        "WH-SIMULATOR",
    ));
    let figment = rocket::Config::figment()
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("log_level", rocket::config::LogLevel::Off));
    tokio::spawn(paypal_simulator::rocket(figment, sim.clone()).launch());
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let paypal = paypal_at(
        &sim_base,
        |vars| {
            vars.insert("PAYPAL_WEBHOOK_VERIFY".into(), "api".into());
        },
        |_| {},
    );
    // Keys out of order and spaces: what PayPal signs is these bytes, not a re-serialisation.
    let body = br#"{"id":"WH-RAW-1", "event_type":"PAYMENT.CAPTURE.COMPLETED", "resource":{"status":"COMPLETED","id":"CAP-1"}}"#;
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(body).unwrap()).unwrap();
    assert_ne!(reserialised, body);
    let headers = sim.sign(body);
    assert_eq!(paypal.verify_webhook(&headers, body).await, Ok(()));
    let mut tampered = body.to_vec();
    let at = tampered.windows(5).position(|w| w == b"CAP-1").unwrap();
    tampered[at + 4] = b'2';
    let err = paypal
        .verify_webhook(&headers, &tampered)
        .await
        .unwrap_err();
    assert!(err.contains("not valid"), "{err}");
}
