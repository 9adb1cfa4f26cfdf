//! Suggest user profiles: SPEC §8.

use super::data_filter::DataFilter;
use super::profiles::Profile;
use super::{Caller, Engine};
use crate::auth::privileges::action;
use crate::error::{Error, Violation};
use crate::search::SuggestQuery;
use std::time::Instant;
use tracing::Instrument;

/// Elasticsearch's default result size.
pub const DEFAULT_SIZE: i64 = 10;
/// Elasticsearch's `index.max_result_window`.
pub const MAX_RESULT_WINDOW: i64 = 10_000;
/// Elasticsearch counts a search's hits exactly up to `track_total_hits`, 10 000 unless the
/// search says otherwise (suggest does not), and reports more as at least that many.
pub const TRACK_TOTAL_HITS: u64 = 10_000;

/// Boosts: profiles matching a hint rank higher but are never excluded for missing it.
#[derive(Debug, Clone, Default)]
pub struct SuggestHint {
    /// Uids to favour (`Some(vec![])` is an error).
    pub uids: Option<Vec<String>>,
    /// Label keys with the values to favour (exactly one key allowed).
    pub labels: Option<Vec<(String, Vec<String>)>>,
}

/// A suggest request.
#[derive(Debug, Clone, Default)]
pub struct SuggestRequest {
    /// Words to match.
    pub name: String,
    /// How many profiles to return.
    pub size: Option<i64>,
    /// Which data keys to return.
    pub data: DataFilter,
    /// Optional boosts.
    pub hint: Option<SuggestHint>,
}

/// Suggest's answer.
#[derive(Debug, Clone)]
pub struct SuggestResult {
    /// Milliseconds spent.
    pub took: u64,
    /// How many enabled profiles matched, counted up to [`TRACK_TOTAL_HITS`].
    pub total: u64,
    /// Whether more than `total` matched (Elasticsearch's `relation: gte`).
    pub total_is_lower_bound: bool,
    /// The best matches, data filtered.
    pub profiles: Vec<Profile>,
}

impl SuggestResult {
    /// The answer for `matched` profiles in all, counted as Elasticsearch tracks total hits.
    fn counted(matched: u64, profiles: Vec<Profile>) -> Self {
        SuggestResult {
            took: 0,
            total: matched.min(TRACK_TOTAL_HITS),
            total_is_lower_bound: matched > TRACK_TOTAL_HITS,
            profiles,
        }
    }

    /// How exact `total` is: `eq`, or `gte` past [`TRACK_TOTAL_HITS`] matches.
    pub fn total_relation(&self) -> &'static str {
        if self.total_is_lower_bound {
            "gte"
        } else {
            "eq"
        }
    }
}

impl SuggestRequest {
    /// The size asked for, or Elasticsearch's default.
    pub fn size(&self) -> i64 {
        self.size.unwrap_or(DEFAULT_SIZE)
    }

    /// Elasticsearch's validation, messages accumulated.
    pub fn validate(&self) -> Result<(), Error> {
        let mut violations = Vec::new();
        if self.size() < 0 {
            violations.push(Violation::new(
                "size",
                format!(
                    "[size] parameter cannot be negative but was [{}]",
                    self.size()
                ),
            ));
        }
        if let Some(hint) = &self.hint {
            if hint.uids.is_none() && hint.labels.is_none() {
                violations.push(Violation::new("hint", "[hint] parameter cannot be empty"));
            } else {
                if hint.uids.as_ref().is_some_and(Vec::is_empty) {
                    violations.push(Violation::new("hint.uids", "[uids] hint cannot be empty"));
                }
                if let Some(labels) = &hint.labels {
                    if labels.len() != 1 {
                        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
                        violations.push(Violation::new(
                            "hint.labels",
                            format!(
                                "[labels] hint supports a single key, got [{}]",
                                keys.join(",")
                            ),
                        ));
                    } else {
                        let (key, values) = &labels[0];
                        if key.contains('*') {
                            violations.push(Violation::new(
                                "hint.labels",
                                "[labels] hint key cannot contain wildcard",
                            ));
                        }
                        if values.is_empty() {
                            violations.push(Violation::new(
                                "hint.labels",
                                "[labels] hint value cannot be empty",
                            ));
                        }
                    }
                }
            }
        }
        Error::check(violations)
    }
}

impl Engine {
    /// Suggests enabled profiles matching `name`, hinted profiles first among equals.
    pub async fn suggest_profiles(
        &self,
        caller: &Caller,
        request: SuggestRequest,
    ) -> Result<SuggestResult, Error> {
        let started = Instant::now();
        request.validate()?;
        self.check_suggest_limits(&request)?;
        let filter = request.data.compile(self.limits().max_data_patterns)?;
        self.authorize(caller, action::PROFILE_SUGGEST)?;
        if request.size() > MAX_RESULT_WINDOW {
            return Err(Error::IllegalArgument(format!(
                "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}].",
                request.size()
            )));
        }
        if !self.profile_index_exists().await? {
            return Ok(SuggestResult::counted(0, Vec::new()));
        }
        // Every acknowledged write is visible to the next suggest.
        self.inner
            .suggest_index
            .include_acknowledged(self.store())
            .await?;
        let size = request.size() as usize;
        let hint = request.hint.unwrap_or_default();
        let query = SuggestQuery {
            name: request.name,
            size,
            hint_uids: hint.uids.unwrap_or_default(),
            hint_labels: hint.labels.and_then(|labels| labels.into_iter().next()),
        };
        let index = std::sync::Arc::clone(&self.inner.suggest_index);
        // Fuzzy automata take megabytes each: queries run on the bounded search pool.
        let (uids, total) = self
            .inner
            .search_pool
            .run(move || index.search(&query))
            .instrument(crate::telemetry::child_span("suggest.search"))
            .await??;
        let found = self.store().get_profiles(&uids).await?;
        // A hit whose document became unreadable since it was indexed is left out.
        let profiles = found
            .into_iter()
            .filter_map(|slot| slot.ok().flatten())
            .collect();
        let profiles = self.filter_data(profiles, filter).await?;
        Ok(SuggestResult {
            took: started.elapsed().as_millis() as u64,
            ..SuggestResult::counted(total, profiles)
        })
    }

    /// Bounds on what one suggest may ask for, with Elasticsearch's errors for them: the name's
    /// words become query clauses (`indices.query.bool.max_clause_count`), hint values become
    /// terms (`index.max_terms_count`).
    fn check_suggest_limits(&self, request: &SuggestRequest) -> Result<(), Error> {
        let limits = self.limits();
        if crate::search::clause_count(&request.name) > limits.max_clause_count {
            return Err(Error::IllegalArgument(
                "Query rewrite failed: too many clauses".into(),
            ));
        }
        let Some(hint) = &request.hint else {
            return Ok(());
        };
        let uids = hint.uids.as_ref().map_or(0, Vec::len);
        let labels = hint
            .labels
            .iter()
            .flatten()
            .map(|(_, values)| values.len())
            .max()
            .unwrap_or(0);
        let terms = uids.max(labels);
        if terms > limits.max_terms_count {
            return Err(Error::IllegalArgument(format!(
                "The number of terms [{terms}] used in the Terms Query request has exceeded the allowed maximum of [{}]. This maximum can be set by changing the [index.max_terms_count] index level setting.",
                limits.max_terms_count
            )));
        }
        Ok(())
    }

    /// Brings the suggest index up to date with the store (at start, and periodically so
    /// changes written by other replicas show up).
    pub async fn refresh_suggest_index(&self) -> Result<(), Error> {
        self.inner.suggest_index.catch_up(self.store()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(request: SuggestRequest) -> Option<String> {
        request.validate().err().map(|e| e.reason())
    }

    fn with_hint(hint: SuggestHint) -> SuggestRequest {
        SuggestRequest {
            hint: Some(hint),
            ..SuggestRequest::default()
        }
    }

    #[test]
    fn suggest_validation_matches_elasticsearch_messages() {
        assert_eq!(reason(SuggestRequest::default()), None);
        assert_eq!(
            reason(SuggestRequest {
                size: Some(0),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            reason(SuggestRequest {
                size: Some(-1),
                ..Default::default()
            })
            .as_deref(),
            Some("Validation Failed: 1: [size] parameter cannot be negative but was [-1];")
        );
        assert_eq!(
            reason(with_hint(SuggestHint::default())).as_deref(),
            Some("Validation Failed: 1: [hint] parameter cannot be empty;")
        );
        assert_eq!(
            reason(with_hint(SuggestHint {
                uids: Some(vec![]),
                labels: None
            }))
            .as_deref(),
            Some("Validation Failed: 1: [uids] hint cannot be empty;")
        );
        let two = vec![
            ("a".to_owned(), vec!["x".to_owned()]),
            ("b".to_owned(), vec![]),
        ];
        assert_eq!(
            reason(with_hint(SuggestHint {
                uids: None,
                labels: Some(two)
            }))
            .as_deref(),
            Some("Validation Failed: 1: [labels] hint supports a single key, got [a,b];")
        );
        let wild = vec![("a*".to_owned(), vec![])];
        assert_eq!(
            reason(with_hint(SuggestHint { uids: Some(vec![]), labels: Some(wild) })).as_deref(),
            Some("Validation Failed: 1: [uids] hint cannot be empty;2: [labels] hint key cannot contain wildcard;3: [labels] hint value cannot be empty;")
        );
    }

    #[test]
    fn totals_past_elasticsearchs_tracked_hits_are_lower_bounds() {
        let answer = |matched| {
            let result = SuggestResult::counted(matched, Vec::new());
            (result.total, result.total_relation())
        };
        assert_eq!(answer(0), (0, "eq"));
        assert_eq!(answer(10_000), (10_000, "eq"));
        assert_eq!(answer(10_001), (10_000, "gte"));
        assert_eq!(answer(250_000), (10_000, "gte"));
    }
}
