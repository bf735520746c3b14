//! `/metrics` in Prometheus text format, on the `metrics` facade with
//! `metrics-exporter-prometheus` (the families are named in `ticketing_core::telemetry`).
//! Counters and histograms are recorded where things happen; the gauges that describe the
//! database (bookings by state, payments by capture status, the outbox) are read at scrape
//! time, so they are right after a restart. Never public by default: answered to a request
//! from loopback that came through no proxy, or with `Authorization: Bearer METRICS_TOKEN`;
//! anything else gets the site's 404 (tests in `tests/it/metrics.rs`).

use std::sync::OnceLock;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, Responder, State};
use ticketing_core::telemetry;

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::BookingState;

/// Latency buckets in seconds: most pages answer in about a millisecond, PayPal calls in
/// hundreds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use (tests build many apps in one process).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    BUCKETS,
                )
                .expect("valid buckets")
                .install_recorder()
                .expect("the only metrics recorder");
            telemetry::describe();
            handle
        })
        .clone()
}

/// A request allowed to read the metrics.
pub struct MetricsAccess;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for MetricsAccess {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let token = req
            .rocket()
            .state::<crate::Config>()
            .and_then(|c| c.metrics_token.clone());
        if let (Some(token), Some(given)) = (token, req.headers().get_one("Authorization")) {
            if let Some(given) = given.strip_prefix("Bearer ") {
                if crate::auth::same_secret(given.trim(), &token) {
                    return Outcome::Success(MetricsAccess);
                }
            }
            return Outcome::Error((Status::NotFound, ()));
        }
        // A proxy on the same host (cloudflared, a local nginx) connects from loopback too:
        // a forwarded request is not a local one.
        let proxied = [
            "CF-Connecting-IP",
            "X-Forwarded-For",
            "X-Real-IP",
            "Forwarded",
        ]
        .iter()
        .any(|h| req.headers().contains(*h));
        let loopback = req.remote().is_some_and(|a| a.ip().is_loopback());
        if loopback && !proxied {
            Outcome::Success(MetricsAccess)
        } else {
            Outcome::Error((Status::NotFound, ()))
        }
    }
}

#[derive(Responder)]
pub struct MetricsText {
    body: String,
    content_type: ContentType,
    cache: Header<'static>,
}

#[derive(QueryableByName)]
struct LabelCount {
    #[diesel(sql_type = Nullable<Text>)]
    label: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Age {
    #[diesel(sql_type = Nullable<Double>)]
    seconds: Option<f64>,
}

/// PayPal capture statuses a payment can have (`none`: not captured yet).
const CAPTURE_STATUSES: &[&str] = &[
    "none",
    "COMPLETED",
    "PENDING",
    "DECLINED",
    "FAILED",
    "REFUNDED",
    "PARTIALLY_REFUNDED",
];

/// Sets the gauges read from the database.
/// Sets gauge `family{label=...}` from a query of `label, n` rows; every label in `known`
/// starts at 0, since a state with no rows left is not in the result.
fn count_gauge(
    conn: &mut PgConnection,
    family: &'static str,
    label: &'static str,
    known: &[&str],
    sql: &str,
) -> QueryResult<()> {
    for value in known {
        telemetry::count(family, label, value.to_string(), 0.0);
    }
    for row in diesel::sql_query(sql).load::<LabelCount>(conn)? {
        telemetry::count(family, label, row.label.unwrap_or_default(), row.n as f64);
    }
    Ok(())
}

fn read_gauges(conn: &mut PgConnection) -> QueryResult<()> {
    let states: Vec<&str> = BookingState::ALL.iter().map(|s| s.as_str()).collect();
    count_gauge(
        conn,
        "bookings",
        "state",
        &states,
        "SELECT state AS label, count(*) AS n FROM bookings GROUP BY state",
    )?;
    count_gauge(
        conn,
        "payments",
        "capture_status",
        CAPTURE_STATUSES,
        "SELECT coalesce(capture_status, 'none') AS label, count(*) AS n FROM payments GROUP BY 1",
    )?;
    count_gauge(
        conn,
        "outbox_emails",
        "state",
        &["queued", "retrying", "sent", "failed"],
        "SELECT CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying'
                     WHEN state = 'pending' THEN 'queued' ELSE state END AS label,
                count(*) AS n
           FROM outbox GROUP BY 1",
    )?;
    let age = diesel::sql_query(
        "SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 AS seconds
           FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()",
    )
    .get_result::<Age>(conn)?;
    telemetry::set(
        "outbox_oldest_due_seconds",
        age.seconds.unwrap_or(0.0).max(0.0),
    );
    Ok(())
}

/// The metrics, with the database gauges read now.
#[get("/metrics")]
pub async fn metrics(_access: MetricsAccess, db: &State<Db>) -> AppResult<MetricsText> {
    let handle = handle();
    db.record_state();
    // With the database unreachable the rest is still worth reading (pool, jobs failing).
    if let Err(e) = db
        .run(|conn| read_gauges(conn).map_err(AppError::from))
        .await
    {
        tracing::warn!(error = %e, "metrics: database gauges not read");
    }
    Ok(MetricsText {
        body: handle.render(),
        content_type: ContentType::new("text", "plain")
            .with_params([("version", "0.0.4"), ("charset", "utf-8")]),
        cache: Header::new("Cache-Control", "no-store"),
    })
}
