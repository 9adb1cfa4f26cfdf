//! The embedded default store: one redb file under the data directory.
//!
//! redb gives ACID transactions with a single writer, which is what makes the store's
//! primitives atomic: a write transaction reads, checks and writes without interleaving, and
//! `commit` with `Durability::Immediate` (redb's default) returns only once the data is on disk.
//! redb is synchronous: writes run on one writer thread that commits them in groups (see
//! `group_commit.rs`), scans on tokio's blocking pool; point reads run on the calling task (see
//! `INLINE_DECODE_BYTES`).
//!
//! Longer than the ~400-line guide on purpose: it is one `Store` implementation, every method a
//! transaction over the same tables, and reading them side by side is how the invariants
//! between those tables (profiles, by-user, by-seq) are checked. Its last ~150 lines are
//! tests of the file-format migration and the large-record read path.

use super::cache::RecordCache;
use super::group_commit::GroupCommitter;
use super::{
    CreateProfile, FeedIdentity, ProfileChange, ProfileSlot, Store, StoreError, TokenPredicate,
    UpdateProfile,
};
use crate::model::{
    ApplicationPrivilegeRecord, ProfileDoc, RoleRecord, TokenRecord, UserRecord, Versioned,
};
use async_trait::async_trait;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// uid -> JSON of `Versioned<ProfileDoc>`.
const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
/// "<realm type>\0<username>" -> uid: the activation lookup.
const PROFILES_BY_USER: TableDefinition<&str, &str> = TableDefinition::new("profiles_by_user");
/// `_seq_no` of a profile's latest write -> uid: the change feed the suggest index follows.
const PROFILES_BY_SEQ: TableDefinition<i64, &str> = TableDefinition::new("profiles_by_seq");
/// username -> JSON of `UserRecord`.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// role name -> JSON of `RoleRecord`.
const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");
/// access-token digest -> JSON of `TokenRecord`.
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// refresh-token digest -> access-token digest.
const TOKENS_BY_REFRESH: TableDefinition<&str, &str> = TableDefinition::new("tokens_by_refresh");
/// Counters and flags.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Application privileges by `application \0 name`.
const APPLICATION_PRIVILEGES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("application_privileges");

/// A random number made with the file: names this store's change feed (see
/// [`Store::feed_identity`]).
const STORE_ID: &str = "store_id";

/// The next profile sequence number to hand out; absent until the first profile is written,
/// which doubles as Elasticsearch's "profile index exists".
const NEXT_SEQ_NO: &str = "profile_next_seq_no";

/// Profile values start with this byte and their `_seq_no` (8 bytes, big-endian) before the
/// JSON, so compare-and-set reads the version without decoding the document. JSON never starts
/// with 0xFF (not even valid UTF-8), so values written before the header (plain JSON) are told
/// apart and still read; each is given the header at its next write.
const VERSION_HEADER: u8 = 0xFF;
const VERSION_HEADER_LEN: usize = 9;

/// Profiles are written with primary term 1: there is a single, never-failing-over "primary".
const PRIMARY_TERM: i64 = 1;

/// The redb-backed [`Store`].
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    /// Every write goes through here: one writer thread, one fsync per group of writes.
    writer: Arc<GroupCommitter>,
    /// Users, roles and tokens are read on every authenticated request. This process is the
    /// file's only writer (redb locks it), so caches invalidated by our own writes are exact.
    users: Arc<RecordCache<UserRecord>>,
    roles: Arc<RecordCache<RoleRecord>>,
    tokens: Arc<RecordCache<TokenRecord>>,
    /// Decoded profiles: a get by uid is the hottest read, and decoding its JSON cost more
    /// than the rest of the store read. Invalidated after every profile write commits.
    profiles: Arc<RecordCache<Versioned<ProfileDoc>>>,
    /// Bumped after every committed write to users, roles or tokens (see
    /// [`Store::security_generation`]).
    security_writes: Arc<AtomicU64>,
}

/// redb's page cache. Its default (1 GiB) would end up holding the whole file once start-up
/// has read every profile into the suggest index; past this, reads come from the operating
/// system's page cache, which the kernel can reclaim.
const REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// How much decoded users, roles and tokens each cache may hold (by encoded size).
const RECORD_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How much decoded profiles the profile cache may hold (by encoded size; at about 1 KiB a
/// profile, the 30,000 most recently read).
const PROFILE_CACHE_BYTES: u64 = 32 * 1024 * 1024;

fn fail(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(fail)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let json = match bytes.first() {
        Some(&VERSION_HEADER) => bytes.get(VERSION_HEADER_LEN..).unwrap_or_default(),
        _ => bytes,
    };
    crate::limits::decode_stored(json).map_err(StoreError::Unreadable)
}

/// A profile value: the version header, then the JSON.
fn encode_profile(profile: &Versioned<ProfileDoc>) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(256);
    bytes.push(VERSION_HEADER);
    bytes.extend_from_slice(&profile.seq_no.to_be_bytes());
    serde_json::to_writer(&mut bytes, profile).map_err(fail)?;
    Ok(bytes)
}

/// Most profiles one `profiles_in_uid_order` reserves room for up front.
const CHANGE_BATCH_CAPACITY: usize = 10_000;

/// The `_seq_no` of a stored profile value, from its header (or, for a value written before
/// headers existed, from its JSON).
fn stored_seq_no(bytes: &[u8]) -> Result<i64, StoreError> {
    match bytes.get(..VERSION_HEADER_LEN) {
        Some([VERSION_HEADER, version @ ..]) => {
            let version: [u8; 8] = version.try_into().map_err(fail)?;
            Ok(i64::from_be_bytes(version))
        }
        _ => Ok(decode::<Versioned<ProfileDoc>>(bytes)?.seq_no),
    }
}

/// Records up to this size (all of them together, for a multi-get) are decoded on the calling
/// task; larger ones on the blocking pool. Point reads themselves run on the calling task:
/// redb reads are lock-free snapshots served from its page cache, a few microseconds, while a
/// hop to the blocking pool costs two thread switches (the largest cost on the read path).
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Decodes raw records on the blocking pool, one slot each.
async fn decode_off_worker<T: DeserializeOwned + Send + 'static>(
    raw: Vec<Option<Vec<u8>>>,
) -> Result<Vec<Option<Result<T, StoreError>>>, StoreError> {
    tokio::task::spawn_blocking(move || {
        raw.into_iter()
            .map(|bytes| bytes.map(|bytes| decode(&bytes)))
            .collect()
    })
    .await
    .map_err(fail)
}

fn privilege_key(application: &str, name: &str) -> String {
    format!("{application}\0{name}")
}

fn user_key(username: &str, realm_type: &str) -> String {
    format!("{realm_type}\0{username}")
}

impl RedbStore {
    /// Opens (or creates) `profiles.redb` inside `data_dir`, creating the directory if needed.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let db = Database::builder()
            .set_cache_size(REDB_CACHE_BYTES)
            .create(data_dir.join("profiles.redb"))
            .map_err(fail)?;
        // Create every table up front so readers never meet a missing table.
        let tx = db.begin_write().map_err(fail)?;
        tx.open_table(PROFILES).map_err(fail)?;
        tx.open_table(PROFILES_BY_USER).map_err(fail)?;
        tx.open_table(PROFILES_BY_SEQ).map_err(fail)?;
        tx.open_table(USERS).map_err(fail)?;
        tx.open_table(ROLES).map_err(fail)?;
        tx.open_table(META).map_err(fail)?;
        tx.open_table(TOKENS).map_err(fail)?;
        tx.open_table(TOKENS_BY_REFRESH).map_err(fail)?;
        tx.open_table(APPLICATION_PRIVILEGES).map_err(fail)?;
        {
            let mut meta = tx.open_table(META).map_err(fail)?;
            if meta.get(STORE_ID).map_err(fail)?.is_none() {
                meta.insert(STORE_ID, rand::random::<i64>()).map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        let db = Arc::new(db);
        Ok(Self {
            writer: Arc::new(GroupCommitter::start(Arc::clone(&db))?),
            db,
            users: Arc::new(RecordCache::new(RECORD_CACHE_BYTES)),
            roles: Arc::new(RecordCache::new(RECORD_CACHE_BYTES)),
            tokens: Arc::new(RecordCache::new(RECORD_CACHE_BYTES)),
            profiles: Arc::new(RecordCache::new(PROFILE_CACHE_BYTES)),
            security_writes: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(fail)?
    }

    /// A point read on the calling task: looks `key` up in `index` (when given) to find the
    /// record's key in `table`, then reads and decodes the record. Also returns its encoded size.
    async fn read_record<T: DeserializeOwned + Send + 'static>(
        &self,
        index: Option<TableDefinition<'static, &str, &str>>,
        table: TableDefinition<'static, &str, &[u8]>,
        key: &str,
    ) -> Result<(Option<T>, usize), StoreError> {
        let raw = {
            let tx = self.db.begin_read().map_err(fail)?;
            let record_key = match index {
                None => key.to_owned(),
                Some(index) => {
                    let index = tx.open_table(index).map_err(fail)?;
                    match index.get(key).map_err(fail)? {
                        Some(found) => found.value().to_owned(),
                        None => return Ok((None, 0)),
                    }
                }
            };
            let table = tx.open_table(table).map_err(fail)?;
            let Some(value) = table.get(record_key.as_str()).map_err(fail)? else {
                return Ok((None, 0));
            };
            let bytes = value.value();
            if bytes.len() <= INLINE_DECODE_BYTES {
                return Ok((Some(decode(bytes)?), bytes.len()));
            }
            bytes.to_vec()
        };
        let len = raw.len();
        let decoded = decode_off_worker(vec![Some(raw)]).await?.pop().flatten();
        Ok((decoded.transpose()?, len))
    }

    /// Writes a record (unless `only_if_absent` and it exists), then drops its cached copy; also
    /// after a failed commit, since whether it reached the file is not known.
    async fn write_cached<T: Clone + Send + Sync + 'static>(
        &self,
        cache: &RecordCache<T>,
        table: TableDefinition<'static, &str, &[u8]>,
        key: String,
        bytes: Vec<u8>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let written = self
            .writer
            .write({
                let key = key.clone();
                move |tx| Self::put_record(tx, table, &key, &bytes, only_if_absent)
            })
            .await;
        cache.invalidate(&key);
        self.security_written();
        written
    }

    /// Deletes a record, then drops its cached copy (whatever the outcome, as above).
    async fn delete_cached<T: Clone + Send + Sync + 'static>(
        &self,
        cache: &RecordCache<T>,
        table: TableDefinition<'static, &str, &[u8]>,
        key: &str,
    ) -> Result<bool, StoreError> {
        let owned = key.to_owned();
        let deleted = self
            .writer
            .write(move |tx| Self::delete_record(tx, table, &owned))
            .await;
        cache.invalidate(key);
        self.security_written();
        deleted
    }

    /// Called after a write to users, roles or tokens commits (or fails: its outcome is then
    /// unknown), before it is answered.
    fn security_written(&self) {
        self.security_writes.fetch_add(1, Ordering::AcqRel);
    }

    /// [`Self::read_record`] through `cache`.
    async fn cached_read<T: DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        cache: &RecordCache<T>,
        table: TableDefinition<'static, &str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        if let Some(hit) = cache.get(key) {
            return Ok(hit);
        }
        let ticket = cache.ticket();
        let (value, len) = self.read_record(None, table, key).await?;
        cache.fill(key, value.clone(), len, ticket);
        Ok(value)
    }

    fn list_records<T: DeserializeOwned>(
        db: &Database,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let tx = db.begin_read().map_err(fail)?;
        let table = tx.open_table(table).map_err(fail)?;
        let mut out = Vec::new();
        for entry in table.range::<&str>(..).map_err(fail)? {
            let (_, value) = entry.map_err(fail)?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    }

    fn put_record(
        tx: &WriteTransaction,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        bytes: &[u8],
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let mut table = tx.open_table(table).map_err(fail)?;
        let existed = table.get(key).map_err(fail)?.is_some();
        if !(existed && only_if_absent) {
            table.insert(key, bytes).map_err(fail)?;
        }
        Ok(!existed)
    }

    fn delete_record(
        tx: &WriteTransaction,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<bool, StoreError> {
        let mut table = tx.open_table(table).map_err(fail)?;
        let removed = table.remove(key).map_err(fail)?;
        Ok(removed.is_some())
    }

    /// Writes `doc` as the profile's next version: takes a `_seq_no`, stores the document, and
    /// moves its change-feed entry from the version it replaces (if any) to the new one.
    fn write_version(
        tx: &WriteTransaction,
        profiles: &mut redb::Table<&str, &[u8]>,
        doc: &ProfileDoc,
        replaces_seq_no: Option<i64>,
    ) -> Result<Versioned<ProfileDoc>, StoreError> {
        let stored = Versioned {
            doc: doc.clone(),
            seq_no: Self::next_seq_no(tx)?,
            primary_term: PRIMARY_TERM,
        };
        let uid = stored.doc.uid.as_str();
        profiles
            .insert(uid, encode_profile(&stored)?.as_slice())
            .map_err(fail)?;
        let mut feed = tx.open_table(PROFILES_BY_SEQ).map_err(fail)?;
        if let Some(replaced) = replaces_seq_no {
            feed.remove(replaced).map_err(fail)?;
        }
        feed.insert(stored.seq_no, uid).map_err(fail)?;
        Ok(stored)
    }

    /// Takes the next sequence number inside the caller's write transaction.
    fn next_seq_no(tx: &redb::WriteTransaction) -> Result<i64, StoreError> {
        let mut meta = tx.open_table(META).map_err(fail)?;
        let next = meta
            .get(NEXT_SEQ_NO)
            .map_err(fail)?
            .map(|v| v.value())
            .unwrap_or(0);
        meta.insert(NEXT_SEQ_NO, next + 1).map_err(fail)?;
        Ok(next)
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn get_profile(&self, uid: &str) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        self.cached_read(&self.profiles, PROFILES, uid).await
    }

    async fn get_profiles(&self, uids: &[String]) -> Result<Vec<ProfileSlot>, StoreError> {
        let mut slots: Vec<Option<ProfileSlot>> = uids
            .iter()
            .map(|uid| self.profiles.get(uid).map(Ok))
            .collect();
        if slots.iter().all(Option::is_some) {
            return Ok(slots.into_iter().flatten().collect());
        }
        // The misses, from one snapshot; decoded here unless together they are large.
        let ticket = self.profiles.ticket();
        let misses: Vec<usize> = (0..uids.len()).filter(|&i| slots[i].is_none()).collect();
        let (raw, total) = {
            let tx = self.db.begin_read().map_err(fail)?;
            let table = tx.open_table(PROFILES).map_err(fail)?;
            let mut raw = Vec::with_capacity(misses.len());
            let mut total = 0;
            for &i in &misses {
                let value = table.get(uids[i].as_str()).map_err(fail)?;
                let bytes = value.map(|v| v.value().to_vec());
                total += bytes.as_ref().map_or(0, Vec::len);
                raw.push(bytes);
            }
            (raw, total)
        };
        let lengths: Vec<usize> = raw.iter().map(|b| b.as_ref().map_or(0, Vec::len)).collect();
        let decoded: Vec<Option<Result<Versioned<ProfileDoc>, StoreError>>> =
            if total <= INLINE_DECODE_BYTES {
                raw.into_iter()
                    .map(|bytes| bytes.map(|b| decode(&b)))
                    .collect()
            } else {
                decode_off_worker(raw).await?
            };
        for ((i, value), len) in misses.into_iter().zip(decoded).zip(lengths) {
            let slot = value.transpose();
            if let Ok(found) = &slot {
                self.profiles.fill(&uids[i], found.clone(), len, ticket);
            }
            slots[i] = Some(slot);
        }
        Ok(slots.into_iter().flatten().collect())
    }

    async fn find_profile_by_user(
        &self,
        username: &str,
        realm_type: &str,
    ) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        let key = user_key(username, realm_type);
        Ok(self
            .read_record(Some(PROFILES_BY_USER), PROFILES, &key)
            .await?
            .0)
    }

    async fn create_profile(&self, doc: ProfileDoc) -> Result<CreateProfile, StoreError> {
        let key = user_key(&doc.user.username, &doc.user.realm.realm_type);
        let uid = doc.uid.clone();
        let created = self
            .writer
            .write(move |tx| {
                let mut profiles = tx.open_table(PROFILES).map_err(fail)?;
                let mut index = tx.open_table(PROFILES_BY_USER).map_err(fail)?;
                let owner_uid = index
                    .get(key.as_str())
                    .map_err(fail)?
                    .map(|v| v.value().to_owned());
                let owned_by_user: Option<Versioned<ProfileDoc>> = match owner_uid {
                    Some(uid) => profiles
                        .get(uid.as_str())
                        .map_err(fail)?
                        .map(|v| decode(v.value()))
                        .transpose()?,
                    None => None,
                };
                if let Some(existing) = owned_by_user {
                    return Ok(CreateProfile::UserHasProfile(existing));
                }
                let same_uid: Option<Versioned<ProfileDoc>> = profiles
                    .get(doc.uid.as_str())
                    .map_err(fail)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                if let Some(existing) = same_uid {
                    return Ok(CreateProfile::UidTaken(existing));
                }
                let stored = Self::write_version(tx, &mut profiles, &doc, None)?;
                index.insert(key.as_str(), doc.uid.as_str()).map_err(fail)?;
                Ok(CreateProfile::Created(stored))
            })
            .await;
        // After the commit (or a failed one, whose outcome is unknown), before the answer.
        self.profiles.invalidate(&uid);
        created
    }

    async fn update_profile(
        &self,
        doc: ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<UpdateProfile, StoreError> {
        let uid = doc.uid.clone();
        let updated = self
            .writer
            .write(move |tx| {
                let mut profiles = tx.open_table(PROFILES).map_err(fail)?;
                let current = profiles
                    .get(doc.uid.as_str())
                    .map_err(fail)?
                    .map(|v| stored_seq_no(v.value()))
                    .transpose()?;
                let current = match current {
                    None => return Ok(UpdateProfile::Missing),
                    Some(current) if current != expected_seq_no => {
                        return Ok(UpdateProfile::Conflict {
                            seq_no: current,
                            primary_term: PRIMARY_TERM,
                        })
                    }
                    Some(current) => current,
                };
                let stored = Self::write_version(tx, &mut profiles, &doc, Some(current))?;
                Ok(UpdateProfile::Updated(stored))
            })
            .await;
        self.profiles.invalidate(&uid);
        updated
    }

    async fn profiles_changed_since(
        &self,
        after_seq_no: i64,
        limit: usize,
    ) -> Result<Vec<ProfileChange>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(fail)?;
            let feed = tx.open_table(PROFILES_BY_SEQ).map_err(fail)?;
            let profiles = tx.open_table(PROFILES).map_err(fail)?;
            let mut out = Vec::new();
            for entry in feed.range((after_seq_no + 1)..).map_err(fail)?.take(limit) {
                let (seq_no, uid) = entry.map_err(fail)?;
                if let Some(bytes) = profiles.get(uid.value()).map_err(fail)? {
                    out.push(ProfileChange::from_decoded(
                        uid.value().to_owned(),
                        seq_no.value(),
                        decode(bytes.value()),
                    )?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn profiles_in_uid_order(
        &self,
        after_uid: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<ProfileChange>>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(fail)?;
            let profiles = tx.open_table(PROFILES).map_err(fail)?;
            let after = match &after_uid {
                Some(uid) => std::ops::Bound::Excluded(uid.as_str()),
                None => std::ops::Bound::Unbounded,
            };
            let range = profiles
                .range::<&str>((after, std::ops::Bound::Unbounded))
                .map_err(fail)?;
            let mut out = Vec::with_capacity(limit.min(CHANGE_BATCH_CAPACITY));
            for entry in range.take(limit) {
                let (uid, bytes) = entry.map_err(fail)?;
                let bytes = bytes.value();
                // An unreadable document is reported as such (and left out of the index).
                let seq_no = stored_seq_no(bytes).unwrap_or(-1);
                out.push(ProfileChange::from_decoded(
                    uid.value().to_owned(),
                    seq_no,
                    decode(bytes),
                )?);
            }
            Ok(Some(out))
        })
        .await
    }

    async fn create_profile_index(&self) -> Result<(), StoreError> {
        self.writer
            .write(|tx| {
                let mut meta = tx.open_table(META).map_err(fail)?;
                if meta.get(NEXT_SEQ_NO).map_err(fail)?.is_none() {
                    meta.insert(NEXT_SEQ_NO, 0).map_err(fail)?;
                }
                Ok(())
            })
            .await
    }

    async fn profile_index_exists(&self) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(fail)?;
        let meta = tx.open_table(META).map_err(fail)?;
        Ok(meta.get(NEXT_SEQ_NO).map_err(fail)?.is_some())
    }

    async fn count_profiles(&self) -> Result<u64, StoreError> {
        // redb keeps each table's length in its header: no scan.
        let tx = self.db.begin_read().map_err(fail)?;
        let profiles = tx.open_table(PROFILES).map_err(fail)?;
        profiles.len().map_err(fail)
    }

    fn security_generation(&self) -> Option<u64> {
        Some(self.security_writes.load(Ordering::Acquire))
    }

    async fn feed_identity(&self) -> Result<Option<FeedIdentity>, StoreError> {
        let tx = self.db.begin_read().map_err(fail)?;
        let meta = tx.open_table(META).map_err(fail)?;
        let read = |key: &str| -> Result<Option<i64>, StoreError> {
            Ok(meta.get(key).map_err(fail)?.map(|v| v.value()))
        };
        let Some(id) = read(STORE_ID)? else {
            return Ok(None);
        };
        Ok(Some(FeedIdentity {
            id: format!("redb-{id:016x}"),
            next_seq_no: read(NEXT_SEQ_NO)?.unwrap_or(0),
        }))
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.cached_read(&self.users, USERS, username).await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.blocking(|db| Self::list_records(db, USERS)).await
    }

    async fn put_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        let bytes = encode(&user)?;
        self.write_cached(&self.users, USERS, user.username, bytes, false)
            .await
    }

    async fn create_user_if_absent(&self, user: UserRecord) -> Result<bool, StoreError> {
        let bytes = encode(&user)?;
        self.write_cached(&self.users, USERS, user.username, bytes, true)
            .await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        self.delete_cached(&self.users, USERS, username).await
    }

    async fn get_role(&self, name: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.cached_read(&self.roles, ROLES, name).await
    }

    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.blocking(|db| Self::list_records(db, ROLES)).await
    }

    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        let bytes = encode(&role)?;
        self.write_cached(&self.roles, ROLES, role.name, bytes, false)
            .await
    }

    async fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_cached(&self.roles, ROLES, name).await
    }

    async fn put_application_privileges(
        &self,
        privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<bool>, StoreError> {
        let encoded = privileges
            .iter()
            .map(|p| Ok((privilege_key(&p.application, &p.name), encode(p)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.writer
            .write(move |tx| {
                let mut table = tx.open_table(APPLICATION_PRIVILEGES).map_err(fail)?;
                let mut created = Vec::with_capacity(encoded.len());
                for (key, bytes) in &encoded {
                    let previous = table.insert(key.as_str(), bytes.as_slice()).map_err(fail)?;
                    created.push(previous.is_none());
                }
                Ok(created)
            })
            .await
    }

    async fn list_application_privileges(
        &self,
    ) -> Result<Vec<ApplicationPrivilegeRecord>, StoreError> {
        // Keys sort by application, then name: the order wanted.
        self.blocking(|db| Self::list_records(db, APPLICATION_PRIVILEGES))
            .await
    }

    async fn delete_application_privileges(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        let keys: Vec<String> = names
            .iter()
            .map(|name| privilege_key(application, name))
            .collect();
        self.writer
            .write(move |tx| {
                let mut table = tx.open_table(APPLICATION_PRIVILEGES).map_err(fail)?;
                let mut found = Vec::with_capacity(keys.len());
                for key in &keys {
                    found.push(table.remove(key.as_str()).map_err(fail)?.is_some());
                }
                Ok(found)
            })
            .await
    }

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        let bytes = encode(&token)?;
        let id = token.id.clone();
        let written = self
            .writer
            .write(move |tx| {
                let mut tokens = tx.open_table(TOKENS).map_err(fail)?;
                tokens
                    .insert(token.id.as_str(), bytes.as_slice())
                    .map_err(fail)?;
                if let Some(refresh) = &token.refresh_digest {
                    let mut index = tx.open_table(TOKENS_BY_REFRESH).map_err(fail)?;
                    index
                        .insert(refresh.as_str(), token.id.as_str())
                        .map_err(fail)?;
                }
                Ok(())
            })
            .await;
        self.tokens.invalidate(&id);
        self.security_written();
        written
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.cached_read(&self.tokens, TOKENS, id).await
    }

    async fn get_token_by_refresh(
        &self,
        refresh_digest: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .read_record(Some(TOKENS_BY_REFRESH), TOKENS, refresh_digest)
            .await?
            .0)
    }

    async fn update_token(
        &self,
        token: TokenRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        let id = token.id.clone();
        let written = self
            .writer
            .write(move |tx| {
                let mut tokens = tx.open_table(TOKENS).map_err(fail)?;
                let current: Option<TokenRecord> = tokens
                    .get(token.id.as_str())
                    .map_err(fail)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                if current.is_none_or(|current| current.version != expected_version) {
                    return Ok(false);
                }
                let next = TokenRecord {
                    version: expected_version + 1,
                    ..token.clone()
                };
                tokens
                    .insert(next.id.as_str(), encode(&next)?.as_slice())
                    .map_err(fail)?;
                Ok(true)
            })
            .await;
        self.tokens.invalidate(&id);
        self.security_written();
        written
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.blocking(|db| Self::list_records(db, TOKENS)).await
    }

    async fn delete_tokens_where(&self, expired: TokenPredicate) -> Result<u64, StoreError> {
        let removed = self
            .writer
            .write(move |tx| {
                let mut tokens = tx.open_table(TOKENS).map_err(fail)?;
                let mut index = tx.open_table(TOKENS_BY_REFRESH).map_err(fail)?;
                let mut doomed: Vec<TokenRecord> = Vec::new();
                for entry in tokens.range::<&str>(..).map_err(fail)? {
                    let (_, value) = entry.map_err(fail)?;
                    let token: TokenRecord = decode(value.value())?;
                    if expired(&token) {
                        doomed.push(token);
                    }
                }
                for token in &doomed {
                    tokens.remove(token.id.as_str()).map_err(fail)?;
                    if let Some(refresh) = &token.refresh_digest {
                        index.remove(refresh.as_str()).map_err(fail)?;
                    }
                }
                Ok(doomed.len() as u64)
            })
            .await;
        self.tokens.clear();
        self.security_written();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProfileUser, RealmRef};

    fn doc(uid: &str) -> ProfileDoc {
        ProfileDoc {
            uid: uid.into(),
            enabled: true,
            last_synchronized: 1,
            user: ProfileUser {
                username: uid.into(),
                roles: vec![],
                realm: RealmRef::native(),
                email: None,
                full_name: None,
            },
            labels: Default::default(),
            application_data: Default::default(),
        }
    }

    /// A profile value written before the version header (plain JSON) still reads, takes part
    /// in compare-and-set, and gets the header at its next write.
    #[tokio::test]
    async fn values_without_the_version_header_still_read_and_compare() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let CreateProfile::Created(a) = store.create_profile(doc("u_a")).await.unwrap() else {
            panic!("create must succeed");
        };
        // Rewrite the value in the old layout.
        let tx = store.db.begin_write().unwrap();
        tx.open_table(PROFILES)
            .unwrap()
            .insert("u_a", encode(&a).unwrap().as_slice())
            .unwrap();
        tx.commit().unwrap();

        assert_eq!(store.get_profile("u_a").await.unwrap(), Some(a.clone()));
        assert_eq!(
            store
                .update_profile(doc("u_a"), a.seq_no + 5)
                .await
                .unwrap(),
            UpdateProfile::Conflict {
                seq_no: a.seq_no,
                primary_term: 1
            }
        );
        let UpdateProfile::Updated(b) = store.update_profile(doc("u_a"), a.seq_no).await.unwrap()
        else {
            panic!("update with the current seq_no must succeed");
        };
        let tx = store.db.begin_read().unwrap();
        let raw = tx
            .open_table(PROFILES)
            .unwrap()
            .get("u_a")
            .unwrap()
            .unwrap();
        assert_eq!(raw.value()[0], VERSION_HEADER);
        assert_eq!(stored_seq_no(raw.value()).unwrap(), b.seq_no);
    }

    /// Records over the inline-decode size take the blocking-pool path and read back the same.
    #[tokio::test]
    async fn large_records_read_back_through_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let mut big = doc("u_big");
        big.application_data
            .insert("app".into(), "x".repeat(2 * INLINE_DECODE_BYTES).into());
        let CreateProfile::Created(stored) = store.create_profile(big).await.unwrap() else {
            panic!("create must succeed");
        };
        store.create_profile(doc("u_small")).await.unwrap();
        assert_eq!(
            store.get_profile("u_big").await.unwrap(),
            Some(stored.clone())
        );
        let slots = store
            .get_profiles(&["u_small".into(), "u_big".into(), "u_none".into()])
            .await
            .unwrap();
        assert_eq!(
            slots[0].as_ref().unwrap().as_ref().unwrap().doc.uid,
            "u_small"
        );
        assert_eq!(slots[1].as_ref().unwrap().as_ref(), Some(&stored));
        assert_eq!(slots[2].as_ref().unwrap(), &None);
    }
}
