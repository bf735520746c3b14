//! The app at the edge, behind Cloudflare: the client IP from `CF-Connecting-IP` only from
//! Cloudflare's ranges (rate limits key on it), TLS with an origin certificate, authenticated
//! origin pulls (client certificates), and a clean stop on SIGTERM.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rocket::http::{ContentType, Header, Status};

use crate::helpers::{add_ticket_type, EventSpec, TestApp, TestDb, TestServer};

async fn hold_status(app: &TestApp, peer: &str, cf_ip: Option<&str>, body: &str) -> Status {
    let mut req = app
        .client
        .post("/checkout/hold")
        .header(ContentType::Form)
        .remote(peer.parse::<SocketAddr>().unwrap())
        .body(body);
    if let Some(ip) = cf_ip {
        req = req.header(Header::new("CF-Connecting-IP", ip.to_string()));
    }
    req.dispatch().await.status()
}

#[rocket::async_test]
async fn holds_are_rate_limited_by_the_real_client_ip() {
    let app = TestApp::spawn_with(|v| {
        v.insert("HOLD_RATE_PER_MINUTE".into(), "2".into());
        v.insert(
            "CLOUDFLARE_IPS_FILE".into(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/cloudflare-ips.txt").into(),
        );
    })
    .await;
    let mut c = app.conn();
    let event = EventSpec::public("limited", 5).insert(&mut c);
    let t = add_ticket_type(&mut c, &event, "GA", 100, 100);
    let body = format!("event_id={}&qty[{}]=1", event.id, t.id);
    let cloudflare = "173.245.48.10:443";

    // Through Cloudflare: each visitor (CF-Connecting-IP) has a budget of their own.
    for _ in 0..2 {
        assert_eq!(
            hold_status(&app, cloudflare, Some("203.0.113.5"), &body).await,
            Status::SeeOther
        );
    }
    assert_eq!(
        hold_status(&app, cloudflare, Some("203.0.113.5"), &body).await,
        Status::TooManyRequests
    );
    assert_eq!(
        hold_status(&app, cloudflare, Some("203.0.113.6"), &body).await,
        Status::SeeOther
    );

    // From elsewhere the header is ignored (it could be forged): the peer is the client.
    let direct = "198.51.100.7:5000";
    assert_eq!(
        hold_status(&app, direct, Some("203.0.113.20"), &body).await,
        Status::SeeOther
    );
    assert_eq!(
        hold_status(&app, direct, Some("203.0.113.21"), &body).await,
        Status::SeeOther
    );
    let res = hold_status(&app, direct, Some("203.0.113.22"), &body).await;
    assert_eq!(
        res,
        Status::TooManyRequests,
        "a forged CF-Connecting-IP must not reset the budget"
    );
    // The limited requests changed nothing.
    let (taken, bookings) = crate::helpers::seat_state(&mut c, event.id);
    assert_eq!((taken, bookings), (5, 5));
}

struct Pki {
    dir: std::path::PathBuf,
    server_ca: CertifiedIssuer<'static, KeyPair>,
    client_ca: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Writes (cert, key) PEM files for a leaf signed by `issuer`.
fn leaf(
    dir: &std::path::Path,
    name: &str,
    sans: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        cert_path,
        key_path,
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )
}

fn pki() -> Pki {
    crate::helpers::install_crypto();
    let dir = std::env::temp_dir().join(format!("tls-{}", ticketing::tokens::url_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    Pki {
        dir,
        server_ca: ca("Test Origin CA"),
        client_ca: ca("Test Origin Pull CA"),
    }
}

fn client(pki: &Pki, identity: Option<&str>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(pki.server_ca.pem().as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(Duration::from_secs(10));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[rocket::async_test]
async fn serves_https_with_the_origin_certificate() {
    let pki = pki();
    let (cert, key, _) = leaf(
        &pki.dir,
        "origin",
        &["127.0.0.1", "localhost"],
        &pki.server_ca,
    );
    let server = TestServer::spawn_with(|v| {
        v.insert("TLS_CERT_FILE".into(), cert.display().to_string());
        v.insert("TLS_KEY_FILE".into(), key.display().to_string());
    })
    .await;
    assert!(server.base.starts_with("https://"));
    let res = client(&pki, None)
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A client that does not trust the origin CA is refused by TLS itself.
    let other = ca("Someone Else");
    let stranger = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(other.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    assert!(stranger.get(server.url("/healthz")).send().await.is_err());
}

#[rocket::async_test]
async fn with_origin_pulls_required_only_clients_with_the_certificate_get_in() {
    let pki = pki();
    let (cert, key, _) = leaf(&pki.dir, "origin", &["127.0.0.1"], &pki.server_ca);
    let ca_file = pki.dir.join("origin-pull-ca.pem");
    std::fs::write(&ca_file, pki.client_ca.pem()).unwrap();
    let (_, _, cloudflare_identity) =
        leaf(&pki.dir, "cloudflare", &["cloudflare.test"], &pki.client_ca);
    let rogue_ca = ca("Rogue");
    let (_, _, rogue_identity) = leaf(&pki.dir, "rogue", &["rogue.test"], &rogue_ca);
    let server = TestServer::spawn_with(|v| {
        v.insert("TLS_CERT_FILE".into(), cert.display().to_string());
        v.insert("TLS_KEY_FILE".into(), key.display().to_string());
        v.insert("TLS_CLIENT_CA_FILE".into(), ca_file.display().to_string());
    })
    .await;
    let mut c = server.conn();
    EventSpec::public("pulled", 3)
        .title("Pulled Event")
        .insert(&mut c);

    let anonymous = client(&pki, None);
    let res = anonymous.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = anonymous
        .get(server.url("/events/pulled"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!res.text().await.unwrap().contains("Pulled Event"));
    // A certificate from another CA fails the handshake or is refused.
    if let Ok(res) = client(&pki, Some(&rogue_identity))
        .get(server.url("/"))
        .send()
        .await
    {
        assert_eq!(res.status(), 403)
    }
    // The host's own health check on loopback still works without a certificate.
    assert_eq!(
        anonymous
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let cloudflare = client(&pki, Some(&cloudflare_identity));
    let res = cloudflare
        .get(server.url("/events/pulled"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Pulled Event"));
}

/// Starts the `ticketing serve` binary (see [`crate::helpers::spawn_server`]).
fn spawn_binary(db: &TestDb, log: Option<&std::path::Path>) -> (std::process::Child, u16) {
    crate::helpers::spawn_server(&db.url, &[], log)
}

/// One raw HTTP/1.1 request; returns the head (status line and headers) and the body bytes.
fn raw_request(port: u16, method: &str, path: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    (
        String::from_utf8_lossy(&bytes[..split]).to_lowercase(),
        bytes[split + 4..].to_vec(),
    )
}

fn content_length(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: ").map(str::to_string))
}

#[test]
fn head_is_answered_like_get() {
    let db = TestDb::migrated();
    let log = std::env::temp_dir().join(format!("head-test-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let (mut child, port) = spawn_binary(&db, Some(&log));
    for path in ["/", "/healthz", "/no-such-page"] {
        let (get_head, get_body) = raw_request(port, "GET", path);
        let (head_head, head_body) = raw_request(port, "HEAD", path);
        let status = |h: &str| h.lines().next().unwrap_or_default().to_string();
        assert_eq!(status(&head_head), status(&get_head), "{path}");
        assert!(head_body.is_empty(), "HEAD {path} sent a body");
        if let Some(length) = content_length(&get_head) {
            assert_eq!(length, get_body.len().to_string(), "{path}");
            assert_eq!(content_length(&head_head), Some(length), "{path}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("\"method\":\"HEAD\""),
        "HEAD requests are logged as HEAD:\n{text}"
    );
    assert!(!text.contains("No matching routes"), "{text}");
    assert!(!text.contains("\"ERROR\""), "{text}");
}

#[test]
fn the_server_stops_cleanly_on_sigterm() {
    let db = TestDb::migrated();
    let (mut child, _) = spawn_binary(&db, None);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "did not stop within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Secret tokens (private links, booking and waiver links, PayPal return states, login
/// `next=`) never reach the log, whatever the request: HEAD, a wrong method, an unknown
/// sub-path, a refused address, or a 5xx (the database dropped under the running server).
#[test]
fn secret_tokens_never_reach_the_log() {
    let db = TestDb::migrated();
    let mut c = db.conn();
    let event = EventSpec::public("hidden", 5)
        .visibility("private")
        .insert(&mut c);
    add_ticket_type(&mut c, &event, "GA", 100, 10);
    let private = event.private_token.clone().unwrap();
    // Booking and waiver tokens, and a PayPal return state, as the app makes them.
    let booking = ticketing::tokens::url_token(18);
    let waiver = ticketing::tokens::url_token(18);
    let state = ticketing::tokens::derived("paypal-return", &booking);
    drop(c);
    let secrets = [private.as_str(), &booking, &waiver, &state];

    let log = std::env::temp_dir().join(format!("redact-test-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let (mut child, port) = spawn_binary(&db, Some(&log));
    let requests = |phase: &str| {
        let mut statuses = Vec::new();
        for (method, path) in [
            ("GET", format!("/p/{private}")),
            ("HEAD", format!("/p/{private}")),
            ("PUT", format!("/p/{private}")),
            ("DELETE", format!("/bookings/{booking}")),
            ("POST", format!("/p/{private}/availability")),
            ("GET", format!("/p/{private}/no/such/page")),
            ("GET", format!("/p/{private}.json")),
            ("PATCH", format!("/waivers/{waiver}/sign")),
            ("GET", format!("/waivers/{waiver}?x=1")),
            ("HEAD", format!("/bookings/{booking}/calendar.ics")),
            ("GET", format!("/checkout/{booking}/review")),
            ("GET", format!("/admin/login?next=%2Fp%2F{private}")),
            ("GET", format!("/admin/login?next=/bookings/{booking}")),
            (
                "GET",
                format!("/payments/paypal/return?token=5O190127TN364715T&state={state}"),
            ),
            (
                "GET",
                format!("/payments/paypal/cancel?state={state}&token=5O190127TN364715T"),
            ),
            ("GET", format!("/p/{private}%00")),
            ("GET", format!("/P/{private}")),
        ] {
            let (head, _) = raw_request(port, method, &path);
            statuses.push(format!(
                "{phase} {method} {path}: {}",
                head.lines().next().unwrap_or("")
            ));
        }
        statuses
    };
    let before = requests("up");
    // A 5xx for each token-bearing page: the database is gone under the running server.
    db.drop_now();
    let after = requests("down");
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        after.iter().any(|s| s.contains(" 503")),
        "the requests after the drop got 5xx: {after:#?}"
    );
    assert!(
        text.contains("\"status\":503"),
        "5xx answers are logged:\n{text}"
    );
    assert!(
        text.contains("<token>"),
        "paths are logged, redacted:\n{text}"
    );
    for secret in secrets {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("a secret token reached the log:\n{line}\n\n(requests: {before:#?} {after:#?})");
        }
    }
}
