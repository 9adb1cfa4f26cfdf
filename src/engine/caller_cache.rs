//! Authenticated callers remembered by their credentials, so a repeated request skips the user,
//! token and role reads and the credential check.
//!
//! Used only when the store says it is the only writer of users, roles and tokens
//! ([`Store::security_generation`](crate::store::Store::security_generation) is `Some`). Each
//! entry keeps the generation read *before* its caller was authenticated; any committed write
//! to users, roles or tokens changes the generation, so an entry is used only if nothing that
//! could change its answer was written since — a password change, a disabled or deleted user,
//! a role edit and a token invalidation are all seen by the very next request. Entries also
//! end when their password check would (Elasticsearch's 20-minute realm cache) or when their
//! bearer token expires.

use super::Caller;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Clone)]
struct Entry {
    caller: Arc<Caller>,
    generation: u64,
    expires_millis: i64,
}

/// What a caller was authenticated from: a keyed digest of its credentials (never the
/// credentials themselves).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CredentialKey([u8; 32]);

pub(super) struct CallerCache {
    entries: Cache<CredentialKey, Entry>,
    /// A per-process random key, so digests in memory cannot be looked up in precomputed tables.
    key: [u8; 32],
}

impl CallerCache {
    pub(super) fn new(max_callers: usize) -> Self {
        Self {
            entries: Cache::new(max_callers),
            key: rand::random(),
        }
    }

    /// The key of a raw `Authorization` header value: the same credentials, known before
    /// parsing them (a repeated request then skips decoding the header too).
    pub(super) fn key(&self, header: &[u8]) -> CredentialKey {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(header);
        CredentialKey(hasher.finalize().into())
    }

    /// The caller remembered for `key`, if nothing was written since and it has not expired.
    pub(super) fn get(
        &self,
        key: &CredentialKey,
        generation: u64,
        now_millis: i64,
    ) -> Option<Arc<Caller>> {
        let entry = self.entries.get(key)?;
        if entry.generation == generation && now_millis < entry.expires_millis {
            return Some(entry.caller);
        }
        self.entries.remove(key);
        None
    }

    /// Remembers `caller`, authenticated after `generation` was read, until `expires_millis`.
    pub(super) fn insert(
        &self,
        key: CredentialKey,
        caller: Arc<Caller>,
        generation: u64,
        expires_millis: i64,
    ) {
        self.entries.insert(
            key,
            Entry {
                caller,
                generation,
                expires_millis,
            },
        );
    }
}
