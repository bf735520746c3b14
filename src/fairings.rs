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
        // Private tokens are secrets: log the area, never the token itself.
        let path = req.uri().path();
        let shown = if path.starts_with("/p/") {
            "/p/<token>".to_string()
        } else {
            path.to_string()
        };
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
        if path.starts_with("/p/") || res.status() == Status::NotFound {
            res.set_header(Header::new("X-Robots-Tag", "noindex"));
        }
        if path.starts_with("/static/") && res.status() == Status::Ok {
            // URLs carry a content hash (?v=...), so files can be cached for a year.
            res.set_header(Header::new(
                "Cache-Control",
                "public, max-age=31536000, immutable",
            ));
        } else if path.starts_with("/p/") {
            res.set_header(Header::new("Cache-Control", "private, no-store"));
        } else if !res.headers().contains("Cache-Control") {
            res.set_header(Header::new("Cache-Control", "no-cache"));
        }
    }
}
