//! Configuration: command-line flags, each with an environment-variable fallback.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where profiles, users, roles and tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The embedded redb file under `--data-dir` (one process).
    Redb,
    /// A PostgreSQL database at `--database-url` (any number of replicas).
    Postgres,
}

/// What the binary does instead of serving.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Exit 0 when the local `/readyz` (at `--admin-addr`) answers 200, else 1.
    Healthcheck,
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

    /// Address of the admin listener (`/metrics`, `/livez`, `/readyz`): always plaintext and
    /// unauthenticated, for probes and Prometheus; keep it off public networks.
    #[arg(
        long,
        env = "USERPROFILES_ADMIN_ADDR",
        default_value = "127.0.0.1:9600"
    )]
    pub admin_addr: SocketAddr,

    /// `healthcheck`: ask the local `/readyz` and exit 0 when ready (for container health
    /// checks in images without a shell).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Which store to use.
    #[arg(long, env = "USERPROFILES_STORE", value_enum, default_value = "redb")]
    pub store: StoreKind,

    /// PostgreSQL connection URL, for `--store postgres`
    /// (e.g. `postgres://user:password@host:5432/userprofiles`).
    #[arg(long, env = "USERPROFILES_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

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

    /// How long access tokens work, in Elasticsearch's time syntax (`20m`, `90s`, `1h`);
    /// between 1s and 1h, like `xpack.security.authc.token.timeout`.
    #[arg(long, env = "USERPROFILES_TOKEN_TIMEOUT", default_value = "20m", value_parser = parse_token_timeout)]
    pub token_timeout: Duration,

    /// Largest combined size of one profile's labels and data, in bytes
    /// (Elasticsearch's `xpack.security.profile.max_size`).
    #[arg(long, env = "USERPROFILES_PROFILE_MAX_SIZE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub profile_max_size_bytes: usize,

    /// Most profile uids one get-profiles call, or names one get-users / get-roles call, may
    /// name (400 beyond).
    #[arg(
        long,
        env = "USERPROFILES_MAX_UIDS_PER_REQUEST",
        default_value_t = 1_000
    )]
    pub max_uids_per_request: usize,

    /// Most `data` filter patterns one get or suggest call may give (400 beyond).
    #[arg(long, env = "USERPROFILES_MAX_DATA_PATTERNS", default_value_t = 1_000)]
    pub max_data_patterns: usize,

    /// Most query clauses one suggest may build, like Elasticsearch's
    /// `indices.query.bool.max_clause_count` (400 beyond).
    #[arg(long, env = "USERPROFILES_MAX_CLAUSE_COUNT", default_value_t = 1_024)]
    pub max_clause_count: usize,

    /// Most uids or label values in one suggest hint, like Elasticsearch's
    /// `index.max_terms_count` (400 beyond).
    #[arg(long, env = "USERPROFILES_MAX_TERMS_COUNT", default_value_t = 65_536)]
    pub max_terms_count: usize,

    /// Threads hashing passwords at once (0: one per core).
    #[arg(long, env = "USERPROFILES_HASH_THREADS", default_value_t = 0)]
    pub hash_threads: usize,

    /// Password hashes that may wait for a hashing thread; more are refused with 429.
    #[arg(long, env = "USERPROFILES_HASH_QUEUE", default_value_t = 100)]
    pub hash_queue: usize,

    /// Threads running suggest queries at once (0: one per core).
    #[arg(long, env = "USERPROFILES_SEARCH_THREADS", default_value_t = 0)]
    pub search_threads: usize,

    /// Suggest queries that may wait for a search thread; more are refused with 429.
    #[arg(long, env = "USERPROFILES_SEARCH_QUEUE", default_value_t = 1_000)]
    pub search_queue: usize,

    /// Most open connections per listener; further connections wait in the accept backlog.
    #[arg(long, env = "USERPROFILES_MAX_CONNECTIONS", default_value_t = 1_024)]
    pub max_connections: usize,

    /// How long a client may take to send a request's headers (`10s`); then the connection
    /// is closed.
    #[arg(long, env = "USERPROFILES_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_time_value)]
    pub header_read_timeout: Duration,

    /// How long a client may take to send a request's body, and a gRPC call to complete
    /// (`30s`); then 408 / DEADLINE_EXCEEDED.
    #[arg(long, env = "USERPROFILES_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_time_value)]
    pub body_read_timeout: Duration,

    /// Longest HTTP request line (Elasticsearch's `http.max_initial_line_length`).
    #[arg(
        long,
        env = "USERPROFILES_MAX_INITIAL_LINE_BYTES",
        default_value_t = 4_096
    )]
    pub max_initial_line_bytes: usize,

    /// Largest total size of a request's headers (Elasticsearch's `http.max_header_size`),
    /// also the gRPC header-list limit.
    #[arg(long, env = "USERPROFILES_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Most request-body bytes in flight at once over HTTP, like Elasticsearch's
    /// `in_flight_requests` breaker (429 beyond). At least `--max-body-bytes`.
    #[arg(long, env = "USERPROFILES_MAX_IN_FLIGHT_BODY_BYTES", default_value_t = 64 << 20)]
    pub max_in_flight_body_bytes: usize,

    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    #[arg(long, env = "USERPROFILES_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Close gRPC connections gracefully (GOAWAY) once they are this old (`30m`, `1h`), so
    /// clients reconnect and per-connection balancing spreads them again. Off by default.
    #[arg(long, env = "USERPROFILES_MAX_CONNECTION_AGE", value_parser = parse_time_value)]
    pub max_connection_age: Option<Duration>,

    /// How long an aged gRPC connection's open calls may still take.
    #[arg(long, env = "USERPROFILES_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = parse_time_value)]
    pub max_connection_age_grace: Duration,

    /// Send HTTP/2 PINGs on idle gRPC connections this often (off by default), so dead peers
    /// and idle-killing middleboxes are noticed.
    #[arg(long, env = "USERPROFILES_HTTP2_KEEPALIVE_INTERVAL", value_parser = parse_time_value)]
    pub http2_keepalive_interval: Option<Duration>,

    /// How long a PING may go unanswered before the connection is closed.
    #[arg(long, env = "USERPROFILES_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_time_value)]
    pub http2_keepalive_timeout: Duration,

    /// PEM certificate chain: with `--tls-key`, both the gRPC and the HTTP listener serve TLS
    /// (1.2 or 1.3; HTTP/2 by ALPN). Reloaded when the file changes.
    #[arg(long, env = "USERPROFILES_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "USERPROFILES_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: both listeners then require a client certificate signed by one of
    /// them (mTLS). Needs `--tls-cert`. Reloaded when the file changes.
    #[arg(long, env = "USERPROFILES_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// How often the TLS files are checked for changes (`2s`).
    #[arg(long, env = "USERPROFILES_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_time_value)]
    pub tls_reload_interval: Duration,
}

/// Parses an Elasticsearch time value (`500ms`, `30s`, `20m`, `1h`).
pub fn parse_time_value(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("failed to parse [{text}]: expected a number followed by a unit (ms, s, m, h, d)")
    })?;
    let millis = match unit {
        "ms" => number,
        "s" => number * 1_000,
        "m" => number * 60_000,
        "h" => number * 3_600_000,
        "d" => number * 86_400_000,
        _ => {
            return Err(format!(
                "failed to parse [{text}]: unknown unit [{unit}], expected one of ms, s, m, h, d"
            ))
        }
    };
    Ok(Duration::from_millis(millis))
}

fn parse_token_timeout(text: &str) -> Result<Duration, String> {
    let value = parse_time_value(text)?;
    if value < Duration::from_secs(1) || value > Duration::from_secs(3600) {
        return Err(format!("token timeout [{text}] must be between 1s and 1h"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_values_use_elasticsearch_units() {
        assert_eq!(parse_time_value("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_time_value("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_time_value("20").is_err());
        assert!(parse_time_value("m").is_err());
        assert!(parse_token_timeout("2h").is_err());
        assert!(parse_token_timeout("999ms").is_err());
        assert_eq!(parse_token_timeout("1h"), Ok(Duration::from_secs(3600)));
    }
}
