//! TLS and mTLS on both listeners, and certificate rotation without a restart.

use crate::helpers::ELASTIC_PASSWORD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::Version;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use userprofiles::app::{self, AppError, Options, TlsSettings};
use userprofiles::auth::password::Secret;
use userprofiles::engine::EngineSettings;
use userprofiles::pb;
use userprofiles::tls::TlsFiles;
use userprofiles::transport::TransportLimits;

/// A certificate authority that signs server and client certificates for the tests.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A signed certificate and its key, PEM.
struct Signed {
    cert: String,
    key: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Signed {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Signed {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Signed {
        self.sign(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self, name: &str) -> Signed {
        self.sign(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Replaces `path` in one step, as a Secret volume's symlink swap does.
fn write_atomically(path: &Path, contents: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, contents).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

struct TlsServer {
    grpc_port: u16,
    http_port: u16,
    admin_port: u16,
    dir: tempfile::TempDir,
    _data: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), AppError>>,
}

impl TlsServer {
    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.http_port)
    }
}

/// Writes the files and starts a server on them; checks them every 100 ms.
async fn start_tls(server: &Signed, client_ca: Option<&TestCa>) -> Result<TlsServer, AppError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &server.key).unwrap();
    if let Some(ca) = client_ca {
        std::fs::write(dir.path().join("client-ca.crt"), &ca.pem).unwrap();
    }
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        client_ca: client_ca.map(|_| dir.path().join("client-ca.crt")),
    };
    start_with_files(dir, files).await
}

async fn start_with_files(dir: tempfile::TempDir, files: TlsFiles) -> Result<TlsServer, AppError> {
    let data = tempfile::tempdir().unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_port, http_port, admin_port) = (
        grpc.local_addr().unwrap().port(),
        http.local_addr().unwrap().port(),
        admin.local_addr().unwrap().port(),
    );
    let options = Options {
        clock: Arc::new(userprofiles::engine::SystemClock),
        data_dir: data.path().to_path_buf(),
        database_url: None,
        max_body_bytes: 1 << 20,
        shutdown_grace: Duration::from_secs(5),
        elastic_password: Some(Secret::new(ELASTIC_PASSWORD)),
        settings: EngineSettings::default(),
        transport: TransportLimits::default(),
        tls: Some(TlsSettings {
            files,
            reload_interval: Duration::from_millis(100),
        }),
    };
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let mut task = tokio::spawn(app::run(
        options,
        app::Listeners { grpc, http, admin },
        async move {
            let _ = stop.await;
        },
    ));
    // Ready once the (plaintext) admin listener says so, or failed if `run` returned.
    let readyz = format!("http://127.0.0.1:{admin_port}/readyz");
    let probe = reqwest::Client::new();
    for _ in 0..500 {
        if task.is_finished() {
            return Err((&mut task).await.unwrap().unwrap_err());
        }
        if probe
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(TlsServer {
                grpc_port,
                http_port,
                admin_port,
                dir,
                _data: data,
                shutdown: Some(shutdown),
                task,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("TLS server did not become ready");
}

fn https_client(trusting: &TestCa, identity: Option<&Signed>, http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(trusting.pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10));
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.cert, identity.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

async fn authenticate_https(
    client: &reqwest::Client,
    server: &TlsServer,
) -> Result<Version, String> {
    let response = client
        .get(server.https("/_security/_authenticate"))
        .basic_auth("elastic", Some(ELASTIC_PASSWORD))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let version = response.version();
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "elastic");
    Ok(version)
}

async fn grpc_channel(
    server: &TlsServer,
    trusting: &TestCa,
    identity: Option<&Signed>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&trusting.pem))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(&identity.cert, &identity.key));
    }
    Channel::from_shared(format!("https://localhost:{}", server.grpc_port))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

async fn authenticate_grpc(channel: Channel) -> Result<String, tonic::Status> {
    let reply = pb::security_client::SecurityClient::new(channel)
        .authenticate(crate::helpers::as_elastic(
            pb::AuthenticateRequest::default(),
        ))
        .await?;
    Ok(reply.into_inner().username)
}

#[tokio::test]
async fn both_listeners_serve_tls_and_the_gateway_offers_h2_and_http1() {
    let ca = TestCa::new("server ca");
    let server = start_tls(&ca.server(), None).await.unwrap();

    // The gateway: HTTP/2 to a client that offers it, HTTP/1.1 to one that does not.
    assert_eq!(
        authenticate_https(&https_client(&ca, None, false), &server).await,
        Ok(Version::HTTP_2)
    );
    assert_eq!(
        authenticate_https(&https_client(&ca, None, true), &server).await,
        Ok(Version::HTTP_11)
    );
    // A profile round trip over HTTP/2, body and all.
    let client = https_client(&ca, None, false);
    let activated: serde_json::Value = client
        .post(server.https("/_security/profile/_activate"))
        .basic_auth("elastic", Some(ELASTIC_PASSWORD))
        .json(&serde_json::json!({"grant_type": "password", "username": "elastic", "password": ELASTIC_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = activated["uid"].as_str().expect("activation answers a uid");

    // gRPC over TLS (h2 by ALPN).
    let channel = grpc_channel(&server, &ca, None).await.unwrap();
    assert_eq!(authenticate_grpc(channel.clone()).await.unwrap(), "elastic");
    let profiles = pb::user_profiles_client::UserProfilesClient::new(channel)
        .get_profiles(crate::helpers::as_elastic(pb::GetProfilesRequest {
            uids: vec![uid.to_owned()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profiles.profiles.len(), 1);

    // Plaintext on a TLS listener gets nowhere; the admin listener stays plaintext.
    let plain = reqwest::Client::new();
    assert!(plain
        .get(format!("http://127.0.0.1:{}/", server.http_port))
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
        .eq(&false));
    let readyz = plain
        .get(format!("http://127.0.0.1:{}/readyz", server.admin_port))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    // A client that does not trust the server's CA is refused by its own verifier.
    let stranger = TestCa::new("another ca");
    assert!(
        authenticate_https(&https_client(&stranger, None, false), &server)
            .await
            .is_err()
    );
    server.stop().await;
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_trusted_certificate() {
    let server_ca = TestCa::new("server ca");
    let client_ca = TestCa::new("client ca");
    let server = start_tls(&server_ca.server(), Some(&client_ca))
        .await
        .unwrap();
    let trusted = client_ca.client("kibana");
    let untrusted = TestCa::new("rogue ca").client("kibana");

    assert_eq!(
        authenticate_https(&https_client(&server_ca, Some(&trusted), false), &server).await,
        Ok(Version::HTTP_2)
    );
    assert_eq!(
        authenticate_https(&https_client(&server_ca, Some(&trusted), true), &server).await,
        Ok(Version::HTTP_11)
    );
    for identity in [None, Some(&untrusted)] {
        let refused = authenticate_https(&https_client(&server_ca, identity, false), &server).await;
        assert!(
            refused.is_err(),
            "HTTPS without a trusted client certificate: {refused:?}"
        );
    }

    let channel = grpc_channel(&server, &server_ca, Some(&trusted))
        .await
        .unwrap();
    assert_eq!(authenticate_grpc(channel).await.unwrap(), "elastic");
    for identity in [None, Some(&untrusted)] {
        // TLS 1.3 clients learn of the refusal at their first read: connect or call fails.
        let refused = match grpc_channel(&server, &server_ca, identity).await {
            Ok(channel) => authenticate_grpc(channel).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        assert!(
            refused.is_err(),
            "gRPC without a trusted client certificate: {refused:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rotated_certificates_reach_new_connections_without_a_restart() {
    let first_ca = TestCa::new("first ca");
    let server = start_tls(&first_ca.server(), None).await.unwrap();
    let open_channel = grpc_channel(&server, &first_ca, None).await.unwrap();
    assert_eq!(
        authenticate_grpc(open_channel.clone()).await.unwrap(),
        "elastic"
    );

    let second_ca = TestCa::new("second ca");
    let rotated = second_ca.server();
    write_atomically(&server.key_path(), &rotated.key);
    write_atomically(&server.cert_path(), &rotated.cert);

    let trusting_second = https_client(&second_ca, None, false);
    let mut reloaded = false;
    for _ in 0..100 {
        if authenticate_https(&trusting_second, &server).await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reloaded,
        "new connections did not get the rotated certificate within 10 s"
    );
    // New connections no longer see the old certificate...
    assert!(
        authenticate_https(&https_client(&first_ca, None, false), &server)
            .await
            .is_err()
    );
    // ...and the connection opened before the rotation keeps working.
    assert_eq!(authenticate_grpc(open_channel).await.unwrap(), "elastic");

    // A broken rotation keeps the certificate that works.
    std::fs::write(
        server.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        authenticate_https(&https_client(&second_ca, None, false), &server).await,
        Ok(Version::HTTP_2)
    );
    // So does a key that does not belong to the certificate.
    write_atomically(&server.cert_path(), &rotated.cert);
    write_atomically(&server.key_path(), &second_ca.server().key);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let channel = grpc_channel(&server, &second_ca, None).await.unwrap();
    assert_eq!(authenticate_grpc(channel).await.unwrap(), "elastic");
    server.stop().await;
}

#[tokio::test]
async fn unusable_tls_files_stop_the_start_naming_the_file() {
    let ca = TestCa::new("ca");
    let good = ca.server();

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    std::fs::write(dir.path().join("tls.key"), &good.key).unwrap();
    let error = start_with_files(
        dir,
        TlsFiles {
            cert: missing.clone(),
            key: PathBuf::from("unused"),
            client_ca: None,
        },
    )
    .await
    .err()
    .expect("a missing certificate stops the start");
    assert!(
        error.to_string().contains(&*missing.to_string_lossy()),
        "{error}"
    );

    let mismatched = Signed {
        cert: good.cert.clone(),
        key: ca.server().key,
    };
    let error = start_tls(&mismatched, None)
        .await
        .err()
        .expect("a foreign key stops the start");
    assert!(error.to_string().contains("tls.key"), "{error}");

    let not_pem = Signed {
        cert: "hello".into(),
        key: good.key.clone(),
    };
    let error = start_tls(&not_pem, None)
        .await
        .err()
        .expect("a non-PEM certificate stops the start");
    assert!(error.to_string().contains("tls.crt"), "{error}");
}

#[test]
fn the_binary_exits_non_zero_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("absent.crt");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_userprofiles"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.path().join("absent.key"))
        .env("ELASTIC_PASSWORD", ELASTIC_PASSWORD)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("absent.crt"))
        .collect();
    assert_eq!(reason.len(), 1, "{stderr}");
    assert!(reason[0].contains("cannot read"), "{stderr}");
}
