//! The server every end-to-end benchmark drives: the real service in the benchmark's own
//! process, on loopback ports of its own, with a throwaway data directory.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use userprofiles::app::{self, Options};
use userprofiles::auth::password::Secret;
use userprofiles::engine::{EngineSettings, SystemClock};
use userprofiles::transport::TransportLimits;

/// A running server; its data directory lives as long as this value.
pub struct BenchServer {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    _data_dir: tempfile::TempDir,
}

/// Starts the server (on PostgreSQL when `database_url` is given) with `elastic`'s password,
/// and returns once it answers.
pub async fn start(elastic_password: &str, database_url: Option<String>) -> BenchServer {
    let data_dir = tempfile::tempdir().unwrap();
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, http_addr) = (
        grpc_listener.local_addr().unwrap(),
        http_listener.local_addr().unwrap(),
    );
    let options = Options {
        clock: std::sync::Arc::new(SystemClock),
        data_dir: data_dir.path().to_path_buf(),
        database_url,
        max_body_bytes: 10 << 20,
        shutdown_grace: Duration::from_secs(5),
        elastic_password: Some(Secret::new(elastic_password)),
        settings: EngineSettings::default(),
        transport: TransportLimits::default(),
        tls: None,
    };
    tokio::spawn(app::run(
        options,
        app::Listeners {
            grpc: grpc_listener,
            http: http_listener,
            admin: admin_listener,
        },
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    for _ in 0..500 {
        let ready = client
            .get(format!("http://{http_addr}/_security/_authenticate"))
            .basic_auth("elastic", Some(elastic_password))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    BenchServer {
        grpc_addr,
        http_addr,
        _data_dir: data_dir,
    }
}
