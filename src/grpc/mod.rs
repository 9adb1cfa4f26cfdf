//! The gRPC front end: thin tonic adapters over the engine. [`AuthenticateLayer`] authenticates
//! each call from its `authorization` metadata before the message is decoded; each RPC then
//! takes that caller, converts the message, calls the engine once and converts the answer back.
//! No rule lives here.

pub mod convert;
mod layer;
mod privileges;
mod profiles;
mod security;

pub use layer::{Authenticate, AuthenticateLayer};

use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::pb;
use convert::status;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Implements every `userprofiles.v1` service over one engine.
#[derive(Clone)]
pub struct GrpcApi {
    engine: Engine,
}

impl GrpcApi {
    /// Adapters over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The caller [`AuthenticateLayer`] authenticated before the message was decoded.
    fn caller<T>(request: &Request<T>) -> Result<Arc<Caller>, Status> {
        request
            .extensions()
            .get::<Arc<Caller>>()
            .cloned()
            .ok_or_else(|| {
                status(&Error::Internal(
                    "a call reached its handler without being authenticated".into(),
                ))
            })
    }
}

pub(super) fn acknowledged(_: ()) -> pb::AcknowledgedResponse {
    pb::AcknowledgedResponse { acknowledged: true }
}

pub(super) fn reply<T, U>(
    result: Result<T, Error>,
    convert: impl FnOnce(T) -> U,
) -> Result<Response<U>, Status> {
    result
        .map(|v| Response::new(convert(v)))
        .map_err(|e| status(&e))
}
