//! [`AuthenticateLayer`]: every `userprofiles.v1` call is authenticated from its metadata
//! before tonic decodes the message, runs under a deadline, and a panic becomes INTERNAL.

use super::convert::status;
use crate::auth::parse_authorization;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// Names a gRPC call in 401 reasons.
struct GrpcRequest<'a>(&'a str);

impl std::fmt::Display for GrpcRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gRPC request [{}]", self.0)
    }
}

async fn authenticate(
    engine: &Engine,
    authorization: Option<&[u8]>,
    method: &str,
) -> Result<Arc<Caller>, Error> {
    let credentials = match authorization {
        Some(value) => parse_authorization(value)?,
        None => None,
    };
    engine.authenticate(credentials, &GrpcRequest(method)).await
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
        let call_timeout = self.call_timeout;
        Box::pin(async move {
            let method = request.uri().path().to_owned();
            let authorization = request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .cloned();
            let authorization = authorization.as_ref().map(|value| value.as_bytes());
            match authenticate(&engine, authorization, &method).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    // A panic in a handler answers INTERNAL instead of dropping the connection.
                    let handled = AssertUnwindSafe(inner.call(request)).catch_unwind();
                    match tokio::time::timeout(call_timeout, handled).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(_)) => Ok(status(&Error::panicked()).into_http()),
                        Err(_) => Ok(status(&Error::RequestTimeout(format!(
                            "the call did not complete within [{}ms]",
                            call_timeout.as_millis()
                        )))
                        .into_http()),
                    }
                }
                Err(error) => Ok(status(&error).into_http()),
            }
        })
    }
}
