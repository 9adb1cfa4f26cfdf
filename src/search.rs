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
//! Longer than the ~400-line guide on purpose: the schema, the analyzer, query building and
//! the follower must agree on field names and tokenization; its tests take the last 70 lines.

use crate::error::Error;
use crate::model::{JsonObject, ProfileDoc};
use crate::store::{ProfileChange, Store};
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, STRING};
use tantivy::{
    doc, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, Term,
};

/// How many store changes one catch-up step reads.
const CHANGE_BATCH: usize = 5_000;
/// Indexing memory for the single writer thread.
const WRITER_MEMORY_BYTES: usize = 20_000_000;
/// Score of one matching name field: fields matched dominate the ranking.
const FIELD_MATCH_SCORE: Score = 10.0;
/// Bonus of a field matched without typos: exact matches beat fuzzy ones among equals, but
/// never outrank a hint or another matched field.
const EXACT_MATCH_BONUS: Score = 0.1;
/// Score of a matching uid hint (above a label hint, so both > uid > label > none).
const UID_HINT_SCORE: Score = 2.0;
/// Score of a matching label hint.
const LABEL_HINT_SCORE: Score = 1.0;

#[derive(Clone, Copy)]
struct Fields {
    uid: Field,
    username: Field,
    full_name: Field,
    email: Field,
    /// Every prefix (up to [`MAX_PREFIX_CHARS`]) of the tokens of the three fields above, as
    /// Elasticsearch's `search_as_you_type` `_index_prefix` subfields: the last word of a
    /// suggest is then one term lookup, not a walk over every term it prefixes (thousands
    /// for a common first name among 100 000 usernames).
    username_prefix: Field,
    full_name_prefix: Field,
    email_prefix: Field,
    labels: Field,
    last_synchronized: Field,
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
    writer: Mutex<IndexWriter>,
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

/// What a commit of an on-disk index records (as its payload): the feed it followed, and
/// how far.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FollowedFeed {
    feed: String,
    through: i64,
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
        match index.writer_with_num_threads(1, WRITER_MEMORY_BYTES) {
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

/// Longest token, in characters; longer runs are split into pieces of this length, as
/// Elasticsearch's standard tokenizer does (`max_token_length`). It also keeps each fuzzy
/// query's automaton small, whatever a caller sends as one "word".
const MAX_TOKEN_CHARS: usize = 255;

/// The runs of letters, digits and `_` in `text`.
fn runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// Lower-case word tokens: runs of letters, digits and `_`, at most [`MAX_TOKEN_CHARS`] each.
pub fn words(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for run in runs(text) {
        let chars: Vec<char> = run.chars().collect();
        for piece in chars.chunks(MAX_TOKEN_CHARS) {
            tokens.push(piece.iter().collect::<String>().to_lowercase());
        }
    }
    tokens
}

/// The query clauses each word of a suggest name becomes: a fuzzy and an exact clause on each
/// of username, full name and email (see `name_query`).
const CLAUSES_PER_WORD: usize = 6;

/// How many query clauses a suggest `name` builds, counted without building them, so a name
/// of many words is refused before it costs anything.
pub fn clause_count(name: &str) -> usize {
    let words: usize = runs(name)
        .map(|run| run.chars().count().div_ceil(MAX_TOKEN_CHARS))
        .sum();
    words.saturating_mul(CLAUSES_PER_WORD)
}

/// Longest prefix indexed for the last word of a suggest (Elasticsearch's `_index_prefix`
/// stops at 19); a longer last word walks the term dictionary instead.
const MAX_PREFIX_CHARS: usize = 20;

/// How many distinct words of a suggest name are matched with typos forgiven.
const MAX_FUZZY_WORDS: usize = 10;
/// Longest word matched with typos forgiven; longer words match exactly.
const MAX_FUZZY_WORD_CHARS: usize = 40;

/// A name's words without repeats (a repeated word matches nothing more), the last one kept
/// last since it is matched as a prefix.
fn distinct_words(name: &str) -> Option<(String, Vec<String>)> {
    let mut terms = words(name);
    let last = terms.pop()?;
    let mut seen = std::collections::HashSet::new();
    seen.insert(last.clone());
    terms.retain(|t| seen.insert(t.clone()));
    Some((last, terms))
}

/// Tokens of an email address, like Elasticsearch's profile `email` analyzer: the whole
/// address, the local part, the domain, each run of letters and each run of digits.
pub fn email_tokens(email: &str) -> Vec<String> {
    let email = email.to_lowercase();
    let mut tokens = vec![email.clone()];
    if let Some((local, domain)) = email.split_once('@') {
        tokens.push(local.to_owned());
        tokens.push(domain.to_owned());
    }
    let mut run = String::new();
    let mut run_is_digit = false;
    for c in email.chars().chain(std::iter::once(' ')) {
        let kind = if c.is_alphabetic() {
            Some(false)
        } else if c.is_ascii_digit() {
            Some(true)
        } else {
            None
        };
        match kind {
            Some(digit) if run.is_empty() || digit == run_is_digit => {
                run_is_digit = digit;
                run.push(c);
            }
            _ => {
                if !run.is_empty() {
                    tokens.push(std::mem::take(&mut run));
                }
                if let Some(digit) = kind {
                    run_is_digit = digit;
                    run.push(c);
                }
            }
        }
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

/// `path=value` pairs of every leaf of the labels, with dotted paths as Elasticsearch's
/// flattened field indexes them (numbers and booleans in their string form).
pub fn label_pairs(labels: &JsonObject) -> Vec<String> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(prefix, item, out)),
            Value::Null => {}
            Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut out = Vec::new();
    walk("", &Value::Object(labels.clone()), &mut out);
    out
}

/// Elasticsearch's AUTO fuzziness: exact up to 2 characters, one edit up to 5, then two.
fn auto_fuzziness(term: &str) -> u8 {
    match term.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// Matches documents holding any of `values` in `field`, all scoring `score`.
fn any_term(field: Field, values: impl Iterator<Item = String>, score: Score) -> Box<dyn Query> {
    // One term-set automaton rather than a clause per value: hints may carry tens of
    // thousands of values.
    let terms = values.map(|value| Term::from_field_text(field, &value));
    Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(terms)),
        score,
    ))
}

impl SuggestIndex {
    /// An empty in-memory index.
    pub fn new() -> Result<Self, Error> {
        Self::open(None)
    }

    /// The index kept in `dir` (created if missing, recreated if its files are from another
    /// schema or unreadable), or in memory without a `dir`. Kept on disk, a restart catches up
    /// from where the last commit got to instead of indexing every profile again, and the
    /// index's pages are the kernel's file cache rather than the heap.
    pub fn open(dir: Option<&std::path::Path>) -> Result<Self, Error> {
        let mut schema = Schema::builder();
        let fields = Fields {
            // A fast (columnar) field, not a stored one: hits read their uid from the column
            // instead of decompressing a block of the document store each.
            uid: schema.add_text_field("uid", STRING | FAST),
            username: schema.add_text_field("username", STRING),
            full_name: schema.add_text_field("full_name", STRING),
            email: schema.add_text_field("email", STRING),
            username_prefix: schema.add_text_field("username_prefix", STRING),
            full_name_prefix: schema.add_text_field("full_name_prefix", STRING),
            email_prefix: schema.add_text_field("email_prefix", STRING),
            labels: schema.add_text_field("labels", STRING),
            last_synchronized: schema.add_i64_field("last_synchronized", FAST),
        };
        let schema = schema.build();
        let index = match dir {
            None => Index::create_in_ram(schema),
            Some(dir) => open_on_disk(dir, schema)?,
        };
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
            writer: Mutex::new(writer),
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
            if let Ok(mut writer) = self.writer.lock() {
                let _ = writer.rollback();
            }
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
                if identity.id == committed.feed && committed.through < identity.next_seq_no =>
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
                index
                    .writer
                    .lock()
                    .map_err(|_| search_error("writer lock poisoned"))?
                    .delete_all_documents()
                    .map_err(search_error)?;
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
        let mut through = self.indexed_through();
        // Before the first commit the index is empty: a document needs replacing only if
        // this catch-up added it already (written again while it ran). Skipping the other
        // deletes matters at start, where one per profile (a query weight each, held until
        // the commit) would take ~1.5 KB per profile.
        let mut added_now: Option<std::collections::HashSet<String>> =
            (through < 0).then(Default::default);
        let mut added = false;
        loop {
            let changes = store.profiles_changed_since(through, CHANGE_BATCH).await?;
            let full_batch = changes.len() == CHANGE_BATCH;
            if let Some(last) = changes.last() {
                through = through.max(last.seq_no);
                let replace: Vec<bool> = match &mut added_now {
                    Some(seen) => changes
                        .iter()
                        .map(|c| !seen.insert(c.uid.clone()))
                        .collect(),
                    None => vec![true; changes.len()],
                };
                let index = Arc::clone(self);
                tokio::task::spawn_blocking(move || index.add(&changes, &replace))
                    .await
                    .map_err(search_error)??;
                added = true;
            }
            if !full_batch {
                break;
            }
        }
        if added {
            let index = Arc::clone(self);
            tokio::task::spawn_blocking(move || index.commit(through))
                .await
                .map_err(search_error)??;
        }
        Ok(())
    }

    fn document(&self, doc: &ProfileDoc) -> TantivyDocument {
        let f = self.fields;
        let mut document = doc!(
            f.uid => doc.uid.clone(),
            f.last_synchronized => doc.last_synchronized,
        );
        let mut add = |field: Field, prefix_field: Field, tokens: Vec<String>| {
            for token in tokens {
                // A token with characters a query word cannot have (`.`, `@`, `-`, ...) can
                // never match: query words are runs of letters, digits and `_`.
                if !token.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                for (count, (end, c)) in token.char_indices().enumerate() {
                    if count == MAX_PREFIX_CHARS {
                        break;
                    }
                    document.add_text(prefix_field, &token[..end + c.len_utf8()]);
                }
                document.add_text(field, token);
            }
        };
        add(f.username, f.username_prefix, words(&doc.user.username));
        add(
            f.full_name,
            f.full_name_prefix,
            doc.user.full_name.as_deref().map(words).unwrap_or_default(),
        );
        add(
            f.email,
            f.email_prefix,
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
        let writer = self
            .writer
            .lock()
            .map_err(|_| search_error("writer lock poisoned"))?;
        for (change, &replace) in changes.iter().zip(replace) {
            if replace {
                writer.delete_term(Term::from_field_text(self.fields.uid, &change.uid));
            }
            // Only enabled profiles are suggested, so only they are indexed. An unreadable
            // document leaves the index too: it cannot be suggested or shown.
            if let Some(profile) = change.profile.as_ref().filter(|p| p.doc.enabled) {
                writer
                    .add_document(self.document(&profile.doc))
                    .map_err(search_error)?;
            }
        }
        Ok(())
    }

    fn commit(&self, through: i64) -> Result<(), Error> {
        let feed = self
            .on_disk
            .as_ref()
            .and_then(|on_disk| on_disk.feed.get().cloned().flatten());
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| search_error("writer lock poisoned"))?;
        let mut commit = writer.prepare_commit().map_err(search_error)?;
        if let Some(feed) = feed {
            let record =
                serde_json::to_string(&FollowedFeed { feed, through }).map_err(search_error)?;
            commit.set_payload(&record);
        }
        commit.commit().map_err(search_error)?;
        drop(writer);
        self.reader.reload().map_err(search_error)?;
        self.indexed_through.store(through, Ordering::SeqCst);
        // The index holds exactly the enabled profiles, one document each.
        metrics::gauge!("userprofiles_profiles_enabled")
            .set(self.reader.searcher().num_docs() as f64);
        Ok(())
    }

    /// Elasticsearch's `multi_match` of type `bool_prefix` with AUTO fuzziness: every word but
    /// the last is a term query with typos forgiven, the last word a prefix query without
    /// (fuzziness "does not apply to the prefix query built from the final term"), any of
    /// them matching in any field.
    fn name_query(&self, name: &str) -> Option<Box<dyn Query>> {
        let (last, rest) = distinct_words(name)?;
        let f = self.fields;
        // Fuzziness is budgeted: each fuzzy term builds an automaton of about a thousand
        // states plus sixty per character, a kilobyte each, for every field. Words past the
        // budget still match exactly.
        let edits = |index: usize, term: &str| {
            if index < MAX_FUZZY_WORDS && term.chars().count() <= MAX_FUZZY_WORD_CHARS {
                auto_fuzziness(term)
            } else {
                0
            }
        };
        let word_query = |field: Field, term: &str, edits: u8| -> Box<dyn Query> {
            let term = Term::from_field_text(field, term);
            // An exact word needs no automaton (one would cost a kilobyte a character).
            match edits {
                0 => Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                edits => Box::new(FuzzyTermQuery::new(term, edits, true)),
            }
        };
        let prefix_query = |field: Field, prefix_field: Field| -> Box<dyn Query> {
            if last.chars().count() <= MAX_PREFIX_CHARS {
                let term = Term::from_field_text(prefix_field, &last);
                Box::new(TermQuery::new(term, IndexRecordOption::Basic))
            } else {
                let term = Term::from_field_text(field, &last);
                Box::new(FuzzyTermQuery::new_prefix(term, 0, true))
            }
        };
        let mut per_field: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, prefix_field) in [
            (f.username, f.username_prefix),
            (f.full_name, f.full_name_prefix),
            (f.email, f.email_prefix),
        ] {
            // A field scores once however many words match it: the best of "some word
            // matched exactly (or the last as a prefix)" and "some word matched with typos",
            // so among profiles matching as many fields, the typo-free ones come first.
            let mut exact: Vec<(Occur, Box<dyn Query>)> = rest
                .iter()
                .map(|t| (Occur::Should, word_query(field, t, 0)))
                .collect();
            exact.push((Occur::Should, prefix_query(field, prefix_field)));
            let mut best: Vec<Box<dyn Query>> = vec![Box::new(ConstScoreQuery::new(
                Box::new(BooleanQuery::new(exact)),
                FIELD_MATCH_SCORE + EXACT_MATCH_BONUS,
            ))];
            let typos: Vec<(Occur, Box<dyn Query>)> = rest
                .iter()
                .enumerate()
                .filter(|(i, t)| edits(*i, t) > 0)
                .map(|(i, t)| (Occur::Should, word_query(field, t, edits(i, t))))
                .collect();
            if !typos.is_empty() {
                best.push(Box::new(ConstScoreQuery::new(
                    Box::new(BooleanQuery::new(typos)),
                    FIELD_MATCH_SCORE,
                )));
            }
            per_field.push((Occur::Should, Box::new(DisjunctionMaxQuery::new(best))));
        }
        Some(Box::new(BooleanQuery::new(per_field)))
    }

    /// Matching uids, best first, and how many profiles matched in all.
    pub fn search(&self, query: &SuggestQuery) -> Result<(Vec<String>, u64), Error> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match self.name_query(&query.name) {
            Some(name) => clauses.push((Occur::Must, name)),
            None => clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
            )),
        }
        if !query.hint_uids.is_empty() {
            clauses.push((
                Occur::Should,
                any_term(f.uid, query.hint_uids.iter().cloned(), UID_HINT_SCORE),
            ));
        }
        if let Some((key, values)) = &query.hint_labels {
            let pairs = values.iter().map(|value| format!("{key}={value}"));
            clauses.push((Occur::Should, any_term(f.labels, pairs, LABEL_HINT_SCORE)));
        }
        let query_all = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        if query.size == 0 {
            let total = searcher.search(&query_all, &Count).map_err(search_error)?;
            return Ok((Vec::new(), total as u64));
        }
        // Ties on score go to the most recently synchronized profile.
        let top = TopDocs::with_limit(query.size).tweak_score(move |segment: &SegmentReader| {
            let recency = segment
                .fast_fields()
                .i64("last_synchronized")
                .map(|column| column.first_or_default_col(0));
            move |doc: DocId, score: Score| {
                let synced = recency.as_ref().map(|c| c.get_val(doc)).unwrap_or(0);
                (score, synced)
            }
        });
        let (hits, total) = searcher
            .search(&query_all, &(top, Count))
            .map_err(search_error)?;
        let mut uids = Vec::with_capacity(hits.len());
        for (_, address) in hits {
            let column = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .str("uid")
                .map_err(search_error)?
                .ok_or_else(|| search_error("the uid column is missing"))?;
            let mut uid = String::new();
            let ord = column.term_ords(address.doc_id).next();
            if let Some(ord) = ord {
                if column.ord_to_str(ord, &mut uid).map_err(search_error)? {
                    uids.push(uid);
                }
            }
        }
        Ok((uids, total as u64))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_words_are_queried_once_with_the_last_kept_last() {
        let (last, rest) = distinct_words("ann bob ann cy bob").unwrap();
        assert_eq!(last, "bob");
        assert_eq!(rest, ["ann", "cy"]);
        assert!(distinct_words(" ,").is_none());
    }

    #[test]
    fn long_runs_become_pieces_and_count_as_clauses() {
        let long = "x".repeat(MAX_TOKEN_CHARS * 2 + 1);
        assert_eq!(
            words(&format!("Ab {long}")),
            vec![
                "ab".to_owned(),
                "x".repeat(MAX_TOKEN_CHARS),
                "x".repeat(MAX_TOKEN_CHARS),
                "x".to_owned()
            ]
        );
        assert_eq!(clause_count(&format!("Ab {long}")), 4 * CLAUSES_PER_WORD);
        assert_eq!(clause_count(" ,;"), 0);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn email_tokens_follow_the_profile_email_analyzer() {
        assert_eq!(
            email_tokens("FooEmail42@Example.org"),
            [
                "42",
                "example",
                "example.org",
                "fooemail",
                "fooemail42",
                "fooemail42@example.org",
                "org"
            ]
        );
    }

    #[test]
    fn labels_flatten_to_dotted_pairs() {
        let labels = json!({"kibana": {"spaces": ["default", "sales"], "n": 3}, "x": true});
        let pairs = label_pairs(labels.as_object().unwrap());
        assert_eq!(
            pairs,
            [
                "kibana.spaces=default",
                "kibana.spaces=sales",
                "kibana.n=3",
                "x=true"
            ]
        );
    }

    #[test]
    fn fuzziness_grows_with_term_length_as_elasticsearch_auto() {
        assert_eq!(
            (
                auto_fuzziness("ab"),
                auto_fuzziness("abc"),
                auto_fuzziness("abcde"),
                auto_fuzziness("abcdef")
            ),
            (0, 1, 1, 2)
        );
    }
}
