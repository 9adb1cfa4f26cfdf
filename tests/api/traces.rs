//! OpenTelemetry: the binary exports its spans over OTLP/gRPC to a real (in-process) trace
//! receiver, continuing the trace a caller's `traceparent` started, on both front ends.

use crate::helpers::{as_elastic, password_grant, ServerProcess, ELASTIC_PASSWORD, USER_PASSWORD};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use userprofiles::pb;

/// A received span with its resource's attributes.
type ReceivedSpan = (Vec<KeyValue>, Span);

/// Keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push((resource.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    /// The spans of `trace_id` once one named `server_span` has arrived.
    async fn trace(&self, trace_id: &[u8], server_span: &str) -> Vec<ReceivedSpan> {
        for _ in 0..200 {
            {
                let spans = self.spans.lock().unwrap();
                if spans
                    .iter()
                    .any(|(_, s)| s.trace_id == trace_id && s.name == server_span)
                {
                    return spans
                        .iter()
                        .filter(|(_, s)| s.trace_id == trace_id)
                        .cloned()
                        .collect();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let names: Vec<String> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect();
        panic!("no span {server_span} of the trace arrived; received: {names:?}");
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server span and the spans under it (store calls, password hashing).
fn check_trace(spans: &[ReceivedSpan], server_name: &str, caller_span: [u8; 8]) -> Span {
    let (resource, server) = spans
        .iter()
        .find(|(_, s)| s.name == server_name)
        .expect("the server span");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        server.parent_span_id,
        caller_span.to_vec(),
        "parent is the caller's span"
    );
    assert_eq!(
        attribute(resource, "service.name"),
        Some(&string("userprofiles"))
    );
    assert_eq!(
        attribute(resource, "deployment.environment.name"),
        Some(&string("ci"))
    );
    let children: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.parent_span_id == server.span_id)
        .collect();
    assert!(
        children.iter().any(|s| s.name == "password.verify"),
        "password hashing is a child span: {:?}",
        children.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let store_call = children
        .iter()
        .find(|s| s.name == "find_profile_by_user")
        .expect("the profile lookup is a child span");
    assert_eq!(store_call.kind, SpanKind::Client as i32);
    assert_eq!(
        attribute(&store_call.attributes, "db.system.name"),
        Some(&string("redb"))
    );
    server.clone()
}

#[tokio::test]
async fn spans_continue_the_callers_trace_on_both_front_ends() {
    let receiver = Receiver::default();
    let collector = receiver.start().await;
    let endpoint = format!("http://{collector}");
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_with_env(
        data.path(),
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            // The gRPC access line is at DEBUG.
            ("RUST_LOG", "info,userprofiles=debug"),
        ],
    )
    .await;

    // Users whose passwords no request has checked yet, so activating them hashes.
    let client = reqwest::Client::new();
    for user in ["alice", "bob"] {
        let created = client
            .put(server.url(&format!("/_security/user/{user}")))
            .basic_auth("elastic", Some(ELASTIC_PASSWORD))
            .json(&serde_json::json!({"password": USER_PASSWORD, "roles": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
    }

    // HTTP: a caller's trace continues through the gateway.
    let http_trace = [0x4b; 16];
    let http_parent = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
    let response = client
        .post(server.url("/_security/profile/_activate"))
        .basic_auth("elastic", Some(ELASTIC_PASSWORD))
        .header(
            "traceparent",
            format!("00-{}-{}-01", hex(&http_trace), hex(&http_parent)),
        )
        .header("tracestate", "vendor=opaque")
        .json(&serde_json::json!({
            "grant_type": "password", "username": "alice", "password": USER_PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spans = receiver
        .trace(&http_trace, "POST /_security/profile/_activate")
        .await;
    let http_span = check_trace(&spans, "POST /_security/profile/_activate", http_parent);
    assert_eq!(http_span.trace_state, "vendor=opaque");
    assert_eq!(
        attribute(&http_span.attributes, "http.route"),
        Some(&string("/_security/profile/_activate"))
    );
    assert_eq!(
        attribute(&http_span.attributes, "http.request.method"),
        Some(&string("POST"))
    );
    assert_eq!(
        attribute(&http_span.attributes, "http.response.status_code"),
        Some(&any_value::Value::IntValue(200))
    );

    // gRPC: the same through metadata.
    let grpc_trace = [0x7c; 16];
    let grpc_parent = [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = as_elastic(password_grant("bob", USER_PASSWORD));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{}-{}-01", hex(&grpc_trace), hex(&grpc_parent))
            .parse()
            .unwrap(),
    );
    pb::user_profiles_client::UserProfilesClient::new(channel)
        .activate(request)
        .await
        .unwrap();
    let spans = receiver
        .trace(&grpc_trace, "userprofiles.v1.UserProfiles/Activate")
        .await;
    let grpc_span = check_trace(&spans, "userprofiles.v1.UserProfiles/Activate", grpc_parent);
    assert_eq!(
        attribute(&grpc_span.attributes, "rpc.system"),
        Some(&string("grpc"))
    );
    assert_eq!(
        attribute(&grpc_span.attributes, "rpc.method"),
        Some(&string("Activate"))
    );
    assert_eq!(
        attribute(&grpc_span.attributes, "rpc.grpc.status_code"),
        Some(&any_value::Value::IntValue(0))
    );

    // Background work (health pings, the suggest index following the store) is no trace.
    let roots: Vec<String> = receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.parent_span_id.is_empty())
        .map(|(_, s)| s.name.clone())
        .collect();
    assert!(
        roots
            .iter()
            .all(|name| name.contains(' ') || name.contains('/')),
        "only requests start traces: {roots:?}"
    );

    // Log lines written inside each request carry its trace id.
    let log = server.log.lock().unwrap().join("\n");
    for trace in [http_trace, grpc_trace] {
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("trace_id={}", hex(&trace)))),
            "no log line with trace id {}:\n{log}",
            hex(&trace)
        );
    }
}
