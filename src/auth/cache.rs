//! The verified-credentials cache: repeated logins skip the deliberately slow password hash.
//!
//! An entry remembers a keyed SHA-256 of the last password that verified, together with the
//! stored hash it verified against. A hit requires both to match the *current* user record,
//! which the caller always reads from the store first; so a changed password (new stored hash),
//! a deleted user (no record) or a disabled user (checked on the record) can never be
//! authenticated from the cache.

use crate::auth::password::Secret;
use crate::model::PasswordHash;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

#[derive(Clone)]
struct Entry {
    stored_hash: String,
    password_digest: [u8; 32],
}

/// Caches the outcome of successful password verifications, per username.
#[derive(Clone)]
pub struct CredentialCache {
    entries: Cache<String, Entry>,
    /// A per-process random key, so digests in memory cannot be looked up in precomputed tables.
    key: [u8; 32],
}

impl CredentialCache {
    /// A cache like Elasticsearch's realm cache: entries live `ttl` after being written, at most
    /// `max_users` of them.
    pub fn new(ttl: Duration, max_users: u64) -> Self {
        Self {
            entries: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_users)
                .build(),
            key: rand::random(),
        }
    }

    fn digest(&self, password: &Secret) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(password.expose().as_bytes());
        hasher.finalize().into()
    }

    /// Whether `password` verified against exactly `stored_hash` before.
    pub fn is_verified(
        &self,
        username: &str,
        stored_hash: &PasswordHash,
        password: &Secret,
    ) -> bool {
        match self.entries.get(username) {
            Some(entry) if entry.stored_hash == stored_hash.0 => {
                bool::from(entry.password_digest.ct_eq(&self.digest(password)))
            }
            _ => false,
        }
    }

    /// Records that `password` verified against `stored_hash`.
    pub fn remember(&self, username: &str, stored_hash: &PasswordHash, password: &Secret) {
        self.entries.insert(
            username.to_owned(),
            Entry {
                stored_hash: stored_hash.0.clone(),
                password_digest: self.digest(password),
            },
        );
    }

    /// Drops a user's entry (after any write to that user).
    pub fn forget(&self, username: &str) {
        self.entries.invalidate(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> CredentialCache {
        CredentialCache::new(Duration::from_secs(60), 100)
    }

    #[test]
    fn a_remembered_password_is_verified_only_against_the_same_stored_hash() {
        let cache = cache();
        let hash = PasswordHash("$argon2id$first".into());
        cache.remember("joe", &hash, &Secret::new("secret1"));
        assert!(cache.is_verified("joe", &hash, &Secret::new("secret1")));
        assert!(!cache.is_verified("joe", &hash, &Secret::new("secret2")));
        let changed = PasswordHash("$argon2id$second".into());
        assert!(!cache.is_verified("joe", &changed, &Secret::new("secret1")));
        assert!(!cache.is_verified("ann", &hash, &Secret::new("secret1")));
    }

    #[test]
    fn forgetting_a_user_drops_the_entry() {
        let cache = cache();
        let hash = PasswordHash("h".into());
        cache.remember("joe", &hash, &Secret::new("secret1"));
        cache.forget("joe");
        assert!(!cache.is_verified("joe", &hash, &Secret::new("secret1")));
    }
}
