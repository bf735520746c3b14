//! Field checks for checkout and admin forms. Each returns the message shown next to the
//! field. Text typed into a one-line field never holds control characters (tabs, line
//! breaks, NUL and the rest: [`single_line`]); text areas allow only line breaks and tabs
//! ([`multi_line`]). Tests: `single_and_multi_line_text` here, and
//! `hardening::admin_fields_refuse_control_characters` over HTTP.

/// Longest name we accept (characters).
pub const MAX_NAME: usize = 100;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// A ticket quantity typed by the buyer: empty means 0.
pub fn quantity(raw: &str) -> Result<i32, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(0);
    }
    if raw.starts_with('-') && raw[1..].chars().all(|c| c.is_ascii_digit()) && raw.len() > 1 {
        return Err("Enter 0 or more.".into());
    }
    if !raw.chars().all(|c| c.is_ascii_digit()) {
        return Err("Enter a whole number.".into());
    }
    raw.parse::<i32>()
        .map_err(|_| "That is far more than one booking can hold.".to_string())
}

/// The message for text with characters a field does not take.
pub const CONTROL_CHARACTERS: &str =
    "Remove the control characters (such as tabs, line breaks or NUL); type plain text.";

/// True when `text` holds a control character (C0, DEL or C1: tab, line breaks, NUL, ...).
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// A one-line text field, trimmed: at most `max` characters and no control characters.
/// Empty is allowed (see [`required_line`]).
pub fn single_line(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if has_control(value) {
        return Err(CONTROL_CHARACTERS.into());
    }
    if value.chars().count() > max {
        return Err(format!("Use at most {max} characters."));
    }
    Ok(value.to_string())
}

/// A one-line text field that must not be empty; `missing` is the message when it is.
pub fn required_line(raw: &str, max: usize, missing: &str) -> Result<String, String> {
    let value = single_line(raw, max)?;
    if value.is_empty() {
        return Err(missing.into());
    }
    Ok(value)
}

/// A text area, trimmed: at most `max` characters; line breaks and tabs are the only control
/// characters it takes (a NUL could not even be stored).
pub fn multi_line(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(
            "Remove the control characters (such as NUL); line breaks and tabs are fine.".into(),
        );
    }
    if value.chars().count() > max {
        return Err(format!("Use at most {max} characters."));
    }
    Ok(value.to_string())
}

/// A person's name: required, at most [`MAX_NAME`] characters, no control characters.
pub fn name(raw: &str) -> Result<String, String> {
    required_line(raw, MAX_NAME, "Enter a name.")
}

/// An email address: one `@`, a dotted domain, no spaces, at most [`MAX_EMAIL`] characters.
pub fn email(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("Enter an email address.".into());
    }
    if value.len() > MAX_EMAIL {
        return Err(format!("Use at most {MAX_EMAIL} characters."));
    }
    let bad = || Err("Enter an email address like name@example.com.".to_string());
    let Some((local, domain)) = value.split_once('@') else {
        return bad();
    };
    let ok_local = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let ok_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if !ok_local
        || !ok_domain
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
        || local.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"', '@'])
    {
        return bad();
    }
    Ok(value.to_string())
}

/// An optional phone number: digits, spaces and `+-()./`, 6 to 20 digits.
pub fn phone(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if value.chars().count() > 30
        || !(6..=20).contains(&digits)
        || !value
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c))
    {
        return Err("Enter a phone number like +49 30 1234567, or leave it empty.".into());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(""), Ok(0));
        assert_eq!(quantity(" 3 "), Ok(3));
        assert!(quantity("-1").is_err());
        assert!(quantity("2.5").is_err());
        assert!(quantity("abc").is_err());
        assert!(quantity("99999999999999999999").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("ana@example.com").is_ok());
        assert!(email("ana.b+x@sub.example.de").is_ok());
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "ana@x",
            "a b@x.com",
            "ana@@x.com",
            "ana@x..com",
            "a<b>@x.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@x.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn single_and_multi_line_text() {
        assert_eq!(single_line("  Main Hall ", 20), Ok("Main Hall".into()));
        assert_eq!(single_line("", 20), Ok(String::new()));
        for bad in [
            "a\0b",
            "a\tb",
            "a\nb",
            "a\rb",
            "a\u{1b}[31mb",
            "a\u{7f}",
            "a\u{85}b",
        ] {
            assert_eq!(
                single_line(bad, 20),
                Err(CONTROL_CHARACTERS.into()),
                "{bad:?}"
            );
            assert!(name(bad).is_err(), "{bad:?}");
        }
        assert!(single_line(&"x".repeat(21), 20).is_err());
        assert_eq!(required_line(" ", 20, "Enter it."), Err("Enter it.".into()));
        assert_eq!(
            multi_line("line one\r\n\tline two\n", 100),
            Ok("line one\r\n\tline two".into())
        );
        assert!(multi_line("a\0b", 100).is_err());
        assert!(multi_line("a\u{1b}b", 100).is_err());
        assert!(multi_line(&"x".repeat(101), 100).is_err());
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(name("  Ana Lima "), Ok("Ana Lima".into()));
        assert!(name("").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert!(phone("").is_ok());
        assert!(phone("+49 30 1234567").is_ok());
        assert!(phone("call me").is_err());
    }
}
