//! The Elasticsearch-compatible JSON gateway.
//!
//! One axum fallback handler does Elasticsearch's own routing so every router-level answer
//! (unknown route, wrong method, bad media type) has Elasticsearch's exact shape. The pipeline
//! runs in Elasticsearch's order: route → media types → body size → authentication → the
//! endpoint (body parse, query parameters, then the engine call).

pub mod body;
mod handlers;
mod json;
pub mod render;

use crate::auth::parse_authorization;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::limits::InFlightBytes;
use crate::transport::TransportLimits;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Every endpoint the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Info,
    Activate,
    GetProfiles,
    Authenticate,
    GetUsers,
    PutUser,
    DeleteUser,
    ChangePassword,
    EnableUser,
    DisableUser,
    GetRoles,
    PutRole,
    DeleteRole,
    CreateToken,
    InvalidateToken,
    UpdateProfileData,
    EnableProfile,
    DisableProfile,
    SuggestProfiles,
}

impl Endpoint {
    /// The name used in logs and metrics (never the raw URI, which holds uids and names).
    fn name(self) -> &'static str {
        match self {
            Endpoint::Info => "info",
            Endpoint::Activate => "activate_profile",
            Endpoint::GetProfiles => "get_profiles",
            Endpoint::Authenticate => "authenticate",
            Endpoint::GetUsers => "get_users",
            Endpoint::PutUser => "put_user",
            Endpoint::DeleteUser => "delete_user",
            Endpoint::ChangePassword => "change_password",
            Endpoint::EnableUser => "enable_user",
            Endpoint::DisableUser => "disable_user",
            Endpoint::GetRoles => "get_roles",
            Endpoint::PutRole => "put_role",
            Endpoint::DeleteRole => "delete_role",
            Endpoint::CreateToken => "create_token",
            Endpoint::InvalidateToken => "invalidate_token",
            Endpoint::UpdateProfileData => "update_profile_data",
            Endpoint::EnableProfile => "enable_profile",
            Endpoint::DisableProfile => "disable_profile",
            Endpoint::SuggestProfiles => "suggest_profiles",
        }
    }
}

/// A path pattern (`{}` matches one segment) and what each method does there. Literal
/// patterns are listed before the wildcard ones they overlap, as Elasticsearch's trie prefers.
/// Path segments and the endpoint each method reaches there.
type Route = (&'static [&'static str], &'static [(Method, Endpoint)]);

const ROUTES: &[Route] = &[
    (&[], &[(Method::GET, Endpoint::Info)]),
    (
        &["_security", "profile", "_activate"],
        &[(Method::POST, Endpoint::Activate)],
    ),
    (
        &["_security", "profile", "_suggest"],
        &[
            (Method::GET, Endpoint::SuggestProfiles),
            (Method::POST, Endpoint::SuggestProfiles),
        ],
    ),
    (
        &["_security", "profile", "{}"],
        &[(Method::GET, Endpoint::GetProfiles)],
    ),
    (
        &["_security", "profile", "{}", "_data"],
        &[
            (Method::POST, Endpoint::UpdateProfileData),
            (Method::PUT, Endpoint::UpdateProfileData),
        ],
    ),
    (
        &["_security", "profile", "{}", "_enable"],
        &[
            (Method::POST, Endpoint::EnableProfile),
            (Method::PUT, Endpoint::EnableProfile),
        ],
    ),
    (
        &["_security", "profile", "{}", "_disable"],
        &[
            (Method::POST, Endpoint::DisableProfile),
            (Method::PUT, Endpoint::DisableProfile),
        ],
    ),
    (
        &["_security", "_authenticate"],
        &[(Method::GET, Endpoint::Authenticate)],
    ),
    (&["_security", "user"], &[(Method::GET, Endpoint::GetUsers)]),
    (
        &["_security", "user", "_password"],
        &[
            (Method::POST, Endpoint::ChangePassword),
            (Method::PUT, Endpoint::ChangePassword),
        ],
    ),
    (
        &["_security", "user", "{}"],
        &[
            (Method::GET, Endpoint::GetUsers),
            (Method::POST, Endpoint::PutUser),
            (Method::PUT, Endpoint::PutUser),
            (Method::DELETE, Endpoint::DeleteUser),
        ],
    ),
    (
        &["_security", "user", "{}", "_password"],
        &[
            (Method::POST, Endpoint::ChangePassword),
            (Method::PUT, Endpoint::ChangePassword),
        ],
    ),
    (
        &["_security", "user", "{}", "_enable"],
        &[
            (Method::POST, Endpoint::EnableUser),
            (Method::PUT, Endpoint::EnableUser),
        ],
    ),
    (
        &["_security", "user", "{}", "_disable"],
        &[
            (Method::POST, Endpoint::DisableUser),
            (Method::PUT, Endpoint::DisableUser),
        ],
    ),
    (
        &["_security", "oauth2", "token"],
        &[
            (Method::POST, Endpoint::CreateToken),
            (Method::DELETE, Endpoint::InvalidateToken),
        ],
    ),
    (&["_security", "role"], &[(Method::GET, Endpoint::GetRoles)]),
    (
        &["_security", "role", "{}"],
        &[
            (Method::GET, Endpoint::GetRoles),
            (Method::POST, Endpoint::PutRole),
            (Method::PUT, Endpoint::PutRole),
            (Method::DELETE, Endpoint::DeleteRole),
        ],
    ),
];

/// Elasticsearch lists allowed methods in this order.
const METHOD_ORDER: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::PATCH,
    Method::TRACE,
    Method::CONNECT,
];

/// Shared gateway state.
#[derive(Clone)]
pub struct Gateway {
    engine: Engine,
    max_body_bytes: usize,
    transport: TransportLimits,
    in_flight: Arc<InFlightBytes>,
}

/// The gateway's router.
pub fn router(engine: Engine, max_body_bytes: usize, transport: TransportLimits) -> Router {
    Router::new().fallback(dispatch).with_state(Gateway {
        engine,
        max_body_bytes,
        in_flight: InFlightBytes::new(transport.max_in_flight_body_bytes as u64),
        transport,
    })
}

/// Elasticsearch's answers for a request line or headers over its limits (Netty's decoder
/// errors, which Elasticsearch renders as 400s).
fn check_head_limits(
    parts: &axum::http::request::Parts,
    limits: &TransportLimits,
) -> Result<(), Error> {
    // `METHOD SP URI SP HTTP/1.1`
    let line = parts.method.as_str().len() + parts.uri.to_string().len() + " HTTP/1.1 ".len();
    if line > limits.max_initial_line_bytes {
        return Err(Error::TooLongHttpLine(format!(
            "An HTTP line is larger than {} bytes.",
            limits.max_initial_line_bytes
        )));
    }
    let headers: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    if headers > limits.max_header_bytes {
        return Err(Error::TooLongHttpHeader(format!(
            "HTTP header is larger than {} bytes.",
            limits.max_header_bytes
        )));
    }
    Ok(())
}

/// What a request resolved to, with its decoded path parameters and query string.
pub(crate) struct Call {
    endpoint: Endpoint,
    method: Method,
    /// Decoded `{}` segments in order.
    path_params: Vec<String>,
    /// Decoded query parameters in order.
    query: Vec<(String, String)>,
    /// The path without the query, for Elasticsearch's messages.
    path: String,
    /// The body, if one was sent (an empty body counts as none).
    body: Option<Bytes>,
}

/// A successful answer.
pub(crate) struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
        }
    }
}

enum Routed {
    Found(Endpoint, Vec<String>),
    WrongMethod(Vec<Method>),
    NoRoute,
}

fn route(method: &Method, segments: &[&str]) -> Result<Routed, Error> {
    let mut allowed: Vec<Method> = Vec::new();
    for (pattern, methods) in ROUTES {
        if pattern.len() != segments.len() {
            continue;
        }
        let matches = pattern
            .iter()
            .zip(segments)
            .all(|(p, s)| *p == "{}" || p == s);
        if !matches {
            continue;
        }
        if let Some((_, endpoint)) = methods.iter().find(|(m, _)| m == method) {
            let mut params = Vec::new();
            for (p, s) in pattern.iter().zip(segments) {
                if *p == "{}" {
                    let decoded = percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map_err(|_| {
                            Error::IllegalArgument(format!(
                                "unable to decode path segment [{s}] as UTF-8"
                            ))
                        })?;
                    params.push(decoded.into_owned());
                }
            }
            return Ok(Routed::Found(*endpoint, params));
        }
        allowed.extend(methods.iter().map(|(m, _)| m.clone()));
    }
    if allowed.is_empty() {
        return Ok(Routed::NoRoute);
    }
    allowed.sort_by_key(|m| METHOD_ORDER.iter().position(|o| o == m));
    allowed.dedup();
    Ok(Routed::WrongMethod(allowed))
}

/// The response media type: the vendor type echoes the caller's compatible-with version.
struct MediaTypes {
    content_type: &'static str,
}

fn compatible_version(value: &str) -> Option<Result<u8, ()>> {
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

// The error is the finished response; it is built once per rejected request, so its size
// does not matter.
#[allow(clippy::result_large_err)]
fn negotiate(headers: &HeaderMap, has_body: bool) -> Result<MediaTypes, Response<Body>> {
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
                return Err(flat(
                    StatusCode::NOT_ACCEPTABLE,
                    "Content-Type header is missing".into(),
                    true,
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
                    return Err(flat(
                        StatusCode::NOT_ACCEPTABLE,
                        format!("Content-Type header [{ct}] is not supported"),
                        true,
                    ));
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
    let media_error =
        |detail: String| error_response(&Error::MediaTypeHeader(detail), false, "application/json");
    for (name, version) in [
        ("Accept", &accept_version),
        ("Content-Type", &content_version),
    ] {
        if let Some(version) = version {
            if !matches!(version, Ok(7..=9)) {
                let found = version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "null".into());
                return Err(media_error(format!(
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
        return Err(media_error(format!(
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

fn base_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(
    status: StatusCode,
    body: &Value,
    pretty: bool,
    content_type: &str,
) -> Response<Body> {
    base_response(status, content_type, render::to_bytes(body, pretty))
}

fn flat(status: StatusCode, message: String, with_status: bool) -> Response<Body> {
    let body = render::flat_error(message, with_status.then_some(status.as_u16()));
    json_response(status, &body, false, "application/json")
}

fn error_response(error: &Error, pretty: bool, content_type: &str) -> Response<Body> {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &render::error_body(error), pretty, content_type);
    if let Error::Unauthenticated { challenge, .. } = error {
        for value in challenge.header_values() {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
    }
    error.log_server_side();
    response
}

async fn dispatch(State(gateway): State<Gateway>, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    if let Err(error) = check_head_limits(&parts, &gateway.transport) {
        return error_response(&error, false, "application/json");
    }
    let method = parts.method.clone();
    let uri_text = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = {
        let trimmed = path.trim_start_matches('/').trim_end_matches('/');
        if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        }
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let pretty = query.iter().any(|(k, v)| k == "pretty" && v != "false");

    // Prometheus scrapes without credentials, outside Elasticsearch's routes.
    if segments == ["metrics"] && (method == Method::GET || method == Method::HEAD) {
        let text = crate::telemetry::metrics_handle()
            .map(|h| h.render())
            .unwrap_or_default();
        return base_response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            text.into_bytes(),
        );
    }
    // HEAD is GET without a body (clients' `ping()` sends `HEAD /`); hyper drops the body.
    let routing_method = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    let (endpoint, path_params) = match route(&routing_method, &segments) {
        Ok(Routed::Found(endpoint, params)) => (endpoint, params),
        Ok(Routed::WrongMethod(allowed)) => {
            let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            if method == Method::OPTIONS {
                let mut response = base_response(StatusCode::OK, "text/plain", Vec::new());
                if let Ok(value) = HeaderValue::from_str(&names.join(",")) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                return response;
            }
            let mut response = flat(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Incorrect HTTP method for uri [{uri_text}] and method [{method}], allowed: [{}]", names.join(", ")),
                true,
            );
            if let Ok(value) = HeaderValue::from_str(&names.join(",")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        Ok(Routed::NoRoute) => {
            return flat(
                StatusCode::BAD_REQUEST,
                format!("no handler found for uri [{uri_text}] and method [{method}]"),
                false,
            )
        }
        Err(error) => return error_response(&error, pretty, "application/json"),
    };

    let span = tracing::info_span!("http", method = %method, endpoint = endpoint.name());
    let response = async {
        // Authentication first, from the headers alone: an unauthenticated caller never gets
        // the server to buffer a body (Elasticsearch validates security headers before it
        // aggregates the body, too).
        let caller = match authenticate(&gateway.engine, &parts.headers, &uri_text).await {
            Ok(caller) => caller,
            Err(error) => {
                let content_type = negotiate(&parts.headers, false)
                    .map(|media| media.content_type)
                    .unwrap_or("application/json");
                return error_response(&error, pretty, content_type);
            }
        };
        let declared_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared_length.filter(|l| *l > gateway.max_body_bytes as u64) {
            let error = Error::ContentTooLong {
                length,
                limit: gateway.max_body_bytes as u64,
            };
            return error_response(&error, pretty, "application/json");
        }
        // The body's bytes count against the in-flight breaker from before it is read until
        // the response is built. A body of unknown length reserves the most it may be.
        let announced = match axum::body::HttpBody::size_hint(&body).exact() {
            Some(exact) => exact,
            None => gateway.max_body_bytes as u64,
        };
        let _in_flight = match gateway.in_flight.reserve(announced) {
            Ok(reservation) => reservation,
            Err(error) => return error_response(&error, pretty, "application/json"),
        };
        let reading = axum::body::to_bytes(body, gateway.max_body_bytes);
        let read = match tokio::time::timeout(gateway.transport.body_read_timeout, reading).await {
            Ok(read) => read,
            Err(_) => {
                let error = Error::RequestTimeout(format!(
                    "the request body was not received within [{}ms]",
                    gateway.transport.body_read_timeout.as_millis()
                ));
                return error_response(&error, pretty, "application/json");
            }
        };
        let body = match read {
            Ok(bytes) => bytes,
            Err(_) => {
                let length = parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(gateway.max_body_bytes as u64 + 1);
                let error = Error::ContentTooLong {
                    length,
                    limit: gateway.max_body_bytes as u64,
                };
                return error_response(&error, pretty, "application/json");
            }
        };
        let body = (!body.is_empty()).then_some(body);
        let media = match negotiate(&parts.headers, body.is_some()) {
            Ok(media) => media,
            Err(response) => return response,
        };
        let call = Call {
            endpoint,
            method: method.clone(),
            path_params,
            query,
            path,
            body,
        };
        let handled = AssertUnwindSafe(handlers::handle(&gateway.engine, &caller, call))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::Internal("the request failed unexpectedly".into())));
        match handled {
            Ok(Reply { status, body }) => json_response(status, &body, pretty, media.content_type),
            Err(error) => error_response(&error, pretty, media.content_type),
        }
    }
    .instrument(span.clone())
    .await;
    let status = response.status().as_u16();
    metrics::counter!("userprofiles_http_requests_total", "endpoint" => endpoint.name(), "status" => status.to_string()).increment(1);
    metrics::histogram!("userprofiles_http_request_duration_seconds", "endpoint" => endpoint.name()).record(started.elapsed().as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    response
}

async fn authenticate(engine: &Engine, headers: &HeaderMap, uri: &str) -> Result<Caller, Error> {
    let credentials = match headers.get(header::AUTHORIZATION) {
        Some(value) => parse_authorization(value.as_bytes())?,
        None => None,
    };
    engine
        .authenticate(credentials, &format!("REST request [{uri}]"))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(method: Method, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match route(&method, &segments).unwrap() {
            Routed::Found(e, params) => format!("{e:?}{params:?}"),
            Routed::WrongMethod(allowed) => format!("405 {allowed:?}"),
            Routed::NoRoute => "400".into(),
        }
    }

    #[test]
    fn routes_prefer_literals_and_fall_back_to_wildcards_by_method() {
        assert_eq!(
            routed(Method::POST, "/_security/profile/_activate"),
            "Activate[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/profile/_activate"),
            "GetProfiles[\"_activate\"]"
        );
        assert_eq!(
            routed(Method::PUT, "/_security/user/_password"),
            "ChangePassword[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/user/_password"),
            "GetUsers[\"_password\"]"
        );
        assert_eq!(
            routed(Method::DELETE, "/_security/profile/_activate"),
            "405 [GET, POST]"
        );
        assert_eq!(routed(Method::GET, "/_security/nothing"), "400");
        assert_eq!(
            routed(Method::GET, "/_security/user/a%2Cb"),
            "GetUsers[\"a,b\"]"
        );
    }
}
