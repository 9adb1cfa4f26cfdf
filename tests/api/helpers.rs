//! Starts the real server on 127.0.0.1:0 with its own data directory, and talks to it through a
//! real HTTP client and real tonic clients.

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use userprofiles::app::{self, AppError, Options};
use userprofiles::auth::password::Secret;
use userprofiles::engine::EngineSettings;
use userprofiles::pb;
use userprofiles::transport::TransportLimits;

/// The bootstrap superuser's password in every test server.
pub const ELASTIC_PASSWORD: &str = "elastic-test-password";
/// The password every test user gets.
pub const USER_PASSWORD: &str = "l0ng-r4nd0m-p@ssw0rd";
/// The uid Elasticsearch's documentation prints for `jacknich`.
pub const JACKNICH_UID: &str = "u_79HkWkwmnBH5gqFKwoxggWPjEBOur1zLPXQPEl1VBW0_0";

/// A running server.
pub struct TestApp {
    pub http: String,
    /// Base URL of the admin listener (`/metrics`, `/livez`, `/readyz`).
    pub admin: String,
    /// `host:port` of the gRPC listener.
    pub grpc_addr: String,
    pub grpc: Channel,
    pub client: reqwest::Client,
    pub data_dir: Arc<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

/// A server on a fresh data directory.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Arc::new(tempfile::tempdir().expect("temp dir"))).await
}

/// A server on an existing data directory (for restart tests).
pub async fn spawn_app_on(data_dir: Arc<tempfile::TempDir>) -> TestApp {
    wait_for_store_release(&data_dir).await;
    spawn_configured(data_dir, 1024 * 1024, Duration::from_secs(1200)).await
}

/// In one process, the previous server's last connection tasks may still be winding down
/// (holding the redb file lock) for a moment after `stop` returns; a new process never meets
/// this. Waits until the store can be opened.
async fn wait_for_store_release(data_dir: &tempfile::TempDir) {
    for _ in 0..200 {
        if userprofiles::store::redb::RedbStore::open(data_dir.path()).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server with a small body limit.
pub async fn spawn_with(data_dir: Arc<tempfile::TempDir>, max_body_bytes: usize) -> TestApp {
    spawn_configured(data_dir, max_body_bytes, Duration::from_secs(1200)).await
}

/// A server with every option chosen.
pub async fn spawn_configured(
    data_dir: Arc<tempfile::TempDir>,
    max_body_bytes: usize,
    token_lifetime: Duration,
) -> TestApp {
    spawn_full(data_dir, None, max_body_bytes, token_lifetime).await
}

/// A server on a PostgreSQL database (a replica, when several share the URL).
pub async fn spawn_on_postgres(database_url: &str) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    spawn_full(
        data_dir,
        Some(database_url.to_owned()),
        1024 * 1024,
        Duration::from_secs(1200),
    )
    .await
}

/// A server whose options `tune` adjusts (limits, timeouts).
pub async fn spawn_tuned(
    data_dir: Arc<tempfile::TempDir>,
    tune: impl FnOnce(&mut Options),
) -> TestApp {
    spawn_tuned_full(data_dir, None, 1024 * 1024, Duration::from_secs(1200), tune).await
}

async fn spawn_full(
    data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    max_body_bytes: usize,
    token_lifetime: Duration,
) -> TestApp {
    spawn_tuned_full(
        data_dir,
        database_url,
        max_body_bytes,
        token_lifetime,
        |_| {},
    )
    .await
}

async fn spawn_tuned_full(
    data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    max_body_bytes: usize,
    token_lifetime: Duration,
    tune: impl FnOnce(&mut Options),
) -> TestApp {
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let http_addr = http_listener.local_addr().unwrap();
    let admin_addr = admin_listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let mut options = Options {
        clock: Arc::new(userprofiles::engine::SystemClock),
        data_dir: data_dir.path().to_path_buf(),
        database_url,
        max_body_bytes,
        shutdown_grace: Duration::from_secs(5),
        elastic_password: Some(Secret::new(ELASTIC_PASSWORD)),
        settings: EngineSettings {
            token_lifetime,
            ..EngineSettings::default()
        },
        transport: TransportLimits::default(),
        tls: None,
    };
    tune(&mut options);
    let task = tokio::spawn(app::run(
        options,
        app::Listeners {
            grpc: grpc_listener,
            http: http_listener,
            admin: admin_listener,
        },
        async move {
            let _ = rx.await;
        },
    ));
    let grpc = Channel::from_shared(format!("http://{grpc_addr}")).unwrap();
    let Some(grpc) = connect(grpc).await else {
        // Say why: a server that stopped has its reason in the task's result.
        if task.is_finished() {
            panic!("the server stopped while starting: {:?}", task.await);
        }
        panic!("gRPC server did not come up");
    };
    let app = TestApp {
        http: format!("http://{http_addr}"),
        admin: format!("http://{admin_addr}"),
        grpc_addr: grpc_addr.to_string(),
        grpc,
        client: reqwest::Client::new(),
        data_dir,
        shutdown: Some(tx),
        task: Some(task),
    };
    app.wait_until_ready().await;
    app
}

async fn connect(endpoint: tonic::transport::Endpoint) -> Option<Channel> {
    // Generous: with the whole suite running on two cores a restart can take seconds.
    for _ in 0..500 {
        if let Ok(channel) = endpoint.connect().await {
            return Some(channel);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

impl TestApp {
    async fn wait_until_ready(&self) {
        for _ in 0..500 {
            let response = self
                .es(Method::GET, "/_security/_authenticate")
                .send()
                .await;
            if response.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("HTTP server did not come up");
    }

    /// Stops the server gracefully and returns its data directory.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
        Arc::clone(&self.data_dir)
    }

    /// The Prometheus text `/metrics` serves.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.http))
    }

    /// A request as `username`.
    pub fn as_user(
        &self,
        username: &str,
        password: &str,
        method: Method,
        path: &str,
    ) -> RequestBuilder {
        self.anonymous(method, path)
            .basic_auth(username, Some(password))
    }

    /// A request as the `elastic` superuser.
    pub fn es(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_user("elastic", ELASTIC_PASSWORD, method, path)
    }

    /// Creates a native user with the standard test password.
    pub async fn create_user(
        &self,
        username: &str,
        roles: &[&str],
        full_name: Option<&str>,
        email: Option<&str>,
    ) {
        let body = serde_json::json!({
            "password": USER_PASSWORD, "roles": roles, "full_name": full_name, "email": email
        });
        let response = self
            .es(Method::PUT, &format!("/_security/user/{username}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "creating {username}: {}",
            response.text().await.unwrap()
        );
    }

    /// Creates a role with the given cluster privileges.
    pub async fn create_role(&self, name: &str, cluster: &[&str]) {
        let response = self
            .es(Method::PUT, &format!("/_security/role/{name}"))
            .json(&serde_json::json!({ "cluster": cluster }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Activates `username` (password grant) as the superuser over HTTP.
    pub async fn activate_http(&self, username: &str, password: &str) -> (u16, Value) {
        let body = serde_json::json!({"grant_type": "password", "username": username, "password": password});
        send_json(
            self.es(Method::POST, "/_security/profile/_activate")
                .json(&body),
        )
        .await
    }

    pub fn profiles_client(&self) -> pb::user_profiles_client::UserProfilesClient<Channel> {
        pb::user_profiles_client::UserProfilesClient::new(self.grpc.clone())
    }

    pub fn users_client(&self) -> pb::users_client::UsersClient<Channel> {
        pb::users_client::UsersClient::new(self.grpc.clone())
    }

    pub fn roles_client(&self) -> pb::roles_client::RolesClient<Channel> {
        pb::roles_client::RolesClient::new(self.grpc.clone())
    }

    pub fn tokens_client(&self) -> pb::tokens_client::TokensClient<Channel> {
        pb::tokens_client::TokensClient::new(self.grpc.clone())
    }

    pub fn security_client(&self) -> pb::security_client::SecurityClient<Channel> {
        pb::security_client::SecurityClient::new(self.grpc.clone())
    }
}

/// Sends a request and returns the status and the JSON body (Null when the body is not JSON).
pub async fn send_json(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A gRPC request carrying Basic credentials.
pub fn authed<T>(message: T, username: &str, password: &str) -> tonic::Request<T> {
    use base64::Engine as _;
    let mut request = tonic::Request::new(message);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {token}").parse().unwrap());
    request
}

/// A gRPC request as the superuser.
pub fn as_elastic<T>(message: T) -> tonic::Request<T> {
    authed(message, "elastic", ELASTIC_PASSWORD)
}

/// The ErrorInfo reason (the Elasticsearch error type) of a gRPC status.
pub fn error_type(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// The password-grant activation message.
pub fn password_grant(username: &str, password: &str) -> pb::ActivateRequest {
    pb::ActivateRequest {
        grant_type: "password".into(),
        username: username.into(),
        password: password.into(),
        access_token: String::new(),
    }
}

/// The server binary running as its own process on `data_dir`, for what only a real process
/// can show (signals, `kill -9`). Killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// `host:port` of the HTTP gateway.
    pub http_addr: String,
    /// `host:port` of the admin listener.
    pub admin_addr: String,
    /// `host:port` of the gRPC listener.
    pub grpc_addr: String,
    /// Every line the binary wrote to stderr so far.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary on free ports and waits until it answers an authenticated request.
    pub async fn start(data_dir: &std::path::Path) -> ServerProcess {
        Self::start_with_env(data_dir, &[]).await
    }

    /// Starts the binary with extra environment variables.
    pub async fn start_with_env(data_dir: &std::path::Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userprofiles"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("ELASTIC_PASSWORD", ELASTIC_PASSWORD)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<(String, String, String)>();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log_writer = Arc::clone(&log);
        // Keeps reading (so the pipe never fills) and reports the addresses once. Port 0: the
        // binary picks free ports and says which in its start-up line.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let field = |line: &str, name: &str| {
                line.split(name)
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            };
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let (Some(http), Some(admin), Some(grpc)) = (
                    field(&line, "http_addr="),
                    field(&line, "admin_addr="),
                    field(&line, "grpc_addr="),
                ) {
                    let _ = addr_tx.send((http, admin, grpc));
                }
                if let Ok(mut log) = log_writer.lock() {
                    log.push(line);
                }
            }
        });
        let (http_addr, admin_addr, grpc_addr) = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the binary says where it listens");
        let server = ServerProcess {
            child,
            http_addr,
            admin_addr,
            grpc_addr,
            log,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let answered = client
                .get(server.url("/_security/_authenticate"))
                .basic_auth("elastic", Some(ELASTIC_PASSWORD))
                .send()
                .await;
            if answered.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the binary did not start serving");
    }

    /// The gateway URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
