//! Reads the mail sender's settings (`ticketing_app::mail::MailSettings`).

use std::path::PathBuf;

use super::Reader;
use crate::mail::{MailSettings, MailTransport, SmtpSecurity};

/// Mail settings: SMTP when `SMTP_HOST` is set (required in production), else `.eml` files
/// under `MAIL_FILE_DIR` locally. Bad combinations are refused, naming the variable.
pub(super) fn read(r: &mut Reader, production: bool, site_name: &str) -> MailSettings {
    let host = r.raw("SMTP_HOST");
    let security = match r.raw("SMTP_SECURITY").as_deref() {
        None | Some("starttls") => SmtpSecurity::StartTls,
        Some("tls") => SmtpSecurity::Tls,
        Some("none") => SmtpSecurity::None,
        Some(other) => {
            r.problem(
                "SMTP_SECURITY",
                format!("expected \"starttls\", \"tls\" or \"none\", got {other:?}"),
            );
            SmtpSecurity::StartTls
        }
    };
    let default_port = match security {
        SmtpSecurity::StartTls => 587u16,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    };
    let port = r.parsed(
        "SMTP_PORT",
        default_port,
        "a port number from 1 to 65535",
        |p| *p > 0,
    );
    let username = r.raw("SMTP_USERNAME");
    let password = r.raw("SMTP_PASSWORD");
    if username.is_some() != password.is_some() {
        let var = if username.is_some() {
            "SMTP_PASSWORD"
        } else {
            "SMTP_USERNAME"
        };
        r.problem(
            var,
            "SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither",
        );
    }
    if security == SmtpSecurity::None && username.is_some() {
        r.problem(
            "SMTP_SECURITY",
            "\"none\" would send the SMTP password in clear text; use starttls or tls",
        );
    }
    let transport = match host {
        Some(host) => {
            if production && security == SmtpSecurity::None {
                r.problem("SMTP_SECURITY", "must be starttls or tls in production");
            }
            MailTransport::Smtp {
                host,
                port,
                security,
                username,
                password,
            }
        }
        None => {
            if production {
                r.problem(
                    "SMTP_HOST",
                    "is required in production (the file transport is for local work only)",
                );
            }
            MailTransport::File {
                dir: PathBuf::from(
                    r.raw("MAIL_FILE_DIR")
                        .unwrap_or_else(|| "target/mail".into()),
                ),
            }
        }
    };
    let from_email = match r.raw("MAIL_FROM") {
        Some(v) => v,
        None if matches!(transport, MailTransport::Smtp { .. }) => {
            r.problem("MAIL_FROM", "is required when SMTP_HOST is set; expected the sender address, such as tickets@example.com");
            String::new()
        }
        None => "tickets@localhost.test".into(),
    };
    if !from_email.is_empty()
        && ticketing_core::validate::email(&from_email).is_err()
        && !from_email.ends_with("@localhost.test")
    {
        r.problem(
            "MAIL_FROM",
            format!("expected an email address, got {from_email:?}"),
        );
    }
    let reply_to = r.raw("MAIL_REPLY_TO");
    if let Some(rt) = &reply_to {
        if ticketing_core::validate::email(rt).is_err() {
            r.problem(
                "MAIL_REPLY_TO",
                format!("expected an email address, got {rt:?}"),
            );
        }
    }
    MailSettings {
        transport,
        from_email,
        from_name: r
            .raw("MAIL_FROM_NAME")
            .unwrap_or_else(|| site_name.to_string()),
        reply_to,
    }
}
