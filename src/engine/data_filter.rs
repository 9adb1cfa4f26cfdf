//! The `data` key filter shared by get and suggest: Elasticsearch's source-filtering includes.
//!
//! Each pattern is matched against the full dotted path of a field (`app1.key1`), `*` matching
//! any run of characters (dots included). A field whose path matches is returned whole; an
//! object whose path could still lead to a match is descended into and kept only if something
//! inside it matched.

use crate::error::Error;
use crate::model::JsonObject;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};
use serde_json::Value;

/// The requested include patterns, as given. Cheap to build from untrusted input: nothing is
/// compiled until [`DataFilter::compile`], which the engine calls after checking the count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataFilter {
    patterns: Vec<String>,
}

/// The largest automaton a filter may compile to (bytes of NFA), whatever its pattern count.
const MAX_FILTER_NFA_BYTES: usize = 8 * 1024 * 1024;

/// Most pattern text one filter may hold. Building a DFA state costs time in proportion to the
/// automaton, so this bounds the cost of each new state the walk meets (an HTTP request line
/// holds at most 4 KiB anyway; gRPC lists could otherwise carry megabytes).
const MAX_FILTER_PATTERN_BYTES: usize = 64 * 1024;

impl DataFilter {
    /// Builds a filter from the requested keys; blank keys are ignored. Linear: sorting and
    /// compiling wait for [`DataFilter::compile`], after the count is checked.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Self {
        let patterns: Vec<String> = keys
            .iter()
            .map(|k| k.as_ref().trim())
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
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

    /// Compiles the patterns into one automaton, refusing more than `max_patterns` of them.
    pub fn compile(&self, max_patterns: usize) -> Result<CompiledFilter, Error> {
        if self.patterns.len() > max_patterns {
            return Err(Error::IllegalArgument(format!(
                "too many data keys [{}], at most [{max_patterns}] may be requested at once",
                self.patterns.len()
            )));
        }
        if self.is_empty() {
            return Ok(CompiledFilter::Nothing);
        }
        // `*` matches every path, so every top-level key is kept whole: no walk needed.
        if self.patterns.iter().any(|p| p == "*") {
            return Ok(CompiledFilter::Everything);
        }
        let total: usize = self.patterns.iter().map(String::len).sum();
        if total > MAX_FILTER_PATTERN_BYTES {
            return Err(Error::IllegalArgument(format!(
                "the requested data keys take [{total}] bytes, more than the maximum of [{MAX_FILTER_PATTERN_BYTES}]"
            )));
        }
        let mut patterns: Vec<&str> = self.patterns.iter().map(String::as_str).collect();
        patterns.sort_unstable();
        patterns.dedup();
        let regexes: Vec<String> = patterns.iter().map(|p| glob_to_regex(p)).collect();
        let dfa = DFA::builder()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .dot_matches_new_line(true),
            )
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(MAX_FILTER_NFA_BYTES)),
            )
            .configure(DFA::config().match_kind(MatchKind::All))
            .build_many(&regexes)
            .map_err(|_| {
                Error::IllegalArgument(
                    "the requested data keys are too long or too many to match".into(),
                )
            })?;
        Ok(CompiledFilter::Patterns(Box::new(dfa)))
    }
}

/// `*` matches any run of bytes; everything else is literal.
fn glob_to_regex(pattern: &str) -> String {
    let mut regex = String::with_capacity(pattern.len() * 2);
    for c in pattern.chars() {
        if c == '*' {
            regex.push_str(".*");
        } else {
            if c.is_ascii_punctuation() {
                regex.push('\\');
            }
            regex.push(c);
        }
    }
    regex
}

/// A compiled filter.
#[derive(Debug)]
pub enum CompiledFilter {
    /// No patterns: no data is kept.
    Nothing,
    /// A `*` pattern: all data is kept, no walk needed.
    Everything,
    /// Every pattern in one lazily built DFA, run over the document once. Each field's dotted
    /// path is never built: the automaton state reached at an object is carried to its
    /// children, which feed only their own key (and a `.` before descending). So filtering
    /// costs one DFA step per byte of the document's keys, whatever the pattern count.
    Patterns(Box<DFA>),
}

impl CompiledFilter {
    /// Returns the part of `data` the patterns select.
    pub fn apply(&self, data: &JsonObject) -> JsonObject {
        let dfa = match self {
            CompiledFilter::Nothing => return JsonObject::new(),
            CompiledFilter::Everything => return data.clone(),
            CompiledFilter::Patterns(dfa) => dfa,
        };
        let mut walk = Walk {
            dfa,
            cache: dfa.create_cache(),
        };
        match walk.start() {
            Some(start) => walk.filter_object(data, start),
            None => JsonObject::new(),
        }
    }
}

struct Walk<'a> {
    dfa: &'a DFA,
    cache: Cache,
}

impl Walk<'_> {
    fn start(&mut self) -> Option<LazyStateID> {
        let input = Input::new("").anchored(Anchored::Yes);
        self.dfa.start_state_forward(&mut self.cache, &input).ok()
    }

    /// The state after `bytes`, or `None` once no pattern can match any more.
    fn advance(&mut self, mut state: LazyStateID, bytes: &[u8]) -> Option<LazyStateID> {
        for &byte in bytes {
            state = self.dfa.next_state(&mut self.cache, state, byte).ok()?;
            if state.is_dead() || state.is_quit() {
                return None;
            }
        }
        Some(state)
    }

    /// Whether the path read so far is itself matched by a pattern.
    fn matches_here(&mut self, state: LazyStateID) -> bool {
        self.dfa
            .next_eoi_state(&mut self.cache, state)
            .is_ok_and(|eoi| eoi.is_match())
    }

    fn filter_object(&mut self, object: &JsonObject, state: LazyStateID) -> JsonObject {
        let mut out = JsonObject::new();
        for (key, value) in object {
            let Some(at_key) = self.advance(state, key.as_bytes()) else {
                continue;
            };
            if let Some(kept) = self.filter_value(value, at_key) {
                out.insert(key.clone(), kept);
            }
        }
        out
    }

    fn filter_value(&mut self, value: &Value, at_path: LazyStateID) -> Option<Value> {
        if self.matches_here(at_path) {
            return Some(value.clone());
        }
        if !matches!(value, Value::Object(_) | Value::Array(_)) {
            return None;
        }
        let below = self.advance(at_path, b".")?;
        match value {
            Value::Object(object) => {
                let kept = self.filter_object(object, below);
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            // Arrays take their parent's path, as in Elasticsearch's filtering.
            Value::Array(items) => {
                let kept: Vec<Value> = items
                    .iter()
                    .filter_map(|item| match item {
                        Value::Object(object) => {
                            let kept = self.filter_object(object, below);
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
            Value::Object(DataFilter::new(keys).compile(100).unwrap().apply(&data())),
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
    fn patterns_are_literal_except_for_the_star() {
        let data = json!({"a.b": 1, "a+b": 2, "aab": 3, "ünï": {"x(": 4}, "a": {"b": 5}})
            .as_object()
            .cloned()
            .unwrap();
        let apply =
            |keys: &[&str]| Value::Object(DataFilter::new(keys).compile(10).unwrap().apply(&data));
        assert_eq!(apply(&["a+b"]), json!({"a+b": 2}));
        assert_eq!(apply(&["a.b"]), json!({"a.b": 1, "a": {"b": 5}}));
        assert_eq!(apply(&["ünï.x("]), json!({"ünï": {"x(": 4}}));
        assert_eq!(
            apply(&["*b"]),
            json!({"a.b": 1, "a+b": 2, "aab": 3, "a": {"b": 5}})
        );
    }

    #[test]
    fn too_many_patterns_are_refused_before_compiling() {
        let keys: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
        let error = DataFilter::new(&keys).compile(10).unwrap_err();
        assert_eq!(
            error.reason(),
            "too many data keys [11], at most [10] may be requested at once"
        );
        assert!(DataFilter::new(&keys).compile(11).is_ok());
    }

    #[test]
    fn the_comma_list_form_trims_and_drops_empty_tokens() {
        assert_eq!(
            DataFilter::from_comma_list("app1, ,app2,"),
            DataFilter::new(&["app1", "app2"])
        );
        assert!(DataFilter::from_comma_list(",,").is_empty());
    }

    mod properties {
        use super::super::*;
        use crate::proptest_json;
        use proptest::prelude::*;

        /// The reference: does some string starting with `text` match glob `pattern`
        /// (`full`: does `text` itself)? Plain recursion over characters, fine for small cases.
        fn glob(pattern: &[char], text: &[char], full: bool) -> bool {
            match (pattern.first(), text.first()) {
                (None, None) => true,
                (_, None) if !full => true,
                (None, Some(_)) => false,
                (Some('*'), _) => {
                    glob(&pattern[1..], text, full)
                        || (!text.is_empty() && glob(pattern, &text[1..], full))
                }
                (Some(p), Some(t)) => p == t && glob(&pattern[1..], &text[1..], full),
                (Some(_), None) => false,
            }
        }

        /// The filtering rule stated directly on dotted paths, as the documentation puts it.
        fn reference(patterns: &[String], object: &JsonObject, prefix: &str) -> JsonObject {
            let patterns_chars: Vec<Vec<char>> =
                patterns.iter().map(|p| p.chars().collect()).collect();
            let mut out = JsonObject::new();
            for (key, value) in object {
                let path: Vec<char> = format!("{prefix}{key}").chars().collect();
                if patterns_chars.iter().any(|p| glob(p, &path, true)) {
                    out.insert(key.clone(), value.clone());
                    continue;
                }
                let mut below = path.clone();
                below.push('.');
                if !patterns_chars.iter().any(|p| glob(p, &below, false)) {
                    continue;
                }
                let child_prefix: String = below.iter().collect();
                let kept = match value {
                    Value::Object(inner) => {
                        let kept = reference(patterns, inner, &child_prefix);
                        (!kept.is_empty()).then_some(Value::Object(kept))
                    }
                    Value::Array(items) => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter_map(|item| match item {
                                Value::Object(inner) => {
                                    let kept = reference(patterns, inner, &child_prefix);
                                    (!kept.is_empty()).then_some(Value::Object(kept))
                                }
                                _ => None,
                            })
                            .collect();
                        (!kept.is_empty()).then_some(Value::Array(kept))
                    }
                    _ => None,
                };
                if let Some(kept) = kept {
                    out.insert(key.clone(), kept);
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The one-pass automaton selects exactly what the rule on dotted paths selects.
            #[test]
            fn the_automaton_agrees_with_the_path_rule(
                patterns in prop::collection::vec("[ab.*é]{0,5}", 0..5),
                data in proptest_json::object(3),
            ) {
                let filter = DataFilter::new(&patterns);
                let trimmed: Vec<String> = patterns.iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
                let compiled = filter.compile(10).unwrap();
                prop_assert_eq!(compiled.apply(&data), reference(&trimmed, &data, ""));
            }

            /// Any pattern text compiles or is refused cleanly; none panics.
            #[test]
            fn arbitrary_patterns_never_panic(patterns in prop::collection::vec("\\PC{0,12}", 0..8)) {
                let _ = DataFilter::new(&patterns).compile(100).map(|f| f.apply(&JsonObject::new()));
            }
        }
    }
}
