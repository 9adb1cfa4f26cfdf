//! Update profile data and enable/disable profile: SPEC §7, §10, §11.

use super::profiles::Profile;
use super::{Caller, Engine};
use crate::auth::privileges::action;
use crate::error::{Error, Violation};
use crate::limits::{check_value, JsonViolation, MAX_OBJECT_KEYS};
use crate::model::{JsonObject, ProfileDoc};
use crate::store::UpdateProfile;
use serde_json::Value;

/// Elasticsearch's flattened fields (labels) refuse objects nested deeper than this.
pub const MAX_LABELS_DEPTH: usize = 20;

/// How often a read-modify-write is retried when another writer got in between. Writers in
/// this process queue on the profile's lock, so only writers in other replicas (or an
/// activation) can get in between; backing off spreads those out.
const WRITE_ATTEMPTS: u32 = 32;

/// Longest pause between two attempts, in milliseconds.
const MAX_BACKOFF_MILLIS: u64 = 64;

/// A partial update of a profile's labels and data.
#[derive(Debug, Clone, Default)]
pub struct UpdateDataRequest {
    /// The profile.
    pub uid: String,
    /// Labels to merge in.
    pub labels: Option<JsonObject>,
    /// Data to merge in.
    pub data: Option<JsonObject>,
    /// Only update if the profile's sequence number is this (negative means unset).
    pub if_seq_no: Option<i64>,
    /// Only update if the profile's primary term is this (negative means unset).
    pub if_primary_term: Option<i64>,
}

impl UpdateDataRequest {
    /// The top-level keys of labels and data: the application names.
    fn application_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .labels
            .iter()
            .chain(self.data.iter())
            .flat_map(|object| object.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Elasticsearch's request validation, messages accumulated.
    pub fn validate(&self) -> Result<(), Error> {
        let names = self.application_names();
        let mut violations = Vec::new();
        if names.is_empty() {
            violations.push(Violation::new("data", "update request is empty"));
        }
        let dotted: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| n.contains('.'))
            .collect();
        if !dotted.is_empty() {
            violations.push(Violation::new(
                "data",
                format!(
                    "application name must not contain dot, but found [{}]",
                    dotted.join(",")
                ),
            ));
        }
        let underscored: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with('_'))
            .collect();
        if !underscored.is_empty() {
            violations.push(Violation::new(
                "data",
                format!(
                    "application name must not start with underscore, but found [{}]",
                    underscored.join(",")
                ),
            ));
        }
        Error::check(violations)?;
        // The update action's own check of half-given compare-and-set parameters.
        match (self.cas_seq_no(), self.cas_primary_term()) {
            (Some(_), None) => Err(Error::validation(
                "if_primary_term",
                "ifSeqNo is set, but primary term is [0]",
            )),
            (None, Some(term)) => Err(Error::validation(
                "if_seq_no",
                format!("ifSeqNo is unassigned, but primary term is [{term}]"),
            )),
            _ => Ok(()),
        }
    }

    /// Negative values mean "unset", as Elasticsearch forwards only values >= 0.
    fn cas_seq_no(&self) -> Option<i64> {
        self.if_seq_no.filter(|v| *v >= 0)
    }

    fn cas_primary_term(&self) -> Option<i64> {
        self.if_primary_term.filter(|v| *v >= 0)
    }
}

/// Merges `update` into `target`: objects merge recursively, anything else replaces.
pub fn deep_merge(target: &mut JsonObject, update: &JsonObject) {
    for (key, value) in update {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_merge(existing, incoming)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The length of `object`'s compact JSON text, counted without building it.
fn json_size(object: &JsonObject) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and map keys are always strings.
    let _ = serde_json::to_writer(&mut count, object);
    count.0
}

/// Refuses labels or data that break the JSON shape limits at their place in a stored
/// document: the object itself is level 2, its values level 3.
fn check_value_limits(field: &str, object: &JsonObject) -> Result<(), Error> {
    if object.len() > MAX_OBJECT_KEYS {
        return Err(limit_error(field, JsonViolation::TooManyKeys));
    }
    object
        .values()
        .try_for_each(|value| check_value(value, 3))
        .map_err(|violation| limit_error(field, violation))
}

fn limit_error(field: &str, violation: JsonViolation) -> Error {
    Error::IllegalArgument(format!("[{field}] {}", violation.describe()))
}

/// How deeply objects nest inside `object` (an object of scalars has depth 1).
pub fn object_depth(object: &JsonObject) -> usize {
    fn value_depth(value: &Value) -> usize {
        match value {
            Value::Object(map) => object_depth(map),
            Value::Array(items) => items.iter().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + object.values().map(value_depth).max().unwrap_or(0)
}

impl Engine {
    /// Merges labels and data into a profile. Returns after the write is durable, or at once
    /// when the merge changes nothing (no new `_seq_no`).
    pub async fn update_profile_data(
        &self,
        caller: &Caller,
        request: UpdateDataRequest,
    ) -> Result<(), Error> {
        request.validate()?;
        let names = request.application_names();
        if !caller.roles.allows(action::PROFILE_PUT_DATA)
            && !caller.roles.allows_profile_write(&names)
        {
            return Err(Error::Forbidden(
                caller
                    .roles
                    .denial_message(&caller.user.username, action::PROFILE_PUT_DATA),
            ));
        }
        // The write path holds documents to the same limits every body is parsed with, so
        // nothing it stores can fail to read back. Labels and data sit one level below a
        // body's root (and a stored document's), hence the starting depth of 2.
        for (field, object) in [("labels", &request.labels), ("data", &request.data)] {
            if let Some(object) = object {
                check_value_limits(field, object)?;
            }
        }
        if let Some(labels) = &request.labels {
            if object_depth(labels) > MAX_LABELS_DEPTH {
                return Err(Error::DocumentParsing(format!(
                    "The provided [flattened] field [labels] exceeds the maximum depth limit of [{MAX_LABELS_DEPTH}]."
                )));
            }
        }
        let uid = request.uid.clone();
        self.modify_profile(
            &uid,
            request.cas_seq_no().zip(request.cas_primary_term()),
            |doc| {
                if let Some(labels) = &request.labels {
                    deep_merge(&mut doc.labels, labels);
                }
                if let Some(data) = &request.data {
                    deep_merge(&mut doc.application_data, data);
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// Enables or disables a profile (a no-op when it already is).
    pub async fn set_profile_enabled(
        &self,
        caller: &Caller,
        uid: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        self.authorize(caller, action::PROFILE_SET_ENABLED)?;
        self.modify_profile(uid, None, |doc| {
            doc.enabled = enabled;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// The read-modify-write cycle of partial updates: a missing profile is Elasticsearch's
    /// `document_missing_exception`; a caller's `(seq_no, primary_term)` must match; an
    /// unchanged document is not written; a concurrent writer makes us retry, unless the caller
    /// asked for a specific version.
    async fn modify_profile(
        &self,
        uid: &str,
        expected: Option<(i64, i64)>,
        change: impl Fn(&mut ProfileDoc) -> Result<(), Error>,
    ) -> Result<Profile, Error> {
        // Elasticsearch serialises writes to one document; so do we, within this process.
        let _turn = self.inner.profile_locks.lock(uid).await;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                let ceiling = (1u64 << attempt.min(6)).min(MAX_BACKOFF_MILLIS);
                let pause = rand::random_range(0..=ceiling);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let Some(current) = self.store().get_profile(uid).await? else {
                // Elasticsearch creates the (empty) profile index even when the update fails,
                // so later gets report the document, not the index, as missing. Only this path
                // can lack the index: a stored profile implies it.
                self.store().create_profile_index().await?;
                return Err(Error::DocumentMissing {
                    uid: uid.to_owned(),
                });
            };
            if let Some((seq_no, primary_term)) = expected {
                if (seq_no, primary_term) != (current.seq_no, current.primary_term) {
                    return Err(version_conflict(uid, seq_no, primary_term, &current));
                }
            }
            let mut doc = current.doc.clone();
            change(&mut doc)?;
            if doc == current.doc {
                return Ok(current);
            }
            self.check_profile_size(&doc)?;
            match self.store_profile_update(doc, current.seq_no).await? {
                UpdateProfile::Updated(profile) => return Ok(profile),
                UpdateProfile::Missing => {
                    return Err(Error::DocumentMissing {
                        uid: uid.to_owned(),
                    })
                }
                UpdateProfile::Conflict {
                    seq_no: current_seq_no,
                    primary_term: current_primary_term,
                } => {
                    if let Some((seq_no, primary_term)) = expected {
                        return Err(Error::VersionConflict {
                            uid: uid.to_owned(),
                            required_seq_no: seq_no,
                            required_primary_term: primary_term,
                            current_seq_no,
                            current_primary_term,
                        });
                    }
                }
            }
        }
        Err(Error::Internal(format!(
            "profile [{uid}] kept changing; gave up after {WRITE_ATTEMPTS} attempts"
        )))
    }

    fn check_profile_size(&self, doc: &ProfileDoc) -> Result<(), Error> {
        // Merging can grow an object past the key limit; the merged document is what is stored.
        check_value_limits("labels", &doc.labels)?;
        check_value_limits("data", &doc.application_data)?;
        let size = json_size(&doc.labels) + json_size(&doc.application_data);
        let limit = self.inner.settings.profile_max_size_bytes;
        if size > limit {
            return Err(Error::IllegalArgument(format!(
                "cannot update profile [{}] because the combined profile size of [{size}] bytes exceeds the maximum of [{limit}] bytes",
                doc.uid
            )));
        }
        Ok(())
    }
}

fn version_conflict(uid: &str, seq_no: i64, primary_term: i64, current: &Profile) -> Error {
    Error::VersionConflict {
        uid: uid.to_owned(),
        required_seq_no: seq_no,
        required_primary_term: primary_term,
        current_seq_no: current.seq_no,
        current_primary_term: current.primary_term,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn deep_merge_merges_objects_and_replaces_everything_else() {
        let mut target =
            object(json!({"app1": {"type": "x", "name": "a", "list": [1, 2]}, "keep": 1}));
        deep_merge(
            &mut target,
            &object(json!({"app1": {"name": "b", "active": true, "list": [3]}, "keep": null})),
        );
        assert_eq!(
            Value::Object(target),
            json!({"app1": {"type": "x", "name": "b", "list": [3], "active": true}, "keep": null})
        );
    }

    fn reason(labels: Value, data: Value) -> Option<String> {
        let request = UpdateDataRequest {
            uid: "u".into(),
            labels: labels.as_object().cloned(),
            data: data.as_object().cloned(),
            ..Default::default()
        };
        request.validate().err().map(|e| e.reason())
    }

    #[test]
    fn application_names_are_validated_like_elasticsearch() {
        assert_eq!(
            reason(json!({}), json!({})).as_deref(),
            Some("Validation Failed: 1: update request is empty;")
        );
        assert_eq!(
            reason(json!(null), json!(null)).as_deref(),
            Some("Validation Failed: 1: update request is empty;")
        );
        assert_eq!(reason(json!({"app": {"a.b": 1}}), json!({"_x.y": {}})).as_deref(), Some("Validation Failed: 1: application name must not contain dot, but found [_x.y];2: application name must not start with underscore, but found [_x.y];"));
        assert_eq!(reason(json!({"kibana": {"_inner": 1}}), json!(null)), None);
    }

    #[test]
    fn half_given_compare_and_set_is_refused() {
        let base = UpdateDataRequest {
            uid: "u".into(),
            data: Some(object(json!({"a": 1}))),
            ..Default::default()
        };
        let seq_only = UpdateDataRequest {
            if_seq_no: Some(3),
            ..base.clone()
        };
        assert_eq!(
            seq_only.validate().unwrap_err().reason(),
            "Validation Failed: 1: ifSeqNo is set, but primary term is [0];"
        );
        let term_only = UpdateDataRequest {
            if_primary_term: Some(1),
            ..base.clone()
        };
        assert_eq!(
            term_only.validate().unwrap_err().reason(),
            "Validation Failed: 1: ifSeqNo is unassigned, but primary term is [1];"
        );
        let negative = UpdateDataRequest {
            if_seq_no: Some(-1),
            ..base
        };
        assert!(negative.validate().is_ok());
    }

    #[test]
    fn json_size_is_the_compact_text_length() {
        let data = object(json!({"a": [1, "é"], "b": {"c": null}}));
        assert_eq!(json_size(&data), serde_json::to_vec(&data).unwrap().len());
    }

    #[test]
    fn depth_counts_nested_objects() {
        assert_eq!(object_depth(&object(json!({"a": 1}))), 1);
        assert_eq!(object_depth(&object(json!({"a": {"b": {"c": 1}}}))), 3);
        assert_eq!(object_depth(&object(json!({"a": [{"b": 1}]}))), 2);
    }

    mod properties {
        use super::super::*;
        use crate::proptest_json;
        use proptest::prelude::*;

        proptest! {
            /// A merge keeps every update leaf, keeps target keys the update does not name,
            /// never nests deeper than its inputs, and what it produces is stored and read
            /// back unchanged.
            #[test]
            fn merged_documents_keep_updates_and_read_back(
                target in proptest_json::object(4),
                update in proptest_json::object(4),
            ) {
                let mut merged = target.clone();
                deep_merge(&mut merged, &update);
                for (key, value) in &update {
                    if !value.is_object() || !target.get(key).is_some_and(Value::is_object) {
                        prop_assert_eq!(merged.get(key), Some(value));
                    }
                }
                for (key, value) in &target {
                    if !update.contains_key(key) {
                        prop_assert_eq!(merged.get(key), Some(value));
                    }
                }
                prop_assert!(object_depth(&merged) <= object_depth(&target).max(object_depth(&update)));
                let stored = serde_json::to_vec(&merged).unwrap();
                let read: JsonObject = crate::limits::decode_stored(&stored).unwrap();
                prop_assert_eq!(read, merged);
            }
        }
    }
}
