//! Shows UTC instants in an event's IANA time zone, the way a ticket buyer reads them.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Parses an IANA zone name such as `Europe/Berlin`; `None` when unknown.
pub fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// `Sat 12 Dec 2026, 19:30 CET` in `tz`.
pub fn local_datetime(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// `19:30` in `tz`.
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M").to_string()
}

/// Start and end as one phrase: same day → `Sat 12 Dec 2026, 19:30 – 23:00 CET`.
pub fn local_range(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> String {
    let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
    if s.date_naive() == e.date_naive() {
        format!(
            "{} – {} {}",
            s.format("%a %-d %b %Y, %H:%M"),
            e.format("%H:%M"),
            e.format("%Z")
        )
    } else {
        format!(
            "{} – {}",
            local_datetime(start, tz),
            local_datetime(end, tz)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn shows_times_in_the_event_zone() {
        let start = Utc.with_ymd_and_hms(2026, 12, 12, 18, 30, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 12, 12, 22, 0, 0).unwrap();
        let berlin = parse_tz("Europe/Berlin").unwrap();
        assert_eq!(local_datetime(start, berlin), "Sat 12 Dec 2026, 19:30 CET");
        assert_eq!(
            local_range(start, end, berlin),
            "Sat 12 Dec 2026, 19:30 – 23:00 CET"
        );
        let ny = parse_tz("America/New_York").unwrap();
        assert_eq!(local_time(start, ny), "13:30");
        assert!(parse_tz("Mars/Olympus").is_none());
    }
}
