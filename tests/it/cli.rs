//! The command line: help for every command, `--version`, and exit code 2 with a usage message
//! for bad arguments. None of it needs a database: the binary runs with a cleared environment
//! (PATH only) in an empty directory, so no `.env.local` is read.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ticketing-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The help line that starts with `item` (a flag such as `--email`, or a command name) also
/// says something about it: more words than the item and its `<VALUE>`.
fn describes(help: &str, item: &str) -> bool {
    help.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `-h, --help  Print help`: the short form comes first.
        let start = match words.first() {
            Some(w) if w.starts_with('-') && !w.starts_with("--") && w.ends_with(',') => 1,
            _ => 0,
        };
        words.get(start) == Some(&item)
            && words[start + 1..]
                .iter()
                .any(|w| !(w.starts_with('<') || w.starts_with("[<") || w.starts_with("...")))
    })
}

/// `ticketing <command> --help`: exit 0, help on stdout naming every flag with a description.
fn assert_help(command: &[&str], flags: &[&str]) {
    let mut args = command.to_vec();
    args.push("--help");
    let r = run(&args);
    assert_eq!(r.code, Some(0), "{args:?}: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Usage"), "{args:?}: {}", r.stdout);
    for flag in flags.iter().chain(&["--help"]) {
        assert!(
            describes(&r.stdout, flag),
            "{args:?}: {flag} is not named with a description:\n{}",
            r.stdout
        );
    }
}

#[test]
fn top_level_help_lists_every_command_with_a_description() {
    for help in [&["--help"][..], &["-h"], &["help"]] {
        let r = run(help);
        assert_eq!(r.code, Some(0), "{help:?}: {}{}", r.stdout, r.stderr);
        for command in ["serve", "migrate", "seed", "create-admin", "paypal"] {
            assert!(
                describes(&r.stdout, command),
                "{help:?}: {command} is not listed with a description:\n{}",
                r.stdout
            );
        }
        assert!(describes(&r.stdout, "--version"), "{}", r.stdout);
    }
}

#[test]
fn every_command_has_help_naming_its_flags() {
    assert_help(&["serve"], &[]);
    assert_help(&["migrate"], &[]);
    assert_help(&["seed"], &[]);
    assert_help(&["create-admin"], &["--email", "--name"]);
    assert_help(&["paypal"], &[]);
    assert_help(
        &["paypal", "verify-webhook"],
        &[
            "--body",
            "--headers",
            "--webhook-id",
            "--cert",
            "--at",
            "--ca",
        ],
    );
    // The paypal command lists its subcommand; `help <command>` works too.
    let r = run(&["paypal", "--help"]);
    assert!(describes(&r.stdout, "verify-webhook"), "{}", r.stdout);
    let r = run(&["help", "create-admin"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("--email"), "{}", r.stdout);
}

#[test]
fn version_prints_the_package_version() {
    for flag in ["--version", "-V"] {
        let r = run(&[flag]);
        assert_eq!(r.code, Some(0), "{flag}: {}{}", r.stdout, r.stderr);
        assert_eq!(
            r.stdout.trim(),
            format!("ticketing {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn bad_arguments_exit_2_with_usage_on_stderr() {
    let bad: &[&[&str]] = &[
        &["frobnicate"],
        &["--frobnicate"],
        &["serve", "--frobnicate"],
        &["serve", "extra"],
        &["migrate", "--frobnicate"],
        &["seed", "--frobnicate"],
        &["create-admin"],
        &["create-admin", "--email"],
        &["create-admin", "--email", "a@example.com", "--frobnicate"],
        &["paypal"],
        &["paypal", "frobnicate"],
        &["paypal", "verify-webhook"],
        &[
            "paypal",
            "verify-webhook",
            "--body",
            "b.json",
            "--headers",
            "h.json",
            "--webhook-id",
            "WH-1",
        ],
        &["paypal", "verify-webhook", "--body"],
        &["paypal", "verify-webhook", "--frobnicate", "x"],
    ];
    for args in bad {
        let r = run(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("Usage"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn no_command_serves_and_reports_configuration_errors_with_78() {
    // Without DATABASE_URL the configuration is incomplete: the server and the database
    // commands say so and exit 78 (EX_CONFIG) before touching a database.
    for args in [&[][..], &["serve"], &["migrate"], &["seed"]] {
        let r = run(args);
        assert_eq!(r.code, Some(78), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("DATABASE_URL"), "{args:?}: {}", r.stderr);
    }
    let r = run(&["create-admin", "--email", "boss@example.com"]);
    assert_eq!(r.code, Some(78), "{}{}", r.stdout, r.stderr);
}

#[test]
fn verify_webhook_needs_no_configuration_and_says_invalid() {
    let r = run(&[
        "paypal",
        "verify-webhook",
        "--body",
        "missing-body.json",
        "--headers",
        "missing-headers.json",
        "--webhook-id",
        "WH-1",
        "--cert",
        "missing.pem",
        "--at",
        "2015-05-18T15:45:13Z",
    ]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("invalid: cannot read missing-body.json"),
        "{}",
        r.stdout
    );
}
