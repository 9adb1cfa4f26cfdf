//! Storage behind one trait. The engine owns every rule; the store offers atomic primitives
//! (create-if-absent, compare-and-set on `_seq_no`) so the engine's read-modify-write cycles are
//! safe under concurrency. Every write is durable before the future resolves.

mod cache;
mod group_commit;
pub mod instrumented;
pub mod postgres;
pub mod redb;

use crate::model::{
    ApplicationPrivilegeRecord, ProfileDoc, RoleRecord, TokenRecord, UserRecord, Versioned,
};
use async_trait::async_trait;

/// A failure of the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend itself failed (I/O, lost connection): nothing can be served until it is back.
    #[error("store failure: {0}")]
    Unavailable(String),
    /// One stored record cannot be decoded. Only requests that need that record fail; the
    /// detail is logged, never sent (it may quote stored data).
    #[error("unreadable stored record: {0}")]
    Unreadable(String),
}

impl From<StoreError> for crate::error::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => crate::error::Error::StoreUnavailable(detail),
            StoreError::Unreadable(detail) => {
                tracing::error!(%detail, "a stored record cannot be read");
                crate::error::Error::IllegalState(UNREADABLE_REASON.into())
            }
        }
    }
}

/// What a client is told about a record that cannot be decoded.
pub const UNREADABLE_REASON: &str = "the stored document cannot be read";

impl ProfileChange {
    /// A feed entry from a decoding attempt: an unreadable document is logged (never its
    /// content) and passed on as `profile: None`; any other failure stops the feed.
    pub fn from_decoded(
        uid: String,
        seq_no: i64,
        decoded: Result<Versioned<ProfileDoc>, StoreError>,
    ) -> Result<Self, StoreError> {
        let profile = match decoded {
            Ok(profile) => Some(profile),
            Err(StoreError::Unreadable(error)) => {
                tracing::error!(uid, seq_no, %error, "skipping an unreadable profile document");
                None
            }
            Err(unavailable) => return Err(unavailable),
        };
        Ok(Self {
            uid,
            seq_no,
            profile,
        })
    }
}

/// See [`Store::feed_identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedIdentity {
    /// Random, made when the store was created: a replaced or recreated store has another.
    pub id: String,
    /// The `_seq_no` the next profile write will get.
    pub next_seq_no: i64,
}

/// One requested profile: found, absent, or stored but unreadable.
pub type ProfileSlot = Result<Option<Versioned<ProfileDoc>>, StoreError>;

/// One entry of the profile change feed. `profile` is `None` when the stored document cannot
/// be decoded: the feed moves past it (and the suggest index drops it) instead of stopping.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileChange {
    /// The profile's uid.
    pub uid: String,
    /// The `_seq_no` of its latest write.
    pub seq_no: i64,
    /// The document, when it can be read.
    pub profile: Option<Versioned<ProfileDoc>>,
}

/// A rule over tokens, e.g. "has expired", passed from the engine to the store.
pub type TokenPredicate = Box<dyn for<'a> Fn(&'a TokenRecord) -> bool + Send + Sync + 'static>;

/// The outcome of creating a profile.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateProfile {
    /// Written with the next sequence number.
    Created(Versioned<ProfileDoc>),
    /// A profile with the same uid exists (it may belong to another user).
    UidTaken(Versioned<ProfileDoc>),
    /// The same user (same username and realm type) already has this profile.
    UserHasProfile(Versioned<ProfileDoc>),
}

/// The outcome of a compare-and-set profile write.
// Returned once per write and matched at once, never stored: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateProfile {
    /// Written with the next sequence number.
    Updated(Versioned<ProfileDoc>),
    /// The stored document's sequence number was not the expected one. Only its version is
    /// returned: the compare needs no document decoded, and a caller that wants the winner's
    /// content reads it (conflicts are rare; every write in one process takes its profile's turn).
    Conflict {
        /// The stored document's `_seq_no`.
        seq_no: i64,
        /// The stored document's `_primary_term`.
        primary_term: i64,
    },
    /// No document has that uid.
    Missing,
}

/// Durable storage for profiles, users and roles.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one profile.
    async fn get_profile(&self, uid: &str) -> Result<Option<Versioned<ProfileDoc>>, StoreError>;

    /// Reads many profiles in one consistent snapshot, one slot per requested uid; an
    /// unreadable document fails only its own slot.
    async fn get_profiles(&self, uids: &[String]) -> Result<Vec<ProfileSlot>, StoreError>;

    /// Finds the profile of a user by username and realm type (the identity of native and
    /// reserved users).
    async fn find_profile_by_user(
        &self,
        username: &str,
        realm_type: &str,
    ) -> Result<Option<Versioned<ProfileDoc>>, StoreError>;

    /// Creates a profile unless its uid is taken or its user already has one.
    async fn create_profile(&self, doc: ProfileDoc) -> Result<CreateProfile, StoreError>;

    /// Replaces a profile if its current sequence number is `expected_seq_no`.
    async fn update_profile(
        &self,
        doc: ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<UpdateProfile, StoreError>;

    /// Profiles whose latest write has a `_seq_no` above `after_seq_no`, in `_seq_no` order, at
    /// most `limit` of them: what the suggest index follows.
    async fn profiles_changed_since(
        &self,
        after_seq_no: i64,
        limit: usize,
    ) -> Result<Vec<ProfileChange>, StoreError>;

    /// Every profile in uid order after `after_uid`, at most `limit` of them, each with the
    /// `_seq_no` of its latest write: what builds an empty suggest index in one pass over the
    /// profiles instead of a lookup per change. Only for stores with a [`Self::feed_identity`]:
    /// every profile whose latest write is below the identity's `next_seq_no` read before the
    /// first call is in the pass, later writes may be too (the feed after it replays them).
    /// `None` (the default) when the change feed is the only way.
    async fn profiles_in_uid_order(
        &self,
        _after_uid: Option<String>,
        _limit: usize,
    ) -> Result<Option<Vec<ProfileChange>>, StoreError> {
        Ok(None)
    }

    /// Marks the profile index as existing without writing a profile (idempotent).
    async fn create_profile_index(&self) -> Result<(), StoreError>;

    /// Whether any profile was ever created (Elasticsearch's "profile index exists").
    async fn profile_index_exists(&self) -> Result<bool, StoreError>;

    /// How many profiles are stored (the `userprofiles_profiles` gauge).
    async fn count_profiles(&self) -> Result<u64, StoreError>;

    /// A number that changes after every write to users, roles or tokens made through this
    /// store, when this store is their only writer: whatever was derived from them (an
    /// authenticated caller) stays exact while it is unchanged. `None` (the default) when other
    /// processes write them too (PostgreSQL replicas): then nothing derived may be reused.
    fn security_generation(&self) -> Option<u64> {
        None
    }

    /// Which change feed this store has and how far it has gone, so a suggest index kept on
    /// disk is reused only on the feed it followed and never ahead of it. `None` (the
    /// default): the index is rebuilt at every start.
    async fn feed_identity(&self) -> Result<Option<FeedIdentity>, StoreError> {
        Ok(None)
    }

    /// Reads a user.
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Lists every stored user, sorted by username.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Writes a user; true when it did not exist before.
    async fn put_user(&self, user: UserRecord) -> Result<bool, StoreError>;

    /// Creates a user only if none has that name; true when written.
    async fn create_user_if_absent(&self, user: UserRecord) -> Result<bool, StoreError>;

    /// Deletes a user; true when it existed.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;

    /// Reads a role.
    async fn get_role(&self, name: &str) -> Result<Option<RoleRecord>, StoreError>;

    /// Lists every stored role, sorted by name.
    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError>;

    /// Writes a role; true when it did not exist before.
    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError>;

    /// Deletes a role; true when it existed.
    async fn delete_role(&self, name: &str) -> Result<bool, StoreError>;

    /// Creates or replaces application privileges in one durable write; for each, true when it
    /// did not exist before.
    async fn put_application_privileges(
        &self,
        privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<bool>, StoreError>;

    /// Every stored application privilege, sorted by application, then name.
    async fn list_application_privileges(
        &self,
    ) -> Result<Vec<ApplicationPrivilegeRecord>, StoreError>;

    /// Deletes the named privileges of `application`; for each name, true when it existed.
    async fn delete_application_privileges(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<bool>, StoreError>;

    /// Stores a new token.
    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError>;

    /// Reads a token by the digest of its access token.
    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Reads a token by the digest of its refresh token.
    async fn get_token_by_refresh(
        &self,
        refresh_digest: &str,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Replaces a token if its stored version is `expected_version` (the new record's version
    /// is written as `expected_version + 1`); false on a lost race or a missing token.
    async fn update_token(
        &self,
        token: TokenRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError>;

    /// Lists every stored token.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Deletes tokens for which `expired(token)` holds; returns how many.
    async fn delete_tokens_where(&self, expired: TokenPredicate) -> Result<u64, StoreError>;

    /// Checks that the backend answers (for health reporting). Embedded stores always do.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
