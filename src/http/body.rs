//! Request bodies read the way Elasticsearch's strict parsers read them: one JSON object whose
//! top-level fields are checked one by one, with `[line:col]` positions in x-content errors.

use crate::error::Error;
use crate::limits::{scan_json, MAX_JSON_DEPTH, MAX_OBJECT_KEYS};
use crate::model::JsonObject;
use serde_json::Value;

/// One top-level field of a body, with where it appeared.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key.
    pub name: String,
    /// The value.
    pub value: Value,
    /// `line:col` of the key (1-based, as Jackson reports token locations).
    pub key_at: String,
    /// `line:col` of the value.
    pub value_at: String,
}

pub use crate::model::token_name;

/// Bodies up to this size are parsed on the async worker; larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// [`object_fields`], off the async workers when the body is large.
pub async fn object_fields_off_worker(
    raw: bytes::Bytes,
    parser: &'static str,
) -> Result<Vec<Field>, Error> {
    if raw.len() <= INLINE_PARSE_BYTES {
        return object_fields(&raw, parser);
    }
    tokio::task::spawn_blocking(move || object_fields(&raw, parser))
        .await
        .map_err(|e| Error::Internal(format!("body parsing task failed: {e}")))?
}

/// Parses a body as one JSON object and returns its top-level fields in order.
/// `parser` is the Elasticsearch parser name used in messages, e.g. `activate_profile_request`.
///
/// Linear in the body: the shape limits are checked on the raw bytes first (so no deep or
/// wide tree is ever built), the body is parsed once, one scan finds where each top-level
/// field starts, and positions are computed in one forward pass.
pub fn object_fields(raw: &[u8], parser: &str) -> Result<Vec<Field>, Error> {
    let Ok(text) = std::str::from_utf8(raw) else {
        // serde_json reports the position of the bad byte.
        return Err(parse_error(serde_json::from_slice::<Value>(raw).err(), raw));
    };
    if let Err((violation, offset)) = scan_json(raw, MAX_JSON_DEPTH, MAX_OBJECT_KEYS) {
        let at = Positions::new(text).at(offset);
        return Err(Error::XContentParse(format!(
            "[{at}] {}",
            violation.describe()
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| parse_error(Some(e), raw))?;
    let Value::Object(map) = value else {
        let at = first_token_position(text);
        return Err(Error::XContentParse(format!(
            "[{at}] [{parser}] Expected START_OBJECT but was: {}",
            token_name(&value)
        )));
    };
    let entries = top_level_entries(text);
    let mut positions = Positions::new(text);
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let mut located = Vec::with_capacity(entries.len());
    for (name, key_offset, value_offset) in entries {
        let key_at = positions.at(key_offset);
        if !seen.insert(name.clone()) {
            return Err(Error::XContentParse(format!(
                "[{key_at}] Duplicate field '{name}'"
            )));
        }
        located.push((key_at, positions.at(value_offset)));
    }
    // No duplicates, so the parsed map holds exactly the scanned entries, in the same order.
    Ok(map
        .into_iter()
        .zip(located)
        .map(|((name, value), (key_at, value_at))| Field {
            name,
            value,
            key_at,
            value_at,
        })
        .collect())
}

fn parse_error(error: Option<serde_json::Error>, raw: &[u8]) -> Error {
    let Some(e) = error else {
        return Error::XContentParse(format!(
            "[1:1] invalid UTF-8 in a body of {} bytes",
            raw.len()
        ));
    };
    let message = e.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    Error::XContentParse(format!("[{}:{}] {message}", e.line(), e.column()))
}

/// `line:col` of byte offsets asked for in increasing order, columns counted in characters
/// from 1, found in one forward pass over the text (Jackson's token locations).
struct Positions<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    fn at(&mut self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            *self = Self::new(self.text);
        }
        for c in self.text.get(self.offset..offset).unwrap_or("").chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.offset = offset;
        format!("{}:{}", self.line, self.column)
    }
}

fn first_token_position(text: &str) -> String {
    let offset = text.len() - text.trim_start().len();
    Positions::new(text).at(offset)
}

/// Scans an already-validated JSON object for its top-level entries:
/// (key, key offset, value start offset).
fn top_level_entries(text: &str) -> Vec<(String, usize, usize)> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut pending_key: Option<(String, usize)> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 {
                    match pending_key.take() {
                        None => {
                            let raw_key = text.get(start..=i).unwrap_or("\"\"");
                            let key = serde_json::from_str::<String>(raw_key).unwrap_or_default();
                            pending_key = Some((key, start));
                        }
                        Some((key, key_at)) => entries.push((key, key_at, start)),
                    }
                }
            }
            b'{' | b'[' => {
                if depth == 1 {
                    if let Some((key, key_at)) = pending_key.take() {
                        entries.push((key, key_at, i));
                    }
                }
                depth += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' | b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            _ => {
                if depth == 1 {
                    if let Some((key, key_at)) = pending_key.take() {
                        entries.push((key, key_at, i));
                    }
                }
            }
        }
        i += 1;
    }
    entries
}

/// A field that must be a string (Elasticsearch's `declareString`).
pub fn string_field(field: &Field, parser: &str) -> Result<String, Error> {
    match &field.value {
        Value::String(s) => Ok(s.clone()),
        other => Err(unsupported_type(field, parser, other)),
    }
}

/// A field that must be an object (Elasticsearch's `declareObject` of a map), moved out.
pub fn object_field(mut field: Field, parser: &str) -> Result<JsonObject, Error> {
    match std::mem::take(&mut field.value) {
        Value::Object(map) => Ok(map),
        other => Err(unsupported_type(&field, parser, &other)),
    }
}

/// The ObjectParser error for a value of the wrong JSON type.
pub fn unsupported_type(field: &Field, parser: &str, value: &Value) -> Error {
    Error::XContentParse(format!(
        "[{}] [{parser}] {} doesn't support values of type: {}",
        field.value_at,
        field.name,
        token_name(value)
    ))
}

/// The ObjectParser error for a field the parser does not know.
pub fn unknown_field(field: &Field, parser: &str) -> Error {
    Error::XContentParse(format!(
        "[{}] [{parser}] unknown field [{}]",
        field.key_at, field.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(raw: &str) -> String {
        object_fields(raw.as_bytes(), "p").unwrap_err().reason()
    }

    #[test]
    fn fields_keep_their_order_values_and_positions() {
        let fields = object_fields(
            b"{\"a\": \"x,}\", \n  \"b\" : {\"c\": [1, {\"d\": 2}]}, \"e\":null}",
            "p",
        )
        .unwrap();
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "e"]);
        assert_eq!(fields[0].value, "x,}");
        assert_eq!(fields[1].key_at, "2:3");
        assert_eq!(fields[1].value["c"][1]["d"], 2);
        assert_eq!(fields[2].value, Value::Null);
        assert_eq!(fields[0].key_at, "1:2");
        assert_eq!(fields[0].value_at, "1:7");
    }

    #[test]
    fn bodies_that_are_not_one_object_are_rejected_like_elasticsearch() {
        assert_eq!(
            reason("[1]"),
            "[1:1] [p] Expected START_OBJECT but was: START_ARRAY"
        );
        assert_eq!(
            reason("  \"s\""),
            "[1:3] [p] Expected START_OBJECT but was: VALUE_STRING"
        );
        assert!(reason("{\"a\":").starts_with("[1:5] "));
        assert!(reason("not json").starts_with("[1:"));
        assert_eq!(reason("{\"a\":1,\"a\":2}"), "[1:8] Duplicate field 'a'");
    }

    #[test]
    fn invalid_utf8_is_a_parse_error() {
        let err = object_fields(b"{\"a\":\"\xff\"}", "p").unwrap_err();
        assert_eq!(err.es_type(), "x_content_parse_exception");
    }

    mod properties {
        use super::super::*;
        use crate::proptest_json;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever the bytes, the parser answers (never panics), and any error is a 400.
            #[test]
            fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..256)) {
                if let Err(error) = object_fields(&raw, "p") {
                    prop_assert_eq!(error.http_status(), 400);
                }
            }

            /// JSON-ish text (brackets, quotes, escapes) never panics either.
            #[test]
            fn structural_noise_never_panics(raw in "[{}\\[\\]\":,a1 \\\\\n]{0,64}") {
                let _ = object_fields(raw.as_bytes(), "p");
            }

            /// An accepted object comes back field by field, in order, unchanged, compact or
            /// pretty-printed.
            #[test]
            fn accepted_objects_read_back_unchanged(object in proptest_json::object(4), pretty in any::<bool>()) {
                let text = if pretty {
                    serde_json::to_string_pretty(&object).unwrap()
                } else {
                    serde_json::to_string(&object).unwrap()
                };
                let fields = object_fields(text.as_bytes(), "p").unwrap();
                let read_back: Vec<(String, Value)> =
                    fields.into_iter().map(|f| (f.name, f.value)).collect();
                let expected: Vec<(String, Value)> = object.into_iter().collect();
                prop_assert_eq!(read_back, expected);
            }
        }
    }
}
