//! [`AuthenticateLayer`]: every `userprofiles.v1` call is authenticated from its metadata
//! before tonic decodes the message, runs under a deadline, and a panic becomes INTERNAL.

use super::convert::status;
use crate::engine::Engine;
use crate::error::Error;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

/// Names a gRPC call in 401 reasons.
struct GrpcRequest<'a>(&'a str);

impl std::fmt::Display for GrpcRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gRPC request [{}]", self.0)
    }
}

/// Authenticates every `userprofiles.v1` call from its headers before tonic reads and decodes
/// the message, so an unauthenticated caller is refused without the server buffering its
/// body. The caller travels to the handler in the request's extensions. Health and
/// reflection stay open, as probes and grpcurl expect.
/// It also bounds each call's time, message upload included: past `call_timeout` the caller
/// gets DEADLINE_EXCEEDED.
#[derive(Clone)]
pub struct AuthenticateLayer {
    engine: Engine,
    call_timeout: std::time::Duration,
}

impl AuthenticateLayer {
    /// A layer authenticating against `engine`, each call bounded by `call_timeout`.
    pub fn new(engine: Engine, call_timeout: std::time::Duration) -> Self {
        Self {
            engine,
            call_timeout,
        }
    }
}

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            engine: self.engine.clone(),
            call_timeout: self.call_timeout,
        }
    }
}

/// The service [`AuthenticateLayer`] wraps around the gRPC router.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    engine: Engine,
    call_timeout: std::time::Duration,
}

/// How much earlier than the caller's deadline this layer gives up (see `call`).
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(5);

/// The package whose services need an authenticated caller.
const AUTHENTICATED_PREFIX: &str = "/userprofiles.v1.";

impl<S, B, R> tower::Service<axum::http::Request<B>> for Authenticate<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
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

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call; keep a fresh clone in its place.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        if !request.uri().path().starts_with(AUTHENTICATED_PREFIX) {
            return Box::pin(inner.call(request));
        }
        let engine = self.engine.clone();
        // The caller's own deadline (`grpc-timeout`) when it is shorter than ours: past it the
        // work is dropped and the call ends with DEADLINE_EXCEEDED. tonic's transport runs its
        // own timer on the same header outside this layer and answers CANCELLED ("Timeout
        // expired") when it fires first; ours is set a little earlier so the caller gets the
        // code gRPC defines for a missed deadline.
        let (deadline, reported) = match request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| parse_grpc_timeout(value.as_bytes()))
        {
            Some(client) if client < self.call_timeout => {
                (client.saturating_sub(DEADLINE_MARGIN), client)
            }
            _ => (self.call_timeout, self.call_timeout),
        };
        Box::pin(async move {
            let work = async move {
                // Borrowed from the request until it moves on to the handler.
                let authenticated = {
                    let authorization = request
                        .headers()
                        .get(axum::http::header::AUTHORIZATION)
                        .map(|value| value.as_bytes());
                    let method = GrpcRequest(request.uri().path());
                    engine.authenticate(authorization, &method).await
                };
                match authenticated {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                        // A panic in a handler answers INTERNAL instead of dropping the
                        // connection.
                        match AssertUnwindSafe(inner.call(request)).catch_unwind().await {
                            Ok(response) => response,
                            Err(_) => Ok(status(&Error::panicked()).into_http()),
                        }
                    }
                    Err(error) => Ok(status(&error).into_http()),
                }
            };
            match tokio::time::timeout(deadline, work).await {
                Ok(response) => response,
                Err(_) => Ok(status(&Error::RequestTimeout(format!(
                    "the call did not complete within [{}ms]",
                    reported.as_millis()
                )))
                .into_http()),
            }
        })
    }
}

/// Parses gRPC's `grpc-timeout` header: at most eight digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`). Anything else is ignored, as if no deadline had been sent.
fn parse_grpc_timeout(value: &[u8]) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_grpc_timeout;
    use std::time::Duration;

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_defines_them() {
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout(b"30S"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_grpc_timeout(b"250m"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_grpc_timeout(b"99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout(b"5n"), Some(Duration::from_nanos(5)));
        for bad in [
            &b""[..],
            b"S",
            b"123456789S",
            b"10s",
            b"1.5S",
            b"-1S",
            b"10",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
