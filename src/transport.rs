//! The listeners' own bounds: how many connections each may hold, and how long a client may
//! take to send its headers. Everything here happens before a request reaches a front end.
//!
//! A connection takes a permit before it is accepted and gives it back when it closes; at the
//! cap, new connections wait in the kernel's accept backlog instead of costing memory here.

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds the listeners enforce before a request reaches the engine.
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Most open connections per listener.
    pub max_connections: usize,
    /// Time allowed to send request headers.
    pub header_read_timeout: Duration,
    /// Time allowed to send a request body (HTTP) or to complete a call (gRPC).
    pub body_read_timeout: Duration,
    /// Longest HTTP request line.
    pub max_initial_line_bytes: usize,
    /// Largest total size of request headers.
    pub max_header_bytes: usize,
    /// Most request-body bytes being received or worked on at once (HTTP).
    pub max_in_flight_body_bytes: usize,
    /// gRPC connections older than this are closed gracefully (GOAWAY), so clients reconnect
    /// and a mesh or load balancer that balances per connection spreads them again.
    pub max_connection_age: Option<Duration>,
    /// How long an aged connection's open calls may take before it is closed anyway.
    pub max_connection_age_grace: Duration,
    /// HTTP/2 PING interval on gRPC connections (none by default).
    pub http2_keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_initial_line_bytes: 4_096,
            max_header_bytes: 16 * 1024,
            max_in_flight_body_bytes: 64 << 20,
            max_connection_age: None,
            max_connection_age_grace: Duration::from_secs(30),
            http2_keepalive_interval: None,
            http2_keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// A connection holding one of its listener's permits until it is dropped.
pub struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// `userprofiles_open_connections{listener}`, decremented when the connection closes.
    open: metrics::Gauge,
    /// Set once the client has sent anything: a connection that never did can be dropped at
    /// shutdown without cutting off a request.
    used: Arc<AtomicBool>,
}

impl Drop for Permitted {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl Permitted {
    /// Whether the client has sent anything yet, readable after the stream moved away.
    pub fn used(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.used)
    }
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.used.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Permitted {
    type ConnectInfo = <TcpStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Accepts connections from `listener`, at most `max_connections` open at once.
pub struct LimitedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    open: metrics::Gauge,
}

impl LimitedListener {
    /// Wraps a bound listener; `name` labels its open-connections gauge.
    pub fn new(listener: TcpListener, max_connections: usize, name: &'static str) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            open: metrics::gauge!("userprofiles_open_connections", "listener" => name),
        }
    }

    /// The next connection, once one is free to be held.
    pub async fn accept(&self) -> io::Result<Permitted> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("connection permits closed"))?;
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    self.open.increment(1.0);
                    return Ok(Permitted {
                        stream,
                        _permit: permit,
                        open: self.open.clone(),
                        used: Arc::new(AtomicBool::new(false)),
                    });
                }
                // A connection that failed before it was accepted (reset, out of descriptors)
                // must not stop the listener; pause briefly so a descriptor shortage does not
                // spin.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The connections as a stream, for tonic. A connection reaches tonic only once its client
    /// has sent something; one that stays silent for `first_byte_timeout` is closed (HTTP/2
    /// servers otherwise wait for the preface indefinitely, each silent client holding a
    /// permit). The accepting task ends, and the listening socket closes, as soon as the server
    /// drops the stream.
    pub fn into_stream(
        self,
        first_byte_timeout: std::time::Duration,
    ) -> tokio_stream::wrappers::ReceiverStream<io::Result<Permitted>> {
        let (connections, stream) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = connections.closed() => return,
                    next = self.accept() => next,
                };
                let connections = connections.clone();
                tokio::spawn(async move {
                    let next = match next {
                        Ok(connection) => {
                            // `peek` (not `readable`, which may wake spuriously) waits for
                            // a real first byte and leaves it for the server to read.
                            let mut first = [0u8; 1];
                            let spoke = tokio::time::timeout(
                                first_byte_timeout,
                                connection.stream.peek(&mut first),
                            )
                            .await;
                            if !matches!(spoke, Ok(Ok(1))) {
                                return;
                            }
                            Ok(connection)
                        }
                        Err(error) => Err(error),
                    };
                    let _ = connections.send(next).await;
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(stream)
    }
}

/// Serves the HTTP gateway on `listener` with the header-read timeout and connection cap,
/// until `shutdown` resolves; then stops accepting, closes connections that never sent a
/// request, and lets the others finish theirs.
pub async fn serve_http(
    listener: LimitedListener,
    router: axum::Router,
    limits: TransportLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Runs from the moment a connection waits for a request, so a client that connects
        // and sends nothing is closed too.
        .header_read_timeout(limits.header_read_timeout)
        // Room for the request line and headers at their limits (which the gateway checks
        // and answers as Elasticsearch does); anything larger hyper refuses on its own.
        .max_buf_size((limits.max_initial_line_bytes + limits.max_header_bytes + 4096).max(8192));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            connection = listener.accept() => connection,
            () = &mut shutdown => break,
        };
        let Ok(connection) = connection else {
            continue;
        };
        let used = connection.used();
        let service = TowerToHyperService::new(router.clone());
        let serving = graceful.watch(builder.serve_connection(TokioIo::new(connection), service));
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(serving);
            tokio::select! {
                // A client that hangs up or times out is not the server's error.
                _ = &mut serving => {}
                // hyper's graceful shutdown waits for a first request on a connection that
                // has not sent one; nothing is lost by closing it now.
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
                    if used.load(Ordering::Relaxed) {
                        let _ = serving.await;
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    graceful.shutdown().await;
}
