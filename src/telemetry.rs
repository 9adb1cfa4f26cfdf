//! Logging and metrics set-up.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashSet;
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

/// The process-wide Prometheus recorder, installed on first use. Tests start several servers
/// in one process, and a recorder can be installed only once.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// The metric and log label for a gRPC request path: the path itself when it names a method
/// this server serves, `unknown` otherwise. Paths are client-chosen, so using them raw would
/// let anyone create unbounded metric series.
pub fn grpc_method_label(path: &str) -> &'static str {
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    KNOWN
        .get_or_init(served_method_paths)
        .get(path)
        .map(String::as_str)
        .unwrap_or("unknown")
}

/// Every `/package.Service/Method` the gRPC listener serves, read from the descriptor sets.
fn served_method_paths() -> HashSet<String> {
    use prost::Message;
    let sets = [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut paths = HashSet::new();
    for encoded in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    paths.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    paths
}

/// A tower layer that counts gRPC requests by method and status code and times them, as
/// `userprofiles_grpc_requests_total{method,code}` and
/// `userprofiles_grpc_request_duration_seconds{method}`.
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
        let method = grpc_method_label(request.uri().path());
        let started = std::time::Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            // Unary failures are "trailers-only" responses: the code is in the headers. A response
            // without it carries its code in the trailers, which for these unary services is OK.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(|c| format!("{:?}", tonic::Code::from(c)))
                    .unwrap_or_else(|| "Ok".to_owned()),
                Err(_) => "TransportError".to_owned(),
            };
            metrics::counter!("userprofiles_grpc_requests_total", "method" => method, "code" => code).increment(1);
            metrics::histogram!("userprofiles_grpc_request_duration_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
