//! The site's metrics, named in one place: every layer records through these functions (on
//! the `metrics` facade, a no-op until the web layer installs its Prometheus recorder), so a
//! family is spelt the same wherever it is counted. The families and their labels are listed
//! in [`FAMILIES`] and described for `/metrics` by [`describe`] (test
//! `metrics::loopback_sees_every_family`).

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Every family `/metrics` shows, with its help text.
pub const FAMILIES: &[(&str, &str)] = &[
    ("http_requests_total", "HTTP requests answered, by route pattern, method and status."),
    ("http_request_duration_seconds", "Time to answer an HTTP request, by route pattern."),
    ("holds_total", "Hold requests, by outcome (made, sold_out, invalid, error)."),
    ("bookings", "Bookings by state (read from the database at scrape time)."),
    ("payments", "Payments by PayPal capture status (none, COMPLETED, PENDING, DECLINED, ...), read at scrape time."),
    ("payment_captures_total", "Capture attempts on the buyer's return, by outcome (paid, pending, declined, unavailable, ...)."),
    ("webhook_deliveries_total", "PayPal webhook deliveries, by outcome (handled, refused, unverified, failed)."),
    ("outbox_emails", "Emails in the outbox by state: queued, retrying, sent, failed (read at scrape time)."),
    ("outbox_oldest_due_seconds", "Age of the oldest email due to be sent (0 when none is due)."),
    ("mail_attempts_total", "Email send attempts, by outcome (sent, retry, failed)."),
    ("job_runs_total", "Background job runs, by job."),
    ("job_failures_total", "Background job runs that failed, by job."),
    ("job_last_success_timestamp_seconds", "Unix time of each job's last successful run."),
    ("db_pool_connections", "Database pool connections by state (in_use, idle)."),
    ("db_pool_waiting", "Tasks waiting for a database connection from the pool."),
    ("connections_closed_total", "Connections the connection guard refused or closed, by reason (per_client, send, idle)."),
    ("login_failures_total", "Password checks that failed, by outcome (no_match, limited, busy)."),
];

/// The background jobs, as they are labelled.
pub const JOBS: &[&str] = &[
    "sweep_holds",
    "resettle_webhooks",
    "reconcile_payments",
    "reconcile_refunds",
    "waiver_reminders",
    "outbox",
    "tidy_limits",
];

/// Describes every family (help texts) on the installed recorder, and starts each counter
/// of a known label at zero, so a rate is defined before its first event.
pub fn describe() {
    for (family, label, values) in [
        (
            "holds_total",
            "outcome",
            &["made", "sold_out", "invalid", "error"][..],
        ),
        (
            "payment_captures_total",
            "outcome",
            &[
                "paid",
                "pending",
                "declined",
                "not_approved",
                "late_no_seats",
                "cancelled",
                "refunded",
                "closed",
                "unavailable",
                "error",
            ][..],
        ),
        (
            "webhook_deliveries_total",
            "outcome",
            &["handled", "unverified", "refused", "failed"][..],
        ),
        (
            "mail_attempts_total",
            "outcome",
            &["sent", "retry", "failed"][..],
        ),
        (
            "connections_closed_total",
            "reason",
            &["per_client", "send", "idle"][..],
        ),
        (
            "login_failures_total",
            "outcome",
            &["no_match", "limited", "busy"][..],
        ),
        ("job_runs_total", "job", JOBS),
        ("job_failures_total", "job", JOBS),
    ] {
        for &value in values {
            counter!(family, label => value).absolute(0);
        }
    }
    gauge!("db_pool_waiting").set(0.0);
    for &(name, help) in FAMILIES {
        if name.ends_with("_total") {
            describe_counter!(name, help);
        } else if name.ends_with("_duration_seconds") {
            describe_histogram!(name, help);
        } else {
            describe_gauge!(name, help);
        }
    }
}

pub fn http_request(route: String, method: &'static str, status: u16, seconds: f64) {
    counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string()).increment(1);
    histogram!("http_request_duration_seconds", "route" => route).record(seconds);
}

/// The connection guard refused or closed a connection (`reason`: per_client, send, idle).
pub fn connection_closed(reason: &'static str) {
    counter!("connections_closed_total", "reason" => reason).increment(1);
}

/// A password check failed (`outcome`: no_match, limited, busy).
pub fn login_failure(outcome: &'static str) {
    counter!("login_failures_total", "outcome" => outcome).increment(1);
}

pub fn hold(outcome: &'static str) {
    counter!("holds_total", "outcome" => outcome).increment(1);
}

pub fn capture(outcome: &'static str) {
    counter!("payment_captures_total", "outcome" => outcome).increment(1);
}

pub fn webhook(outcome: &'static str) {
    counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
}

pub fn mail_attempt(outcome: &'static str) {
    counter!("mail_attempts_total", "outcome" => outcome).increment(1);
}

/// One run of background job `job`; `ok` when it did its work without an error.
pub fn job_run(job: &'static str, ok: bool) {
    counter!("job_runs_total", "job" => job).increment(1);
    if ok {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        gauge!("job_last_success_timestamp_seconds", "job" => job).set(now);
    } else {
        counter!("job_failures_total", "job" => job).increment(1);
    }
}

/// A task starts (`+1`) or stops (`-1`) waiting for a pooled connection.
pub fn pool_waiting(delta: f64) {
    gauge!("db_pool_waiting").increment(delta);
}

pub fn pool_connections(in_use: u32, idle: u32) {
    gauge!("db_pool_connections", "state" => "in_use").set(in_use as f64);
    gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
}

/// A gauge set from a database count at scrape time (set every known label to 0 first: a
/// state with no rows left is not in the count).
pub fn count(family: &'static str, label: &'static str, value: String, n: f64) {
    gauge!(family, label => value).set(n);
}

pub fn set(family: &'static str, n: f64) {
    gauge!(family).set(n);
}
