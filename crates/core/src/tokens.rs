//! Unguessable tokens for private links, booking references and access links.

use base64::Engine;
use rand::RngCore;

/// Lower-case hex SHA-256 of `text` (session token hashes, waiver text hashes).
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

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

/// A value derived from a secret (`purpose` keeps derivations for different uses apart):
/// SHA-256, base64url, 22 characters (132 bits). It proves knowledge of `secret` without
/// revealing it.
pub fn derived(purpose: &str, secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(purpose.as_bytes())
        .chain_update([0u8])
        .chain_update(secret.as_bytes())
        .finalize();
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    s.truncate(22);
    s
}

/// Compares two strings in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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

/// Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud or typed.
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `len` random characters of Crockford base32 (5 bits each).
pub fn crockford_code(len: usize) -> String {
    random_bytes(len)
        .into_iter()
        .map(|b| CROCKFORD[(b & 31) as usize] as char)
        .collect()
}

/// A booking's public reference, such as `BK-7F3KQ9XM2D` (50 random bits).
pub fn booking_reference() -> String {
    format!("BK-{}", crockford_code(10))
}

/// A ticket's code, printed and encoded in its QR code (60 random bits).
pub fn ticket_code() -> String {
    crockford_code(12)
}

/// Normalises a typed ticket code: upper case, no spaces or dashes, and the letters people
/// confuse with digits mapped as Crockford says (O→0, I/L→1).
pub fn normalize_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod code_tests {
    use super::*;

    #[test]
    fn codes_use_crockford_letters() {
        let code = ticket_code();
        assert_eq!(code.len(), 12);
        assert!(code.bytes().all(|b| CROCKFORD.contains(&b)));
        assert!(booking_reference().starts_with("BK-"));
        assert_eq!(normalize_code("ab-c o1 l"), "ABC011");
    }
}
