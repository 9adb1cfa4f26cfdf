//! The admin listener: `GET /metrics` (Prometheus text), `GET /livez` and `GET /readyz`, always
//! plaintext and unauthenticated, on its own address (default `127.0.0.1:9600`) so that
//! Kubernetes probes and Prometheus reach them whatever TLS the main listeners use, and so
//! that nothing outside Elasticsearch's API appears on the gateway.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What `/readyz` reports: ready only when the store answers, the suggest index is built and
/// the process is not draining.
#[derive(Debug, Default)]
pub struct Readiness {
    index_built: AtomicBool,
    store_unreachable: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Called once the suggest index has been built (or resumed) at start.
    pub fn index_built(&self) {
        self.index_built.store(true, Ordering::Release);
    }

    /// Called by the store health watch on every change.
    pub fn set_store_reachable(&self, reachable: bool) {
        self.store_unreachable.store(!reachable, Ordering::Release);
    }

    /// Whether the store health watch last found the store unreachable.
    pub fn store_unreachable(&self) -> bool {
        self.store_unreachable.load(Ordering::Acquire)
    }

    /// Called when shutdown starts: load balancers stop sending new requests.
    pub fn draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Why the process is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Acquire) {
            Some("shutting down: draining in-flight requests")
        } else if !self.index_built.load(Ordering::Acquire) {
            Some("starting: the suggest index is being built")
        } else if self.store_unreachable() {
            Some("the profile store is unreachable")
        } else {
            None
        }
    }
}

fn router(readiness: Arc<Readiness>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = Arc::clone(&readiness);
                async move {
                    match readiness.not_ready_reason() {
                        None => (StatusCode::OK, "ok\n".to_owned()),
                        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
                    }
                }
            }),
        )
}

async fn metrics() -> impl IntoResponse {
    let text = crate::telemetry::metrics_handle()
        .map(|handle| handle.render())
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `userprofiles healthcheck`: asks the local `/readyz` at `admin_addr` (an unspecified bind
/// address is asked on loopback) and reports whether it answered 200, for images without a
/// shell or curl.
pub fn healthcheck(admin_addr: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut target = admin_addr;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot ask {target}: {e}"))?;
    // The status line and a one-line reason are all that is needed; read a bounded amount.
    let mut answer = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {target}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        return Ok(());
    }
    let reason = answer
        .split("\r\n\r\n")
        .nth(1)
        .map(str::trim)
        .unwrap_or_default();
    Err(format!("not ready: {status_line} {reason}"))
}
