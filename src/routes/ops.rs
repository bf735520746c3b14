//! Operations endpoints: `/healthz` for the load balancer, Docker and the deploy script.

use diesel::RunQueryDsl;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{get, routes, Route, State};
use serde_json::{json, Value};

use crate::db::Db;
use crate::error::AppError;

pub fn routes() -> Vec<Route> {
    routes![healthz, client_certificate_required]
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
