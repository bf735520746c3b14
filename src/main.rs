//! The `ticketing` binary; its command line is parsed by `clap` (`ticketing --help` lists it):
//! `serve` (the default) runs the site; `migrate` applies migrations; `seed` fills an empty
//! database with demo data; `create-admin` adds an admin account; `paypal verify-webhook`
//! checks a PayPal webhook delivery offline, with no configuration or database.
//!
//! Exit codes: 0 on success; 1 when a command fails (and for an `invalid` webhook); 2 for bad
//! arguments (clap's usage message on stderr) or a bad `--email`; 78 (EX_CONFIG) when the
//! configuration is incomplete or invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use ticketing::{config::Config, logging};

/// mimalloc gives freed memory back to the system: with glibc's allocator each worker
/// thread's arena kept what it had once held (the abuse benchmark, `scripts/abuse`, watches
/// the resident size under failed logins, slow connections and streams).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ticketing", version, about)]
struct Cli {
    /// What to do; without one, `serve` runs.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations and run the web app (the default when no command is given)
    Serve,
    /// Apply pending migrations and exit
    Migrate,
    /// Apply migrations, then add demo events and an admin account (safe to repeat)
    Seed,
    /// Create an admin account with a generated password (printed once)
    CreateAdmin(CreateAdmin),
    /// PayPal tools for operators (need no database)
    #[command(subcommand)]
    Paypal(Paypal),
}

#[derive(Args)]
struct CreateAdmin {
    /// Email address the admin signs in with
    #[arg(long, value_name = "EMAIL")]
    email: String,
    /// Name shown for the account
    #[arg(long, value_name = "NAME", default_value = "Admin")]
    name: String,
}

#[derive(Subcommand)]
enum Paypal {
    /// Check a PayPal webhook delivery offline: prints `valid` (exit 0) or `invalid: <reason>` (exit 1)
    VerifyWebhook(VerifyWebhook),
}

#[derive(Args)]
#[command(args_override_self = true)]
struct VerifyWebhook {
    /// File holding the delivered request body, byte for byte
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// JSON file with the delivery's PAYPAL-* headers (the object, or {"headers": {...}})
    #[arg(long, value_name = "FILE")]
    headers: PathBuf,
    /// The webhook's id in the PayPal app (PAYPAL_WEBHOOK_ID), which the signature covers
    #[arg(long, value_name = "ID")]
    webhook_id: String,
    /// PEM file with the signing certificate that PAYPAL-CERT-URL names
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// Check as if at this RFC 3339 time (e.g. 2015-05-18T15:45:13Z) instead of now
    #[arg(long, value_name = "RFC3339-TIME")]
    at: Option<String>,
    /// CA certificates (PEM) to trust; repeatable [default: the system bundle and config/paypal-webhook-ca.pem, where present]
    #[arg(long, value_name = "PEM")]
    ca: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap leaves the usage line off a few errors (a flag given without its value):
        // every bad argument shows it.
        Err(e) if e.use_stderr() && !e.render().to_string().contains("Usage:") => {
            let _ = e.print();
            eprintln!("\n{}", Cli::command().render_usage());
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    run(command).unwrap_or_else(|code| code)
}

fn run(command: Command) -> Result<ExitCode, ExitCode> {
    Ok(match command {
        Command::Paypal(Paypal::VerifyWebhook(args)) => verify_webhook(&args),
        Command::Serve => {
            let (config, db) = open(true)?;
            serve(config, db)
        }
        Command::Migrate => {
            open(false)?;
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        Command::Seed => {
            let (config, db) = open(false)?;
            seed(&config, &db)
        }
        Command::CreateAdmin(args) => {
            let (_, db) = open(false)?;
            create_admin(&args, &db)
        }
    })
}

/// Loads the configuration (exit 78 if it is wrong), starts logging, connects (with no
/// background connections for a one-shot command) and applies pending migrations (exit 1 if
/// they fail).
fn open(for_serve: bool) -> Result<(Config, ticketing::Db), ExitCode> {
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ticketing: {e}");
            return Err(ExitCode::from(78)); // EX_CONFIG
        }
    };
    logging::init(&config);
    let db = if for_serve {
        ticketing::connect(&config)
    } else {
        ticketing::connect_for_command(&config)
    };
    if let Err(e) = db.migrate() {
        eprintln!("ticketing: could not apply database migrations: {e}");
        return Err(ExitCode::FAILURE);
    }
    Ok((config, db))
}

fn seed(config: &Config, db: &ticketing::Db) -> ExitCode {
    let result = db.get().map_err(|e| e.to_string()).and_then(|mut conn| {
        ticketing::seed::run(&mut conn, &config.base_url).map_err(|e| e.to_string())
    });
    match result {
        Ok(report) => {
            println!(
                "seed: {} event(s) created, {} already there",
                report.events_created.len(),
                report.events_existing.len()
            );
            for (title, link) in &report.private_links {
                println!("private event \"{title}\": {link}");
            }
            match &report.admin_password {
                Some(password) => println!(
                    "admin account: {} / {password}  (shown once; keep it)",
                    report.admin_email
                ),
                None => println!(
                    "admin account {} already exists (password unchanged)",
                    report.admin_email
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ticketing: seeding failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config, db: ticketing::Db) -> ExitCode {
    if config.secret_key_generated {
        tracing::warn!("SECRET_KEY is not set: using a random key, so sessions end at restart");
    }
    tracing::info!(
        env = ?config.app_env,
        address = %config.bind_address,
        port = config.port,
        "starting {} at {}",
        config.site_name,
        config.base_url
    );
    if !config.app_env.is_production() {
        // The local banner: where to sign in and where the mail goes (docker compose logs
        // and scripts/dev show it).
        let mail = match &config.mail.transport {
            ticketing::mail::MailTransport::Smtp { host, port, .. } => {
                format!("SMTP {host}:{port}")
            }
            ticketing::mail::MailTransport::File { dir } => {
                format!(".eml files in {}", dir.display())
            }
        };
        println!(
            "{} at {}\n  admin   {}/admin\n  mail    {mail}\n  metrics {}/metrics (from this machine)",
            config.site_name, config.base_url, config.base_url, config.base_url
        );
    }
    let result = rocket::execute(async move {
        let address = std::net::SocketAddr::new(config.bind_address, config.port);
        let public = rocket::tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        tracing::info!(%address, "connection guard listening");
        ticketing::guarded(&config, db, public)
            .launch()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticketing: the server stopped with an error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `paypal verify-webhook`: offline verification for operators and tests; needs no database.
fn verify_webhook(args: &VerifyWebhook) -> ExitCode {
    use ticketing::paypal::verify;
    let result = (|| -> Result<(), String> {
        let (body, headers, cert) = (&args.body, &args.headers, &args.cert);
        let body =
            std::fs::read(body).map_err(|e| format!("cannot read {}: {e}", body.display()))?;
        let headers_json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(headers)
                .map_err(|e| format!("cannot read {}: {e}", headers.display()))?,
        )
        .map_err(|e| format!("{} is not JSON: {e}", headers.display()))?;
        // Either {"headers": {...}} (the sample's shape) or the headers object itself.
        let h = headers_json.get("headers").unwrap_or(&headers_json);
        let headers: verify::TransmissionHeaders = serde_json::from_value(h.clone())
            .map_err(|e| format!("headers file lacks a PayPal header: {e}"))?;
        let cert =
            std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        let now = match &args.at {
            Some(at) => verify::parse_time(at)?,
            None => std::time::SystemTime::now(),
        };
        let ca_files: Vec<PathBuf> = if args.ca.is_empty() {
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "config/paypal-webhook-ca.pem",
            ]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .collect()
        } else {
            args.ca.clone()
        };
        let trust = verify::TrustStore::from_files(&ca_files)?;
        verify::verify(
            &headers,
            &body,
            &args.webhook_id,
            &cert,
            &trust,
            &verify::CertPolicy::default(),
            now,
        )
    })();
    match result {
        Ok(()) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("invalid: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// `create-admin --email EMAIL [--name NAME]`: the first admin account, with a generated
/// password printed once.
fn create_admin(args: &CreateAdmin, db: &ticketing::Db) -> ExitCode {
    let email = match ticketing_core::validate::email(&args.email) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("--email: {e}");
            return ExitCode::from(2);
        }
    };
    let name = args.name.clone();
    let password = ticketing::passwords::generate();
    let result = db.get().map_err(|e| e.to_string()).and_then(|mut conn| {
        if ticketing::models::User::find_by_email(&mut conn, &email)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err(format!("an account for {email} exists already"));
        }
        ticketing::models::User::insert(
            &mut conn,
            &ticketing::models::NewUser {
                email: email.clone(),
                name,
                password_hash: ticketing::passwords::hash(&password),
                role: "admin".into(),
            },
        )
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(_) => {
            println!("admin account: {email} / {password}  (shown once; change it under /admin/password)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ticketing: {e}");
            ExitCode::FAILURE
        }
    }
}
