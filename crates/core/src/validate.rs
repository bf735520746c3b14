//! Field checks for checkout forms. Each returns the message shown next to the field.

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

/// A person's name: required, at most [`MAX_NAME`] characters, no control characters.
pub fn name(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("Enter a name.".into());
    }
    if value.chars().count() > MAX_NAME {
        return Err(format!("Use at most {MAX_NAME} characters."));
    }
    if value.chars().any(char::is_control) {
        return Err("Remove the special characters.".into());
    }
    Ok(value.to_string())
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
    fn names_and_phones() {
        assert_eq!(name("  Ana Lima "), Ok("Ana Lima".into()));
        assert!(name("").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert!(phone("").is_ok());
        assert!(phone("+49 30 1234567").is_ok());
        assert!(phone("call me").is_err());
    }
}
