//! Operations endpoints: `/healthz` for the load balancer, Docker and the deploy script, and
//! `/metrics` for Prometheus (see `crate::metrics`).

use diesel::RunQueryDsl;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{get, routes, Route, State};
use serde_json::{json, Value};

use crate::db::Db;
use crate::error::AppError;

pub fn routes() -> Vec<Route> {
    routes![
        healthz,
        client_certificate_required,
        bad_address,
        crate::metrics::metrics,
        not_found
    ]
}

/// The answer to a request that came without Cloudflare's client certificate while
/// authenticated origin pulls are required (see `fairings::OriginPull`).
#[get("/_/client-certificate-required")]
fn client_certificate_required() -> AppError {
    AppError::new(
        Status::Forbidden,
        "This server only answers requests that come through Cloudflare.",
    )
}

/// The answer to a request whose address holds control characters (see
/// `fairings::RefuseBadAddress`).
#[get("/_/bad-address")]
fn bad_address() -> AppError {
    AppError::bad_request(crate::fairings::BAD_ADDRESS_MESSAGE)
}

/// Every GET (and HEAD) that no other route takes: the same 404 page as the catcher gives
/// (byte-identical, so a wrong private link still looks like any missing page), answered by
/// a route so that Rocket does not log "No matching routes" as an error for each crawler's
/// guess (test `edge::head_is_answered_like_get`).
#[get("/<_..>", rank = 100)]
fn not_found() -> AppError {
    AppError::not_found()
}

/// 200 with `{"status":"ok"}` when the database answers a query, 503 when it does not.
#[get("/healthz")]
async fn healthz(db: &State<Db>) -> (Status, Json<Value>) {
    let probe = db
        .run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await;
    match probe {
        Ok(()) => (
            Status::Ok,
            Json(json!({ "status": "ok", "database": "ok", "version": env!("CARGO_PKG_VERSION") })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (
                Status::ServiceUnavailable,
                Json(
                    json!({ "status": "unavailable", "database": "unreachable", "version": env!("CARGO_PKG_VERSION") }),
                ),
            )
        }
    }
}
