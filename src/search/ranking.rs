//! How suggest matches and ranks, evaluated as bitsets per segment.
//!
//! Elasticsearch's `multi_match` of type `bool_prefix` with AUTO fuzziness: every word but the
//! last is a term matched with typos forgiven, the last word a prefix matched without
//! (fuzziness "does not apply to the prefix query built from the final term"), any of them in
//! any of username, full name and email. A profile matches when some word matches some field.
//!
//! Ranking is by points, then the most recently synchronized profile: each name field matched
//! scores once however many words match it, more if some word matched it without typos (so
//! among profiles matching as many fields the typo-free ones come first, and a bonus never
//! outweighs another matched field); a matching uid hint adds more than a label hint, and
//! neither outweighs a field.
//!
//! Every leaf (a term, a typo automaton, a hint's term set) is a tantivy weight whose documents
//! are written into one bitset per field and kind; a profile's points are then a handful of
//! bit tests, and the recency column is read only for profiles that can still enter the top
//! `size`. A general boolean scorer tree did the same per document through nested unions and
//! cost several times more on a name every profile matches.

use super::analysis::{distinct_words, typo_edits, MAX_PREFIX_CHARS};
use super::{uid_key, Fields, SuggestQuery};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use tantivy::columnar::Cardinality;
use tantivy::query::{
    AutomatonWeight, DfaWrapper, EnableScoring, FuzzyTermQuery, Query, TermQuery, TermSetQuery,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocId, Searcher, SegmentReader, Term};

/// Points of a name field matched (with typos, or without: plus the bonus).
const FIELD_MATCH_POINTS: u32 = 100;
const EXACT_MATCH_BONUS: u32 = 1;
/// Points of a matching uid hint and label hint: below a field, uid above label.
const UID_HINT_POINTS: u32 = 20;
const LABEL_HINT_POINTS: u32 = 10;

// The order the points keep, checked when building: two fields with typos beat one without
// plus both hints; the bonus on every field stays below a hint; a uid hint beats a label hint.
const _: () = assert!(
    2 * FIELD_MATCH_POINTS
        > FIELD_MATCH_POINTS + EXACT_MATCH_BONUS + UID_HINT_POINTS + LABEL_HINT_POINTS
);
const _: () = assert!(NAME_FIELDS as u32 * EXACT_MATCH_BONUS < LABEL_HINT_POINTS);
const _: () = assert!(UID_HINT_POINTS > LABEL_HINT_POINTS);

/// Username, full name, email.
const NAME_FIELDS: usize = 3;

/// Leaves of one query, made once per query and run on every segment.
pub(super) struct Plan {
    /// Per name field: leaves matching some word exactly, or the last word as a prefix.
    exact: [Vec<Box<dyn Weight>>; NAME_FIELDS],
    /// Per name field: leaves matching some word with typos.
    typos: [Vec<Box<dyn Weight>>; NAME_FIELDS],
    uid_hint: Vec<Box<dyn Weight>>,
    label_hint: Vec<Box<dyn Weight>>,
    /// No name words: every profile matches, hints alone rank.
    matches_all: bool,
}

impl Plan {
    pub(super) fn new(
        fields: &Fields,
        query: &SuggestQuery,
        searcher: &Searcher,
    ) -> tantivy::Result<Self> {
        let scoring = EnableScoring::disabled_from_searcher(searcher);
        let term = |field: Field, text: &str| {
            TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic)
                .weight(scoring)
        };
        let any_of = |terms: &mut dyn Iterator<Item = Term>| {
            // One term-set automaton rather than a leaf per value: hints may carry tens of
            // thousands of values.
            TermSetQuery::new(terms).weight(scoring)
        };
        let mut plan = Plan {
            exact: Default::default(),
            typos: Default::default(),
            uid_hint: Vec::new(),
            label_hint: Vec::new(),
            matches_all: true,
        };
        if let Some((last, rest)) = distinct_words(&query.name) {
            plan.matches_all = false;
            // An automaton depends on the word alone: built once, shared by the three fields.
            let mut typo_automata: Vec<Arc<DfaWrapper>> = Vec::new();
            for (index, word) in rest.iter().enumerate() {
                let edits = typo_edits(index, word);
                if edits > 0 {
                    let query = FuzzyTermQuery::new(
                        Term::from_field_text(fields.username, word),
                        edits,
                        true,
                    );
                    typo_automata.push(Arc::new(query.automaton()?));
                }
            }
            // The last word is one lookup in the indexed prefixes; a longer one, or one in a
            // field without prefixes, walks the term dictionary.
            let prefix_walk = Arc::new(
                FuzzyTermQuery::new_prefix(Term::from_field_text(fields.username, &last), 0, true)
                    .automaton()?,
            );
            let indexed_prefix = last.chars().count() <= MAX_PREFIX_CHARS;
            for (slot, (field, prefix_field)) in fields.name_fields().into_iter().enumerate() {
                let exact = &mut plan.exact[slot];
                for word in &rest {
                    exact.push(term(field, word)?);
                }
                exact.push(match prefix_field {
                    Some(prefix_field) if indexed_prefix => term(prefix_field, &last)?,
                    _ => automaton_weight(field, &prefix_walk),
                });
                plan.typos[slot] = typo_automata
                    .iter()
                    .map(|automaton| automaton_weight(field, automaton))
                    .collect();
            }
        }
        if !query.hint_uids.is_empty() {
            let mut keys = query
                .hint_uids
                .iter()
                .map(|uid| uid_key(fields.uid_key, uid));
            plan.uid_hint.push(any_of(&mut keys)?);
        }
        if let Some((key, values)) = &query.hint_labels {
            let mut pairs = values
                .iter()
                .map(|value| Term::from_field_text(fields.labels, &format!("{key}={value}")));
            plan.label_hint.push(any_of(&mut pairs)?);
        }
        Ok(plan)
    }

    /// The `size` best matches, best first, and how many profiles matched in all.
    pub(super) fn rank(
        &self,
        searcher: &Searcher,
        size: usize,
    ) -> tantivy::Result<(Vec<DocAddress>, u64)> {
        let mut best = Best::new(size);
        let mut total = 0;
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            total += self.rank_segment(ord as u32, segment, &mut best)?;
        }
        Ok((best.into_sorted(), total))
    }

    /// Offers the segment's matches to `best` and counts them.
    fn rank_segment(
        &self,
        ord: u32,
        segment: &SegmentReader,
        best: &mut Best,
    ) -> tantivy::Result<u64> {
        let max_doc = segment.max_doc();
        let words = (max_doc as usize).div_ceil(64);
        let docs = |weights: &[Box<dyn Weight>]| -> tantivy::Result<Vec<u64>> {
            let mut bits = vec![0u64; if weights.is_empty() { 0 } else { words }];
            for weight in weights {
                weight.for_each_no_score(segment, &mut |found: &[DocId]| {
                    for &doc in found {
                        bits[(doc / 64) as usize] |= 1 << (doc % 64);
                    }
                })?;
            }
            Ok(bits)
        };
        let mut exact = Vec::with_capacity(NAME_FIELDS);
        let mut typos = Vec::with_capacity(NAME_FIELDS);
        for slot in 0..NAME_FIELDS {
            exact.push(docs(&self.exact[slot])?);
            typos.push(docs(&self.typos[slot])?);
        }
        let uid_hint = docs(&self.uid_hint)?;
        let label_hint = docs(&self.label_hint)?;
        let word_of = |bits: &[u64], word: usize| bits.get(word).copied().unwrap_or(0);

        // Every document has exactly one value: read it straight from the values when the
        // column says so, without the optional-index lookup.
        let recency = segment.fast_fields().i64("last_synchronized")?;
        let full_recency =
            (recency.get_cardinality() == Cardinality::Full).then(|| Arc::clone(&recency.values));
        let synchronized = |doc: DocId| match &full_recency {
            Some(values) => values.get_val(doc),
            None => recency.first(doc).unwrap_or(0),
        };
        let alive = segment.alive_bitset();
        let mut matched = 0u64;
        for word in 0..words {
            let exact_here: [u64; NAME_FIELDS] =
                std::array::from_fn(|slot| word_of(&exact[slot], word));
            // A field matched without typos scores as such, whatever else matched it.
            let typos_here: [u64; NAME_FIELDS] =
                std::array::from_fn(|slot| word_of(&typos[slot], word) & !exact_here[slot]);
            let (uid_here, label_here) = (word_of(&uid_hint, word), word_of(&label_hint, word));
            let mut candidates = if self.matches_all {
                let left = max_doc as usize - word * 64;
                if left >= 64 {
                    u64::MAX
                } else {
                    (1u64 << left) - 1
                }
            } else {
                (0..NAME_FIELDS).fold(0, |any, slot| any | exact_here[slot] | typos_here[slot])
            };
            while candidates != 0 {
                let bit = candidates.trailing_zeros();
                candidates &= candidates - 1;
                let doc = word as DocId * 64 + bit;
                if alive.is_some_and(|alive| alive.is_deleted(doc)) {
                    continue;
                }
                matched += 1;
                let at = |bits: u64| (bits >> bit & 1) as u32;
                let mut points =
                    at(uid_here) * UID_HINT_POINTS + at(label_here) * LABEL_HINT_POINTS;
                for slot in 0..NAME_FIELDS {
                    points += at(exact_here[slot]) * (FIELD_MATCH_POINTS + EXACT_MATCH_BONUS)
                        + at(typos_here[slot]) * FIELD_MATCH_POINTS;
                }
                if best.admits(points) {
                    best.offer(Rank {
                        points,
                        synchronized: synchronized(doc),
                        earlier: Reverse((ord, doc)),
                    });
                }
            }
        }
        Ok(matched)
    }
}

fn automaton_weight(field: Field, automaton: &Arc<DfaWrapper>) -> Box<dyn Weight> {
    Box::new(AutomatonWeight::<DfaWrapper>::new(
        field,
        Arc::clone(automaton),
    ))
}

/// What orders two matches: points, then the most recently synchronized, then index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    points: u32,
    synchronized: i64,
    earlier: Reverse<(u32, DocId)>,
}

/// The best `size` matches seen so far (a min-heap: its top is the one to drop next).
struct Best {
    size: usize,
    heap: BinaryHeap<Reverse<Rank>>,
}

impl Best {
    fn new(size: usize) -> Self {
        Best {
            size,
            // `size` is bounded by the result window; the heap never holds more.
            heap: BinaryHeap::with_capacity(size.min(1024) + 1),
        }
    }

    /// Whether a match with `points` may enter, before its recency is read.
    fn admits(&self, points: u32) -> bool {
        if self.heap.len() < self.size {
            return true;
        }
        self.heap
            .peek()
            .is_some_and(|Reverse(worst)| points >= worst.points)
    }

    fn offer(&mut self, rank: Rank) {
        if self.heap.len() < self.size {
            self.heap.push(Reverse(rank));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if rank > worst.0 {
                *worst = Reverse(rank);
            }
        }
    }

    fn into_sorted(self) -> Vec<DocAddress> {
        // Ascending `Reverse` order is best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(rank)| DocAddress::new(rank.earlier.0 .0, rank.earlier.0 .1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(points: u32, synchronized: i64, doc: DocId) -> Rank {
        Rank {
            points,
            synchronized,
            earlier: Reverse((0, doc)),
        }
    }

    #[test]
    fn best_keeps_the_highest_points_then_the_most_recent_then_the_earliest() {
        let mut best = Best::new(3);
        for (points, synced, doc) in [
            (101, 5, 0),
            (100, 9, 1),
            (301, 1, 2),
            (101, 7, 3),
            (101, 7, 4),
            (20, 99, 5),
        ] {
            if best.admits(points) {
                best.offer(rank(points, synced, doc));
            }
        }
        let docs: Vec<DocId> = best.into_sorted().iter().map(|a| a.doc_id).collect();
        assert_eq!(docs, [2, 3, 4]);
    }

    #[test]
    fn a_full_best_refuses_fewer_points_before_reading_recency() {
        let mut best = Best::new(1);
        assert!(best.admits(0));
        best.offer(rank(101, 0, 0));
        assert!(!best.admits(100));
        assert!(best.admits(101));
        assert!(!Best::new(0).admits(500));
    }
}
