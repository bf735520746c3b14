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
