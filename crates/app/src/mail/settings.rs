//! The mail sender's settings (read from the environment by the web crate's config).

use std::fmt;
use std::path::PathBuf;

/// How mail leaves the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    Smtp {
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: Option<String>,
        password: Option<String>,
    },
    /// `.eml` files in a directory (local work without a mail server; refused in production).
    File { dir: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    None,
}

#[derive(Clone)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from_email: String,
    pub from_name: String,
    pub reply_to: Option<String>,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            MailTransport::Smtp {
                host,
                port,
                security,
                username,
                ..
            } => format!(
                "smtp {host}:{port} {security:?} user={}",
                username.as_deref().unwrap_or("-")
            ),
            MailTransport::File { dir } => format!("file {dir:?}"),
        };
        f.debug_struct("MailSettings")
            .field("transport", &transport)
            .field("from_email", &self.from_email)
            .field("from_name", &self.from_name)
            .field("reply_to", &self.reply_to)
            .finish()
    }
}
