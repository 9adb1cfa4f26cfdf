//! Logging and metrics set-up.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::OnceLock;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber: level from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
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
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
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

/// The log label for a gRPC request path: the path when it names a served method, `unknown`
/// otherwise.
pub fn grpc_method_label(path: &str) -> &'static str {
    grpc_method_labels(path).path
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
        let method = MethodMetrics::of(request.uri().path());
        method.started.increment(1);
        let started = std::time::Instant::now();
        let in_flight = InFlight::start("grpc");
        let future = self.inner.call(request);
        Box::pin(async move {
            let _in_flight = in_flight;
            let result = future.await;
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
            method.handled(code).increment(1);
            method
                .handling_seconds
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
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
