//! The suggest index: an in-memory tantivy index of the enabled-profile fields suggest matches
//! on, following the store's profile changes in `_seq_no` order.
//!
//! The store stays the source of truth: the index holds only what matching and ranking need,
//! and only for enabled profiles (uid, name tokens and their prefixes, label pairs,
//! `last_synchronized`); hits are read back from the store. It is rebuilt from the store at
//! start and follows its change feed: soon after each write of this process (and before the
//! next query, so a write is visible to the next suggest), and every half second for changes
//! made by other replicas on a shared store.
//!
//! `analysis` turns text into terms, `ranking` matches and orders a query's profiles; this
//! module owns the schema, the documents and the follower.

mod analysis;
mod ranking;

pub use analysis::clause_count;
use analysis::{email_tokens, label_pairs, words};

use crate::error::Error;
use crate::model::ProfileDoc;
use crate::store::{ProfileChange, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING,
};
use tantivy::tokenizer::WhitespaceTokenizer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Name of the tokenizer of the name fields: their words, space-separated.
const WORDS_TOKENIZER: &str = "words";

/// How many store changes one catch-up step reads.
const CHANGE_BATCH: usize = 5_000;
/// Indexing memory for the single writer thread.
const WRITER_MEMORY_BYTES: usize = 20_000_000;
#[derive(Clone, Copy)]
struct Fields {
    /// The uid, as a column hits read back.
    uid: Field,
    /// The term a profile's document is found by (to replace it, or for a uid hint): the
    /// first 16 bytes of the uid's SHA-256. A uid itself is 47 characters, 43 of them
    /// effectively random, and the term dictionary is a finite-state transducer whose cost
    /// grows with what its keys do not share: indexing the uids as terms took a quarter of
    /// building the index at start. 128 bits keep two uids from sharing a key, even ones chosen
    /// to (a collision takes ~2^64 tries).
    uid_key: Field,
    username: Field,
    full_name: Field,
    email: Field,
    /// Every prefix (up to [`MAX_PREFIX_CHARS`]) of the username and full-name tokens, as
    /// Elasticsearch's `search_as_you_type` `_index_prefix` subfields: the last word of a
    /// suggest is then one term lookup, not a walk over every term it prefixes (thousands
    /// for a common first name among 100 000 usernames). The email is a plain `text` field
    /// in Elasticsearch's profile mapping, without prefixes: its last word walks the terms,
    /// and its tokens (runs of letters, of digits) share prefixes far less. Its prefixes
    /// were half of what building the index at start indexed.
    username_prefix: Field,
    full_name_prefix: Field,
    labels: Field,
    last_synchronized: Field,
}

impl Fields {
    /// Each name field with its prefixes field if it has one, in the order ranking counts
    /// them.
    fn name_fields(&self) -> [(Field, Option<Field>); 3] {
        [
            (self.username, Some(self.username_prefix)),
            (self.full_name, Some(self.full_name_prefix)),
            (self.email, None),
        ]
    }
}

/// What suggest asks the index.
#[derive(Debug, Clone, Default)]
pub struct SuggestQuery {
    /// Free text: any word may match username, full name or email; the last word is a prefix.
    pub name: String,
    /// How many uids to return.
    pub size: usize,
    /// Uids to boost.
    pub hint_uids: Vec<String>,
    /// A label path and values to boost.
    pub hint_labels: Option<(String, Vec<String>)>,
}

/// The tantivy index behind suggest.
pub struct SuggestIndex {
    reader: IndexReader,
    /// The index's one writer; `None` only while it is being replaced (see
    /// [`Self::settle_after_build`]) or when reopening it failed (the next use retries).
    writer: Mutex<Option<IndexWriter>>,
    index: Index,
    fields: Fields,
    /// The highest `_seq_no` applied to the index (-1 before any).
    indexed_through: AtomicI64,
    /// Serialises catch-ups so changes are applied once and in order.
    catching_up: tokio::sync::Mutex<()>,
    /// The highest `_seq_no` of a profile write this process has had acknowledged: a query
    /// needs no store trip once the index has reached it.
    acknowledged: AtomicI64,
    /// Wakes the background follower after a write.
    wake: tokio::sync::Notify,
    /// Whether a catch-up has succeeded (what was in the store before this process wrote
    /// anything is in the index).
    started: std::sync::atomic::AtomicBool,
    /// Set when the index lives on disk: what its last commit says it holds, to be checked
    /// against the store by the first catch-up.
    on_disk: Option<OnDisk>,
}

/// Batches of changes on their way into the writer. Reading the next batch from the store and
/// indexing this one run side by side (a blocking thread turns changes into documents while the
/// store reads), in order: a batch is handed over only after the one before it is in.
#[derive(Default)]
struct Adding {
    indexing: Option<tokio::task::JoinHandle<Result<(), Error>>>,
    /// Whether anything was handed over.
    any: bool,
}

impl Adding {
    async fn hand_over(
        &mut self,
        index: &Arc<SuggestIndex>,
        changes: Vec<ProfileChange>,
        replace: Vec<bool>,
    ) -> Result<(), Error> {
        self.finish().await?;
        let index = Arc::clone(index);
        self.indexing = Some(tokio::task::spawn_blocking(move || {
            index.add(&changes, &replace)
        }));
        self.any = true;
        Ok(())
    }

    /// Waits until every batch handed over is in the writer.
    async fn finish(&mut self) -> Result<(), Error> {
        match self.indexing.take() {
            Some(task) => task.await.map_err(search_error)?,
            None => Ok(()),
        }
    }
}

/// What a commit of an on-disk index records (as its payload): the feed it followed, how
/// far, and the file format it was written in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FollowedFeed {
    feed: String,
    through: i64,
    /// [`INDEX_FORMAT`] when written; absent (0) before formats were recorded.
    #[serde(default)]
    format: u32,
}

/// Bumped whenever index files from an older build may not be readable by this one although
/// the schema is unchanged (1: dictionaries written without zstd compression, which this build
/// cannot read; 2: name fields tokenized by this crate's tokenizers; 3: no email prefixes;
/// 4: documents found by a uid key, not the uid); an index of another format is rebuilt from
/// the store.
const INDEX_FORMAT: u32 = 4;

/// See [`Fields::uid_key`].
fn uid_key_bytes(uid: &str) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(uid.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The term of `uid` in the `uid_key` field.
fn uid_key(field: Field, uid: &str) -> Term {
    Term::from_field_bytes(field, &uid_key_bytes(uid))
}

struct OnDisk {
    /// The record of the commit found at open.
    committed: Option<FollowedFeed>,
    /// Set by the first catch-up's check: the store's feed, which every later commit records.
    feed: std::sync::OnceLock<Option<String>>,
}

/// Opens the index in `dir`, or makes a new one there when there is none, it is from another
/// schema (an upgrade changed the fields), or it cannot be opened.
/// The index's one writer. On disk its lock may still be held for a moment by the engine this
/// process ran before (a restart in place: a commit of the old follower finishing on the
/// blocking pool), so a busy lock is retried for a few seconds before it is an error.
fn open_writer(index: &Index) -> Result<IndexWriter, Error> {
    const ATTEMPTS: u32 = 250;
    let mut attempt = 0;
    loop {
        match index.writer_with_num_threads(2, 2 * WRITER_MEMORY_BYTES) {
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) if attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.map_err(search_error),
        }
    }
}

fn open_on_disk(dir: &std::path::Path, schema: Schema) -> Result<Index, Error> {
    let open = || -> tantivy::Result<Index> {
        std::fs::create_dir_all(dir)?;
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        Index::open_or_create(directory, schema.clone())
    };
    match open() {
        Ok(index) => Ok(index),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "recreating the suggest index");
            std::fs::remove_dir_all(dir).map_err(search_error)?;
            open().map_err(search_error)
        }
    }
}

fn search_error(error: impl std::fmt::Display) -> Error {
    Error::Internal(format!("suggest index failure: {error}"))
}

impl SuggestIndex {
    /// The index kept in `dir` (created if missing, recreated if its files are from another
    /// schema or unreadable), or in memory without a `dir`. Kept on disk, a restart catches up
    /// from where the last commit got to instead of indexing every profile again, and the
    /// index's pages are the kernel's file cache rather than the heap.
    pub fn open(dir: Option<&std::path::Path>) -> Result<Self, Error> {
        // Name fields get one value each, their words separated by spaces (words never hold
        // one); matching needs which documents hold a term, nothing more.
        let indexed_by = |tokenizer: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            )
        };
        let words_field = indexed_by(WORDS_TOKENIZER);
        let prefixes_field = indexed_by(analysis::PREFIXES_TOKENIZER);
        let mut schema = Schema::builder();
        let fields = Fields {
            // A fast (columnar) field, not a stored one: hits read their uid from the column
            // instead of decompressing a block of the document store each.
            uid: schema.add_text_field("uid", FAST),
            uid_key: schema.add_bytes_field("uid_key", INDEXED),
            username: schema.add_text_field("username", words_field.clone()),
            full_name: schema.add_text_field("full_name", words_field.clone()),
            email: schema.add_text_field("email", words_field),
            username_prefix: schema.add_text_field("username_prefix", prefixes_field.clone()),
            full_name_prefix: schema.add_text_field("full_name_prefix", prefixes_field),
            labels: schema.add_text_field("labels", STRING),
            last_synchronized: schema.add_i64_field("last_synchronized", FAST),
        };
        let schema = schema.build();
        let index = match dir {
            None => Index::create_in_ram(schema),
            Some(dir) => open_on_disk(dir, schema)?,
        };
        index
            .tokenizers()
            .register(WORDS_TOKENIZER, WhitespaceTokenizer::default());
        index
            .tokenizers()
            .register(analysis::PREFIXES_TOKENIZER, analysis::WordPrefixes);
        // The writer first: once it holds the lock, no other writer can commit, so what the
        // last commit recorded is read after every commit there will be.
        let writer = open_writer(&index)?;
        let on_disk = dir.map(|_| OnDisk {
            committed: index
                .load_metas()
                .ok()
                .and_then(|metas| metas.payload)
                .and_then(|payload| serde_json::from_str::<FollowedFeed>(&payload).ok()),
            feed: std::sync::OnceLock::new(),
        });
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(search_error)?;
        Ok(Self {
            reader,
            writer: Mutex::new(Some(writer)),
            index,
            fields,
            indexed_through: AtomicI64::new(-1),
            catching_up: tokio::sync::Mutex::new(()),
            acknowledged: AtomicI64::new(-1),
            wake: tokio::sync::Notify::new(),
            started: std::sync::atomic::AtomicBool::new(false),
            on_disk,
        })
    }

    /// The highest `_seq_no` the index reflects.
    pub fn indexed_through(&self) -> i64 {
        self.indexed_through.load(Ordering::SeqCst)
    }

    /// Records that the store acknowledged a profile write with `seq_no`, and wakes the
    /// follower to index it.
    pub fn note_written(&self, seq_no: i64) {
        self.acknowledged.fetch_max(seq_no, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Resolves after the next [`Self::note_written`] (at once if one came since last asked).
    pub async fn written(&self) {
        self.wake.notified().await;
    }

    /// Makes every write this process has acknowledged visible to the next query. Reads the
    /// store only when the follower has not indexed them yet; writes by other replicas are the
    /// follower's (within its interval), as Elasticsearch's refresh interval.
    pub async fn include_acknowledged(self: &Arc<Self>, store: &dyn Store) -> Result<(), Error> {
        let started = self.started.load(Ordering::SeqCst);
        if started && self.indexed_through() >= self.acknowledged.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.catch_up(store).await
    }

    /// Applies every profile change the store has after the last one indexed, and makes them
    /// searchable with one index commit (at start, all profiles become one segment).
    pub async fn catch_up(self: &Arc<Self>, store: &dyn Store) -> Result<(), Error> {
        let _turn = self.catching_up.lock().await;
        self.check_on_disk(store).await?;
        let caught_up = self.follow_feed(store).await;
        if caught_up.is_ok() {
            self.started.store(true, Ordering::SeqCst);
        } else {
            // Uncommitted replacements are dropped, so the index holds only committed
            // catch-ups and the next one starts from `indexed_through` with nothing pending.
            let _ = self.with_writer(|writer| writer.rollback().map_err(search_error));
        }
        caught_up
    }

    /// Before an on-disk index is used: keeps what it holds if its last commit followed this
    /// store's feed and is not ahead of it (a store restored from an older copy, or another
    /// store under the same directory, is not), and empties it otherwise.
    async fn check_on_disk(self: &Arc<Self>, store: &dyn Store) -> Result<(), Error> {
        let Some(on_disk) = &self.on_disk else {
            return Ok(());
        };
        if on_disk.feed.get().is_some() {
            return Ok(());
        }
        let identity = store.feed_identity().await?;
        let reused_through = match (&identity, &on_disk.committed) {
            (Some(identity), Some(committed))
                if identity.id == committed.feed
                    && committed.through < identity.next_seq_no
                    && committed.format == INDEX_FORMAT =>
            {
                Some(committed.through)
            }
            _ => None,
        };
        if let Some(through) = reused_through {
            self.indexed_through.store(through, Ordering::SeqCst);
        } else if self.reader.searcher().num_docs() > 0 || on_disk.committed.is_some() {
            tracing::info!("the suggest index on disk is not this store's: rebuilding it");
            let index = Arc::clone(self);
            tokio::task::spawn_blocking(move || -> Result<(), Error> {
                index.with_writer(|writer| writer.delete_all_documents().map_err(search_error))?;
                index.commit(-1)
            })
            .await
            .map_err(search_error)??;
        }
        // Only catch-ups set it, one at a time (`catching_up`), so it is unset here.
        let _ = on_disk.feed.set(identity.map(|identity| identity.id));
        Ok(())
    }

    async fn follow_feed(self: &Arc<Self>, store: &dyn Store) -> Result<(), Error> {
        let built_from_empty = self.indexed_through() < 0;
        let mut adding = Adding::default();
        let read = self.read_changes(store, &mut adding).await;
        // Nothing may still be adding when the caller commits or rolls back.
        let added = adding.finish().await;
        let through = read?;
        added?;
        if adding.any {
            let index = Arc::clone(self);
            tokio::task::spawn_blocking(move || index.commit(through))
                .await
                .map_err(search_error)??;
            if built_from_empty {
                let index = Arc::clone(self);
                // In the background: serving need not wait for the merges.
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = index.settle_after_build() {
                        tracing::warn!(%error, "the suggest index writer was not renewed");
                    }
                });
            }
        }
        Ok(())
    }

    /// Hands every change after the last one indexed to `adding`, in order, and returns the
    /// `_seq_no` the index will then reflect. An empty index is first filled in one pass over
    /// the profiles where the store offers one; the feed then replays what was written since
    /// the pass began.
    async fn read_changes(
        self: &Arc<Self>,
        store: &dyn Store,
        adding: &mut Adding,
    ) -> Result<i64, Error> {
        let mut through = self.indexed_through();
        // Before the first commit the index is empty: a document needs replacing only if
        // this catch-up added it already (written again while it ran). Skipping the other
        // deletes matters at start, where one per profile (a query weight each, held until
        // the commit) would take ~1.5 KB per profile.
        let mut added_now: Option<std::collections::HashSet<String>> =
            (through < 0).then(Default::default);
        if through < 0 {
            if let Some(identity) = store.feed_identity().await? {
                let mut after: Option<String> = None;
                let mut passed = false;
                while let Some(changes) = store
                    .profiles_in_uid_order(after.clone(), CHANGE_BATCH)
                    .await?
                {
                    passed = true;
                    let full_batch = changes.len() == CHANGE_BATCH;
                    if let Some(last) = changes.last() {
                        after = Some(last.uid.clone());
                        // Each uid once, into an empty index: nothing to replace.
                        let replace = vec![false; changes.len()];
                        adding.hand_over(self, changes, replace).await?;
                    }
                    if !full_batch {
                        break;
                    }
                }
                if passed {
                    through = identity.next_seq_no - 1;
                    // What the feed brings now may have been in the pass: it replaces.
                    added_now = None;
                }
            }
        }
        loop {
            let changes = store.profiles_changed_since(through, CHANGE_BATCH).await?;
            let full_batch = changes.len() == CHANGE_BATCH;
            if let Some(last) = changes.last() {
                through = through.max(last.seq_no);
                let replace = match &mut added_now {
                    Some(seen) => changes
                        .iter()
                        .map(|c| !seen.insert(c.uid.clone()))
                        .collect(),
                    None => vec![true; changes.len()],
                };
                adding.hand_over(self, changes, replace).await?;
            }
            if !full_batch {
                return Ok(through);
            }
        }
    }

    fn document(&self, doc: &ProfileDoc, uid_key: &[u8]) -> TantivyDocument {
        let f = self.fields;
        // Room for what is added below, most of it twice (names with their prefixes):
        // tantivy's default reserves a kilobyte per document, a hundred megabytes allocated
        // and handed between threads when 100 000 profiles are indexed at start.
        let names = doc.user.username.len()
            + doc.user.full_name.as_deref().map_or(0, str::len)
            + doc.user.email.as_deref().map_or(0, str::len);
        let mut document = TantivyDocument::with_capacity(128 + doc.uid.len() + 2 * names);
        document.add_text(f.uid, &doc.uid);
        document.add_bytes(f.uid_key, uid_key);
        document.add_i64(f.last_synchronized, doc.last_synchronized);
        let mut add = |field: Field, prefix_field: Option<Field>, tokens: Vec<String>| {
            let mut value = String::new();
            for token in tokens {
                // A token with characters a query word cannot have (`.`, `@`, `-`, ...) can
                // never match: query words are runs of letters, digits and `_`.
                if !token.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(&token);
            }
            if !value.is_empty() {
                if let Some(prefix_field) = prefix_field {
                    document.add_text(prefix_field, &value);
                }
                document.add_text(field, value);
            }
        };
        add(
            f.username,
            Some(f.username_prefix),
            words(&doc.user.username),
        );
        add(
            f.full_name,
            Some(f.full_name_prefix),
            doc.user.full_name.as_deref().map(words).unwrap_or_default(),
        );
        add(
            f.email,
            None,
            doc.user
                .email
                .as_deref()
                .map(email_tokens)
                .unwrap_or_default(),
        );
        for pair in label_pairs(&doc.labels) {
            document.add_text(f.labels, pair);
        }
        document
    }

    /// Replaces each changed profile's document (adds it, where `replace` says it cannot be
    /// there yet). Not searchable before [`Self::commit`].
    fn add(&self, changes: &[ProfileChange], replace: &[bool]) -> Result<(), Error> {
        self.with_writer(|writer| {
            for (change, &replace) in changes.iter().zip(replace) {
                let key = uid_key_bytes(&change.uid);
                if replace {
                    writer.delete_term(Term::from_field_bytes(self.fields.uid_key, &key));
                }
                // Only enabled profiles are suggested, so only they are indexed. An unreadable
                // document leaves the index too: it cannot be suggested or shown.
                if let Some(profile) = change.profile.as_ref().filter(|p| p.doc.enabled) {
                    writer
                        .add_document(self.document(&profile.doc, &key))
                        .map_err(search_error)?;
                }
            }
            Ok(())
        })
    }

    /// Runs `work` with the writer, reopening it first if an earlier replacement failed.
    fn with_writer<T>(
        &self,
        work: impl FnOnce(&mut IndexWriter) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| search_error("writer lock poisoned"))?;
        if writer.is_none() {
            *writer = Some(open_writer(&self.index)?);
        }
        match writer.as_mut() {
            Some(writer) => work(writer),
            None => Err(search_error("no index writer")),
        }
    }

    /// After building the whole index: lets the merges its commit started finish (a writer
    /// says when only by being ended), opens a new writer and moves searches to the merged
    /// segments, which the manual reload policy would otherwise leave for the next commit.
    /// Fewer segments are fewer term lookups per query word. Meanwhile changes wait for the
    /// writer; searches do not.
    fn settle_after_build(&self) -> Result<(), Error> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| search_error("writer lock poisoned"))?;
        if let Some(built) = writer.take() {
            // Joins its threads and releases the index lock the new writer takes.
            built.wait_merging_threads().map_err(search_error)?;
        }
        *writer = Some(open_writer(&self.index)?);
        drop(writer);
        // Searches move to the merged segments.
        self.reader.reload().map_err(search_error)
    }

    fn commit(&self, through: i64) -> Result<(), Error> {
        let feed = self
            .on_disk
            .as_ref()
            .and_then(|on_disk| on_disk.feed.get().cloned().flatten());
        self.with_writer(|writer| {
            let mut commit = writer.prepare_commit().map_err(search_error)?;
            if let Some(feed) = feed {
                let record = serde_json::to_string(&FollowedFeed {
                    feed,
                    through,
                    format: INDEX_FORMAT,
                })
                .map_err(search_error)?;
                commit.set_payload(&record);
            }
            commit.commit().map_err(search_error)?;
            Ok(())
        })?;
        self.reader.reload().map_err(search_error)?;
        self.indexed_through.store(through, Ordering::SeqCst);
        // The index holds exactly the enabled profiles, one document each.
        metrics::gauge!("userprofiles_profiles_enabled")
            .set(self.reader.searcher().num_docs() as f64);
        Ok(())
    }

    /// Matching uids, best first, and how many profiles matched in all.
    pub fn search(&self, query: &SuggestQuery) -> Result<(Vec<String>, u64), Error> {
        let searcher = self.reader.searcher();
        let plan = ranking::Plan::new(&self.fields, query, &searcher).map_err(search_error)?;
        let (hits, total) = plan.rank(&searcher, query.size).map_err(search_error)?;
        let mut uids = Vec::with_capacity(hits.len());
        // Each segment's column opened once, however many of the hits (up to the result
        // window) it holds.
        let mut columns: Vec<Option<tantivy::columnar::StrColumn>> =
            vec![None; searcher.segment_readers().len()];
        for address in hits {
            let slot = columns
                .get_mut(address.segment_ord as usize)
                .ok_or_else(|| search_error("a hit from another searcher"))?;
            if slot.is_none() {
                *slot = searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .str("uid")
                    .map_err(search_error)?;
            }
            let column = slot
                .as_ref()
                .ok_or_else(|| search_error("the uid column is missing"))?;
            let mut uid = String::new();
            let ord = column.term_ords(address.doc_id).next();
            if let Some(ord) = ord {
                if column.ord_to_str(ord, &mut uid).map_err(search_error)? {
                    uids.push(uid);
                }
            }
        }
        Ok((uids, total))
    }
}
