//! Unguessable tokens for private links, booking references and access links.

use base64::Engine;
use rand::RngCore;

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A URL-safe token carrying `bytes * 8` random bits (base64url, no padding).
pub fn url_token(bytes: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// The secret token of a private event's link: 256 random bits, 43 URL-safe characters.
pub fn private_event_token() -> String {
    url_token(32)
}

/// True when `s` could be a token made by [`url_token`]: only URL-safe base64 characters and
/// a sane length. Used to reject junk before it reaches the database.
pub fn looks_like_token(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_tokens_are_long_random_and_url_safe() {
        let a = private_event_token();
        let b = private_event_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in base64url");
        assert!(looks_like_token(&a));
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token("has/slash-and-is-long-enough-yes"));
    }
}
