//! Media-type negotiation as Elasticsearch does it (its `ParsedMediaType`, `RestRequest` and
//! `RestCompatibleVersionHelper`): JSON bodies only, header syntax checked, the vendor type's
//! `compatible-with` version validated, agreed between the headers and echoed back.

use crate::error::Error;
use axum::http::{header, HeaderMap, HeaderName};

/// The newest compatible-with version; what a header without one counts as.
const CURRENT_VERSION: i64 = 9;
/// The oldest compatible-with version the gateway answers (8.x and 7.x clients both work).
const MINIMUM_VERSION: i64 = 7;

/// The response media type: the vendor type echoes the caller's compatible-with version.
pub(super) struct MediaTypes {
    pub(super) content_type: &'static str,
}

/// One media type from a header: `type/subtype` and its parameters, lower-cased.
#[derive(Debug, PartialEq)]
struct ParsedMediaType {
    /// The header as sent, for messages.
    original: String,
    essence: String,
    parameters: Vec<(String, String)>,
}

/// A token character (RFC 7230 §3.2.6), what type and subtype are made of.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_tchar)
}

/// Splits like Java's `String.split`: trailing empty pieces are dropped.
fn java_split(text: &str, separator: char) -> Vec<&str> {
    let mut pieces: Vec<&str> = text.split(separator).collect();
    while pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    if pieces == [""] {
        pieces.clear();
    }
    pieces
}

/// Parses one header value. `Ok(None)` for a list of media ranges (anything with a comma) and
/// for `*/*`: Elasticsearch treats those as if no header had been sent. `Err` carries the
/// `illegal_argument_exception` reason.
fn parse_media_type(value: &str) -> Result<Option<ParsedMediaType>, String> {
    if value.contains(',') || value == "*/*" {
        return Ok(None);
    }
    let lower = value.to_lowercase();
    let elements = java_split(&lower, ';');
    let invalid_type = || format!("invalid media-type [{value}]");
    let first = elements.first().copied().unwrap_or_default();
    let type_and_subtype = java_split(first, '/');
    let [kind, subtype] = type_and_subtype.as_slice() else {
        return Err(invalid_type());
    };
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if !is_token(kind) || !is_token(subtype) {
        return Err(invalid_type());
    }
    let mut parameters = Vec::new();
    for element in elements.iter().skip(1) {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        // Spaces may surround a parameter, but not its `=`.
        let pair = java_split(element, '=');
        let [name, parameter_value] = pair.as_slice() else {
            return Err(format!("invalid parameters for header [{value}]"));
        };
        let ends_with_space = name.chars().last().is_none_or(char::is_whitespace);
        let starts_with_space = parameter_value
            .chars()
            .next()
            .is_none_or(char::is_whitespace);
        if ends_with_space || starts_with_space {
            return Err(format!("invalid parameters for header [{value}]"));
        }
        parameters.push((name.trim().to_owned(), parameter_value.trim().to_owned()));
    }
    Ok(Some(ParsedMediaType {
        original: value.to_owned(),
        essence: format!("{kind}/{subtype}"),
        parameters,
    }))
}

/// Reads and parses the header `name`: absent is `None`; sent twice or blank is refused.
fn parse_header(
    headers: &HeaderMap,
    name: HeaderName,
    label: &'static str,
) -> Result<Option<ParsedMediaType>, Error> {
    let invalid = |detail: String| Error::MediaTypeHeader {
        headers: label,
        cause_type: "illegal_argument_exception",
        detail,
    };
    let mut values = headers.get_all(&name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid(format!(
            "Incorrect header [{label}]. Only one value should be provided"
        )));
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    if text.trim().is_empty() {
        return Err(invalid(format!("Header [{label}] cannot be empty.")));
    }
    parse_media_type(&text).map_err(invalid)
}

impl ParsedMediaType {
    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A JSON body type (Elasticsearch's JSON `XContentType`), with a well-formed version if any.
    fn is_json(&self) -> bool {
        let version_ok = self
            .parameter("compatible-with")
            .is_none_or(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        matches!(
            self.essence.as_str(),
            "application/json"
                | "application/x-ndjson"
                | "application/*"
                | "application/vnd.elasticsearch+json"
                | "application/vnd.elasticsearch+x-ndjson"
        ) && version_ok
    }
}

/// The header as Elasticsearch prints it in messages: as sent, or `null`.
fn shown(header: &Option<ParsedMediaType>) -> &str {
    header.as_ref().map_or("null", |h| h.original.as_str())
}

/// A compatible-with version problem: `status_exception` under both headers' names.
fn version_error(detail: String) -> Error {
    Error::MediaTypeHeader {
        headers: "Accept, Content-Type",
        cause_type: "status_exception",
        detail,
    }
}

/// The compatible-with version a header asks for, if any. One that is not a supported version
/// (or not a number) is refused, naming the header.
fn requested_version(header: &Option<ParsedMediaType>, label: &str) -> Result<Option<i64>, Error> {
    let Some(text) = header.as_ref().and_then(|h| h.parameter("compatible-with")) else {
        return Ok(None);
    };
    let parsed = text.parse::<i8>().map(i64::from);
    match parsed {
        Ok(version) if (MINIMUM_VERSION..=CURRENT_VERSION).contains(&version) => Ok(Some(version)),
        _ => {
            let found = parsed.map_or_else(|_| text.to_owned(), |v| v.to_string());
            Err(version_error(format!(
                "{label} version must be either version {CURRENT_VERSION}, 8 or {MINIMUM_VERSION}, but found {found}. {label}={}",
                shown(header)
            )))
        }
    }
}

pub(super) fn negotiate(headers: &HeaderMap, has_body: bool) -> Result<MediaTypes, Error> {
    let accept = parse_header(headers, header::ACCEPT, "Accept")?;
    let content_type = parse_header(headers, header::CONTENT_TYPE, "Content-Type")?;
    if has_body {
        match (&content_type, headers.get(header::CONTENT_TYPE)) {
            (_, None) => {
                return Err(Error::UnsupportedContentType(
                    "Content-Type header is missing".into(),
                ))
            }
            (Some(parsed), _) if parsed.is_json() => {}
            (_, Some(raw)) => {
                return Err(Error::UnsupportedContentType(format!(
                    "Content-Type header [{}] is not supported",
                    String::from_utf8_lossy(raw.as_bytes())
                )))
            }
        }
    }
    // A header without a version counts as the current one.
    let accept_requested = requested_version(&accept, "Accept")?;
    let version = accept_requested.unwrap_or(CURRENT_VERSION);
    if has_body {
        let content_requested = requested_version(&content_type, "Content-Type")?;
        let both = format!(
            "Accept={}, Content-Type={}",
            shown(&accept),
            shown(&content_type)
        );
        if content_requested.unwrap_or(CURRENT_VERSION) != version {
            return Err(version_error(format!(
                "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. {both}"
            )));
        }
        if accept_requested.is_some() != content_requested.is_some() {
            return Err(version_error(format!(
                "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version. {both}"
            )));
        }
    }
    // The response format follows the Accept header when it names a vendor type, as
    // Elasticsearch builds the response media type from it.
    let vendor_accept = accept
        .as_ref()
        .is_some_and(|a| a.essence.starts_with("application/vnd.elasticsearch+"));
    let content_type = match (vendor_accept && accept_requested.is_some(), version) {
        (true, 7) => "application/vnd.elasticsearch+json;compatible-with=7",
        (true, 8) => "application/vnd.elasticsearch+json;compatible-with=8",
        (true, _) => "application/vnd.elasticsearch+json;compatible-with=9",
        (false, _) => "application/json",
    };
    Ok(MediaTypes { content_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parsed(value: &str) -> Option<(String, Vec<(String, String)>)> {
        parse_media_type(value)
            .unwrap()
            .map(|p| (p.essence, p.parameters))
    }

    #[test]
    fn media_types_parse_as_elasticsearch_parses_them() {
        assert_eq!(
            parsed("Application/VND.Elasticsearch+JSON; Compatible-With=8"),
            Some((
                "application/vnd.elasticsearch+json".into(),
                vec![("compatible-with".into(), "8".into())]
            ))
        );
        assert_eq!(
            parsed(" application / json ;; charset=utf-8 ;"),
            Some((
                "application/json".into(),
                vec![("charset".into(), "utf-8".into())]
            ))
        );
        // Lists of media ranges and `*/*` count as no header.
        assert_eq!(parsed("application/json, text/plain"), None);
        assert_eq!(parsed("*/*"), None);
        assert_eq!(
            parsed("*/*; q=0.8"),
            Some(("*/*".into(), vec![("q".into(), "0.8".into())]))
        );
        for bad in [
            "json",
            "application/",
            "/json",
            "a/b/c",
            "appli cation/json",
            "a/b@c",
        ] {
            assert_eq!(
                parse_media_type(bad),
                Err(format!("invalid media-type [{bad}]")),
                "{bad}"
            );
        }
        for bad in [
            "application/json; charset",
            "application/json; charset=",
            "application/json; =utf-8",
            "application/json; charset =utf-8",
            "application/json; charset= utf-8",
            "application/json; a=b=c",
        ] {
            assert_eq!(
                parse_media_type(bad),
                Err(format!("invalid parameters for header [{bad}]")),
                "{bad}"
            );
        }
    }

    fn negotiated(
        accept: Option<&str>,
        content_type: Option<&str>,
        body: bool,
    ) -> Result<&'static str, String> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        if let Some(content_type) = content_type {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
        }
        negotiate(&headers, body)
            .map(|m| m.content_type)
            .map_err(|e| match e {
                Error::MediaTypeHeader { detail, .. } => detail,
                other => other.reason(),
            })
    }

    const V8: &str = "application/vnd.elasticsearch+json;compatible-with=8";
    const V9: &str = "application/vnd.elasticsearch+json; compatible-with=9";

    #[test]
    fn compatible_versions_follow_elasticsearch_rules() {
        assert_eq!(negotiated(Some(V8), Some(V8), true), Ok(V8));
        assert_eq!(negotiated(Some(V8), None, false), Ok(V8));
        // Without a body the Content-Type is ignored.
        assert_eq!(negotiated(Some(V8), Some(V9), false), Ok(V8));
        assert_eq!(negotiated(None, Some(V8), false), Ok("application/json"));
        assert_eq!(
            negotiated(Some(V8), Some(V9), true),
            Err(format!("A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. Accept={V8}, Content-Type={V9}"))
        );
        assert_eq!(
            negotiated(Some(V9), Some("application/json"), true),
            Err(format!("A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version. Accept={V9}, Content-Type=application/json"))
        );
        assert_eq!(
            negotiated(None, Some(V8), true),
            Err(format!("A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. Accept=null, Content-Type={V8}"))
        );
        assert_eq!(
            negotiated(Some("application/vnd.elasticsearch+json;compatible-with=6"), None, false),
            Err("Accept version must be either version 9, 8 or 7, but found 6. Accept=application/vnd.elasticsearch+json;compatible-with=6".into())
        );
        assert_eq!(
            negotiated(Some(V8), Some("application/vnd.elasticsearch+json;compatible-with=10"), true),
            Err("Content-Type version must be either version 9, 8 or 7, but found 10. Content-Type=application/vnd.elasticsearch+json;compatible-with=10".into())
        );
        // The JavaScript client: a list of ranges on body-less calls, vendor types with a body.
        let js_accept = "application/vnd.elasticsearch+json; compatible-with=9,text/plain";
        assert_eq!(
            negotiated(Some(js_accept), None, false),
            Ok("application/json")
        );
        assert_eq!(
            negotiated(Some(V9), Some(V9), true),
            Ok("application/vnd.elasticsearch+json;compatible-with=9")
        );
        assert_eq!(
            negotiated(Some("*/*"), Some("application/json"), true),
            Ok("application/json")
        );
        assert_eq!(
            negotiated(Some("text/plain"), None, false),
            Ok("application/json")
        );
    }

    #[test]
    fn malformed_or_repeated_headers_are_refused_naming_the_header() {
        let refused = |headers: HeaderMap| match negotiate(&headers, false) {
            Err(Error::MediaTypeHeader {
                headers,
                cause_type,
                detail,
            }) => (headers, cause_type, detail),
            _ => panic!("accepted"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("nonsense"));
        assert_eq!(
            refused(headers),
            (
                "Accept",
                "illegal_argument_exception",
                "invalid media-type [nonsense]".into()
            )
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("  "));
        assert_eq!(
            refused(headers),
            (
                "Content-Type",
                "illegal_argument_exception",
                "Header [Content-Type] cannot be empty.".into()
            )
        );
        let mut headers = HeaderMap::new();
        headers.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert_eq!(
            refused(headers),
            (
                "Accept",
                "illegal_argument_exception",
                "Incorrect header [Accept]. Only one value should be provided".into()
            )
        );
    }
}
