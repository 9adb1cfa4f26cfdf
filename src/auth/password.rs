//! Password hashing: argon2id for everything we hash; bcrypt accepted for imported hashes
//! (Elasticsearch's default format), so users can be migrated with `password_hash`.

use crate::engine::model::PasswordHash;
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

/// The hash families a `password_hash` may use.
pub const SUPPORTED_HASH_ALGORITHMS: &str = "argon2id, bcrypt";

/// Checks that an imported hash is one this service can verify.
pub fn parse_imported_hash(hash: &str) -> Option<PasswordHash> {
    let valid = if is_bcrypt(hash) {
        // bcrypt hashes are 60 characters: `$2a$NN$` + 53 characters of salt and digest.
        hash.len() == 60
            && hash[4..6]
                .parse::<u32>()
                .is_ok_and(|cost| (4..=31).contains(&cost))
    } else {
        ParsedHash::new(hash).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
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
