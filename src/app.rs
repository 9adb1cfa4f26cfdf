//! Wiring: store → engine → both servers, from already bound listeners, until shutdown.
//!
//! Shutdown order: the signal flips gRPC health to NOT_SERVING, both listeners stop accepting,
//! in-flight requests drain (bounded by the grace period), then `run` returns.

use crate::admin::Readiness;
use crate::auth::password::Secret;
use crate::config::{Config, StoreKind};
use crate::engine::{Clock, Engine, EngineSettings, SystemClock};
use crate::grpc::GrpcApi;
use crate::limits::RequestLimits;
use crate::pb;
use crate::store::instrumented::InstrumentedStore;
use crate::store::postgres::PostgresStore;
use crate::store::redb::RedbStore;
use crate::store::Store;
use crate::tls::{ReloadingTls, TlsFiles};
use crate::transport::{LimitedListener, TransportLimits};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What `run` needs besides its listeners.
#[derive(Clone)]
pub struct Options {
    /// The source of "now" (the system clock; tests of time-based rules pass a manual one).
    pub clock: Arc<dyn Clock>,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// When set, use PostgreSQL at this URL instead of the embedded store.
    pub database_url: Option<String>,
    /// Largest request body or gRPC message, in bytes.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after the shutdown signal.
    pub shutdown_grace: Duration,
    /// The `elastic` user's first password; generated and printed once when absent.
    pub elastic_password: Option<Secret>,
    /// Engine tunables (token lifetime, profile size limit, request limits).
    pub settings: EngineSettings,
    /// Bounds on connections and on how long clients may take.
    pub transport: TransportLimits,
    /// TLS for the gRPC and HTTP listeners; plaintext when `None`.
    pub tls: Option<TlsSettings>,
}

/// Where the TLS files are and how often to look for new ones.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate, key and optional client CA.
    pub files: TlsFiles,
    /// How often the files are checked for changes.
    pub reload_interval: Duration,
}

/// Concurrent gRPC calls one connection may carry.
const MAX_GRPC_STREAMS_PER_CONNECTION: u32 = 100;
/// HTTP/2 flow-control windows of the gRPC listener.
const GRPC_STREAM_WINDOW_BYTES: u32 = 256 * 1024;
const GRPC_CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

/// A failure to start or to keep serving.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// Start-up failed.
    #[error("start-up failed: {0}")]
    Startup(String),
    /// A server stopped with an error.
    #[error("server failed: {0}")]
    Serve(String),
}

/// Binds the configured addresses and runs until `shutdown` resolves.
pub async fn run_from_config(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let grpc = TcpListener::bind(config.grpc_addr).await.map_err(|e| {
        AppError::Startup(format!(
            "cannot bind gRPC address {}: {e}",
            config.grpc_addr
        ))
    })?;
    let http = TcpListener::bind(config.http_addr).await.map_err(|e| {
        AppError::Startup(format!(
            "cannot bind HTTP address {}: {e}",
            config.http_addr
        ))
    })?;
    let admin = TcpListener::bind(config.admin_addr).await.map_err(|e| {
        AppError::Startup(format!(
            "cannot bind admin address {}: {e}",
            config.admin_addr
        ))
    })?;
    if config.max_in_flight_body_bytes < config.max_body_bytes {
        return Err(AppError::Startup(format!(
            "--max-in-flight-body-bytes ({}) must be at least --max-body-bytes ({})",
            config.max_in_flight_body_bytes, config.max_body_bytes
        )));
    }
    let database_url = match (config.store, config.database_url) {
        (StoreKind::Redb, None) => None,
        (StoreKind::Redb, Some(_)) => {
            // An easy slip (the URL set, the store left at its default): say so, as the
            // service would otherwise quietly keep its data somewhere else than intended.
            tracing::warn!(
                "a database URL is set but the store is redb: the URL is ignored (set --store postgres or USERPROFILES_STORE=postgres to use it)"
            );
            None
        }
        (StoreKind::Postgres, Some(url)) => Some(url),
        (StoreKind::Postgres, None) => {
            return Err(AppError::Startup(
                "--store postgres needs --database-url (or USERPROFILES_DATABASE_URL)".into(),
            ))
        }
    };
    let options = Options {
        clock: Arc::new(SystemClock),
        data_dir: config.data_dir,
        database_url,
        max_body_bytes: config.max_body_bytes,
        shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        settings: EngineSettings {
            token_lifetime: config.token_timeout,
            profile_max_size_bytes: config.profile_max_size_bytes,
            limits: RequestLimits {
                max_uids: config.max_uids_per_request,
                max_data_patterns: config.max_data_patterns,
                max_clause_count: config.max_clause_count,
                max_terms_count: config.max_terms_count,
                hash_threads: config.hash_threads,
                hash_queue: config.hash_queue,
                search_threads: config.search_threads,
                search_queue: config.search_queue,
            },
            suggest_index_dir: None,
        },
        transport: TransportLimits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            max_initial_line_bytes: config.max_initial_line_bytes,
            max_header_bytes: config.max_header_bytes,
            max_in_flight_body_bytes: config.max_in_flight_body_bytes,
            max_connection_age: config.max_connection_age,
            max_connection_age_grace: config.max_connection_age_grace,
            http2_keepalive_interval: config.http2_keepalive_interval,
            http2_keepalive_timeout: config.http2_keepalive_timeout,
        },
        tls: match (config.tls_cert, config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                files: TlsFiles {
                    cert,
                    key,
                    client_ca: config.tls_client_ca,
                },
                reload_interval: config.tls_reload_interval,
            }),
            _ => None,
        },
        elastic_password: std::env::var("ELASTIC_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new),
    };
    run(options, Listeners { grpc, http, admin }, shutdown).await
}

/// The bound sockets `run` serves on.
pub struct Listeners {
    /// gRPC (`userprofiles.v1`, health, reflection).
    pub grpc: TcpListener,
    /// The Elasticsearch JSON gateway.
    pub http: TcpListener,
    /// `/metrics`, `/livez`, `/readyz`.
    pub admin: TcpListener,
}

/// Aborts a spawned task when dropped, so an early return from `run` leaves nothing serving.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves gRPC, the JSON gateway and the admin endpoints until `shutdown` resolves.
pub async fn run(
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let Listeners { grpc, http, admin } = listeners;
    let _ = crate::telemetry::metrics_handle();
    // Before anything opens: a bad certificate is a configuration error to report at once.
    let tls = options
        .tls
        .as_ref()
        .map(|settings| ReloadingTls::load(settings.files.clone()))
        .transpose()
        .map_err(|e| AppError::Startup(format!("TLS: {e}")))?;
    let _tls_reloader = match (&tls, &options.tls) {
        (Some(tls), Some(settings)) => {
            Some(AbortOnDrop(tls.spawn_reloader(settings.reload_interval)))
        }
        _ => None,
    };
    // Up first, so probes see a live process (and why it is not ready) while the store opens
    // and the suggest index is built.
    let readiness = Arc::new(Readiness::default());
    let admin_addr = admin
        .local_addr()
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let admin_task = AbortOnDrop(tokio::spawn(crate::admin::serve(
        admin,
        Arc::clone(&readiness),
        async move {
            let mut rx = admin_stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        },
    )));
    let (store, store_description): (Arc<dyn Store>, String) = match &options.database_url {
        Some(url) => (
            Arc::new(InstrumentedStore::new(
                Arc::new(
                    PostgresStore::connect(url)
                        .await
                        .map_err(|e| AppError::Store(e.to_string()))?,
                ),
                "postgresql",
            )),
            "postgres".to_owned(),
        ),
        None => (
            Arc::new(InstrumentedStore::new(
                Arc::new(
                    RedbStore::open(&options.data_dir)
                        .map_err(|e| AppError::Store(e.to_string()))?,
                ),
                "redb",
            )),
            format!(
                "redb at {}",
                options.data_dir.join("profiles.redb").display()
            ),
        ),
    };
    let mut settings = options.settings.clone();
    if options.database_url.is_none() {
        // Beside the redb file it follows, which it checks at start (see
        // `SuggestIndex::open`). PostgreSQL replicas keep theirs in memory: the database
        // outlives any one replica's disk.
        settings.suggest_index_dir = Some(options.data_dir.join("suggest-index"));
    }
    let engine = Engine::with_settings(Arc::clone(&store), Arc::clone(&options.clock), settings)
        .map_err(|e| AppError::Startup(e.reason()))?;
    engine.refresh_suggest_index().await.map_err(|e| {
        AppError::Startup(format!("cannot build the suggest index: {}", e.reason()))
    })?;
    readiness.index_built();
    match engine
        .bootstrap_elastic(options.elastic_password.clone())
        .await
    {
        Ok(Some(generated)) => {
            // Shown once, on the terminal only: secrets never go to the logs.
            println!("\nGenerated a password for the [elastic] superuser (shown once, store it safely):\n\n    {}\n", generated.expose());
        }
        Ok(None) => {}
        Err(e) => return Err(AppError::Startup(e.reason())),
    }
    let grpc_addr = grpc
        .local_addr()
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let scheme = match (
        &options.tls,
        &options
            .tls
            .as_ref()
            .and_then(|t| t.files.client_ca.as_ref()),
    ) {
        (None, _) => "plaintext",
        (Some(_), None) => "tls",
        (Some(_), Some(_)) => "mtls",
    };
    tracing::info!(%grpc_addr, %http_addr, %admin_addr, store = %store_description, transport = scheme, "userprofiles serving");

    engine.start_background_tasks();
    let engine_for_shutdown = engine.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, true).await;
    let health_watch = tokio::spawn(watch_store_health(
        Arc::clone(&store),
        health_reporter.clone(),
        Arc::clone(&readiness),
    ));
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // So grpcurl can decode the google.rpc error details we attach.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // So grpcurl can decode the google.rpc error details we attach.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let api = GrpcApi::new(engine.clone());
    let limit = options.max_body_bytes;
    let transport = options.transport.clone();
    let mut grpc_builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(transport.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(transport.http2_keepalive_timeout));
    if let Some(age) = transport.max_connection_age {
        grpc_builder = grpc_builder
            .max_connection_age(age)
            .max_connection_age_grace(transport.max_connection_age_grace);
    }
    let grpc_server = grpc_builder
        .http2_max_header_list_size(transport.max_header_bytes as u32)
        .max_concurrent_streams(MAX_GRPC_STREAMS_PER_CONNECTION)
        // Small flow-control windows bound what a client can make a connection buffer.
        .initial_stream_window_size(GRPC_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(GRPC_CONNECTION_WINDOW_BYTES)
        .layer(crate::telemetry::GrpcMetricsLayer)
        // Callers are authenticated from the headers before their message is read.
        .layer(crate::grpc::AuthenticateLayer::new(
            engine.clone(),
            transport.body_read_timeout,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            pb::user_profiles_server::UserProfilesServer::new(api.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(
            pb::users_server::UsersServer::new(api.clone()).max_decoding_message_size(limit),
        )
        .add_service(
            pb::roles_server::RolesServer::new(api.clone()).max_decoding_message_size(limit),
        )
        .add_service(
            pb::security_server::SecurityServer::new(api.clone()).max_decoding_message_size(limit),
        )
        .add_service(
            pb::privileges_server::PrivilegesServer::new(api.clone())
                .max_decoding_message_size(limit),
        )
        .add_service(pb::tokens_server::TokensServer::new(api).max_decoding_message_size(limit))
        .serve_with_incoming_shutdown(
            LimitedListener::new(grpc, transport.max_connections, "grpc")
                .into_stream(transport.header_read_timeout, tls.clone()),
            stopped(stop_rx.clone()),
        );
    let http_server = crate::transport::serve_http(
        LimitedListener::new(http, transport.max_connections, "http"),
        crate::http::service(engine, limit, transport.clone()),
        transport,
        tls.clone(),
        stopped(stop_rx),
    );

    let grpc_task = tokio::spawn(async move {
        grpc_server
            .await
            .map_err(|e| AppError::Serve(format!("gRPC: {e}")))
    });
    let http_task = tokio::spawn(async move {
        http_server.await;
        Ok::<(), AppError>(())
    });
    let servers = async move {
        let (grpc, http) = tokio::join!(grpc_task, http_task);
        grpc.map_err(|e| AppError::Serve(e.to_string()))??;
        http.map_err(|e| AppError::Serve(e.to_string()))??;
        Ok::<(), AppError>(())
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => return result,
        () = shutdown => {}
    }
    tracing::info!("shutdown requested: draining in-flight requests");
    readiness.draining();
    health_watch.abort();
    let _ = health_watch.await;
    // The engine's own tasks hold the store, which a restart reopens: wait for them to stop.
    engine_for_shutdown.stop_background_tasks().await;
    set_health(&health_reporter, false).await;
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(options.shutdown_grace, servers).await;
    // The admin listener answers `/readyz` 503 until the last request has drained.
    let _ = admin_stop_tx.send(true);
    let mut admin_task = admin_task;
    let _ = tokio::time::timeout(Duration::from_secs(1), &mut admin_task.0).await;
    match drained {
        Ok(result) => {
            tracing::info!("shutdown complete");
            result
        }
        Err(_) => {
            tracing::warn!(
                grace_secs = options.shutdown_grace.as_secs(),
                "grace period over; abandoning unfinished requests"
            );
            Ok(())
        }
    }
}

/// How often the store's reachability is checked for gRPC health.
const STORE_HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// Reports NOT_SERVING (and `/readyz` 503) while the store does not answer, SERVING again
/// once it does.
async fn watch_store_health(
    store: Arc<dyn Store>,
    reporter: tonic_health::server::HealthReporter,
    readiness: Arc<Readiness>,
) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(STORE_HEALTH_INTERVAL);
    loop {
        ticks.tick().await;
        let healthy = match store.ping().await {
            Ok(()) => true,
            Err(error) => {
                if serving {
                    tracing::error!(%error, "store unreachable: reporting NOT_SERVING");
                }
                false
            }
        };
        if healthy != serving {
            if healthy {
                tracing::info!("store reachable again: reporting SERVING");
            }
            readiness.set_store_reachable(healthy);
            set_health(&reporter, healthy).await;
            serving = healthy;
        }
    }
}

async fn set_health(reporter: &tonic_health::server::HealthReporter, serving: bool) {
    use pb::{
        privileges_server::PrivilegesServer, roles_server::RolesServer,
        security_server::SecurityServer, tokens_server::TokensServer,
        user_profiles_server::UserProfilesServer, users_server::UsersServer,
    };
    use tonic::server::NamedService;
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    // "" is the whole server, as health-checking clients and Kubernetes probes ask for it.
    let services = [
        "",
        <UserProfilesServer<GrpcApi> as NamedService>::NAME,
        <UsersServer<GrpcApi> as NamedService>::NAME,
        <RolesServer<GrpcApi> as NamedService>::NAME,
        <SecurityServer<GrpcApi> as NamedService>::NAME,
        <PrivilegesServer<GrpcApi> as NamedService>::NAME,
        <TokensServer<GrpcApi> as NamedService>::NAME,
    ];
    for service in services {
        reporter.set_service_status(service, status).await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
