//! `/metrics`: every family the issue lists is there, from loopback only unless a bearer
//! token is configured, and never to a forwarded request.

use std::net::SocketAddr;

use rocket::http::{Header, Status};

use crate::helpers::{base_vars, TestApp, TestDb};

const LOOPBACK: &str = "127.0.0.1:40000";
const OUTSIDE: &str = "203.0.113.9:40000";
const TOKEN: &str = "0123456789abcdef0123456789abcdef-metrics";

async fn scrape(app: &TestApp, from: &str, headers: &[(&'static str, String)]) -> (Status, String) {
    let mut req = app
        .client
        .get("/metrics")
        .remote(from.parse::<SocketAddr>().unwrap());
    for (name, value) in headers {
        req = req.header(Header::new(*name, value.clone()));
    }
    let res = req.dispatch().await;
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn loopback_sees_every_family() {
    let app = TestApp::spawn().await;
    for path in ["/", "/healthz"] {
        let res = app
            .client
            .get(path)
            .remote(LOOPBACK.parse().unwrap())
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok, "{path}");
    }
    let res = app
        .client
        .post("/payments/paypal/webhook")
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::BadRequest);

    // Job families appear once the jobs have run (the sweeper runs every second).
    let mut body = String::new();
    for _ in 0..40 {
        let (status, text) = scrape(&app, LOOPBACK, &[]).await;
        assert_eq!(status, Status::Ok);
        body = text;
        if body.contains("job_last_success_timestamp_seconds{") {
            break;
        }
        rocket::tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    for (family, _) in ticketing_core::telemetry::FAMILIES {
        assert!(
            body.lines().any(
                |l| l.starts_with(family) && !l.starts_with(&format!("{family}_"))
                    || l.starts_with(&format!("{family}_bucket"))
            ),
            "family {family} missing from:\n{body}"
        );
    }
    // Routes are labelled by their pattern, with status; latencies are histograms.
    assert!(body.contains(r#"route="/healthz""#), "{body}");
    assert!(
        body.contains(r#"http_request_duration_seconds_bucket{route="/healthz""#),
        "{body}"
    );
    assert!(
        body.contains(r#"webhook_deliveries_total{outcome="refused"}"#),
        "{body}"
    );
    assert!(body.contains(r#"bookings{state="paid"}"#), "{body}");
    assert!(
        body.contains(r#"job_runs_total{job="sweep_holds"}"#),
        "{body}"
    );
}

#[rocket::async_test]
async fn metrics_are_not_public() {
    let app = TestApp::spawn().await;
    assert_eq!(scrape(&app, OUTSIDE, &[]).await.0, Status::NotFound);
    // A proxy on the same host connects from loopback: a forwarded request is not local.
    for header in ["X-Forwarded-For", "CF-Connecting-IP"] {
        let (status, _) = scrape(&app, LOOPBACK, &[(header, "203.0.113.9".into())]).await;
        assert_eq!(status, Status::NotFound, "{header}");
    }
    // Without a configured token, no bearer opens it.
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        scrape(&app, OUTSIDE, &[("Authorization", bearer)]).await.0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn a_configured_token_opens_metrics_from_anywhere() {
    let app = TestApp::spawn_with(|v| {
        v.insert("METRICS_TOKEN".into(), TOKEN.into());
    })
    .await;
    let (status, body) = scrape(
        &app,
        OUTSIDE,
        &[("Authorization", format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains("holds_total"), "{body}");
    let (status, _) = scrape(&app, OUTSIDE, &[("Authorization", "Bearer wrong".into())]).await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(scrape(&app, LOOPBACK, &[]).await.0, Status::Ok);
}

#[test]
fn a_short_metrics_token_stops_the_app() {
    let db = TestDb::migrated();
    let mut vars = base_vars(&db.url);
    vars.insert("METRICS_TOKEN".into(), "short".into());
    let err = ticketing::Config::from_map(&vars).unwrap_err();
    assert!(err.to_string().contains("METRICS_TOKEN"), "{err}");
}
