#![forbid(unsafe_code)]
//! userprofiles: the Elasticsearch user-profile APIs as a gRPC service and an
//! Elasticsearch-compatible JSON gateway, both served from one engine.

pub mod admin; // the admin listener: /metrics, /livez, /readyz; the healthcheck subcommand
pub mod app; // builds store, engine and both servers from bound listeners; runs until shutdown
pub mod auth; // password hashing, credential cache, caller authentication, privileges
pub mod config; // command-line flags with environment fallbacks
pub mod engine; // every profile, user and role rule; knows nothing of the wire
pub mod error; // the one error type and its mapping to HTTP status and gRPC code
pub mod grpc; // tonic adapters over the engine
pub mod http; // the Elasticsearch JSON gateway over the engine
pub mod limits; // the bounds every input is held to (JSON shape, counts); shared by all layers
pub mod model; // plain data shared by every layer: profiles, users, roles, tokens as stored
pub mod pool; // bounded thread pools (password hashing, suggest) that refuse with 429 when full
#[cfg(test)]
mod proptest_json; // strategies for property tests over JSON
pub mod search; // the suggest index (tantivy) that follows the store's profile changes
pub mod store; // the Store trait and its redb backend
pub mod telemetry; // tracing subscriber and Prometheus metrics
pub mod tls; // rustls server configuration for both listeners, reloaded when the files change
pub mod transport; // listener bounds: connection cap, header timeout, graceful drain

/// Generated protobuf types and tonic services for `userprofiles.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("userprofiles.v1");

    /// The encoded descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/userprofiles_descriptor.bin"));
}
