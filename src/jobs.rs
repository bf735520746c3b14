//! Background work that runs beside the web server in every instance: the hold-expiry
//! sweeper and the live-availability refresher. Both stop between runs on shutdown.

use std::time::Duration;

use chrono::Utc;
use rocket::fairing::AdHoc;

use crate::bookings::{expire_due, Availability};
use crate::db::Db;
use crate::net::IpRateLimit;
use ticketing_core::telemetry::job_run;

/// How often the sweeper looks for expired holds.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Expired holds released per transaction.
const SWEEP_BATCH: i64 = 100;

/// Starts the background tasks when the server lifts off.
pub fn fairing() -> AdHoc {
    AdHoc::on_liftoff("background jobs", |rocket| {
        Box::pin(async move {
            let db = rocket.state::<Db>().expect("Db is managed").clone();
            let availability = rocket
                .state::<Availability>()
                .expect("Availability is managed")
                .clone();
            let shutdown = rocket.shutdown();
            rocket::tokio::spawn(availability.clone().run(
                (*db).clone(),
                Duration::from_secs(1),
                shutdown.clone(),
            ));
            let limit = rocket.state::<IpRateLimit>().cloned();
            let login = rocket.state::<crate::auth::LoginLimits>().cloned();
            let find = rocket.state::<crate::routes::find::FindLimits>().cloned();
            if let Some(mailer) = rocket
                .state::<std::sync::Arc<crate::mail::Mailer>>()
                .cloned()
            {
                rocket::tokio::spawn(mailer.run((*db).clone(), shutdown.clone()));
                rocket::tokio::spawn(waiver_reminders(db.clone(), shutdown.clone()));
            }
            if let Some(paypal) = rocket.state::<crate::paypal::PayPal>().cloned() {
                rocket::tokio::spawn(reconcile_payments(db.clone(), paypal, shutdown.clone()));
            }
            rocket::tokio::spawn(metrics_upkeep(shutdown.clone()));
            rocket::tokio::spawn(tidy_limits(limit, login, find, shutdown.clone()));
            rocket::tokio::spawn(sweep_holds(db, availability, shutdown));
        })
    })
}

/// Once a minute, drops the per-client limiters' entries whose budget is full again, so their
/// memory follows the clients active in the last minutes (`scripts/abuse` measures it).
async fn tidy_limits(
    holds: Option<IpRateLimit>,
    login: Option<crate::auth::LoginLimits>,
    find: Option<crate::routes::find::FindLimits>,
    mut shutdown: rocket::Shutdown,
) {
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = rocket::tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        if let Some(limit) = &holds {
            limit.tidy();
        }
        if let Some(limit) = &login {
            limit.tidy();
        }
        if let Some(limit) = &find {
            limit.tidy();
        }
        job_run("tidy_limits", true);
    }
}

/// Releases the seats of holds past their deadline, every [`SWEEP_EVERY`].
async fn sweep_holds(db: Db, availability: Availability, mut shutdown: rocket::Shutdown) {
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = rocket::tokio::time::sleep(SWEEP_EVERY) => {}
        }
        loop {
            let result = db
                .run(|conn| Ok(expire_due(conn, Utc::now(), SWEEP_BATCH)?))
                .await;
            job_run("sweep_holds", result.is_ok());
            match result {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    tracing::info!(events = ?events, "expired holds released");
                    availability.nudge();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hold sweeper failed; retrying shortly");
                    break;
                }
            }
        }
    }
}

/// How often bookings stuck in `awaiting_payment` are settled from PayPal.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// Settles webhooks left unprocessed, payments whose PayPal order is not final (whatever the
/// booking's state), and refunds whose answer from PayPal was lost, so that a lost webhook or
/// a crash between a PayPal call and its commit loses nothing.
async fn reconcile_payments(db: Db, paypal: crate::paypal::PayPal, mut shutdown: rocket::Shutdown) {
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = rocket::tokio::time::sleep(RECONCILE_EVERY) => {}
        }
        let result = paypal.resettle_webhooks(&db, 20).await;
        job_run("resettle_webhooks", result.is_ok());
        if let Err(e) = result {
            tracing::warn!(error = %e, "webhook re-settlement failed");
        }
        let result = paypal.reconcile(&db, 20).await;
        job_run("reconcile_payments", result.is_ok());
        if let Err(e) = result {
            tracing::warn!(error = %e, "payment reconciliation failed");
        }
        let result = paypal.reconcile_refunds(&db).await;
        job_run("reconcile_refunds", result.is_ok());
        if let Err(e) = result {
            tracing::warn!(error = %e, "refund reconciliation failed");
        }
    }
}

/// Queues waiver reminders (24 h before events, unsigned waivers only, once each) every
/// few minutes.
async fn waiver_reminders(db: Db, mut shutdown: rocket::Shutdown) {
    loop {
        let result = db
            .run(|conn| Ok(crate::outbox::queue_waiver_reminders(conn)?))
            .await;
        job_run("waiver_reminders", result.is_ok());
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(queued = n, "waiver reminders queued"),
            Err(e) => tracing::warn!(error = %e, "waiver reminders failed"),
        }
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = rocket::tokio::time::sleep(Duration::from_secs(300)) => {}
        }
    }
}

/// Folds recorded latencies into their histogram buckets every few seconds. The exporter
/// keeps each sample until then, so without this (and with nobody scraping) memory would
/// grow with every request.
async fn metrics_upkeep(mut shutdown: rocket::Shutdown) {
    let handle = crate::metrics::handle();
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = rocket::tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        handle.run_upkeep();
    }
}
