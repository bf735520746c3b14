//! The `ticketing` binary: `serve` (default) runs the site; `migrate` applies migrations;
//! `seed` fills an empty database with demo data.

use std::process::ExitCode;

use ticketing::{config::Config, logging};

const USAGE: &str = "usage: ticketing [serve | migrate | seed]
  serve    apply pending migrations and run the web app (default)
  migrate  apply pending migrations and exit
  seed     apply migrations, then add demo events and an admin account (safe to repeat)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    if matches!(command, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if !matches!(command, "serve" | "migrate" | "seed") {
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
    let db = ticketing::connect(&config);
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
