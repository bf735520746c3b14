//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane).
//!
//! Every argon2 run needs a 19 MiB work area. Allocating it per run let glibc keep those
//! buffers in per-thread arenas (a penetration test saw 1.9 GB after ~260 failed logins), so
//! long-lived callers hash with a [`Scratch`] they keep and reuse: the web layer's two hashing
//! threads own one each (`src/hashing.rs`). [`hash`] and [`verify`] allocate per call and are
//! for one-off commands (seeding, the `create-admin` CLI) and tests.

use argon2::password_hash::{self, rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The work area of argon2 runs, kept between them. Grows to the largest cost it has run at.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

/// The most memory a stored hash may ask for (KiB); a bigger `m=` is refused rather than
/// allocated, so a tampered row cannot make a login allocate gigabytes.
const MAX_M_COST_KIB: u32 = 64 * 1024;

fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

impl Scratch {
    /// Runs argon2 (`algorithm`, `version`, `params`) over `password` and `salt` into an
    /// output of `len` bytes, in this scratch area.
    fn output(
        &mut self,
        (algorithm, version, params): (Algorithm, Version, Params),
        password: &str,
        salt: &[u8],
        len: usize,
    ) -> password_hash::Result<Output> {
        let blocks = params.block_count();
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        let argon = Argon2::new(algorithm, version, params);
        Output::init_with(len, |out| {
            argon
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    out,
                    &mut self.0[..blocks],
                )
                .map_err(Into::into)
        })
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub fn hash(&mut self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        let params = params();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .expect("a generated salt decodes");
        let output = self
            .output(
                (Algorithm::Argon2id, Version::V0x13, params.clone()),
                password,
                salt_bytes,
                Params::DEFAULT_OUTPUT_LEN,
            )
            .expect("argon2 hashing cannot fail with valid parameters");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&params).try_into().expect("parameters encode"),
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string()
    }

    /// True when `password` matches the PHC string `phc` (at the cost the string records).
    /// CPU-heavy: call from a blocking thread.
    pub fn verify(&mut self, password: &str, phc: &str) -> bool {
        self.try_verify(password, phc).unwrap_or(false)
    }

    fn try_verify(&mut self, password: &str, phc: &str) -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        if params.m_cost() > MAX_M_COST_KIB {
            return None;
        }
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
        let computed = self
            .output(
                (algorithm, version, params),
                password,
                salt_bytes,
                expected.len(),
            )
            .ok()?;
        // Output's equality is constant-time.
        Some(computed == expected)
    }
}

/// The hash a login for an unknown email is checked against, so that it takes as long as a
/// wrong password: the same algorithm and cost as [`hash`] (test
/// `unknown_account_hash_costs_what_a_real_one_does`), of a random password nobody kept. A
/// constant, so that no start-up hash allocates a work area of its own.
pub const UNKNOWN_ACCOUNT_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$0UGdr4pKjzTk8Si7eRgzPA$mA4KKdYxLMyroLxl3eNs++btbFuU5vy1Bq1ywM/7uz4";

/// Hashes `password` with a fresh work area (one-off commands; servers use a [`Scratch`]).
pub fn hash(password: &str) -> String {
    Scratch::default().hash(password)
}

/// True when `password` matches `phc`, with a fresh work area (see [`hash`]).
pub fn verify(password: &str, phc: &str) -> bool {
    Scratch::default().verify(password, phc)
}

/// A readable random password for generated accounts: 20 characters, ~119 bits.
pub fn generate() -> String {
    use rand::seq::SliceRandom;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| *ALPHABET.choose(&mut rng).unwrap() as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));
        assert_eq!(generate().len(), 20);
    }

    /// The reused work area gives the same answers as the argon2 crate's own hasher, in both
    /// directions, and a scratch used at one cost still verifies hashes of another.
    #[test]
    fn scratch_agrees_with_the_argon2_crate() {
        let mut scratch = Scratch::default();
        let theirs = Argon2::default()
            .hash_password(b"pw one", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(scratch.verify("pw one", &theirs));
        assert!(!scratch.verify("pw two", &theirs));
        let ours = scratch.hash("pw one");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pw one", &parsed)
            .is_ok());
        assert!(scratch.verify("pw one", &ours));
        // A cheaper stored cost (m=8 MiB) also verifies with the grown scratch.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw three", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(scratch.verify("pw three", &cheap));
    }

    #[test]
    fn unknown_account_hash_costs_what_a_real_one_does() {
        let real = hash("x");
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_string();
        assert_eq!(params(UNKNOWN_ACCOUNT_HASH), params(&real));
        assert!(PasswordHash::new(UNKNOWN_ACCOUNT_HASH).is_ok());
        assert!(!verify("", UNKNOWN_ACCOUNT_HASH));
    }

    #[test]
    fn refuses_a_stored_hash_asking_for_too_much_memory() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(!Scratch::default().verify("x", huge));
    }
}
