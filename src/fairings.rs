//! Response fairings: structured request logs, security headers, long-lived caching of
//! static files, and `X-Robots-Tag: noindex` on private pages and on every 404 (so a wrong
//! private token and a missing page answer identically).

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Status};
use rocket::{Data, Request, Response};

/// Logs one line per request with method, path, status and duration (tracing).
pub struct RequestLog;

#[derive(Clone, Copy)]
struct Started(Instant);

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
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let started = req.local_cache(|| Started(Instant::now())).0;
        let micros = started.elapsed().as_micros() as u64;
        // Secret tokens in paths (private links, booking pages) are never logged.
        let shown = redact_tokens(req.uri().path().as_str());
        tracing::info!(
            target: "request",
            method = %req.method(),
            path = %shown,
            status = res.status().code,
            micros,
            "request"
        );
    }
}

/// Security and caching headers on every response.
pub struct Headers;

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
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        // A private link must not leak to other sites through the Referer header.
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        // Private links and personal pages: never indexed, never cached by anyone.
        let personal = path.starts_with("/p/")
            || path.starts_with("/checkout")
            || path.starts_with("/bookings");
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

/// Replaces every path segment that looks like a secret token with `<token>`.
pub fn redact_tokens(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.len() >= 22 && crate::tokens::looks_like_token(seg) {
                "<token>"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
