//! One async function per endpoint: parse the body and parameters as Elasticsearch's REST
//! handler does, call the engine once, render the answer. `routes.rs` maps paths to them.

pub(super) mod node;
pub(super) mod privileges;
pub(super) mod profiles;
pub(super) mod roles;
pub(super) mod tokens;
pub(super) mod users;

use super::call::{Call, Reply, ReplyBody};
use crate::engine::data_filter::DataFilter;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use futures_util::future::BoxFuture;
use serde_json::Value;

/// An endpoint as the route table holds it.
pub(super) type Handler =
    for<'a> fn(&'a Engine, &'a Caller, &'a Call) -> BoxFuture<'a, Result<Reply, Error>>;

/// Wraps an `async fn(&Engine, &Caller, &Call) -> Result<Reply, Error>` as a [`Handler`].
macro_rules! handler {
    ($function:path) => {
        |engine, caller, call| Box::pin($function(engine, caller, call))
    };
}
pub(super) use handler;

/// Runs the endpoint, then applies `filter_path` (which every endpoint accepts) to a success.
pub(super) async fn run(
    handler: Handler,
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    let filter_path = call
        .param("filter_path")
        .map(|list| DataFilter::from_comma_list(list).compile(engine.limits().max_data_patterns))
        .transpose()?;
    let mut reply = handler(engine, caller, call).await?;
    if let (Some(filter), true) = (filter_path, reply.status.is_success()) {
        let body = std::mem::replace(&mut reply.body, ReplyBody::Value(Value::Null));
        reply.body = match body.into_value() {
            Value::Object(map) => ReplyBody::Value(Value::Object(filter.apply(&map))),
            other => ReplyBody::Value(other),
        };
    }
    Ok(reply)
}
