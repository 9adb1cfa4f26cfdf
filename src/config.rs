//! Configuration: command-line flags, each with an environment-variable fallback.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything the service can be told at start-up.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "userprofiles",
    version,
    about = "Elasticsearch user profile APIs over gRPC and an Elasticsearch-compatible JSON gateway"
)]
pub struct Config {
    /// Address of the gRPC listener.
    #[arg(
        long,
        env = "USERPROFILES_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub grpc_addr: SocketAddr,

    /// Address of the Elasticsearch-compatible HTTP listener.
    #[arg(long, env = "USERPROFILES_HTTP_ADDR", default_value = "127.0.0.1:9200")]
    pub http_addr: SocketAddr,

    /// Directory of the embedded store.
    #[arg(long, env = "USERPROFILES_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Log format (the level comes from RUST_LOG, default `info`).
    #[arg(
        long,
        env = "USERPROFILES_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Largest accepted request body in bytes, on both listeners.
    #[arg(long, env = "USERPROFILES_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    #[arg(long, env = "USERPROFILES_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
}
