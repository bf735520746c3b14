//! The `ticketing` binary: `serve` (default) runs the site; `migrate` applies migrations;
//! `seed` fills an empty database with demo data.

use std::process::ExitCode;

use ticketing::{config::Config, logging};

const USAGE: &str = "usage: ticketing [serve | migrate | seed | paypal verify-webhook ...]
  serve    apply pending migrations and run the web app (default)
  migrate  apply pending migrations and exit
  seed     apply migrations, then add demo events and an admin account (safe to repeat)
  create-admin --email EMAIL [--name NAME]
           create an admin account with a generated password (printed once)
  paypal verify-webhook --body FILE --headers FILE --webhook-id ID --cert PEM
                        [--at RFC3339-TIME] [--ca PEM]...
           check a PayPal webhook delivery offline: prints `valid` (exit 0)
           or `invalid: <reason>` (exit 1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    if matches!(command, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if command == "paypal" {
        return paypal_command(&args[1..]);
    }
    if !matches!(command, "serve" | "migrate" | "seed" | "create-admin") {
        eprintln!("unknown command {command:?}\n{USAGE}");
        return ExitCode::from(2);
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ticketing: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    logging::init(&config);
    let db = if command == "serve" {
        ticketing::connect(&config)
    } else {
        ticketing::connect_for_command(&config)
    };
    if let Err(e) = db.migrate() {
        eprintln!("ticketing: could not apply database migrations: {e}");
        return ExitCode::FAILURE;
    }
    match command {
        "migrate" => {
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        "seed" => seed(&config, &db),
        "create-admin" => create_admin(&args[1..], &db),
        _ => serve(config, db),
    }
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
    let result = rocket::execute(ticketing::rocket(&config, db).launch());
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticketing: the server stopped with an error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `paypal verify-webhook`: offline verification for operators and tests; needs no database.
fn paypal_command(args: &[String]) -> ExitCode {
    use ticketing::paypal::verify;
    if args.first().map(String::as_str) != Some("verify-webhook") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut opts: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            (
                f @ ("--body" | "--headers" | "--webhook-id" | "--cert" | "--at" | "--ca"),
                Some(v),
            ) => opts.entry(f).or_default().push(v),
            _ => {
                eprintln!("unexpected argument {flag:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let one = |k: &str| opts.get(k).and_then(|v| v.last().copied());
    let (Some(body), Some(headers), Some(webhook_id), Some(cert)) = (
        one("--body"),
        one("--headers"),
        one("--webhook-id"),
        one("--cert"),
    ) else {
        eprintln!("--body, --headers, --webhook-id and --cert are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let result = (|| -> Result<(), String> {
        let body = std::fs::read(body).map_err(|e| format!("cannot read {body}: {e}"))?;
        let headers_json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(headers).map_err(|e| format!("cannot read {headers}: {e}"))?,
        )
        .map_err(|e| format!("{headers} is not JSON: {e}"))?;
        // Either {"headers": {...}} (the sample's shape) or the headers object itself.
        let h = headers_json.get("headers").unwrap_or(&headers_json);
        let headers: verify::TransmissionHeaders = serde_json::from_value(h.clone())
            .map_err(|e| format!("headers file lacks a PayPal header: {e}"))?;
        let cert = std::fs::read(cert).map_err(|e| format!("cannot read {cert}: {e}"))?;
        let now = match one("--at") {
            Some(at) => verify::parse_time(at)?,
            None => std::time::SystemTime::now(),
        };
        let ca_files: Vec<std::path::PathBuf> = match opts.get("--ca") {
            Some(list) => list.iter().map(Into::into).collect(),
            None => [
                "/etc/ssl/certs/ca-certificates.crt",
                "config/paypal-webhook-ca.pem",
            ]
            .iter()
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_file())
            .collect(),
        };
        let trust = verify::TrustStore::from_files(&ca_files)?;
        verify::verify(
            &headers,
            &body,
            webhook_id,
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
fn create_admin(args: &[String], db: &ticketing::Db) -> ExitCode {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(email) = value("--email") else {
        eprintln!("create-admin needs --email EMAIL\n{USAGE}");
        return ExitCode::from(2);
    };
    let email = match ticketing::bookings::validate::email(&email) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("--email: {e}");
            return ExitCode::from(2);
        }
    };
    let name = value("--name").unwrap_or_else(|| "Admin".into());
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
