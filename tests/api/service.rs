//! The service around the APIs: health, reflection, Elasticsearch REST conventions, metrics,
//! and graceful shutdown of the real binary.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

#[tokio::test]
async fn grpc_health_reports_serving_for_the_server_and_each_service() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.grpc.clone());
    for service in ["", "userprofiles.v1.UserProfiles", "userprofiles.v1.Users"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn reflection_lists_every_service_and_describes_the_messages() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.grpc.clone());
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "userprofiles.v1.Profile".into(),
            )),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "google.rpc.ErrorInfo".into(),
            )),
        },
    ];
    let mut stream = client
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "userprofiles.v1.UserProfiles",
        "userprofiles.v1.Users",
        "userprofiles.v1.Roles",
        "userprofiles.v1.Security",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    // The google.rpc error details are described too, so grpcurl can print them.
    let Some(MessageResponse::FileDescriptorResponse(details)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the google.rpc descriptors");
    };
    assert!(!details.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn routing_errors_use_elasticsearch_flat_bodies() {
    let app = spawn_app().await;
    let response = app
        .es(Method::DELETE, "/_security/profile/_activate?pretty")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET,POST");
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Incorrect HTTP method for uri [/_security/profile/_activate?pretty] and method [DELETE], allowed: [GET, POST]", "status": 405})
    );

    let (status, body) = send_json(app.es(Method::GET, "/_nope")).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "no handler found for uri [/_nope] and method [GET]"})
        )
    );
}

#[tokio::test]
async fn pretty_output_and_vendor_media_types_are_honoured() {
    let app = spawn_app().await;
    let response = app
        .es(Method::GET, "/_security/_authenticate?pretty")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("{\n  \"username\" : \"elastic\",\n"),
        "{text}"
    );
    assert!(text.ends_with("}\n"));

    let vendor = "application/vnd.elasticsearch+json; compatible-with=8";
    let response = app
        .es(Method::POST, "/_security/profile/_activate")
        .header("accept", vendor)
        .header("content-type", vendor)
        .body(
            json!({"grant_type": "password", "username": "elastic", "password": ELASTIC_PASSWORD})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=8"
    );
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");

    let response = app
        .es(Method::GET, "/_security/_authenticate")
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=9",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=9"
    );
    let (status, body) = send_json(app.es(Method::GET, "/_security/_authenticate").header(
        "accept",
        "application/vnd.elasticsearch+json; compatible-with=5",
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "media_type_header_exception");

    // The official JavaScript client sends a list of media ranges on body-less requests; a list
    // is not one vendor media type, so it asks for no version and is answered as plain JSON.
    let response = app
        .es(Method::GET, "/_security/_authenticate")
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=9,text/plain",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["username"], "elastic");

    // A header that is not a media type is refused as Elasticsearch refuses it, naming it.
    let (status, body) = send_json(
        app.es(Method::GET, "/_security/_authenticate")
            .header("accept", "nonsense"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {
            "root_cause": [{"type": "illegal_argument_exception", "reason": "invalid media-type [nonsense]"}],
            "type": "media_type_header_exception",
            "reason": "Invalid media-type value on headers [Accept]",
            "caused_by": {"type": "illegal_argument_exception", "reason": "invalid media-type [nonsense]"}
        }, "status": 400})
    );
    // A body whose Content-Type asks for a version the Accept header does not.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_activate")
            .header(
                "content-type",
                "application/vnd.elasticsearch+json;compatible-with=8",
            )
            .body("{}"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["caused_by"]["reason"],
        "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. Accept=null, Content-Type=application/vnd.elasticsearch+json;compatible-with=8"
    );
}

#[tokio::test]
async fn the_root_answers_like_an_elasticsearch_node_for_client_product_checks() {
    let app = spawn_app().await;
    let ping = app.es(Method::HEAD, "/").send().await.unwrap();
    assert_eq!(ping.status(), 200, "HEAD / is the clients' ping");
    assert_eq!(ping.headers()["x-elastic-product"], "Elasticsearch");
    assert!(ping.bytes().await.unwrap().is_empty());
    let response = app.es(Method::GET, "/").send().await.unwrap();
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["tagline"], "You Know, for Search");
    assert!(body["version"]["number"]
        .as_str()
        .unwrap()
        .starts_with("8."));
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let app = spawn_app().await;
    app.es(Method::GET, "/_security/_authenticate")
        .send()
        .await
        .unwrap();
    let mut security = app.security_client();
    security
        .authenticate(as_elastic(userprofiles::pb::AuthenticateRequest {}))
        .await
        .unwrap();
    security
        .authenticate(tonic::Request::new(
            userprofiles::pb::AuthenticateRequest {},
        ))
        .await
        .unwrap_err();
    let text = app.metrics_text().await;
    // The recorder is process-wide and other tests run alongside: check each series exists
    // with a count, not the count itself.
    let has_series = |prefix: &str| {
        text.lines().any(|line| {
            line.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(' '))
                .is_some_and(|value| value.parse::<f64>().is_ok_and(|v| v >= 1.0))
        })
    };
    let labels =
        r#"grpc_type="unary",grpc_service="userprofiles.v1.Security",grpc_method="Authenticate""#;
    for series in [
        format!("grpc_server_started_total{{{labels}}}"),
        format!(r#"grpc_server_handled_total{{{labels},grpc_code="OK"}}"#),
        format!(r#"grpc_server_handled_total{{{labels},grpc_code="Unauthenticated"}}"#),
        format!(r#"grpc_server_handling_seconds_bucket{{{labels},le="+Inf"}}"#),
        r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/_security/_authenticate",http_response_status_code="200",le="+Inf"}"#.to_owned(),
    ] {
        assert!(has_series(&series), "no {series} in\n{text}");
    }
    // Gauges: present whatever their value at this moment.
    for gauge in [
        r#"userprofiles_open_connections{listener="http"}"#,
        r#"userprofiles_open_connections{listener="grpc"}"#,
        r#"userprofiles_in_flight_requests{listener="http"}"#,
        r#"userprofiles_in_flight_requests{listener="grpc"}"#,
        r#"userprofiles_pool_jobs{pool="security-crypto"}"#,
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{gauge} "))),
            "no {gauge} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"));
}

#[tokio::test]
async fn the_admin_listener_serves_probes_and_the_gateway_does_not_serve_metrics() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let live = client
        .get(format!("{}/livez", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = client
        .get(format!("{}/readyz", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ok\n");
    let metrics = client
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    // `/metrics` is not an Elasticsearch path: the gateway answers it as Elasticsearch would.
    let gateway = app.es(Method::GET, "/metrics").send().await.unwrap();
    assert_ne!(gateway.status(), 200);
    assert!(!gateway.text().await.unwrap().contains("# TYPE"));
}

#[tokio::test]
async fn the_binary_drains_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path()).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let exit = exit.expect("the binary exits after SIGTERM");
    assert_eq!(exit.code(), Some(0));
}

/// `userprofiles healthcheck` against the admin address in `USERPROFILES_ADMIN_ADDR`.
fn healthcheck(admin_addr: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_userprofiles"))
        .arg("healthcheck")
        .env("USERPROFILES_ADMIN_ADDR", admin_addr)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_healthcheck_subcommand_exits_zero_only_while_the_server_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path()).await;
    let admin_addr = server.admin_addr.clone();
    let ready = {
        let admin_addr = admin_addr.clone();
        tokio::task::spawn_blocking(move || healthcheck(&admin_addr))
            .await
            .unwrap()
    };
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let gone = tokio::task::spawn_blocking(move || healthcheck(&admin_addr))
        .await
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot reach"));
}

#[tokio::test]
async fn a_grpc_deadline_ends_the_call_with_deadline_exceeded_from_the_server() {
    use prost::Message;
    let app = spawn_app().await;
    // Never logged in: the activation verifies the password hash, which takes far longer than
    // the 1 ms the caller allows.
    app.create_user("slowpoke", &[], None, None).await;
    // A raw HTTP/2 gRPC call: tonic's own client would enforce the deadline itself and never
    // show what the server answers.
    let message = password_grant("slowpoke", USER_PASSWORD).encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let call = |timeout: Option<&'static str>| {
        let mut request = client
            .post(format!(
                "http://{}/userprofiles.v1.UserProfiles/Activate",
                app.grpc_addr
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .basic_auth("elastic", Some(ELASTIC_PASSWORD))
            .body(framed.clone());
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        request.send()
    };
    let response = call(Some("1m")).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("grpc-status").as_deref(),
        Some("4"),
        "DEADLINE_EXCEEDED: {:?}",
        response.headers()
    );
    assert_eq!(
        header("grpc-message").as_deref(),
        Some("the%20call%20did%20not%20complete%20within%20[1ms]")
    );
    // A generous deadline lets the same call complete.
    let response = call(Some("30S")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("grpc-status"),
        None,
        "not trailers-only"
    );
    let body = response.bytes().await.unwrap();
    let profile = userprofiles::pb::Profile::decode(&body[5..]).unwrap();
    assert_eq!(profile.user.unwrap().username, "slowpoke");
}

/// Opens a bare HTTP/2 connection to `addr` and returns how long the server kept it open,
/// or `None` if it was still open after `patience`.
async fn h2_connection_lifetime(
    addr: &str,
    patience: std::time::Duration,
) -> Option<std::time::Duration> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let (_send_request, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::time::timeout(patience, connection)
        .await
        .ok()
        .map(|_| started.elapsed())
}

#[tokio::test]
async fn grpc_connections_are_closed_gracefully_at_their_maximum_age() {
    let aged = spawn_tuned(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        |options| {
            options.transport.max_connection_age = Some(std::time::Duration::from_millis(500));
            options.transport.max_connection_age_grace = std::time::Duration::from_millis(500);
        },
    )
    .await;
    let lifetime = h2_connection_lifetime(&aged.grpc_addr, std::time::Duration::from_secs(10))
        .await
        .expect("the server closes an aged connection");
    assert!(
        lifetime >= std::time::Duration::from_millis(500),
        "{lifetime:?}"
    );
    // Off by default: the same idle connection stays open.
    let app = spawn_app().await;
    assert_eq!(
        h2_connection_lifetime(&app.grpc_addr, std::time::Duration::from_secs(2)).await,
        None
    );
}

#[tokio::test]
async fn profile_counts_and_store_latency_are_metrics() {
    // The binary, so the process-wide gauges are this server's alone.
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path()).await;
    let client = reqwest::Client::new();
    let mut uids = Vec::new();
    for user in ["ann", "ben", "cat"] {
        let created = client
            .put(server.url(&format!("/_security/user/{user}")))
            .basic_auth("elastic", Some(ELASTIC_PASSWORD))
            .json(&json!({"password": USER_PASSWORD, "roles": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
        let (status, body) = send_json(
            client
                .post(server.url("/_security/profile/_activate"))
                .basic_auth("elastic", Some(ELASTIC_PASSWORD))
                .json(
                    &json!({"grant_type": "password", "username": user, "password": USER_PASSWORD}),
                ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        uids.push(body["uid"].as_str().unwrap().to_owned());
    }
    let disabled = client
        .put(server.url(&format!("/_security/profile/{}/_disable", uids[1])))
        .basic_auth("elastic", Some(ELASTIC_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);

    let metrics = format!("http://{}/metrics", server.admin_addr);
    let value = |text: &str, series: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if value(&text, "userprofiles_profiles") == Some(3.0)
            && value(&text, "userprofiles_profiles_enabled") == Some(2.0)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(value(&text, "userprofiles_profiles"), Some(3.0), "{text}");
    assert_eq!(
        value(&text, "userprofiles_profiles_enabled"),
        Some(2.0),
        "{text}"
    );
    let lookups = value(
        &text,
        r#"userprofiles_store_operation_duration_seconds_count{operation="find_profile_by_user"}"#,
    );
    assert!(lookups.is_some_and(|count| count >= 3.0), "{text}");
}
