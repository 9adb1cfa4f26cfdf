//! Media-type negotiation as Elasticsearch does it: JSON bodies only, and the vendor type's
//! `compatible-with` version echoed back.

use crate::error::Error;
use axum::http::{header, HeaderMap};

/// The response media type: the vendor type echoes the caller's compatible-with version.
pub(super) struct MediaTypes {
    pub(super) content_type: &'static str,
}

/// The `compatible-with` version a header asks for: `None` when it names no vendor type.
/// A list of media ranges (anything with a comma, e.g. the JavaScript client's
/// `application/vnd.elasticsearch+json; compatible-with=9,text/plain`) is not parsed as one
/// media type and asks for nothing, so the current version applies, as Elasticsearch's
/// `ParsedMediaType` treats it.
fn compatible_version(value: &str) -> Option<Result<u8, ()>> {
    if value.contains(',') {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    if !lower.contains("application/vnd.elasticsearch+") {
        return None;
    }
    let version = lower
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("compatible-with="))
        .next()
        .map(|v| v.trim().parse::<u8>().map_err(|_| ()));
    Some(version.unwrap_or(Err(())))
}

pub(super) fn negotiate(headers: &HeaderMap, has_body: bool) -> Result<MediaTypes, Error> {
    let header_text = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    let accept = header_text(header::ACCEPT);
    let content_type = header_text(header::CONTENT_TYPE);
    if has_body {
        match &content_type {
            None => {
                return Err(Error::UnsupportedContentType(
                    "Content-Type header is missing".into(),
                ))
            }
            Some(ct) => {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if essence != "application/json" && essence != "application/vnd.elasticsearch+json"
                {
                    return Err(Error::UnsupportedContentType(format!(
                        "Content-Type header [{ct}] is not supported"
                    )));
                }
            }
        }
    }
    let accept_version = accept.as_deref().and_then(compatible_version);
    let content_version = content_type
        .as_deref()
        .filter(|_| has_body)
        .and_then(compatible_version);
    let describe = || {
        format!(
            "Accept={}, Content-Type={}",
            accept.as_deref().unwrap_or("null"),
            content_type.as_deref().unwrap_or("null")
        )
    };
    for (name, version) in [
        ("Accept", &accept_version),
        ("Content-Type", &content_version),
    ] {
        if let Some(version) = version {
            if !matches!(version, Ok(7..=9)) {
                let found = version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "null".into());
                return Err(Error::MediaTypeHeader(format!(
                    "{name} version must be either version 9, 8 or 7, but found {found}. {}",
                    describe()
                )));
            }
        }
    }
    if has_body
        && content_version.is_some()
        && accept_version.is_some()
        && accept_version != content_version
    {
        return Err(Error::MediaTypeHeader(format!(
            "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. {}",
            describe()
        )));
    }
    let content_type = match accept_version.or(content_version) {
        Some(Ok(7)) => "application/vnd.elasticsearch+json;compatible-with=7",
        Some(Ok(8)) => "application/vnd.elasticsearch+json;compatible-with=8",
        Some(Ok(9)) => "application/vnd.elasticsearch+json;compatible-with=9",
        _ => "application/json",
    };
    Ok(MediaTypes { content_type })
}
