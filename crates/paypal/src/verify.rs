//! Offline verification of PayPal webhook signatures (PayPal's "SHA256withRSA" scheme):
//! the signed message is `transmission_id|transmission_time|webhook_id|crc32(body)` with the
//! CRC-32 of the raw body in decimal, signed RSASSA-PKCS1-v1_5/SHA-256 by the certificate at
//! `paypal-cert-url`. The URL, judged as parsed, must be https on a paypal.com host, port 443,
//! under `/v1/notifications/certs/`; the certificate must chain to a trusted CA, be valid at
//! the verifier's clock, and name a paypal.com host. Outside production the simulator's own
//! host and CA can be allowed too. A receiver makes every check that needs no network first
//! ([`precheck`]: webhook id, transmission time window, algorithm, signature encoding, URL),
//! and only then downloads the certificate ([`verify_signature`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Deserialize;

/// The transmission headers PayPal sends with every webhook delivery.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TransmissionHeaders {
    #[serde(rename = "paypal-transmission-id")]
    pub transmission_id: String,
    #[serde(rename = "paypal-transmission-time")]
    pub transmission_time: String,
    #[serde(rename = "paypal-transmission-sig")]
    pub transmission_sig: String,
    #[serde(rename = "paypal-cert-url")]
    pub cert_url: String,
    #[serde(rename = "paypal-auth-algo", default)]
    pub auth_algo: String,
}

impl TransmissionHeaders {
    /// Reads the headers by name (case-insensitive lookup is the caller's).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let need = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("header {name} is missing"))
        };
        Ok(TransmissionHeaders {
            transmission_id: need("paypal-transmission-id")?,
            transmission_time: need("paypal-transmission-time")?,
            transmission_sig: need("paypal-transmission-sig")?,
            cert_url: need("paypal-cert-url")?,
            auth_algo: get("paypal-auth-algo").unwrap_or_default(),
        })
    }
}

/// CRC-32 (IEEE) of the raw body, as PayPal puts it in the signed message.
pub fn body_crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

/// The exact string PayPal signed.
pub fn signed_message(h: &TransmissionHeaders, webhook_id: &str, body: &[u8]) -> String {
    format!(
        "{}|{}|{}|{}",
        h.transmission_id,
        h.transmission_time,
        webhook_id,
        body_crc32(body)
    )
}

/// Which certificate hosts are acceptable besides PayPal's own.
#[derive(Debug, Clone, Default)]
pub struct CertPolicy {
    /// Extra allowed `scheme://host:port` prefixes (the simulator, outside production only).
    pub extra_url_prefixes: Vec<String>,
    /// Extra allowed certificate subject names (the simulator's).
    pub extra_subject_names: Vec<String>,
}

/// Where PayPal serves its webhook certificates, on every allowed host.
pub const CERT_PATH_PREFIX: &str = "/v1/notifications/certs/";

/// A PayPal host: `api.paypal.com`, `api-m.paypal.com` or any other subdomain of
/// paypal.com (sandbox hosts included), as a DNS name with no empty label.
fn host_is_paypal(domain: &str) -> bool {
    domain
        .strip_suffix(".paypal.com")
        .is_some_and(|sub| !sub.is_empty() && sub.split('.').all(|label| !label.is_empty()))
}

/// The path is a certificate's: `<base>/v1/notifications/certs/<name>` (`base` is empty on
/// PayPal's hosts). The path is the parsed one, with `.` and `..` segments resolved.
fn is_cert_path(url: &url::Url, base: &str) -> bool {
    url.path()
        .strip_prefix(base)
        .and_then(|p| p.strip_prefix(CERT_PATH_PREFIX))
        .is_some_and(|name| !name.is_empty())
}

/// The URL is one of the policy's extra prefixes (the simulator's `http://127.0.0.1:<port>`):
/// the same scheme, host and port as parsed, no user info, and a certificate path under it.
fn matches_extra_prefix(url: &url::Url, policy: &CertPolicy) -> bool {
    policy.extra_url_prefixes.iter().any(|prefix| {
        let Ok(allowed) = url::Url::parse(prefix) else {
            return false;
        };
        url.scheme() == allowed.scheme()
            && url.host() == allowed.host()
            && url.port_or_known_default() == allowed.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && is_cert_path(url, allowed.path().trim_end_matches('/'))
    })
}

/// Checks that the certificate URL may be fetched and returns it parsed, exactly as the
/// HTTP client will use it (the `url` crate, WHATWG rules: a backslash ends the host, for
/// one). Allowed: https, a DNS host on paypal.com (`api.paypal.com`, `api-m.paypal.com` or
/// another subdomain; never an IP address), port 443, no user info, a path under
/// `/v1/notifications/certs/`; or, outside production, one of the policy's extra prefixes
/// compared as parsed. Tests: `cert_urls_are_judged_as_parsed` here, and
/// `tricky_certificate_urls_are_refused_without_a_request` (tests/it/paypal_verify.rs).
pub fn check_cert_url(url: &str, policy: &CertPolicy) -> Result<url::Url, String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("certificate URL is unreadable ({e}): {url}"))?;
    if matches_extra_prefix(&parsed, policy) {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err(format!("certificate URL is not https: {url}"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("certificate URL has user info: {url}"));
    }
    match parsed.host() {
        Some(url::Host::Domain(domain)) if host_is_paypal(domain) => {}
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(format!("certificate URL names an IP address: {url}"));
        }
        _ => return Err(format!("certificate URL is not on paypal.com: {url}")),
    }
    if parsed.port_or_known_default() != Some(443) {
        return Err(format!("certificate URL uses an unexpected port: {url}"));
    }
    if !is_cert_path(&parsed, "") {
        return Err(format!(
            "certificate URL is not under {CERT_PATH_PREFIX}: {url}"
        ));
    }
    Ok(parsed)
}

/// Parses every certificate in a PEM bundle.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| format!("unreadable PEM: {e:?}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM data".into());
    }
    Ok(certs)
}

/// Trusted CAs for webhook certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub certs: Vec<CertificateDer<'static>>,
}

impl TrustStore {
    /// Loads every PEM certificate from the given files; unreadable files are an error.
    pub fn from_files(paths: &[std::path::PathBuf]) -> Result<TrustStore, String> {
        let mut certs = Vec::new();
        for path in paths {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
            certs.extend(pem_certs(&pem).map_err(|e| format!("{path:?}: {e}"))?);
        }
        Ok(TrustStore { certs })
    }
}

/// Parses an RFC 3339 time (the `--at` option, transmission times) to a system time.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let at = chrono::DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| format!("not an RFC 3339 time: {text:?}"))?;
    let secs = u64::try_from(at.timestamp()).map_err(|_| format!("time before 1970: {text}"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// How old a transmission may be when it arrives ([`precheck`]). PayPal sends each attempt,
/// retries included, as a new transmission with its own id and time (an event's
/// `transmissions` list shows one per attempt), so only a replay is this old.
pub const MAX_TRANSMISSION_AGE: Duration = Duration::from_secs(15 * 60);
/// How far ahead of the receiver's clock a transmission time may be (clock skew).
pub const MAX_TRANSMISSION_AHEAD: Duration = Duration::from_secs(5 * 60);

/// A delivery that passed every check needing no network; what the certificate download
/// and the signature check go on with.
#[derive(Debug, Clone)]
pub struct Prechecked {
    /// The certificate URL as parsed and allowed: the one to download, unchanged.
    pub cert_url: url::Url,
    headers: TransmissionHeaders,
    webhook_id: String,
    signature: Vec<u8>,
}

/// The checks that need neither the network nor a clock: a webhook id is configured, the
/// algorithm is SHA256withRSA (or not named), the signature is base64, and the certificate
/// URL is allowed ([`check_cert_url`]).
fn check_delivery(
    headers: &TransmissionHeaders,
    webhook_id: &str,
    policy: &CertPolicy,
) -> Result<Prechecked, String> {
    if webhook_id.trim().is_empty() {
        return Err("no webhook id is configured".into());
    }
    if !headers.auth_algo.is_empty() && !headers.auth_algo.eq_ignore_ascii_case("SHA256withRSA") {
        return Err(format!(
            "unsupported paypal-auth-algo {:?}",
            headers.auth_algo
        ));
    }
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(headers.transmission_sig.trim())
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "signature is not base64".to_string())?;
    let cert_url = check_cert_url(&headers.cert_url, policy)?;
    Ok(Prechecked {
        cert_url,
        headers: headers.clone(),
        webhook_id: webhook_id.to_string(),
        signature,
    })
}

/// The transmission time is readable and within [`MAX_TRANSMISSION_AGE`] before `now` and
/// [`MAX_TRANSMISSION_AHEAD`] after it.
pub fn check_transmission_time(
    headers: &TransmissionHeaders,
    now: SystemTime,
) -> Result<(), String> {
    let sent = parse_time(&headers.transmission_time)
        .map_err(|e| format!("paypal-transmission-time: {e}"))?;
    match now.duration_since(sent) {
        Ok(age) if age > MAX_TRANSMISSION_AGE => Err(format!(
            "transmission time {} is more than {} minutes old",
            headers.transmission_time,
            MAX_TRANSMISSION_AGE.as_secs() / 60
        )),
        Err(ahead) if ahead.duration() > MAX_TRANSMISSION_AHEAD => Err(format!(
            "transmission time {} is more than {} minutes ahead of our clock",
            headers.transmission_time,
            MAX_TRANSMISSION_AHEAD.as_secs() / 60
        )),
        _ => Ok(()),
    }
}

/// Every check a receiver makes before any network call (certificate download or PayPal's
/// verification API): webhook id configured, transmission time within the window around
/// `now`, algorithm, signature readable, certificate URL allowed. A delivery failing one
/// costs no request: test `a_delivery_failing_a_cheap_check_makes_no_request`
/// (tests/it/paypal_verify.rs).
pub fn precheck(
    headers: &TransmissionHeaders,
    webhook_id: &str,
    policy: &CertPolicy,
    now: SystemTime,
) -> Result<Prechecked, String> {
    check_transmission_time(headers, now)?;
    check_delivery(headers, webhook_id, policy)
}

/// Checks a prechecked delivery's signature against the certificate PEM downloaded from its
/// certificate URL. `now` is the clock for the certificate's validity.
pub fn verify_signature(
    checked: &Prechecked,
    body: &[u8],
    cert_pem: &[u8],
    trust: &TrustStore,
    policy: &CertPolicy,
    now: SystemTime,
) -> Result<(), String> {
    let chain = pem_certs(cert_pem)?;
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("unreadable certificate: {e:?}"))?;
    let anchors: Vec<_> = trust
        .certs
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.is_empty() {
        return Err("no trusted CA is configured".into());
    }
    // Other certificates served with the leaf, and the trusted ones, may be intermediates.
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .chain(trust.certs.iter())
        .cloned()
        .collect();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "clock before 1970".to_string())?;
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::since_unix_epoch(secs),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("certificate not trusted at that time: {e:?}"))?;
    let mut names = vec![
        "messageverificationcerts.paypal.com".to_string(),
        "messageverificationcerts.sandbox.paypal.com".to_string(),
    ];
    names.extend(policy.extra_subject_names.iter().cloned());
    let named = names.iter().any(|n| {
        ServerName::try_from(n.as_str())
            .map(|sn| leaf.verify_is_valid_for_subject_name(&sn).is_ok())
            .unwrap_or(false)
    });
    if !named {
        return Err("certificate is not PayPal's message verification certificate".into());
    }
    leaf.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        signed_message(&checked.headers, &checked.webhook_id, body).as_bytes(),
        &checked.signature,
    )
    .map_err(|_| "signature does not match".to_string())
}

/// Verifies one delivery against the certificate PEM served at its cert URL: the checks of
/// [`precheck`] but the transmission window, then [`verify_signature`]. `now` is the clock
/// for the certificate's validity (tests and `--at` set it); the transmission's age is not
/// judged here, so a stored delivery can be checked later.
pub fn verify(
    headers: &TransmissionHeaders,
    body: &[u8],
    webhook_id: &str,
    cert_pem: &[u8],
    trust: &TrustStore,
    policy: &CertPolicy,
    now: SystemTime,
) -> Result<(), String> {
    let checked = check_delivery(headers, webhook_id, policy)?;
    verify_signature(&checked, body, cert_pem, trust, policy, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_urls_must_be_https_on_paypal() {
        let p = CertPolicy::default();
        assert!(check_cert_url("https://api.paypal.com/v1/notifications/certs/CERT-1", &p).is_ok());
        assert!(check_cert_url(
            "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            &p
        )
        .is_ok());
        for bad in [
            "http://api.paypal.com/x",
            "https://paypal.com.evil.test/x",
            "https://evilpaypal.com/x",
            "https://api.paypal.com@evil.test/x",
            "https://api.paypal.com:8443/x",
            "https://evil.test/api.paypal.com/x",
        ] {
            assert!(check_cert_url(bad, &p).is_err(), "{bad}");
        }
        let sim = CertPolicy {
            extra_url_prefixes: vec!["http://127.0.0.1:9000".into()],
            extra_subject_names: vec![],
        };
        assert!(check_cert_url("http://127.0.0.1:9000/v1/notifications/certs/X", &sim).is_ok());
        assert!(check_cert_url("http://127.0.0.1:9001/v1/notifications/certs/X", &sim).is_err());
    }

    /// The URL is judged as the HTTP client will parse it (WHATWG rules, the `url` crate).
    #[test]
    fn cert_urls_are_judged_as_parsed() {
        let p = CertPolicy::default();
        for good in [
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "https://API.PayPal.com:443/v1/notifications/certs/CERT-1",
        ] {
            assert!(check_cert_url(good, &p).is_ok(), "{good}");
        }
        for bad in [
            // A backslash ends the host for the HTTP client: this is 127.0.0.1.
            "https://127.0.0.1\\.paypal.com/v1/notifications/certs/CERT-1",
            "https://127.0.0.1\\.paypal.com:443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@127.0.0.1/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:x@127.0.0.1/v1/notifications/certs/CERT-1",
            "https://user@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://127.0.0.1/v1/notifications/certs/CERT-1",
            "https://2130706433/v1/notifications/certs/CERT-1",
            "https://0x7f.0.0.1/v1/notifications/certs/CERT-1",
            "https://[::1]/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.test/v1/notifications/certs/CERT-1",
            "https://api.paypal.com./v1/notifications/certs/CERT-1",
            "https://paypal.com/v1/notifications/certs/CERT-1",
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/notifications/CERT-1",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/../../../v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/%2e%2e/%2e%2e/x",
            "https://api.paypal.com/evil/v1/notifications/certs/CERT-1",
            "https://api.paypal.com",
            "not a url",
            "",
        ] {
            assert!(check_cert_url(bad, &p).is_err(), "{bad}");
        }
        let sim = CertPolicy {
            extra_url_prefixes: vec!["http://127.0.0.1:9000".into()],
            extra_subject_names: vec![],
        };
        assert!(check_cert_url("http://127.0.0.1:9000/v1/notifications/certs/X", &sim).is_ok());
        for bad in [
            "http://127.0.0.1:9000/simulator/ca.pem",
            "http://127.0.0.1:9000/x/v1/notifications/certs/X",
            "http://127.0.0.1:9000\\@127.0.0.2:9000/v1/notifications/certs/X",
            "http://u@127.0.0.1:9000/v1/notifications/certs/X",
            "https://127.0.0.1:9000/v1/notifications/certs/X",
            "http://127.0.0.1:90000/v1/notifications/certs/X",
            "http://127.0.0.1:9000.evil.test/v1/notifications/certs/X",
        ] {
            assert!(check_cert_url(bad, &sim).is_err(), "{bad}");
        }
    }
}
