//! Elasticsearch's JSON output: compact or `pretty` bodies, the error envelope, and the flat
//! router-level errors.

use crate::error::{Error, Missing};
use serde_json::{json, Map, Value};
use std::io;

/// Jackson's pretty printer as Elasticsearch configures it: two-space indent, `" : "` between a
/// key and its value, arrays one item per line, empty containers as `{ }` and `[ ]`.
#[derive(Default)]
struct ElasticsearchPretty {
    indent: usize,
    has_value: bool,
}

impl ElasticsearchPretty {
    fn newline<W: ?Sized + io::Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b"\n")?;
        for _ in 0..self.indent {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline(writer)?;
        } else {
            writer.write_all(b" ")?;
        }
        self.has_value = true;
        writer.write_all(bracket)
    }

    fn item<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        self.newline(writer)
    }
}

impl serde_json::ser::Formatter for ElasticsearchPretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(writer, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(writer, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Serializes a body, compact or pretty (pretty output ends with a newline, as in Elasticsearch).
pub fn to_bytes(value: &Value, pretty: bool) -> Vec<u8> {
    if !pretty {
        return serde_json::to_vec(value).unwrap_or_default();
    }
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, ElasticsearchPretty::default());
    if serde::Serialize::serialize(value, &mut serializer).is_err() {
        return serde_json::to_vec(value).unwrap_or_default();
    }
    out.push(b'\n');
    out
}

/// The standard error envelope: `{"error":{"root_cause":[…],"type":…,"reason":…},"status":…}`.
pub fn error_body(error: &Error) -> Value {
    match error {
        Error::NoneFound(_) => return json!({}),
        // Elasticsearch answers these 404s with the endpoint's normal body.
        Error::NothingFound(Missing::User(_) | Missing::Role(_)) => {
            return json!({ "found": false })
        }
        Error::NothingFound(Missing::Token) => {
            return super::json::invalidation(&Default::default())
        }
        Error::NothingFound(Missing::ApplicationPrivileges { application, names }) => {
            let found: Map<String, Value> = names
                .iter()
                .map(|name| (name.clone(), json!({ "found": false })))
                .collect();
            return json!({ application: found });
        }
        // Router-level answers are flat; only the 404-style "no handler" omits the status.
        Error::NoHandler { .. } => return json!({ "error": error.reason() }),
        Error::MethodNotAllowed { .. } | Error::UnsupportedContentType(_) => {
            return json!({ "error": error.reason(), "status": error.http_status() })
        }
        _ => {}
    }
    // The token endpoint answers in OAuth2's own format (RFC 6749 §5.2), not the envelope.
    if let Error::OAuth {
        error, description, ..
    } = error
    {
        return json!({ "error": error, "error_description": description });
    }
    let mut cause = Map::new();
    cause.insert("type".into(), error.es_type().into());
    cause.insert("reason".into(), error.reason().into());
    match error {
        Error::Unauthenticated {
            challenge,
            unsuccessful_credentials,
            ..
        } => {
            if let Some(credentials) = unsuccessful_credentials {
                cause.insert(
                    "additional_unsuccessful_credentials".into(),
                    credentials.as_str().into(),
                );
            }
            let values = challenge.header_values();
            let header = if values.len() == 1 {
                Value::from(values[0])
            } else {
                Value::from(values.to_vec())
            };
            cause.insert("header".into(), json!({ "WWW-Authenticate": header }));
        }
        Error::DocumentMissing { .. } | Error::VersionConflict { .. } => {
            cause.insert("index_uuid".into(), "_na_".into());
            cause.insert("shard".into(), "0".into());
            cause.insert("index".into(), crate::error::PROFILE_INDEX.into());
        }
        _ => {}
    }
    // `root_cause` names the innermost cause, which only a media-type error has here.
    let inner_cause = match error {
        Error::MediaTypeHeader {
            cause_type, detail, ..
        } => Some(json!({"type": cause_type, "reason": detail})),
        _ => None,
    };
    let mut top = Map::new();
    let root = inner_cause
        .clone()
        .unwrap_or_else(|| Value::Object(cause.clone()));
    top.insert("root_cause".into(), Value::Array(vec![root]));
    top.extend(cause);
    if let Some(inner) = inner_cause {
        top.insert("caused_by".into(), inner);
    }
    json!({ "error": Value::Object(top), "status": error.http_status() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Challenge;

    #[test]
    fn pretty_output_matches_elasticsearch_layout() {
        let value = json!({"profiles": [{"uid": "u", "labels": {}, "roles": []}], "n": 1});
        let text = String::from_utf8(to_bytes(&value, true)).unwrap();
        assert_eq!(
            text,
            "{\n  \"profiles\" : [\n    {\n      \"uid\" : \"u\",\n      \"labels\" : { },\n      \"roles\" : [ ]\n    }\n  ],\n  \"n\" : 1\n}\n"
        );
    }

    #[test]
    fn a_401_envelope_mirrors_the_challenge_headers() {
        let body = error_body(&Error::Unauthenticated {
            reason: "missing authentication credentials for REST request [/]".into(),
            challenge: Challenge::Default,
            unsuccessful_credentials: None,
        });
        assert_eq!(body["status"], 401);
        assert_eq!(body["error"]["type"], "security_exception");
        assert_eq!(
            body["error"]["root_cause"][0]["header"]["WWW-Authenticate"][0],
            "Basic realm=\"security\", charset=\"UTF-8\""
        );
        assert_eq!(
            body["error"]["header"]["WWW-Authenticate"][1],
            "Bearer realm=\"security\""
        );
    }
}
