//! A routed request as the endpoints see it, and Elasticsearch's REST-layer coercions of its
//! query parameters, path lists and body fields.

use super::body::{object_fields_off_worker, token_name, Field};
use super::{json, render};
use crate::engine::profiles::GetProfilesResult;
use crate::error::Error;
use crate::model::JsonObject;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::Value;

/// Parameters every endpoint accepts (they shape the response, not the operation).
const RESPONSE_PARAMS: &[&str] = &["pretty", "human", "error_trace", "filter_path", "format"];

/// What a request resolved to, with its decoded path parameters and query string.
pub(crate) struct Call {
    pub(super) method: Method,
    /// Decoded `{}` segments in order.
    pub(super) path_params: Vec<String>,
    /// Decoded query parameters in order.
    pub(super) query: Vec<(String, String)>,
    /// The path without the query, for Elasticsearch's messages.
    pub(super) path: String,
    /// The body, if one was sent (an empty body counts as none).
    pub(super) body: Option<Bytes>,
}

/// A successful answer.
pub(crate) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: ReplyBody,
}

/// A reply's document: a `Value`, or an engine result the hot paths serialize directly
/// (turned into a `Value` only when `filter_path` or `pretty` needs one).
pub(crate) enum ReplyBody {
    Value(Value),
    Profiles(GetProfilesResult),
}

impl ReplyBody {
    pub(super) fn into_value(self) -> Value {
        match self {
            Self::Value(value) => value,
            Self::Profiles(result) => json::get_profiles(&result),
        }
    }

    pub(super) fn to_bytes(&self, pretty: bool) -> Vec<u8> {
        match self {
            Self::Value(value) => render::to_bytes(value, pretty),
            Self::Profiles(result) if pretty => render::to_bytes(&json::get_profiles(result), true),
            Self::Profiles(result) => {
                // Sized for a typical profile up front: growing from serde_json's 128 bytes
                // took two reallocations per response.
                let mut out = Vec::with_capacity(256 + 512 * result.profiles.len().min(64));
                match serde_json::to_writer(&mut out, &json::ProfilesBody(result)) {
                    Ok(()) => out,
                    Err(_) => Vec::new(),
                }
            }
        }
    }
}

impl Reply {
    pub(super) fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: ReplyBody::Value(body),
        }
    }

    pub(super) fn profiles(result: GetProfilesResult) -> Self {
        Self {
            status: StatusCode::OK,
            body: ReplyBody::Profiles(result),
        }
    }
}

impl Call {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The one path parameter of a `{name}` route.
    pub(super) fn path_param(&self) -> &str {
        self.path_params.first().map(String::as_str).unwrap_or("")
    }

    /// Elasticsearch rejects any query parameter the endpoint did not consume.
    pub(super) fn check_params(&self, allowed: &[&str]) -> Result<(), Error> {
        let mut unknown: Vec<&str> = Vec::new();
        for (key, _) in &self.query {
            if !allowed.contains(&key.as_str())
                && !RESPONSE_PARAMS.contains(&key.as_str())
                && !unknown.contains(&key.as_str())
            {
                unknown.push(key);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let noun = if unknown.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        let listed: Vec<String> = unknown.iter().map(|k| format!("[{k}]")).collect();
        Err(Error::IllegalArgument(format!(
            "request [{}] contains unrecognized {noun}: {}",
            self.path,
            listed.join(", ")
        )))
    }

    /// The body's top-level fields, parsed by the strict object parser named `parser`.
    pub(super) async fn body_fields(&self, parser: &'static str) -> Result<Vec<Field>, Error> {
        let body = self
            .body
            .clone()
            .ok_or_else(|| Error::Parse("request body is required".into()))?;
        object_fields_off_worker(body, parser).await
    }

    pub(super) fn no_body(&self) -> Result<(), Error> {
        match self.body {
            Some(_) => Err(Error::IllegalArgument(format!(
                "request [{} {}] does not support having a body",
                self.method, self.path
            ))),
            None => Ok(()),
        }
    }

    /// A body-less request whose only parameters are `allowed` (and the response ones).
    pub(super) fn bare(&self, allowed: &[&str]) -> Result<(), Error> {
        self.no_body()?;
        self.check_params(allowed)
    }

    /// Validates `refresh`. Every write here is visible once acknowledged, so every valid value
    /// behaves like `wait_for`.
    pub(super) fn refresh(&self) -> Result<(), Error> {
        match self.param("refresh") {
            None | Some("true" | "false" | "wait_for" | "") => Ok(()),
            Some(other) => Err(Error::IllegalArgument(format!(
                "Unknown value for refresh: [{other}]."
            ))),
        }
    }

    /// A comma-separated path parameter split as Java's `String.split(",")` does: inner empty
    /// items kept, trailing empty items dropped, nothing but commas giving an empty list.
    pub(super) fn path_list(&self) -> Vec<String> {
        let Some(raw) = self.path_params.first() else {
            return Vec::new();
        };
        let mut items: Vec<String> = raw.split(',').map(str::to_owned).collect();
        while items.last().is_some_and(|s| s.is_empty()) {
            items.pop();
        }
        items
    }

    pub(super) fn bool_param(&self, name: &str) -> Result<bool, Error> {
        match self.param(name) {
            None => Ok(false),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(Error::IllegalArgument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }

    /// A `long` query parameter; negative values are kept (the engine treats them as unset).
    pub(super) fn long_param(&self, name: &str) -> Result<Option<i64>, Error> {
        self.param(name)
            .map(|value| {
                value.parse::<i64>().map_err(|_| {
                    Error::IllegalArgument(format!(
                        "Failed to parse long parameter [{name}] with value [{value}]"
                    ))
                })
            })
            .transpose()
    }
}

/// The security parsers' type error (a `parse_exception`, unlike ObjectParser's).
pub(super) fn expected_type(field: &Field, expected: &str) -> Error {
    Error::Parse(format!(
        "expected field [{}] to be of type {expected}, but found [{}] instead",
        field.name,
        token_name(&field.value)
    ))
}

pub(super) fn optional_string(field: &Field) -> Result<Option<String>, Error> {
    match &field.value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Null => Ok(None),
        _ => Err(expected_type(field, "string")),
    }
}

pub(super) fn object(field: &Field) -> Result<JsonObject, Error> {
    match &field.value {
        Value::Object(map) => Ok(map.clone()),
        _ => Err(expected_type(field, "object")),
    }
}

/// A list of strings, also accepted as one comma-separated string (user roles).
pub(super) fn string_list(field: &Field, allow_comma_string: bool) -> Result<Vec<String>, Error> {
    match &field.value {
        Value::String(s) if allow_comma_string => Ok(s
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| expected_type(field, "string"))
            })
            .collect(),
        _ => Err(expected_type(field, "array")),
    }
}
