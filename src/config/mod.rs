//! Typed application configuration: read once at start from the environment (after
//! `.env.local` or `.env.production`, chosen by `APP_ENV`), validated all together, so that a
//! missing or malformed setting stops the app with the variable's name and what is expected.
//! Secrets (database password, secret key) are never printed, not even by `Debug`. Each
//! area's settings struct lives with the code that owns it (`MailSettings` with the mail
//! sender, `PayPalSettings` with the PayPal client); this module reads and assembles them.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use base64::Engine;

use crate::mail::MailSettings;
use reader::Reader;

mod mail;
mod paypal;
mod reader;

/// Which environment the app runs in; decides the env file and the strictness of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Local,
    Production,
}

impl AppEnv {
    pub fn env_file(self) -> &'static str {
        match self {
            AppEnv::Local => ".env.local",
            AppEnv::Production => ".env.production",
        }
    }

    pub fn is_production(self) -> bool {
        self == AppEnv::Production
    }
}

/// How request and application logs are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting of the app. Built by [`Config::load`] (the process environment) or
/// [`Config::from_lookup`] (any source; tests use a map).
#[derive(Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub database_url: String,
    pub database_pool_size: u32,
    pub database_timeout_secs: u64,
    /// `statement_timeout` of every pooled connection (`DATABASE_STATEMENT_TIMEOUT_SECONDS`).
    pub database_statement_timeout_secs: u64,
    /// `lock_timeout` of every pooled connection (`DATABASE_LOCK_TIMEOUT_SECONDS`).
    pub database_lock_timeout_secs: u64,
    pub bind_address: IpAddr,
    pub port: u16,
    pub workers: usize,
    /// Public URL of the site without a trailing slash, used in sitemap and emailed links.
    pub base_url: String,
    /// 64 bytes used to sign and encrypt private cookies.
    pub secret_key: Vec<u8>,
    /// True when `SECRET_KEY` was not set and a random key was made for this run (local only).
    pub secret_key_generated: bool,
    pub site_name: String,
    pub log_format: LogFormat,
    pub log_level: String,
    pub template_dir: PathBuf,
    pub static_dir: PathBuf,
    /// How long a hold keeps its seats before the sweeper releases them.
    pub hold_minutes: u32,
    /// Holds one client IP may create per minute (0: no limit).
    pub hold_rate_per_minute: u32,
    // Hold limits against stock hoarding (issue 14): one block, see `read_hold_limits`.
    /// How long a new hold lasts until its details form is sent (then `hold_minutes` from
    /// its start); at most `hold_minutes`.
    pub hold_details_minutes: u32,
    /// The seats one client may hold at once per event.
    pub max_seats_held_per_client: SeatCap,
    /// Availability streams one client may keep open at once (0: no limit).
    pub max_streams_per_client: u32,
    /// Cloudflare's ranges: `CF-Connecting-IP` is trusted only from these peers.
    pub cloudflare_ranges: Vec<ipnet::IpNet>,
    /// IPv6 clients are counted by network: every per-client limit buckets addresses by
    /// this prefix length (`IPV6_CLIENT_PREFIX`, default 64, the usual end-site allocation).
    pub ipv6_client_prefix: u8,
    /// The connection guard's limits (`CONNECTION_SEND_SECONDS`, `CONNECTION_IDLE_SECONDS`,
    /// `MAX_CONNECTIONS_PER_CLIENT`, `MAX_CONNECTIONS`; see `front`).
    pub connections: crate::front::Limits,
    /// TLS served by the app itself (Cloudflare Origin CA certificate), if configured.
    pub tls: Option<TlsFiles>,
    pub paypal: crate::paypal::PayPalSettings,
    pub mail: MailSettings,
    /// Bearer token that opens `/metrics` from outside loopback (`METRICS_TOKEN`); without
    /// it, `/metrics` answers only requests from loopback that came through no proxy.
    pub metrics_token: Option<String>,
    /// Every staff account must use a second factor (TOTP) to sign in
    /// (`ADMIN_REQUIRE_TWO_FACTOR`); without it, only accounts an admin marked.
    pub admin_require_two_factor: bool,
}

/// Certificate files for serving HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA of the client certificates to require (Cloudflare's authenticated origin pulls).
    pub client_ca: Option<PathBuf>,
}

/// One thing wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub var: &'static str,
    pub message: String,
}

/// All the problems found in the configuration; `Display` names each variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// True when one of the problems is about `var`.
    pub fn mentions(&self, var: &str) -> bool {
        self.problems.iter().any(|p| p.var == var)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {}: {}", p.var, p.message)?;
        }
        write!(
            f,
            "See .env.example for every variable and what it expects."
        )
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("app_env", &self.app_env)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .field("database_timeout_secs", &self.database_timeout_secs)
            .field(
                "database_statement_timeout_secs",
                &self.database_statement_timeout_secs,
            )
            .field(
                "database_lock_timeout_secs",
                &self.database_lock_timeout_secs,
            )
            .field("bind_address", &self.bind_address)
            .field("port", &self.port)
            .field("workers", &self.workers)
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("site_name", &self.site_name)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("template_dir", &self.template_dir)
            .field("static_dir", &self.static_dir)
            .field("hold_minutes", &self.hold_minutes)
            .field("hold_rate_per_minute", &self.hold_rate_per_minute)
            .field("ipv6_client_prefix", &self.ipv6_client_prefix)
            .field("connections", &self.connections)
            .field("hold_details_minutes", &self.hold_details_minutes)
            .field("max_seats_held_per_client", &self.max_seats_held_per_client)
            .field("max_streams_per_client", &self.max_streams_per_client)
            .field("cloudflare_ranges", &self.cloudflare_ranges.len())
            .field("tls", &self.tls)
            .field("paypal", &self.paypal)
            .field("mail", &self.mail)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("admin_require_two_factor", &self.admin_require_two_factor)
            .finish()
    }
}

/// Why a 64-byte key is too regular to be random, or `None` when it looks random. A key from
/// `openssl rand` passes with a wide margin: 64 random bytes have about 57 distinct values
/// (fewer than 32 is about nine standard deviations away), as many distinct differences
/// between neighbours, about 5.7 bits of Shannon entropy per byte over their own
/// distribution, and no period. All-zero keys, counting sequences, repeated chunks and
/// short texts fail (tests `weak_secret_keys_are_recognised` and
/// `config::production_refuses_a_weak_secret_key`).
pub fn weak_key(bytes: &[u8]) -> Option<&'static str> {
    fn distinct(values: impl Iterator<Item = u8>) -> usize {
        let mut seen = [false; 256];
        values.for_each(|v| seen[v as usize] = true);
        seen.iter().filter(|s| **s).count()
    }
    let n = bytes.len();
    let mut counts = [0u32; 256];
    bytes.iter().for_each(|b| counts[*b as usize] += 1);
    let entropy: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n as f64;
            -p * p.log2()
        })
        .sum();
    let periodic = (1..=n / 2).any(|p| (p..n).all(|i| bytes[i] == bytes[i - p]));
    if periodic {
        Some("it repeats a pattern")
    } else if distinct(bytes.iter().copied()) < n / 2 || entropy < 4.5 {
        Some("too few distinct byte values")
    } else if distinct(bytes.windows(2).map(|w| w[1].wrapping_sub(w[0]))) < n / 2 {
        Some("its bytes follow a sequence")
    } else {
        None
    }
}

/// Hides the password in a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Config {
    /// Reads `APP_ENV`, loads the matching env file without overriding real environment
    /// variables, then reads and validates every setting from the process environment.
    pub fn load() -> Result<Config, ConfigError> {
        let app_env = std::env::var("APP_ENV").unwrap_or_else(|_| "local".into());
        let file = match app_env.trim() {
            "production" => Some(AppEnv::Production.env_file()),
            "local" | "" => Some(AppEnv::Local.env_file()),
            _ => None, // reported by from_lookup
        };
        if let Some(file) = file {
            match dotenvy::from_filename(file) {
                Ok(_) => {}
                Err(e) if e.not_found() => {}
                Err(e) => {
                    return Err(ConfigError {
                        problems: vec![Problem {
                            var: "APP_ENV",
                            message: format!("could not read {file}: {e}"),
                        }],
                    })
                }
            }
        }
        Config::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Builds the configuration from a map of variables (tests and tools).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(&|name| vars.get(name).cloned())
    }

    /// Reads and validates every setting through `lookup`; reports all problems at once.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
        };

        let app_env = match r.raw("APP_ENV").as_deref() {
            None | Some("local") => AppEnv::Local,
            Some("production") => AppEnv::Production,
            Some(other) => {
                r.problem(
                    "APP_ENV",
                    format!("expected \"local\" or \"production\", got {other:?}"),
                );
                AppEnv::Local
            }
        };
        let production = app_env.is_production();

        let database_url = r
            .required(
                "DATABASE_URL",
                "a PostgreSQL URL such as postgres://user:password@host:5432/dbname",
            )
            .unwrap_or_default();
        let postgres_scheme =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !database_url.is_empty() && !postgres_scheme {
            r.problem(
                "DATABASE_URL",
                format!(
                    "expected a URL starting with postgres:// or postgresql://, got {:?}",
                    redact_url(&database_url)
                ),
            );
        }
        let database_pool_size = r.parsed(
            "DATABASE_POOL_SIZE",
            10u32,
            "a whole number from 1 to 200",
            |n| (1..=200).contains(n),
        );
        let database_timeout_secs = r.parsed(
            "DATABASE_TIMEOUT_SECONDS",
            5u64,
            "a whole number of seconds from 1 to 120",
            |n| (1..=120).contains(n),
        );
        let database_statement_timeout_secs = r.parsed(
            "DATABASE_STATEMENT_TIMEOUT_SECONDS",
            15u64,
            "a whole number of seconds from 1 to 3600",
            |n| (1..=3600).contains(n),
        );
        let database_lock_timeout_secs = r.parsed(
            "DATABASE_LOCK_TIMEOUT_SECONDS",
            5u64,
            "a whole number of seconds from 1 to 600",
            |n| (1..=600).contains(n),
        );

        let default_bind: IpAddr = if production {
            "0.0.0.0".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        let bind_address = r.parsed(
            "BIND_ADDRESS",
            default_bind,
            "an IP address such as 127.0.0.1 or 0.0.0.0",
            |_| true,
        );
        let port = r.parsed("PORT", 8000u16, "a port number from 1 to 65535", |p| *p > 0);
        let default_workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let workers = r.parsed(
            "WORKERS",
            default_workers,
            "a whole number of worker threads from 1 to 256",
            |n| (1..=256).contains(n),
        );

        let base_url = match r.raw("BASE_URL") {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if production => {
                r.problem(
                    "BASE_URL",
                    "is required in production; expected the public https:// URL of the site",
                );
                String::new()
            }
            None => format!("http://127.0.0.1:{port}"),
        };
        if !base_url.is_empty() {
            let scheme_ok = base_url.starts_with("https://")
                || (!production && base_url.starts_with("http://"));
            let host = base_url.split("://").nth(1).unwrap_or("");
            if !scheme_ok || host.is_empty() || host.contains(char::is_whitespace) {
                r.problem(
                    "BASE_URL",
                    if production {
                        format!("expected an https:// URL such as https://tickets.example.com, got {base_url:?}")
                    } else {
                        format!("expected an http:// or https:// URL, got {base_url:?}")
                    },
                );
            }
        }

        let (secret_key, secret_key_generated) = match r.raw("SECRET_KEY") {
            Some(text) => match base64::engine::general_purpose::STANDARD.decode(&text) {
                Ok(bytes) if bytes.len() == 64 && production && weak_key(&bytes).is_some() => {
                    r.problem(
                        "SECRET_KEY",
                        format!(
                            "is not random enough for production ({}); make a new one with: openssl rand -base64 64 | tr -d '\\n'",
                            weak_key(&bytes).unwrap_or_default()
                        ),
                    );
                    (bytes, false)
                }
                Ok(bytes) if bytes.len() == 64 => (bytes, false),
                _ => {
                    r.problem(
                        "SECRET_KEY",
                        "expected 64 random bytes in base64 (make one with: openssl rand -base64 64 | tr -d '\\n'); the value given is not that",
                    );
                    (vec![0; 64], false)
                }
            },
            None if production => {
                r.problem(
                    "SECRET_KEY",
                    "is required in production; expected 64 random bytes in base64 (openssl rand -base64 64 | tr -d '\\n')",
                );
                (vec![0; 64], false)
            }
            None => (crate::tokens::random_bytes(64), true),
        };

        let site_name = r.raw("SITE_NAME").unwrap_or_else(|| "Tickets".into());
        if site_name.chars().count() > 80 {
            r.problem("SITE_NAME", "expected at most 80 characters");
        }

        let log_format = match r.raw("LOG_FORMAT").as_deref() {
            None => {
                if production {
                    LogFormat::Json
                } else {
                    LogFormat::Pretty
                }
            }
            Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                r.problem(
                    "LOG_FORMAT",
                    format!("expected \"pretty\" or \"json\", got {other:?}"),
                );
                LogFormat::Pretty
            }
        };
        let log_level = r.raw("LOG_LEVEL").unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            r.problem(
                "LOG_LEVEL",
                format!("expected a level (error, warn, info, debug, trace) or a filter such as \"info,ticketing=debug\", got {log_level:?}"),
            );
        }

        let template_dir =
            PathBuf::from(r.raw("TEMPLATE_DIR").unwrap_or_else(|| "templates".into()));
        if !template_dir.is_dir() {
            r.problem(
                "TEMPLATE_DIR",
                format!("expected a directory of Tera templates, but {template_dir:?} is not a directory"),
            );
        }
        let static_dir = PathBuf::from(r.raw("STATIC_DIR").unwrap_or_else(|| "static".into()));
        if !static_dir.is_dir() {
            r.problem(
                "STATIC_DIR",
                format!(
                    "expected a directory of static files, but {static_dir:?} is not a directory"
                ),
            );
        }

        let hold_minutes = r.parsed(
            "HOLD_MINUTES",
            15u32,
            "a whole number of minutes from 1 to 120",
            |n| (1..=120).contains(n),
        );

        let hold_rate_per_minute = r.parsed(
            "HOLD_RATE_PER_MINUTE",
            30u32,
            "a whole number of holds per minute per client IP (0 turns the limit off)",
            |n| *n <= 100_000,
        );

        let ipv6_client_prefix = r.parsed(
            "IPV6_CLIENT_PREFIX",
            64u8,
            "an IPv6 prefix length from 32 to 128 (clients in one such network count as one)",
            |n| (32..=128).contains(n),
        );

        let connections = crate::front::Limits {
            send: std::time::Duration::from_secs(r.parsed(
                "CONNECTION_SEND_SECONDS",
                15u64,
                "a whole number of seconds from 1 to 300 (the time a client has to send a request)",
                |n| (1..=300).contains(n),
            )),
            idle: std::time::Duration::from_secs(r.parsed(
                "CONNECTION_IDLE_SECONDS",
                60u64,
                "a whole number of seconds from 2 to 3600 (a connection with no traffic either way is closed)",
                |n| (2..=3600).contains(n),
            )),
            per_client: r.parsed(
                "MAX_CONNECTIONS_PER_CLIENT",
                64usize,
                "a whole number of connections from 1 to 100000",
                |n| (1..=100_000).contains(n),
            ),
            total: r.parsed(
                "MAX_CONNECTIONS",
                4096usize,
                "a whole number of connections from 16 to 1000000",
                |n| (16..=1_000_000).contains(n),
            ),
        };
        let (hold_details_minutes, max_seats_held_per_client, max_streams_per_client) =
            read_hold_limits(&mut r, hold_minutes);

        let cloudflare_ranges = match r.raw("CLOUDFLARE_IPS_FILE") {
            Some(path) => match crate::net::load_ranges(std::path::Path::new(&path)) {
                Ok(ranges) => ranges,
                Err(e) => {
                    r.problem(
                        "CLOUDFLARE_IPS_FILE",
                        format!("expected a file of CIDR ranges: {e}"),
                    );
                    Vec::new()
                }
            },
            // The repository's copy, when present; otherwise no proxy is trusted.
            None => crate::net::load_ranges(std::path::Path::new("config/cloudflare-ips.txt"))
                .unwrap_or_default(),
        };

        let existing_file = |r: &mut Reader, var: &'static str| -> Option<PathBuf> {
            let path = PathBuf::from(r.raw(var)?);
            if !path.is_file() {
                r.problem(
                    var,
                    format!("expected a readable PEM file, but {path:?} does not exist"),
                );
            }
            Some(path)
        };
        let cert = existing_file(&mut r, "TLS_CERT_FILE");
        let key = existing_file(&mut r, "TLS_KEY_FILE");
        let client_ca = existing_file(&mut r, "TLS_CLIENT_CA_FILE");
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None) => {
                if client_ca.is_some() {
                    r.problem(
                        "TLS_CLIENT_CA_FILE",
                        "requires TLS_CERT_FILE and TLS_KEY_FILE (client certificates are checked only over HTTPS)",
                    );
                }
                None
            }
            (Some(_), None) => {
                r.problem("TLS_KEY_FILE", "is required when TLS_CERT_FILE is set");
                None
            }
            (None, Some(_)) => {
                r.problem("TLS_CERT_FILE", "is required when TLS_KEY_FILE is set");
                None
            }
        };

        let paypal = paypal::read(&mut r, production);
        let mail = mail::read(&mut r, production, &site_name);
        let metrics_token = r.raw("METRICS_TOKEN");
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.len() < 32 || !t.chars().all(|c| c.is_ascii_graphic()))
        {
            r.problem(
                "METRICS_TOKEN",
                "expected at least 32 printable characters (for example: openssl rand -hex 32)",
            );
        }

        let admin_require_two_factor =
            r.parsed("ADMIN_REQUIRE_TWO_FACTOR", false, "true or false", |_| true);

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Config {
            app_env,
            database_url,
            database_pool_size,
            database_timeout_secs,
            database_statement_timeout_secs,
            database_lock_timeout_secs,
            bind_address,
            port,
            workers,
            base_url,
            secret_key,
            secret_key_generated,
            site_name,
            log_format,
            log_level,
            template_dir,
            static_dir,
            hold_minutes,
            hold_rate_per_minute,
            hold_details_minutes,
            max_seats_held_per_client,
            max_streams_per_client,
            cloudflare_ranges,
            ipv6_client_prefix,
            connections,
            tls,
            paypal,
            mail,
            metrics_token,
            admin_require_two_factor,
        })
    }
}

/// The cap on the seats one client holds at once for one event (`MAX_SEATS_HELD_PER_CLIENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatCap {
    /// Unset: twice the largest "max per booking" of the event's ticket types.
    TwicePerBooking,
    /// A fixed number of seats.
    Seats(u32),
    /// 0: no cap.
    Off,
}

impl SeatCap {
    /// The cap for an event whose ticket types allow at most `max_per_booking` each.
    pub fn for_event(self, max_per_booking: impl IntoIterator<Item = i32>) -> Option<i32> {
        match self {
            SeatCap::Off => None,
            SeatCap::Seats(n) => Some(i32::try_from(n).unwrap_or(i32::MAX)),
            SeatCap::TwicePerBooking => Some(
                max_per_booking
                    .into_iter()
                    .max()
                    .unwrap_or(1)
                    .max(1)
                    .saturating_mul(2),
            ),
        }
    }
}

/// `HOLD_DETAILS_MINUTES`, `MAX_SEATS_HELD_PER_CLIENT` and `MAX_STREAMS_PER_CLIENT`
/// (tests `hoarding::hold_settings_are_checked_at_start`).
fn read_hold_limits(r: &mut Reader, hold_minutes: u32) -> (u32, SeatCap, u32) {
    let details = r.parsed(
        "HOLD_DETAILS_MINUTES",
        5u32.min(hold_minutes),
        "a whole number of minutes from 1 to 120",
        |n| (1..=120).contains(n),
    );
    if details > hold_minutes {
        r.problem(
            "HOLD_DETAILS_MINUTES",
            format!("expected at most HOLD_MINUTES ({hold_minutes}), got {details}"),
        );
    }
    let seats = match r.raw("MAX_SEATS_HELD_PER_CLIENT") {
        None => SeatCap::TwicePerBooking,
        Some(_) => match r.parsed(
            "MAX_SEATS_HELD_PER_CLIENT",
            0u32,
            "a whole number of seats one client may hold at once per event (0 turns the cap off; unset: twice the largest \"max per booking\" of the event)",
            |n| *n <= 1_000_000,
        ) {
            0 => SeatCap::Off,
            n => SeatCap::Seats(n),
        },
    };
    let streams = r.parsed(
        "MAX_STREAMS_PER_CLIENT",
        4u32,
        "a whole number of live availability streams per client (0 turns the limit off)",
        |n| *n <= 10_000,
    );
    (details.min(hold_minutes), seats, streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn weak_secret_keys_are_recognised() {
        for _ in 0..2000 {
            let key = crate::tokens::random_bytes(64);
            assert_eq!(weak_key(&key), None, "{key:?}");
        }
        let chunk = crate::tokens::random_bytes(16);
        let half = crate::tokens::random_bytes(32);
        let text = b"my-secret-key-for-the-tickets-site-dont-tell-anyone-ok-thanks!!!";
        let weak: Vec<(&str, Vec<u8>)> = vec![
            ("zero bytes", vec![0; 64]),
            ("one byte", vec![7; 64]),
            ("two values", (0..64).map(|i| (i % 2) as u8 * 255).collect()),
            ("counting", (0..64).collect()),
            ("counting by 3", (0..64).map(|i| (i * 3) as u8).collect()),
            ("a repeated chunk", chunk.repeat(4)),
            ("a repeated half", half.repeat(2)),
            ("a short text", text.to_vec()),
        ];
        for (what, key) in weak {
            assert_eq!(key.len(), 64, "{what}");
            assert!(weak_key(&key).is_some(), "{what}: {key:?}");
        }
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/tickets"),
            "postgres://app:***@db:5432/tickets"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cfg = Config::from_map(&vars(&[(
            "DATABASE_URL",
            "postgres://app:hunter2@localhost/t",
        )]))
        .unwrap();
        let text = format!("{cfg:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
