//! The listeners' own bounds: how many connections each may hold, and how long a client may
//! take to send its headers. Everything here happens before a request reaches a front end.
//!
//! A connection takes a permit before it is accepted and gives it back when it closes; at the
//! cap, new connections wait in the kernel's accept backlog instead of costing memory here.

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

use crate::tls::{ReloadingTls, TlsListener, ALPN_H2};

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

/// An accepted connection, in TLS when the listener is configured for it.
pub enum Connection {
    /// Plaintext.
    Plain(Permitted),
    /// After a completed TLS handshake.
    Tls(Box<tokio_rustls::server::TlsStream<Permitted>>),
}

impl Connection {
    /// Completes the TLS handshake (when `tls` is set) within `timeout`; `None` when the client
    /// failed it (no or an untrusted client certificate, wrong protocol, too slow).
    async fn establish(
        connection: Permitted,
        tls: Option<&ReloadingTls>,
        listener: TlsListener,
        timeout: Duration,
    ) -> Option<Self> {
        let Some(tls) = tls else {
            return Some(Self::Plain(connection));
        };
        let peer = connection.stream.peer_addr().ok();
        match tokio::time::timeout(timeout, tls.acceptor(listener).accept(connection)).await {
            Ok(Ok(stream)) => Some(Self::Tls(Box::new(stream))),
            Ok(Err(error)) => {
                tracing::debug!(?peer, %error, "TLS handshake refused");
                None
            }
            Err(_) => {
                tracing::debug!(?peer, "TLS handshake timed out");
                None
            }
        }
    }

    /// Whether the client chose HTTP/2 by ALPN.
    fn negotiated_h2(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(stream) => stream.get_ref().1.alpn_protocol() == Some(ALPN_H2),
        }
    }
}

macro_rules! on_stream {
    ($self:ident, $stream:ident => $body:expr) => {
        match $self.get_mut() {
            Connection::Plain($stream) => {
                let $stream = Pin::new($stream);
                $body
            }
            Connection::Tls($stream) => {
                let $stream = Pin::new($stream.as_mut());
                $body
            }
        }
    };
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = <TcpStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        match self {
            Self::Plain(stream) => stream.connect_info(),
            Self::Tls(stream) => stream.get_ref().0.connect_info(),
        }
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
    /// With `tls`, the handshake must complete within `first_byte_timeout` too.
    pub fn into_stream(
        self,
        first_byte_timeout: std::time::Duration,
        tls: Option<Arc<ReloadingTls>>,
    ) -> tokio_stream::wrappers::ReceiverStream<io::Result<Connection>> {
        let (connections, stream) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = connections.closed() => return,
                    next = self.accept() => next,
                };
                let connections = connections.clone();
                let tls = tls.clone();
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
                            let Some(connection) = Connection::establish(
                                connection,
                                tls.as_deref(),
                                TlsListener::Grpc,
                                first_byte_timeout,
                            )
                            .await
                            else {
                                return;
                            };
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
/// request, and lets the others finish theirs. With `tls`, clients that offer HTTP/2 by ALPN
/// get it; everyone else speaks HTTP/1.1.
pub async fn serve_http<S>(
    listener: LimitedListener,
    service: S,
    limits: TransportLimits,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        // Runs from the moment a connection waits for a request, so a client that connects
        // and sends nothing is closed too.
        .header_read_timeout(limits.header_read_timeout)
        // Room for the request line and headers at their limits (which the gateway checks
        // and answers as Elasticsearch does); anything larger hyper refuses on its own.
        .max_buf_size((limits.max_initial_line_bytes + limits.max_header_bytes + 4096).max(8192));
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(limits.max_initial_line_bytes + limits.max_header_bytes)
                .unwrap_or(u32::MAX),
        )
        .max_concurrent_streams(HTTP2_MAX_STREAMS_PER_CONNECTION)
        // A client that stops answering PINGs is gone; its connection's permit comes back.
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));
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
        let service = service.clone();
        let (http1, http2, tls) = (Arc::clone(&http1), Arc::clone(&http2), tls.clone());
        let watcher = graceful.watcher();
        let mut stopping = stopping.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let established = Connection::establish(
                connection,
                tls.as_deref(),
                TlsListener::Http,
                handshake_timeout,
            );
            let connection = tokio::select! {
                connection = established => connection,
                // Nothing was asked yet: nothing is cut off.
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => None,
            };
            let Some(connection) = connection else {
                return;
            };
            let serving: Pin<Box<dyn Future<Output = ()> + Send>> = if connection.negotiated_h2() {
                let serving =
                    watcher.watch(http2.serve_connection(TokioIo::new(connection), service));
                Box::pin(async move {
                    let _ = serving.await;
                })
            } else {
                let serving =
                    watcher.watch(http1.serve_connection(TokioIo::new(connection), service));
                Box::pin(async move {
                    let _ = serving.await;
                })
            };
            tokio::pin!(serving);
            tokio::select! {
                // A client that hangs up or times out is not the server's error.
                () = &mut serving => {}
                // hyper's graceful shutdown waits for a first request on a connection that
                // has not sent one; nothing is lost by closing it now.
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
                    if used.load(Ordering::Relaxed) {
                        serving.await;
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    graceful.shutdown().await;
}

/// Concurrent requests one HTTP/2 gateway connection may carry.
const HTTP2_MAX_STREAMS_PER_CONNECTION: u32 = 100;
