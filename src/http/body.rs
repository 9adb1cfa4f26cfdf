//! Request bodies read the way Elasticsearch's strict parsers read them: one JSON object whose
//! top-level fields are checked one by one, with `[line:col]` positions in x-content errors.

use crate::error::Error;
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

/// The JSON token name Elasticsearch uses in type errors.
pub fn token_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Parses a body as one JSON object and returns its top-level fields in order.
/// `parser` is the Elasticsearch parser name used in messages, e.g. `activate_profile_request`.
pub fn object_fields(raw: &[u8], parser: &str) -> Result<Vec<Field>, Error> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        Error::XContentParse(format!("[{}:{}] {message}", e.line(), e.column()))
    })?;
    // serde_json accepted the bytes, so they are valid UTF-8.
    let text = std::str::from_utf8(raw).map_err(|e| Error::XContentParse(e.to_string()))?;
    let Value::Object(_) = &value else {
        let at = first_token_position(text);
        return Err(Error::XContentParse(format!(
            "[{at}] [{parser}] Expected START_OBJECT but was: {}",
            token_name(&value)
        )));
    };
    let mut fields: Vec<Field> = Vec::new();
    for (name, key_offset, value_offset, value_end) in top_level_entries(text) {
        if fields.iter().any(|f| f.name == name) {
            return Err(Error::XContentParse(format!(
                "[{}] Duplicate field '{name}'",
                position(text, key_offset)
            )));
        }
        let value = serde_json::from_str(&text[value_offset..value_end])
            .map_err(|e| Error::XContentParse(e.to_string()))?;
        fields.push(Field {
            name,
            value,
            key_at: position(text, key_offset),
            value_at: position(text, value_offset),
        });
    }
    Ok(fields)
}

/// `line:col` of a byte offset, columns counted in characters from 1.
fn position(text: &str, offset: usize) -> String {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    format!("{line}:{column}")
}

fn first_token_position(text: &str) -> String {
    let offset = text.len() - text.trim_start().len();
    position(text, offset)
}

/// Scans an already-validated JSON object for its top-level entries:
/// (key, key offset, value start offset, value end offset).
fn top_level_entries(text: &str) -> Vec<(String, usize, usize, usize)> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut pending_key: Option<(String, usize)> = None;
    let mut value_start: Option<usize> = None;
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
                if depth == 1 && pending_key.is_none() && value_start.is_none() {
                    let key = serde_json::from_str::<String>(&text[start..=i]).unwrap_or_default();
                    pending_key = Some((key, start));
                } else if depth == 1 && value_start.is_none() {
                    value_start = Some(start);
                }
            }
            b'{' | b'[' => {
                if depth == 1 && pending_key.is_some() && value_start.is_none() {
                    value_start = Some(i);
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    if let (Some((key, key_at)), Some(start)) =
                        (pending_key.take(), value_start.take())
                    {
                        entries.push((key, key_at, start, i));
                    }
                }
            }
            b',' if depth == 1 => {
                if let (Some((key, key_at)), Some(start)) = (pending_key.take(), value_start.take())
                {
                    entries.push((key, key_at, start, i));
                }
            }
            b':' | b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            _ => {
                if depth == 1 && pending_key.is_some() && value_start.is_none() {
                    value_start = Some(i);
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
}
