//! Password hashing: argon2id for everything we hash; bcrypt accepted for imported hashes
//! (Elasticsearch's default format), so users can be migrated with `password_hash`.

use crate::model::PasswordHash;
use argon2::password_hash::{
    PasswordHash as ParsedHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use zeroize::Zeroizing;

/// A secret string (password or token) that never prints and is wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret text, for hashing and comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Elasticsearch treats an empty secret as absent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Hashes a password with argon2id and a fresh random salt.
pub fn hash_password(password: &Secret) -> Result<PasswordHash, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| PasswordHash(hash.to_string()))
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` matches `hash`. The algorithm is read from the hash's own prefix, so
/// hashes of every accepted family verify.
pub fn verify_password(hash: &PasswordHash, password: &Secret) -> bool {
    let stored = hash.0.as_str();
    if is_bcrypt(stored) {
        return bcrypt::verify(password.expose(), stored).unwrap_or(false);
    }
    match ParsedHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// The most expensive imported hashes accepted. Every login, right or wrong, pays the stored
/// hash's cost, so an imported hash must not let one login take minutes or gigabytes:
/// bcrypt costs 4 to 14 as Elasticsearch's `bcrypt4`..`bcrypt14` hashers, argon2 up to 64 MiB,
/// 10 passes and 8 lanes (this service's own hashes use 19 MiB, 2 passes, 1 lane).
const MAX_BCRYPT_COST: u8 = 14;
const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const MAX_ARGON2_ITERATIONS: u32 = 10;
const MAX_ARGON2_LANES: u32 = 8;

/// bcrypt hashes are 60 ASCII characters: `$2a$NN$` (cost 4 to 14 here) and 53 characters of
/// salt and digest in bcrypt's base64 alphabet. Checked byte by byte, so no input can make a
/// slice land inside a multi-byte character.
fn is_well_formed_bcrypt(hash: &str) -> bool {
    let bytes = hash.as_bytes();
    let in_alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'/';
    bytes.len() == 60
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit()
        && bytes[6] == b'$'
        && (4..=MAX_BCRYPT_COST).contains(&((bytes[4] - b'0') * 10 + (bytes[5] - b'0')))
        && bytes[7..].iter().all(in_alphabet)
}

/// The hash families a `password_hash` may use.
pub const SUPPORTED_HASH_ALGORITHMS: &str = "argon2id, bcrypt";

/// Checks that an imported hash is one this service can verify.
pub fn parse_imported_hash(hash: &str) -> Option<PasswordHash> {
    let valid = if is_bcrypt(hash) {
        is_well_formed_bcrypt(hash)
    } else {
        ParsedHash::new(hash).is_ok_and(|parsed| {
            parsed.algorithm.as_str().starts_with("argon2")
                && argon2::Params::try_from(&parsed).is_ok_and(|params| {
                    params.m_cost() <= MAX_ARGON2_MEMORY_KIB
                        && params.t_cost() <= MAX_ARGON2_ITERATIONS
                        && params.p_cost() <= MAX_ARGON2_LANES
                })
        })
    };
    valid.then(|| PasswordHash(hash.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argon2id_hash_verifies_only_its_own_password() {
        let hash = hash_password(&Secret::new("l0ng-r4nd0m-p@ssw0rd")).unwrap();
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(verify_password(&hash, &Secret::new("l0ng-r4nd0m-p@ssw0rd")));
        assert!(!verify_password(
            &hash,
            &Secret::new("l0ng-r4nd0m-p@ssw0rD")
        ));
    }

    #[test]
    fn an_imported_bcrypt_hash_verifies() {
        let hash = bcrypt::hash("changeme", 4).unwrap();
        let parsed = parse_imported_hash(&hash).expect("bcrypt accepted");
        assert!(verify_password(&parsed, &Secret::new("changeme")));
        assert!(!verify_password(&parsed, &Secret::new("changeMe")));
    }

    #[test]
    fn junk_is_not_an_importable_hash() {
        assert!(parse_imported_hash("plaintext").is_none());
        // Multi-byte characters where the cost digits belong, and wrong alphabets.
        assert!(parse_imported_hash(&format!("$2a$1\u{e9}{}", "x".repeat(53))).is_none());
        assert!(parse_imported_hash(&format!("$2a$10${}", "\u{e9}".repeat(26))).is_none());
        assert!(parse_imported_hash(&format!("$2a$99${}", "x".repeat(53))).is_none());
        // Costs that would make every login take minutes or gigabytes.
        assert!(parse_imported_hash(&format!("$2a$15${}", "x".repeat(53))).is_none());
        assert!(parse_imported_hash(&format!("$2a$14${}", "x".repeat(53))).is_some());
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let digest = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        let argon = |params: &str| format!("$argon2id$v=19${params}${salt}${digest}");
        assert!(parse_imported_hash(&argon("m=19456,t=2,p=1")).is_some());
        assert!(parse_imported_hash(&argon("m=4194304,t=2,p=1")).is_none());
        assert!(parse_imported_hash(&argon("m=19456,t=1000,p=1")).is_none());
        assert!(parse_imported_hash(&format!("$2a$10${}!", "x".repeat(52))).is_none());
        assert!(parse_imported_hash("{PBKDF2}10000$abc$def").is_none());
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter22")),
            "Secret(<redacted>)"
        );
    }
}
