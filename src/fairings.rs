//! Request and response fairings: HEAD answered as GET, addresses with control characters
//! refused before routing, structured request logs, security headers, long-lived caching of
//! static files, and `X-Robots-Tag: noindex` on private pages and on every 404 (so a wrong
//! private token and a missing page answer identically).

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::{Data, Request, Response};

/// Answers `HEAD` like `GET` (uptime monitors send HEAD). Rocket would first look for a
/// HEAD route, log "No matching routes" as an error, then retry as GET; this turns the
/// request into a GET before routing instead, and the HTTP server (hyper) sends the GET's
/// headers, Content-Length included, without the body (test `edge::head_is_answered_like_get`).
pub struct HeadAsGet;

/// Marks a request that arrived as `HEAD`.
#[derive(Clone, Copy)]
pub struct WasHead(pub bool);

#[rocket::async_trait]
impl Fairing for HeadAsGet {
    fn info(&self) -> Info {
        Info {
            name: "HEAD as GET",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let head = req.method() == Method::Head;
        req.local_cache(|| WasHead(head));
        if head {
            req.set_method(Method::Get);
        }
    }
}

/// Where a request whose address holds control characters is sent (see [`RefuseBadAddress`]).
pub const BAD_ADDRESS: &str = "/_/bad-address";

/// The message of the 400 page for such a request.
pub const BAD_ADDRESS_MESSAGE: &str = "The address of this page contains characters that are not allowed (such as %00 or other control characters). Check the link and try again.";

/// Refuses, with a 400 page and before any handler or guard runs, every request whose
/// percent-decoded path or query holds a control character (NUL, line breaks, tabs, escape
/// ...) or is not UTF-8: such a value could only be junk or an attack, and PostgreSQL cannot
/// even store a NUL. The request is turned into `GET /_/bad-address` (a route in
/// `routes::ops`), so a POST's body is never read either (test
/// `hardening::control_characters_in_any_address_get_400`).
pub struct RefuseBadAddress;

/// True when `uri`'s path and query, percent-decoded, are UTF-8 without control characters.
pub fn address_is_clean(uri: &rocket::http::uri::Origin<'_>) -> bool {
    let clean = |decoded: Result<std::borrow::Cow<'_, str>, std::str::Utf8Error>| {
        decoded.is_ok_and(|text| !text.chars().any(char::is_control))
    };
    clean(uri.path().raw().percent_decode())
        && uri.query().is_none_or(|q| clean(q.raw().url_decode()))
}

#[rocket::async_trait]
impl Fairing for RefuseBadAddress {
    fn info(&self) -> Info {
        Info {
            name: "refuse addresses with control characters",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if !address_is_clean(req.uri()) {
            req.set_method(Method::Get);
            req.set_uri(rocket::http::uri::Origin::parse(BAD_ADDRESS).expect("valid path"));
        }
    }
}

/// Logs one line per request with method, path (as it arrived, before any fairing rewrote
/// it, and redacted by [`crate::redact`]), status and duration (tracing).
pub struct RequestLog;

#[derive(Clone, Copy)]
struct Started(Instant);

/// The path a request arrived with, redacted.
struct ArrivedPath(String);

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "request log",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
        let path = crate::redact::redact(req.uri().path().as_str()).into_owned();
        req.local_cache(|| ArrivedPath(path));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let started = req.local_cache(|| Started(Instant::now())).0;
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        // Labelled by the route's pattern (bounded), never by the path (tokens, ids).
        let route = req
            .route()
            .map(|r| r.uri.to_string())
            .unwrap_or_else(|| "unmatched".into());
        let method = if req.local_cache(|| WasHead(false)).0 {
            "HEAD"
        } else {
            req.method().as_str()
        };
        ticketing_core::telemetry::http_request(
            route,
            method,
            res.status().code,
            elapsed.as_secs_f64(),
        );
        // Secret tokens in paths (private links, booking pages) are never logged.
        let shown = &req
            .local_cache(|| {
                ArrivedPath(crate::redact::redact(req.uri().path().as_str()).into_owned())
            })
            .0;
        let client = crate::net::client_ip(req)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        tracing::info!(
            target: "request",
            client = %client,
            method = %method,
            path = %shown,
            status = res.status().code,
            micros,
            "request"
        );
    }
}

/// Security and caching headers on every response: a strict Content-Security-Policy (see
/// [`content_security_policy`]), HSTS in production, and the rest below (tests
/// `hardening::every_page_sends_a_strict_csp` and `hardening::hsts_only_in_production`).
pub struct Headers {
    /// The `Content-Security-Policy` value.
    pub csp: String,
    /// Send `Strict-Transport-Security` (production, which is served over HTTPS only).
    pub hsts: bool,
}

impl Headers {
    /// The headers `config` calls for: HSTS only in production, and forms allowed to go on to
    /// the approval pages of the configured PayPal mode.
    pub fn for_config(config: &crate::Config) -> Headers {
        Headers {
            csp: content_security_policy(&paypal_web_origin(&config.paypal)),
            hsts: config.app_env.is_production(),
        }
    }
}

/// The value of `Strict-Transport-Security` in production: a year, subdomains included.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The origin of the pages where buyers approve payments: PayPal's web site for live and
/// sandbox, and in simulator mode the simulator itself (the origin of `PAYPAL_API_BASE`).
pub fn paypal_web_origin(settings: &crate::paypal::PayPalSettings) -> String {
    use crate::paypal::PayPalMode;
    match settings.mode {
        PayPalMode::Live => "https://www.paypal.com".into(),
        PayPalMode::Sandbox => "https://www.sandbox.paypal.com".into(),
        PayPalMode::Simulator => url::Url::parse(&settings.api_base)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default(),
    }
}

/// The Content-Security-Policy of every response: everything from our own origin only, no
/// inline script or style (templates use static files and classes; the test
/// `hardening::templates_have_no_inline_script_or_style` keeps it so), no framing, no
/// `<base>`, no plugins; forms post only to us and to `paypal_web_origin`, because the
/// checkout's confirm form is answered with a redirect to PayPal's approval page and
/// browsers apply `form-action` to the redirects that follow a form submission.
pub fn content_security_policy(paypal_web_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self' {paypal_web_origin}"
    )
}

#[rocket::async_trait]
impl Fairing for Headers {
    fn info(&self) -> Info {
        Info {
            name: "security and cache headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let path = req.uri().path();
        res.set_header(Header::new("Content-Security-Policy", self.csp.clone()));
        if self.hsts {
            res.set_header(Header::new("Strict-Transport-Security", HSTS));
        }
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        // A private link must not leak to other sites through the Referer header.
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        // Private links and personal pages: never indexed, never cached by anyone.
        let personal = path.starts_with("/p/")
            || path.starts_with("/checkout")
            || path.starts_with("/bookings")
            || path.starts_with("/waivers")
            || path.starts_with("/admin")
            || path.starts_with("/payments");
        if personal || res.status() == Status::NotFound {
            res.set_header(Header::new("X-Robots-Tag", "noindex"));
        }
        if path.starts_with("/static/") && res.status() == Status::Ok {
            // URLs carry a content hash (?v=...), so files can be cached for a year.
            res.set_header(Header::new(
                "Cache-Control",
                "public, max-age=31536000, immutable",
            ));
        } else if personal {
            res.set_header(Header::new("Cache-Control", "private, no-store"));
        } else if !res.headers().contains("Cache-Control") {
            res.set_header(Header::new("Cache-Control", "no-cache"));
        }
    }
}

/// Where requests without Cloudflare's client certificate are sent (see [`OriginPull`]).
pub const CLIENT_CERT_REQUIRED: &str = "/_/client-certificate-required";

/// With authenticated origin pulls on, every request must present a client certificate that
/// chains to the configured CA (Rocket verifies it during the TLS handshake); the one
/// exception is `/healthz` from loopback, for Docker's and deploy.sh's health checks on the
/// host. Other requests are answered 403.
pub struct OriginPull {
    pub required: bool,
}

#[rocket::async_trait]
impl Fairing for OriginPull {
    fn info(&self) -> Info {
        Info {
            name: "authenticated origin pulls",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if !self.required {
            return;
        }
        let local_health =
            req.uri().path() == "/healthz" && req.remote().is_some_and(|a| a.ip().is_loopback());
        if local_health {
            return;
        }
        let has_cert = req
            .guard::<rocket::mtls::Certificate<'_>>()
            .await
            .is_success();
        if !has_cert {
            req.set_method(rocket::http::Method::Get);
            req.set_uri(
                rocket::http::uri::Origin::parse(CLIENT_CERT_REQUIRED).expect("valid path"),
            );
        }
    }
}
