//! Offline verification of the real PayPal-signed webhook in ../shared/paypal: valid at its
//! transmission time, and invalid for every kind of tampering.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use ticketing::paypal::verify::{self, CertPolicy, TransmissionHeaders, TrustStore};

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
