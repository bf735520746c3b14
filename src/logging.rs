//! Logging setup: tracing to stdout, human-readable locally and JSON lines in production.
//! Every line, Rocket's and libraries' included (through `log`), is written through
//! [`crate::redact`], so no secret token reaches the log.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(config: &Config) {
    // Rocket's own start-up chatter (route tables, fairings) is kept at warn unless asked for.
    let directives = if config.log_level.contains("rocket") {
        config.log_level.clone()
    } else {
        format!("{},rocket=warn,rocket_dyn_templates=warn", config.log_level)
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::RedactedStdout);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
