//! The one redaction every log line goes through: secret tokens in addresses (private event
//! links `/p/<token>`, booking pages `/bookings/<token>` and `/checkout/<token>`, waiver
//! links `/waivers/<token>`, staff password links `/admin/set-password/<token>`), secret query values (`token=`, `state=`, `next=`,
//! `access_token=`) and any other run of characters that looks like a random URL-safe token
//! are replaced before the line is written. [`redact`] is the function; [`RedactedStdout`]
//! is the writer `logging` installs, so Rocket's own messages ("No matching routes for PUT
//! /p/...") are covered as much as ours. Tests: `tests` below, and
//! `edge::secret_tokens_never_reach_the_log` (the real binary's log).

use std::borrow::Cow;
use std::io::Write;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a redacted path segment becomes.
pub const TOKEN: &str = "<token>";
/// What a redacted query value becomes.
pub const VALUE: &str = "<redacted>";

/// Literal path segments after a token-bearing prefix that are routes, not tokens
/// (`/checkout/hold`; `/v2/checkout/orders` in PayPal's API URLs).
const LITERAL_SEGMENTS: &[&str] = &["hold", "orders"];

/// A token-bearing prefix (its slashes plain or percent-encoded, in any case) and the
/// segment after it.
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)((?:/|%2f)(?:p|bookings|checkout|waivers|set-password)(?:/|%2f))([^/?#&%\s"'<>\\,;)]+)"#)
        .expect("valid regex")
});

/// A secret query parameter and its value.
static QUERY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:[?&]|%3f|%26)(?:token|state|next|access_token)(?:=|%3d))([^&#\s"'<>\\]+)"#,
    )
    .expect("valid regex")
});

/// A run of URL-safe base64 as long as the shortest token the app makes (22 characters).
static LONG_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_-]{22,}").expect("valid regex"));

/// `text` with every secret token replaced (see the module comment).
pub fn redact(text: &str) -> Cow<'_, str> {
    // Query values first: a `next=` value may itself hold an encoded token path.
    let text = QUERY.replace_all(text, |c: &Captures<'_>| format!("{}{VALUE}", &c[1]));
    let text = match PATH.replace_all(&text, |c: &Captures<'_>| {
        if LITERAL_SEGMENTS.contains(&c[2].to_ascii_lowercase().as_str()) {
            c[0].to_string()
        } else {
            format!("{}{TOKEN}", &c[1])
        }
    }) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    };
    // Elsewhere, a long run of both upper- and lower-case letters is a token (random base64
    // has both with near certainty; slugs, hex digests and identifiers do not).
    let out = LONG_RUN.replace_all(&text, |c: &Captures<'_>| {
        let run = &c[0];
        if run.bytes().any(|b| b.is_ascii_uppercase())
            && run.bytes().any(|b| b.is_ascii_lowercase())
        {
            TOKEN.to_string()
        } else {
            run.to_string()
        }
    });
    match out {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Standard output for `tracing_subscriber`, through [`redact`]: each event is collected
/// whole and written redacted when the formatter is done with it.
pub struct RedactedStdout;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStdout {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::new())
    }
}

/// One log event on its way to standard output.
pub struct RedactedLine(Vec<u8>);

impl Write for RedactedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stdout().lock().write_all(redact(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "jIXmKlD0qLQURXpzDRd4W6GMnG2sBnHrprFjopoQYR8";

    #[test]
    fn token_segments_are_redacted_wherever_they_appear() {
        for (given, expected) in [
            (format!("/p/{T}"), "/p/<token>".to_string()),
            (
                format!("No matching routes for PUT /p/{T}."),
                "No matching routes for PUT /p/<token>".into(),
            ),
            (
                format!("/p/{T}/availability"),
                "/p/<token>/availability".into(),
            ),
            (format!("/p/{T}.json"), "/p/<token>".into()),
            (format!("/P/{T}"), "/P/<token>".into()),
            (
                "/bookings/abc/calendar.ics".to_string(),
                "/bookings/<token>/calendar.ics".into(),
            ),
            (
                format!("\"path\":\"/waivers/{T}\""),
                "\"path\":\"/waivers/<token>\"".into(),
            ),
            (
                format!("/checkout/{T}/review"),
                "/checkout/<token>/review".into(),
            ),
            ("/checkout/hold".into(), "/checkout/hold".into()),
            (
                "https://api-m.paypal.com/v2/checkout/orders/5O19/capture".into(),
                "https://api-m.paypal.com/v2/checkout/orders/5O19/capture".into(),
            ),
            (format!("/p/{T}%00"), "/p/<token>%00".into()),
            ("/p/<token>".into(), "/p/<token>".into()),
            (
                "/events/spring-gala-in-the-old-town-2027".into(),
                "/events/spring-gala-in-the-old-town-2027".into(),
            ),
        ] {
            assert_eq!(redact(&given), expected, "{given}");
        }
    }

    #[test]
    fn secret_query_values_are_redacted() {
        assert_eq!(
            redact("/payments/paypal/return?token=5O190127TN364715T&state=abc"),
            "/payments/paypal/return?token=<redacted>&state=<redacted>"
        );
        assert_eq!(
            redact(&format!("/admin/login?next=%2Fp%2F{T}&x=1")),
            "/admin/login?next=<redacted>&x=1"
        );
        assert_eq!(
            redact(&format!("?q=x%26next%3D{T}")),
            "?q=x%26next%3D<redacted>"
        );
        assert_eq!(redact("/?page=2&state=paid"), "/?page=2&state=<redacted>");
    }

    #[test]
    fn other_token_like_runs_are_redacted_but_identifiers_are_not() {
        assert_eq!(redact(&format!("link {T} sent")), "link <token> sent");
        let kept = "ticketing_app::payments::webhooks 3f2a9c0d4e5b6a7f8e9d0c1b2a3f4e5d WEBHOOK_SETTLEMENT_FAILED";
        assert_eq!(redact(kept), kept);
        assert!(matches!(redact("nothing secret here"), Cow::Borrowed(_)));
    }
}
