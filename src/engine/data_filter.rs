//! The `data` key filter shared by get and suggest: Elasticsearch's source-filtering includes.
//!
//! Each pattern is matched against the full dotted path of a field (`app1.key1`), `*` matching
//! any run of characters (dots included). A field whose path matches is returned whole; an
//! object whose path could still lead to a match is descended into and kept only if something
//! inside it matched.

use super::model::JsonObject;
use serde_json::Value;

/// Compiled include patterns. An empty filter returns nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataFilter {
    patterns: Vec<Vec<char>>,
}

impl DataFilter {
    /// Builds a filter from the requested keys; blank keys are ignored.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Self {
        let mut patterns: Vec<Vec<char>> = keys
            .iter()
            .map(|k| k.as_ref().trim())
            .filter(|k| !k.is_empty())
            .map(|k| k.chars().collect())
            .collect();
        patterns.sort();
        patterns.dedup();
        Self { patterns }
    }

    /// Parses Elasticsearch's comma-separated list form (`app1,app2.key`).
    pub fn from_comma_list(list: &str) -> Self {
        Self::new(&list.split(',').collect::<Vec<_>>())
    }

    /// Whether the filter selects nothing at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Returns the part of `data` the patterns select.
    pub fn apply(&self, data: &JsonObject) -> JsonObject {
        if self.is_empty() {
            return JsonObject::new();
        }
        self.filter_object(data, "")
    }

    fn filter_object(&self, object: &JsonObject, prefix: &str) -> JsonObject {
        let mut out = JsonObject::new();
        for (key, value) in object {
            let path = format!("{prefix}{key}");
            if let Some(kept) = self.filter_value(value, &path) {
                out.insert(key.clone(), kept);
            }
        }
        out
    }

    fn filter_value(&self, value: &Value, path: &str) -> Option<Value> {
        let path_chars: Vec<char> = path.chars().collect();
        if self.patterns.iter().any(|p| glob(p, &path_chars).full) {
            return Some(value.clone());
        }
        let mut child_prefix = path_chars.clone();
        child_prefix.push('.');
        if !self
            .patterns
            .iter()
            .any(|p| glob(p, &child_prefix).extendable)
        {
            return None;
        }
        let child_prefix = format!("{path}.");
        match value {
            Value::Object(object) => {
                let kept = self.filter_object(object, &child_prefix);
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            // Arrays take their parent's path, as in Elasticsearch's filtering.
            Value::Array(items) => {
                let kept: Vec<Value> = items
                    .iter()
                    .filter_map(|item| match item {
                        Value::Object(object) => {
                            let kept = self.filter_object(object, &child_prefix);
                            (!kept.is_empty()).then_some(Value::Object(kept))
                        }
                        _ => None,
                    })
                    .collect();
                (!kept.is_empty()).then_some(Value::Array(kept))
            }
            _ => None,
        }
    }
}

struct GlobMatch {
    /// The whole text matches the pattern.
    full: bool,
    /// Some longer text starting with this text could match.
    extendable: bool,
}

/// Runs `*`-glob `pattern` over `text` as a set of pattern positions (an NFA), so one pass
/// answers both "matches" and "could match once more characters follow".
fn glob(pattern: &[char], text: &[char]) -> GlobMatch {
    let closure = |states: &mut Vec<bool>| {
        // A `*` may match nothing: being before it means being after it too.
        for i in 0..pattern.len() {
            if states[i] && pattern[i] == '*' {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    closure(&mut states);
    for &c in text {
        let mut next = vec![false; pattern.len() + 1];
        for i in 0..pattern.len() {
            if !states[i] {
                continue;
            }
            if pattern[i] == '*' {
                next[i] = true;
            } else if pattern[i] == c {
                next[i + 1] = true;
            }
        }
        closure(&mut next);
        states = next;
    }
    GlobMatch {
        full: states[pattern.len()],
        extendable: states[..pattern.len()].iter().any(|&s| s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> JsonObject {
        json!({
            "app1": {"key1": "value1", "key2": {"deep": true}},
            "app2": {"theme": "dark"},
            "other": 7
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(keys: &[&str], expected: Value) {
        assert_eq!(
            Value::Object(DataFilter::new(keys).apply(&data())),
            expected,
            "keys {keys:?}"
        );
    }

    #[test]
    fn filters_select_as_elasticsearch_source_includes_do() {
        check(&[], json!({}));
        check(&["*"], Value::Object(data()));
        check(
            &["app1"],
            json!({"app1": {"key1": "value1", "key2": {"deep": true}}}),
        );
        check(
            &["app*"],
            json!({"app1": data()["app1"], "app2": {"theme": "dark"}}),
        );
        check(
            &["app1", "app2"],
            json!({"app1": data()["app1"], "app2": {"theme": "dark"}}),
        );
        check(&["app1.key1"], json!({"app1": {"key1": "value1"}}));
        check(
            &["app1.key2.deep"],
            json!({"app1": {"key2": {"deep": true}}}),
        );
        check(&["app1.*"], json!({"app1": data()["app1"]}));
        check(&["missing"], json!({}));
        check(&["app1.missing"], json!({}));
        check(&["App1"], json!({}));
        check(&["other.x"], json!({}));
        check(&["  app2 ", ""], json!({"app2": {"theme": "dark"}}));
    }

    #[test]
    fn the_comma_list_form_trims_and_drops_empty_tokens() {
        assert_eq!(
            DataFilter::from_comma_list("app1, ,app2,"),
            DataFilter::new(&["app1", "app2"])
        );
        assert!(DataFilter::from_comma_list(",,").is_empty());
    }
}
