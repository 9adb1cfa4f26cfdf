//! How profile fields and suggest names become terms: Elasticsearch's standard tokenizer for
//! names (runs of letters, digits and `_`, lower-cased, split at 255 characters), the profile
//! `email` analyzer, flattened label pairs, and AUTO fuzziness.

use crate::model::JsonObject;
use serde_json::Value;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

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
        // Nearly every run is short enough to need no splitting (a character is a byte or more).
        if run.len() <= MAX_TOKEN_CHARS {
            tokens.push(run.to_lowercase());
            continue;
        }
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
pub(super) const MAX_PREFIX_CHARS: usize = 20;

/// Name of the tokenizer of the prefix fields (registered with the index).
pub(super) const PREFIXES_TOKENIZER: &str = "word_prefixes";

/// Indexes every prefix (up to [`MAX_PREFIX_CHARS`] characters) of each space-separated word
/// of one field value, as Elasticsearch's `_index_prefix` subfields do. One value per field
/// with its prefixes made here, in one reused buffer, costs a fraction of a value per prefix
/// (each its own string, sorted and tokenized on its own): building the index at start is
/// mostly this.
#[derive(Clone, Default)]
pub(super) struct WordPrefixes;

pub(super) struct WordPrefixStream<'a> {
    words: std::str::SplitAsciiWhitespace<'a>,
    /// The word being cut, and the characters of it not yet in the token.
    rest: std::str::Chars<'a>,
    /// Characters in the current token.
    length: usize,
    token: Token,
}

impl Tokenizer for WordPrefixes {
    type TokenStream<'a> = WordPrefixStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordPrefixStream<'a> {
        WordPrefixStream {
            words: text.split_ascii_whitespace(),
            rest: "".chars(),
            length: 0,
            token: Token::default(),
        }
    }
}

impl TokenStream for WordPrefixStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            if self.length < MAX_PREFIX_CHARS {
                if let Some(c) = self.rest.next() {
                    self.token.text.push(c);
                    self.length += 1;
                    return true;
                }
            }
            let Some(word) = self.words.next() else {
                return false;
            };
            self.rest = word.chars();
            self.length = 0;
            self.token.text.clear();
            self.token.position = self.token.position.wrapping_add(1);
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// How many distinct words of a suggest name are matched with typos forgiven.
const MAX_FUZZY_WORDS: usize = 10;
/// Longest word matched with typos forgiven; longer words match exactly.
const MAX_FUZZY_WORD_CHARS: usize = 40;

/// A name's words without repeats (a repeated word matches nothing more), the last one kept
/// last since it is matched as a prefix.
pub(super) fn distinct_words(name: &str) -> Option<(String, Vec<String>)> {
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
    fn walk_object(prefix: &str, map: &JsonObject, out: &mut Vec<String>) {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            walk(&path, child, out);
        }
    }
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => walk_object(prefix, map, out),
            Value::Array(items) => items.iter().for_each(|item| walk(prefix, item, out)),
            Value::Null => {}
            Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut out = Vec::new();
    walk_object("", labels, &mut out);
    out
}

/// How many typos the word at `index` (among a name's distinct words but the last) is matched
/// with: AUTO fuzziness within the budget of [`MAX_FUZZY_WORDS`] words of at most
/// [`MAX_FUZZY_WORD_CHARS`] characters (each fuzzy word builds an automaton of about a thousand
/// states plus sixty per character, a kilobyte each); words past it match exactly.
pub(super) fn typo_edits(index: usize, term: &str) -> u8 {
    if index < MAX_FUZZY_WORDS && term.chars().count() <= MAX_FUZZY_WORD_CHARS {
        auto_fuzziness(term)
    } else {
        0
    }
}

/// Elasticsearch's AUTO fuzziness: exact up to 2 characters, one edit up to 5, then two.
fn auto_fuzziness(term: &str) -> u8 {
    match term.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
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
    fn word_prefixes_cut_each_word_up_to_the_longest_prefix() {
        let mut tokenizer = WordPrefixes;
        let mut stream = tokenizer.token_stream("ab  cde");
        let mut found = Vec::new();
        while stream.advance() {
            found.push(stream.token().text.clone());
        }
        assert_eq!(found, ["a", "ab", "c", "cd", "cde"]);
        let long = "é".repeat(MAX_PREFIX_CHARS + 5);
        let mut stream = tokenizer.token_stream(&long);
        let mut last = String::new();
        let mut count = 0;
        while stream.advance() {
            last = stream.token().text.clone();
            count += 1;
        }
        assert_eq!(
            (count, last.chars().count()),
            (MAX_PREFIX_CHARS, MAX_PREFIX_CHARS)
        );
        assert!(!tokenizer.token_stream("").advance());
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
