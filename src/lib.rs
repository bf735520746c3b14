//! The web layer of an event ticketing site: public and private event pages, checkout, the
//! PayPal return and webhook endpoints, waivers and the admin area, on Rocket; plus config,
//! the background jobs and the `ticketing` binary. The rules live in the crates below
//! (`ticketing-app` → `ticketing-domain` → `ticketing-db` → `ticketing-core`, with
//! `ticketing-paypal` beside them). [`rocket`] builds the whole app from a typed [`Config`]
//! and a [`Db`], so tests build exactly what production runs.

pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod fairings;
pub mod front;
pub mod hashing;
pub mod jobs;
pub mod legal;
pub mod limiter;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod net;
pub mod redact;
pub mod routes;
pub mod seed;
pub mod twofactor;
pub mod views;

// The layers below, under the names this crate's modules (and the tests) use for them.
pub use ticketing_app::{mail, payments as paypal, tickets_pdf};
pub use ticketing_core::{ics, money, passwords, timefmt, tokens};
pub use ticketing_db::{models, schema};
pub use ticketing_domain::{audit, bookings, outbox, waivers};

use std::path::Path;
use std::time::Duration;

use rocket::fs::FileServer;
use rocket::http::Status;
use rocket::{catch, catchers, Build, Request, Rocket};
use rocket_dyn_templates::{tera, Template};
use sha2::{Digest, Sha256};

pub use config::Config;
pub use db::Db;

/// Facts about this running instance, available to handlers as Rocket state.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub base_url: String,
    pub site_name: String,
    pub production: bool,
    /// Short hash of the static files, appended to their URLs for cache busting.
    pub static_version: String,
}

/// Connects the pool for `config` (without waiting for the server).
pub fn connect(config: &Config) -> Db {
    Db::from(ticketing_db::Db::with_timeouts(
        &config.database_url,
        config.database_pool_size,
        Duration::from_secs(config.database_timeout_secs),
        ticketing_db::Timeouts {
            statement: Duration::from_secs(config.database_statement_timeout_secs),
            lock: Duration::from_secs(config.database_lock_timeout_secs),
            ..ticketing_db::Timeouts::default()
        },
    ))
}

/// A pool for a one-shot command: no connections opened in the background.
pub fn connect_for_command(config: &Config) -> Db {
    Db::on_demand(
        &config.database_url,
        Duration::from_secs(config.database_timeout_secs),
    )
}

/// Builds the Rocket application: every area mounted, templates, static files, catchers.
/// Panics when the PayPal trust store cannot be read (checked by `Config` already).
pub fn rocket(config: &Config, db: Db) -> Rocket<Build> {
    build(config, db, config.bind_address, config.port)
}

/// The application as `serve` runs it: behind the connection guard ([`front`]), which
/// accepts on `public` (the configured address, bound by the caller so a taken port stops
/// the start) and relays to Rocket on a loopback port of its own.
pub fn guarded(config: &Config, db: Db, public: rocket::tokio::net::TcpListener) -> Rocket<Build> {
    let peers = net::Peers::default();
    let (trusted, bucketing, limits) = (
        net::TrustedProxies {
            ranges: config.cloudflare_ranges.clone(),
        },
        net::Bucketing {
            v6_prefix: config.ipv6_client_prefix,
        },
        config.connections,
    );
    build(config, db, std::net::Ipv4Addr::LOCALHOST.into(), 0)
        .manage(peers.clone())
        .attach(rocket::fairing::AdHoc::on_liftoff(
            "connection guard",
            move |rocket| {
                Box::pin(async move {
                    let upstream =
                        std::net::SocketAddr::new(rocket.config().address, rocket.config().port);
                    rocket::tokio::spawn(front::serve(
                        public,
                        upstream,
                        peers,
                        trusted,
                        bucketing,
                        limits,
                        rocket.shutdown(),
                    ));
                })
            },
        ))
}

fn build(config: &Config, db: Db, address: std::net::IpAddr, port: u16) -> Rocket<Build> {
    let paypal = paypal::build(
        config.paypal.clone(),
        &config.base_url,
        &config.site_name,
        config.hold_minutes,
        config.app_env.is_production(),
    )
    .unwrap_or_else(|e| panic!("PayPal webhook CA files: {e}"));
    let mailer = mail::Mailer::new(
        &config.mail,
        &config.template_dir,
        &config.base_url,
        &config.site_name,
    )
    .unwrap_or_else(|e| panic!("mail: {e}"));
    let figment = rocket::Config::figment()
        .merge(("address", address))
        .merge(("port", port))
        .merge(("workers", config.workers))
        // Blocking threads: the database calls (at most one per pooled connection, see
        // `Db::run`) and file reads of static files; a backstop against thread growth.
        .merge(("max_blocking", config.database_pool_size as usize + 32))
        .merge(("secret_key", config.secret_key.clone()))
        .merge(("template_dir", config.template_dir.clone()))
        .merge(("ident", config.site_name.clone()))
        .merge(("log_level", rocket::config::LogLevel::Off))
        .merge(("cli_colors", false))
        .merge(("shutdown.grace", 10))
        .merge(("shutdown.mercy", 5))
        // media (issue 15): the event form is multipart for its image; `media::Upload` keeps
        // at most MAX_UPLOAD_BYTES of the file and says "too big" next to the field for
        // anything up to MAX_FORM_BYTES (see `media::MultipartOnlyForUploads`).
        .merge(("limits.data-form", media::MAX_FORM_BYTES));
    let figment = match &config.tls {
        None => figment,
        Some(tls) => {
            let figment = figment
                .merge(("tls.certs", tls.cert.clone()))
                .merge(("tls.key", tls.key.clone()));
            match &tls.client_ca {
                // Checked per request by `fairings::OriginPull`, so that the host's own
                // health check on loopback can still reach /healthz.
                Some(ca) => figment
                    .merge(("tls.mutual.ca_certs", ca.clone()))
                    .merge(("tls.mutual.mandatory", false)),
                None => figment,
            }
        }
    };

    let info = AppInfo {
        base_url: config.base_url.clone(),
        site_name: config.site_name.clone(),
        production: config.app_env.is_production(),
        static_version: static_version(&config.static_dir),
    };
    let (site_name, version) = (info.site_name.clone(), info.static_version.clone());
    let footer = legal::SiteFooter::default();
    let footer_for_templates = footer.clone();
    // issue 16: the nav's count of bookings that need attention (per app).
    let attention = routes::admin::AttentionCount::default();
    let attention_for_templates = attention.clone();
    let templates = Template::custom(move |engines| {
        let (site_name, version) = (site_name.clone(), version.clone());
        let attention = attention_for_templates.clone();
        engines.tera.register_function(
            "attention_count",
            move |_: &std::collections::HashMap<String, tera::Value>| Ok(attention.get().into()),
        );
        let footer = footer_for_templates.clone();
        // issue 16: states in words on every page ("Awaiting payment").
        engines
            .tera
            .register_filter("state_label", views::state_label_filter);
        engines.tera.register_function(
            "footer",
            move |_: &std::collections::HashMap<String, tera::Value>| Ok(footer.get()),
        );
        engines.tera.register_function(
            "site_name",
            move |_: &std::collections::HashMap<String, tera::Value>| {
                Ok(tera::Value::String(site_name.clone()))
            },
        );
        engines.tera.register_function(
            "static_url",
            move |args: &std::collections::HashMap<String, tera::Value>| {
                let path = args
                    .get("path")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| tera::Error::msg("static_url needs path=\"...\""))?;
                Ok(tera::Value::String(format!("/static/{path}?v={version}")))
            },
        );
    });

    // Installed before the first request, so every family is counted from the start.
    let _ = metrics::handle();
    let rocket = rocket::custom(figment)
        .manage(db)
        .manage(info)
        .manage(config.clone())
        .manage(paypal)
        .manage(std::sync::Arc::new(mailer))
        .manage(auth::LoginLimits::default())
        .manage(attention)
        .manage(routes::find::FindLimits::default())
        .manage(twofactor::TwoFactor::new(config.admin_require_two_factor))
        .manage(hashing::PasswordHasher::start(
            hashing::THREADS,
            hashing::QUEUE,
        ))
        .manage(net::Bucketing {
            v6_prefix: config.ipv6_client_prefix,
        })
        .manage(bookings::Availability::new())
        .manage(bookings::availability::StreamSlots::new(
            config.max_streams_per_client,
        ))
        .manage(cache::EventCache::default())
        .manage(cache::ListingCache::default())
        .manage(footer.clone())
        .attach(footer.fairing())
        .manage(net::TrustedProxies {
            ranges: config.cloudflare_ranges.clone(),
        })
        .manage(net::IpRateLimit::per_minute(config.hold_rate_per_minute))
        .attach(jobs::fairing())
        .attach(templates)
        .attach(routes::admin::attention_fairing())
        .attach(fairings::HeadAsGet)
        .attach(fairings::RequestLog)
        .attach(fairings::RefuseBadAddress)
        // media (issue 15): multipart bodies are read by the event form only.
        .attach(media::MultipartOnlyForUploads)
        .attach(fairings::Headers::for_config(config))
        .attach(fairings::OriginPull {
            required: config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        })
        .register("/", catchers![default_catcher])
        .mount("/static", FileServer::from(&config.static_dir).rank(20));
    routes::mount(rocket)
}

/// Every error status not produced by a handler gets the same page as [`error::AppError`].
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> error::AppError {
    let _ = req;
    error::AppError::new(status, error::default_message(status))
}

/// A short content hash of every file under `dir`, so a changed file gets a new URL.
pub fn static_version(dir: &Path) -> String {
    fn walk(dir: &Path, hasher: &mut Sha256) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                walk(&path, hasher);
            } else if let Ok(bytes) = std::fs::read(&path) {
                hasher.update(path.to_string_lossy().as_bytes());
                hasher.update(&bytes);
            }
        }
    }
    let mut hasher = Sha256::new();
    walk(dir, &mut hasher);
    hex::encode(&hasher.finalize()[..6])
}
