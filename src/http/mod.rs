//! The Elasticsearch-compatible JSON gateway.
//!
//! One axum fallback handler does Elasticsearch's own routing so every router-level answer
//! (unknown route, wrong method, bad media type) has Elasticsearch's exact shape. The pipeline
//! runs in Elasticsearch's order: route → media types → body size → authentication → the
//! endpoint (body parse, query parameters, then the engine call).

pub mod body;
mod call;
mod endpoints;
mod json;
mod media;
pub mod render;
mod routes;

use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::limits::InFlightBytes;
use crate::transport::TransportLimits;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use call::{Call, Reply};
use futures_util::FutureExt;
use media::negotiate;
use routes::{route, Route, Routed};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Shared gateway state.
#[derive(Clone)]
pub struct Gateway {
    engine: Engine,
    max_body_bytes: usize,
    transport: TransportLimits,
    in_flight: Arc<InFlightBytes>,
}

/// The gateway as a hyper service. Every request goes to [`dispatch`], which routes with the
/// gateway's own table (Elasticsearch's rules for 404/405 and path decoding); a general-purpose
/// router in front would only repeat that work on every request.
#[derive(Clone)]
pub struct GatewayService(Arc<Gateway>);

/// The gateway over `engine`.
pub fn service(
    engine: Engine,
    max_body_bytes: usize,
    transport: TransportLimits,
) -> GatewayService {
    GatewayService(Arc::new(Gateway {
        engine,
        max_body_bytes,
        in_flight: InFlightBytes::new(transport.max_in_flight_body_bytes as u64),
        transport,
    }))
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for GatewayService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Self::Error>> + Send>,
    >;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let gateway = Arc::clone(&self.0);
        Box::pin(async move { Ok(dispatch(&gateway, request.map(Body::new)).await) })
    }
}

/// Elasticsearch's answers for a request line or headers over its limits (Netty's decoder
/// errors, which Elasticsearch renders as 400s).
fn check_head_limits(
    parts: &axum::http::request::Parts,
    uri_text: &str,
    limits: &TransportLimits,
) -> Result<(), Error> {
    // `METHOD SP URI SP HTTP/1.1`
    let line = parts.method.as_str().len() + uri_text.len() + " HTTP/1.1 ".len();
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

/// Elasticsearch's product header, on every answer (clients check it).
const X_ELASTIC_PRODUCT: header::HeaderName = header::HeaderName::from_static("x-elastic-product");
const ELASTICSEARCH: HeaderValue = HeaderValue::from_static("Elasticsearch");

fn base_response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(X_ELASTIC_PRODUCT, ELASTICSEARCH);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(
    status: StatusCode,
    body: &Value,
    pretty: bool,
    content_type: &'static str,
) -> Response<Body> {
    base_response(status, content_type, render::to_bytes(body, pretty))
}

fn error_response(error: &Error, pretty: bool, content_type: &'static str) -> Response<Body> {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &render::error_body(error), pretty, content_type);
    match error {
        Error::Unauthenticated { challenge, .. } => {
            for value in challenge.header_values() {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
        }
        Error::MethodNotAllowed { allowed, .. } => allow_header(&mut response, allowed),
        _ => {}
    }
    error.log_server_side();
    response
}

fn allow_header(response: &mut Response<Body>, allowed: &[String]) {
    if let Ok(value) = HeaderValue::from_str(&allowed.join(",")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
}

async fn dispatch(gateway: &Gateway, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let _in_flight = crate::telemetry::InFlight::start("http");
    let (parts, body) = request.into_parts();
    let uri_text = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    if let Err(error) = check_head_limits(&parts, &uri_text, &gateway.transport) {
        return error_response(&error, false, "application/json");
    }
    let method = parts.method.clone();
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

    // HEAD is GET without a body (clients' `ping()` sends `HEAD /`); hyper drops the body.
    let routing_method = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    let (route, path_params) = match route(&routing_method, &segments) {
        Ok(Routed::Found(route, params)) => (route, params),
        Ok(Routed::WrongMethod(allowed)) => {
            let allowed: Vec<String> = allowed.iter().map(|m| m.as_str().to_owned()).collect();
            if method == Method::OPTIONS {
                let mut response = base_response(StatusCode::OK, "text/plain", Vec::new());
                allow_header(&mut response, &allowed);
                return response;
            }
            let error = Error::MethodNotAllowed {
                uri: uri_text,
                method: method.to_string(),
                allowed,
            };
            return error_response(&error, false, "application/json");
        }
        Ok(Routed::NoRoute) => {
            let error = Error::NoHandler {
                uri: uri_text,
                method: method.to_string(),
            };
            return error_response(&error, false, "application/json");
        }
        Err(error) => return error_response(&error, pretty, "application/json"),
    };

    let span = http_server_span(&method, route, &parts.headers);
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
        // hyper knows the body's length when it was declared (Content-Length); then an
        // oversized body is refused before a byte of it is read.
        let declared_length = axum::body::HttpBody::size_hint(&body).exact();
        if let Some(length) = declared_length.filter(|l| *l > gateway.max_body_bytes as u64) {
            let error = Error::ContentTooLong {
                length,
                limit: gateway.max_body_bytes as u64,
            };
            return error_response(&error, pretty, "application/json");
        }
        // The body's bytes count against the in-flight breaker from before it is read until
        // the response is built. A body of unknown length reserves the most it may be.
        let announced = declared_length.unwrap_or(gateway.max_body_bytes as u64);
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
                let length = declared_length.unwrap_or(gateway.max_body_bytes as u64 + 1);
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
            Err(error) => return error_response(&error, false, "application/json"),
        };
        let call = Call {
            method: method.clone(),
            path_params,
            query,
            path,
            body,
        };
        let handled = AssertUnwindSafe(endpoints::run(
            route.handler,
            &gateway.engine,
            &caller,
            &call,
        ))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::panicked()));
        match handled {
            Ok(Reply { status, body }) => {
                base_response(status, media.content_type, body.to_bytes(pretty))
            }
            Err(error) => error_response(&error, pretty, media.content_type),
        }
    }
    .instrument(span.clone())
    .await;
    let status = response.status().as_u16();
    // OpenTelemetry's HTTP server metric as Prometheus renders it: the route template, never
    // the raw path (which holds uids and names).
    crate::telemetry::http_request_duration(method_label(&method), route.template, status)
        .record(started.elapsed().as_secs_f64());
    if crate::telemetry::traces_exported() {
        span.record("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
        }
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    response
}

/// The server span of a gateway request. With traces exported it is named `METHOD /route
/// template`, carries the http.* attributes and continues the caller's `traceparent`;
/// otherwise it only labels log lines.
fn http_server_span(method: &Method, route: &Route, headers: &HeaderMap) -> tracing::Span {
    if !crate::telemetry::traces_exported() {
        return tracing::info_span!("http", method = %method, endpoint = route.name);
    }
    let method_label = method_label(method);
    let span = tracing::info_span!(
        "http",
        method = %method,
        endpoint = route.name,
        otel.name = %format_args!("{method_label} {}", route.template),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method_label,
        http.route = route.template,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, headers);
    span
}

/// Names a REST request in 401 reasons, as Elasticsearch does.
struct RestRequest<'a>(&'a str);

impl std::fmt::Display for RestRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "REST request [{}]", self.0)
    }
}

/// The `http.request.method` value: a standard method, or `_OTHER` (bounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

async fn authenticate(
    engine: &Engine,
    headers: &HeaderMap,
    uri: &str,
) -> Result<std::sync::Arc<Caller>, Error> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    engine.authenticate(authorization, &RestRequest(uri)).await
}
