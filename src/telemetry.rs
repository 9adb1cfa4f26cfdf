//! Logging, traces and metrics set-up.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tracing_subscriber::{fmt, EnvFilter};

/// Whether spans are exported over OTLP; read on the request path, so a plain flag.
static TRACES_EXPORTED: AtomicBool = AtomicBool::new(false);

/// Whether request spans are exported (and incoming `traceparent`s continued).
pub fn traces_exported() -> bool {
    TRACES_EXPORTED.load(Ordering::Relaxed)
}

/// Flushes exported spans when the process ends.
#[must_use = "dropping the guard stops the trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Sends what is still batched (bounded by the exporter's timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "flushing the last spans failed");
            }
        }
    }
}

/// Installs the global tracing subscriber: level from `RUST_LOG` (default `info`) for the log
/// lines; when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set,
/// an OpenTelemetry layer exporting spans over OTLP/gRPC too (the SDK reads the other `OTEL_*`
/// variables: sampler, resource attributes, batch and exporter settings). Must run inside the
/// tokio runtime (the exporter's channel lives on it).
pub fn init_logging(format: LogFormat) -> Result<TelemetryGuard, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let endpoint_set = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !endpoint_set {
        // Exactly the subscriber there was before traces: nothing on the request path pays for
        // them when they are off.
        let builder = fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        let _ = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        return Ok(TelemetryGuard { provider: None });
    }

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("cannot set up the OTLP trace exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named_by_env = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    if !named_by_env {
        resource = resource.with_service_name("userprofiles");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "userprofiles");
    let log_lines = fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let log_lines = match format {
        LogFormat::Text => log_lines.boxed(),
        LogFormat::Json => log_lines.json().flatten_event(true).boxed(),
    };
    // The service's own spans only, down to the store and hashing spans at DEBUG; what the
    // libraries under it emit stays in the logs.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("userprofiles", tracing::Level::DEBUG),
        );
    tracing_subscriber::registry()
        .with(log_lines.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|e| format!("cannot install the tracing subscriber: {e}"))?;
    TRACES_EXPORTED.store(true, Ordering::Relaxed);
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// Whether a child span would join an exported request trace: background work (health pings,
/// the suggest follower, start-up) starts no traces of its own.
pub fn in_traced_request() -> bool {
    traces_exported() && !tracing::Span::current().is_none()
}

/// A DEBUG child span named `name` for work inside a traced request, else a disabled span.
pub fn child_span(name: &'static str) -> tracing::Span {
    if in_traced_request() {
        tracing::debug_span!("step", otel.name = name)
    } else {
        tracing::Span::none()
    }
}

/// Reads W3C `traceparent`/`tracestate` from HTTP headers or gRPC metadata.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// Makes `span` continue the caller's trace (a W3C `traceparent` in `headers`) and records
/// its trace id on it, so every log line inside the request carries it.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

/// Replaces the default panic message (which prints the panic's text, and that text may quote
/// request data such as credentials) with a log line naming only where it happened. Front ends
/// also catch panics per request and answer 500, so one cannot take the process down.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        tracing::error!(%location, "a request task panicked; its message is withheld");
    }));
}

/// Histogram buckets of every `*_seconds` metric, 0.5 ms to 10 s: these requests take
/// milliseconds, and a bucket per doubling-ish step keeps series few.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use. Tests start several servers
/// in one process, and a recorder can be installed only once. `*_seconds` metrics render as
/// Prometheus histograms (what dashboards for `grpc_server_handling_seconds` and
/// `http_server_request_duration_seconds` expect), not summaries.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            start_metrics_upkeep(handle.clone());
            Some(handle)
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets.
const METRICS_UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The recorder keeps every histogram sample (8 bytes) until it is folded into the buckets,
/// which it does only when scraped or when upkeep runs; with nobody scraping `/metrics`, any
/// caller's requests, unauthenticated ones included (each records its duration), grew the
/// process without bound (~40 MB in 20 s of refused requests). Folded once a second, the
/// samples held are at most a second's worth.
fn start_metrics_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(METRICS_UPKEEP_PERIOD);
            handle.run_upkeep();
        });
    if let Err(error) = started {
        tracing::error!(%error, "cannot start the metrics upkeep thread: histogram samples grow until scraped");
    }
}

/// A served gRPC method as go-grpc-prometheus labels it.
#[derive(Debug, Clone, Copy)]
pub struct GrpcMethodLabels {
    /// `/package.Service/Method`, the label in logs and spans.
    pub path: &'static str,
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub grpc_type: &'static str,
    /// The fully qualified service, e.g. `userprofiles.v1.UserProfiles`.
    pub grpc_service: &'static str,
    /// The method, e.g. `GetProfiles`.
    pub grpc_method: &'static str,
}

/// What a path no served method has is labelled as: paths are client-chosen, so using them raw
/// would let anyone create unbounded metric series.
const UNKNOWN_METHOD: GrpcMethodLabels = GrpcMethodLabels {
    path: "unknown",
    grpc_type: "unary",
    grpc_service: "unknown",
    grpc_method: "unknown",
};

/// The labels for a gRPC request path (`UNKNOWN_METHOD`'s for a path no service serves).
pub fn grpc_method_labels(path: &str) -> GrpcMethodLabels {
    served_methods()
        .get(path)
        .copied()
        .unwrap_or(UNKNOWN_METHOD)
}

/// Every `/package.Service/Method` the gRPC listener serves, read once from the descriptor
/// sets, with its labels. The leaked strings are that one table.
fn served_methods() -> &'static HashMap<&'static str, GrpcMethodLabels> {
    static SERVED: OnceLock<HashMap<&'static str, GrpcMethodLabels>> = OnceLock::new();
    SERVED.get_or_init(read_served_methods)
}

fn read_served_methods() -> HashMap<&'static str, GrpcMethodLabels> {
    use prost::Message;
    let sets = [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let mut methods = HashMap::new();
    for encoded in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let grpc_service = leak(format!("{package}.{}", service.name.unwrap_or_default()));
                for method in service.method {
                    let grpc_type = match (
                        method.client_streaming.unwrap_or(false),
                        method.server_streaming.unwrap_or(false),
                    ) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    let grpc_method = leak(method.name.unwrap_or_default());
                    let path = leak(format!("/{grpc_service}/{grpc_method}"));
                    methods.insert(
                        path,
                        GrpcMethodLabels {
                            path,
                            grpc_type,
                            grpc_service,
                            grpc_method,
                        },
                    );
                }
            }
        }
    }
    methods
}

/// A gRPC status code as go-grpc-prometheus (and Go's `codes.Code.String`) spells it.
fn grpc_code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A tower layer recording go-grpc-prometheus's server metrics: `grpc_server_started_total`,
/// `grpc_server_handled_total` (with `grpc_code`) and the `grpc_server_handling_seconds`
/// histogram, labelled `grpc_type`, `grpc_service`, `grpc_method`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the gRPC router.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let method = MethodMetrics::of(request.uri().path());
        method.started.increment(1);
        let started = std::time::Instant::now();
        let in_flight = InFlight::start("grpc");
        let span = grpc_server_span(method.labels, request.headers());
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let _in_flight = in_flight;
            let result = future.instrument(span.clone()).await;
            // Unary failures are "trailers-only" responses: the code is in the headers. A response
            // without it carries its code in the trailers, which for these unary services is OK.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from),
                Err(_) => tonic::Code::Unavailable,
            };
            if traces_exported() {
                span.record("rpc.grpc.status_code", code as i32);
                // The gRPC semantic conventions' server errors; the rest are the caller's.
                use tonic::Code;
                if matches!(
                    code,
                    Code::Unknown
                        | Code::DeadlineExceeded
                        | Code::Unimplemented
                        | Code::Internal
                        | Code::Unavailable
                        | Code::DataLoss
                ) {
                    span.record("otel.status_code", "ERROR");
                }
            }
            method.handled(code).increment(1);
            // DEBUG, unlike the gateway's access line: gRPC callers are mostly services whose
            // calls the metrics count; the line is there when one needs following.
            span.in_scope(|| {
                tracing::debug!(
                    grpc_code = code as i32,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "request"
                )
            });
            method
                .handling_seconds
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// The server span of a gRPC call. With traces exported it is named `package.Service/Method`,
/// carries the rpc.* attributes and continues the caller's `traceparent`; otherwise it only
/// labels log lines.
fn grpc_server_span(labels: GrpcMethodLabels, headers: &axum::http::HeaderMap) -> tracing::Span {
    if !traces_exported() {
        return tracing::info_span!("grpc", method = labels.path);
    }
    let span = tracing::info_span!(
        "grpc",
        method = labels.path,
        otel.name = labels.path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = labels.grpc_service,
        rpc.method = labels.grpc_method,
        rpc.grpc.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, headers);
    span
}

/// One method's metric handles, registered once: looking a labelled metric up in the registry
/// on every call was a visible share of a gRPC request's CPU.
struct MethodMetrics {
    labels: GrpcMethodLabels,
    started: metrics::Counter,
    handling_seconds: metrics::Histogram,
    /// `grpc_server_handled_total` by status code, made on first use of each code.
    handled: [OnceLock<metrics::Counter>; 17],
}

impl MethodMetrics {
    fn new(labels: GrpcMethodLabels) -> Self {
        Self {
            labels,
            started: metrics::counter!(
                "grpc_server_started_total",
                "grpc_type" => labels.grpc_type,
                "grpc_service" => labels.grpc_service,
                "grpc_method" => labels.grpc_method
            ),
            handling_seconds: metrics::histogram!(
                "grpc_server_handling_seconds",
                "grpc_type" => labels.grpc_type,
                "grpc_service" => labels.grpc_service,
                "grpc_method" => labels.grpc_method
            ),
            handled: Default::default(),
        }
    }

    /// The handles for a request path. Built on the first gRPC call, after `app::run` has
    /// installed the recorder (handles made before it would count nowhere).
    fn of(path: &str) -> &'static MethodMetrics {
        static SERVED: OnceLock<HashMap<&'static str, MethodMetrics>> = OnceLock::new();
        static UNKNOWN: OnceLock<MethodMetrics> = OnceLock::new();
        SERVED
            .get_or_init(|| {
                served_methods()
                    .iter()
                    .map(|(path, labels)| (*path, MethodMetrics::new(*labels)))
                    .collect()
            })
            .get(path)
            .unwrap_or_else(|| UNKNOWN.get_or_init(|| MethodMetrics::new(UNKNOWN_METHOD)))
    }

    fn handled(&self, code: tonic::Code) -> &metrics::Counter {
        let labels = self.labels;
        let slot = (code as usize).min(self.handled.len() - 1);
        self.handled[slot].get_or_init(|| {
            metrics::counter!(
                "grpc_server_handled_total",
                "grpc_type" => labels.grpc_type,
                "grpc_service" => labels.grpc_service,
                "grpc_method" => labels.grpc_method,
                "grpc_code" => grpc_code_label(code)
            )
        })
    }
}

/// The `http_server_request_duration_seconds` handle for one method, route and status, made
/// once: the registry lookup behind `metrics::histogram!` builds and hashes the label set on
/// every call. The key space is bounded: methods and routes are fixed sets, statuses are the
/// ones this gateway answers.
pub fn http_request_duration(
    method: &'static str,
    route: &'static str,
    status: u16,
) -> metrics::Histogram {
    type Handles = std::sync::RwLock<
        std::collections::HashMap<(&'static str, &'static str, u16), metrics::Histogram>,
    >;
    static HANDLES: std::sync::OnceLock<Handles> = std::sync::OnceLock::new();
    let handles = HANDLES.get_or_init(Default::default);
    let key = (method, route, status);
    if let Some(handle) = handles
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return handle.clone();
    }
    let handle = metrics::histogram!(
        "http_server_request_duration_seconds",
        "http_request_method" => method,
        "http_route" => route,
        "http_response_status_code" => status_label(status)
    );
    handles
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, handle.clone());
    handle
}

/// A status code as a label without allocating for the common ones.
fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        409 => "409".into(),
        other => other.to_string().into(),
    }
}

/// Counts one request in `userprofiles_in_flight_requests{listener}` until dropped.
pub struct InFlight(metrics::Gauge);

impl InFlight {
    /// Starts counting a request on `listener` (`http` or `grpc`).
    pub fn start(listener: &'static str) -> Self {
        // One handle per listener, made after the recorder is installed (`app::run` installs
        // it before serving), so each request skips the registry lookup.
        static HTTP: OnceLock<metrics::Gauge> = OnceLock::new();
        static GRPC: OnceLock<metrics::Gauge> = OnceLock::new();
        let cell = if listener == "grpc" { &GRPC } else { &HTTP };
        let gauge = cell
            .get_or_init(
                || metrics::gauge!("userprofiles_in_flight_requests", "listener" => listener),
            )
            .clone();
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
