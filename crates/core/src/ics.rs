//! iCalendar (`.ics`, RFC 5545) files for bookings, so buyers can add the event to a calendar.

use chrono::{DateTime, Utc};

/// Escapes a TEXT value: backslash, semicolon, comma and newlines.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            other => out.push(other),
        }
    }
    out
}

/// Folds a content line at 75 octets (never inside a UTF-8 character) with CRLF + space.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in line.chars() {
        let w = c.len_utf8();
        if len + w > 75 {
            out.push_str("\r\n ");
            len = 1;
        }
        out.push(c);
        len += w;
    }
    out.push_str("\r\n");
    out
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// What goes into a calendar entry.
pub struct CalendarEvent<'a> {
    pub uid: String,
    pub title: &'a str,
    pub location: &'a str,
    pub description: String,
    pub url: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The "Add to Google Calendar" link for `event` (Google's event template URL, built with
/// the `url` crate; times in UTC). Test `ics::tests::google_link_carries_the_event`.
pub fn google_calendar_link(event: &CalendarEvent<'_>) -> String {
    let stamp = |at: DateTime<Utc>| at.format("%Y%m%dT%H%M%SZ").to_string();
    let dates = format!("{}/{}", stamp(event.starts_at), stamp(event.ends_at));
    url::Url::parse_with_params(
        "https://calendar.google.com/calendar/render",
        &[
            ("action", "TEMPLATE"),
            ("text", event.title),
            ("dates", dates.as_str()),
            ("location", event.location),
            ("details", event.description.as_str()),
        ],
    )
    .expect("a fixed base URL parses")
    .to_string()
}

/// A complete VCALENDAR with one VEVENT.
pub fn calendar(event: &CalendarEvent<'_>, now: DateTime<Utc>) -> String {
    let lines = [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//ticketing//bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", event.uid),
        format!("DTSTAMP:{}", stamp(now)),
        format!("DTSTART:{}", stamp(event.starts_at)),
        format!("DTEND:{}", stamp(event.ends_at)),
        format!("SUMMARY:{}", escape(event.title)),
        format!("LOCATION:{}", escape(event.location)),
        format!("DESCRIPTION:{}", escape(&event.description)),
        format!("URL:{}", event.url),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ];
    lines.iter().map(|l| fold(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn google_link_carries_the_event() {
        let start = Utc.with_ymd_and_hms(2026, 12, 12, 18, 30, 0).unwrap();
        let link = google_calendar_link(&CalendarEvent {
            uid: "BK-1@tickets.test".into(),
            title: "Jazz & Blues",
            location: "Hall 1, Berlin",
            description: "Booking BK-1".into(),
            url: "https://tickets.test/bookings/x".into(),
            starts_at: start,
            ends_at: start + chrono::Duration::hours(2),
        });
        let parsed = url::Url::parse(&link).unwrap();
        assert_eq!(parsed.host_str(), Some("calendar.google.com"));
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["action"], "TEMPLATE");
        assert_eq!(q["text"], "Jazz & Blues");
        assert_eq!(q["dates"], "20261212T183000Z/20261212T203000Z");
        assert_eq!(q["location"], "Hall 1, Berlin");
        assert_eq!(q["details"], "Booking BK-1");
    }

    #[test]
    fn escapes_and_folds() {
        let start = Utc.with_ymd_and_hms(2026, 12, 12, 18, 30, 0).unwrap();
        let ics = calendar(
            &CalendarEvent {
                uid: "BK-1@tickets.test".into(),
                title: "Jazz; Blues, and \\ more",
                location: "Hall 1\nBerlin",
                description: "x".repeat(200),
                url: "https://tickets.test/bookings/abc".into(),
                starts_at: start,
                ends_at: start + chrono::Duration::hours(2),
            },
            start,
        );
        assert!(ics.contains("SUMMARY:Jazz\\; Blues\\, and \\\\ more\r\n"));
        assert!(ics.contains("LOCATION:Hall 1\\nBerlin\r\n"));
        assert!(ics.contains("DTSTART:20261212T183000Z\r\n"));
        assert!(ics.lines().all(|l| l.len() <= 75));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    }
}
