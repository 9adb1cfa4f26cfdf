//! Bad input on both front ends: the Elasticsearch error or the matching gRPC status, never a
//! panic or a hang, and the store left as it was.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use userprofiles::pb;

const ACTIVATE: &str = "/_security/profile/_activate";

/// The store is unchanged when the next profile write still takes sequence number `next_seq_no`
/// and no profile exists for `username`.
async fn assert_store_untouched(app: &TestApp, next_seq_no: i64) {
    let (_, body) =
        send_json(app.es(Method::GET, &format!("/_security/profile/{JACKNICH_UID}"))).await;
    assert_eq!(body["profiles"], json!([]), "no profile was written");
    app.create_user("probe", &[], None, None).await;
    let (_, probe) = app.activate_http("probe", USER_PASSWORD).await;
    assert_eq!(
        probe["_doc"]["_seq_no"], next_seq_no,
        "no profile write happened before the probe"
    );
}

async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = app.es(Method::POST, ACTIVATE).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    send_json(request).await
}

fn assert_error(result: &(u16, Value), status: u16, error_type: &str, reason: &str) {
    let (got_status, body) = result;
    assert_eq!(*got_status, status, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error"]["type"], error_type, "{body}");
    assert_eq!(body["error"]["root_cause"][0]["type"], error_type, "{body}");
    let got_reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        got_reason.starts_with(reason),
        "reason {got_reason:?} should start with {reason:?}"
    );
}

#[tokio::test]
async fn malformed_activation_bodies_get_elasticsearch_errors_and_change_nothing() {
    let app = spawn_app().await;
    app.create_user("jacknich", &[], None, None).await;
    let json_ct = Some("application/json");

    assert_error(
        &send_json(app.es(Method::POST, ACTIVATE)).await,
        400,
        "parse_exception",
        "request body is required",
    );
    assert_error(
        &post_raw(&app, json_ct, "").await,
        400,
        "parse_exception",
        "request body is required",
    );
    assert_error(
        &post_raw(&app, json_ct, "not json").await,
        400,
        "x_content_parse_exception",
        "[1:",
    );
    assert_error(
        &post_raw(&app, json_ct, "{\"grant_type\":").await,
        400,
        "x_content_parse_exception",
        "[1:",
    );
    assert_error(
        &post_raw(&app, json_ct, "[]").await,
        400,
        "x_content_parse_exception",
        "[1:1] [activate_profile_request] Expected START_OBJECT but was: START_ARRAY",
    );
    assert_error(
        &post_raw(&app, json_ct, "\"password\"").await,
        400,
        "x_content_parse_exception",
        "[1:1] [activate_profile_request] Expected START_OBJECT but was: VALUE_STRING",
    );
    assert_error(
        &post_raw(&app, json_ct, "{\"grant_type\": 5}").await,
        400,
        "x_content_parse_exception",
        "[1:16] [activate_profile_request] grant_type doesn't support values of type: VALUE_NUMBER",
    );
    assert_error(
        &post_raw(
            &app,
            json_ct,
            "{\"grant_type\":\"password\",\"username\":[\"jacknich\"]}",
        )
        .await,
        400,
        "x_content_parse_exception",
        "[1:37] [activate_profile_request] username doesn't support values of type: START_ARRAY",
    );
    assert_error(
        &post_raw(
            &app,
            json_ct,
            "{\"grant_type\":\"password\",\n \"run_as\":\"x\"}",
        )
        .await,
        400,
        "x_content_parse_exception",
        "[2:2] [activate_profile_request] unknown field [run_as]",
    );
    assert_error(
        &post_raw(&app, json_ct, b"{\"grant_type\":\"pass\xffword\"}".to_vec()).await,
        400,
        "x_content_parse_exception",
        "[1:",
    );
    let (status, body) = post_raw(&app, Some("text/plain"), "{}").await;
    assert_eq!(
        (status, body),
        (
            406,
            json!({"error": "Content-Type header [text/plain] is not supported", "status": 406})
        )
    );

    assert_store_untouched(&app, 0).await;
}

#[tokio::test]
async fn every_invalid_grant_combination_is_refused_with_accumulated_messages_on_both_front_ends() {
    let app = spawn_app().await;
    let cases: Vec<(Value, pb::ActivateRequest, &str, Vec<&str>)> = vec![
        (json!({}), pb::ActivateRequest::default(), "Validation Failed: 1: [grant_type] is required;", vec!["grant_type"]),
        (
            json!({"username": "jacknich", "password": USER_PASSWORD}),
            pb::ActivateRequest { username: "jacknich".into(), password: USER_PASSWORD.into(), ..Default::default() },
            "Validation Failed: 1: [grant_type] is required;",
            vec!["grant_type"],
        ),
        (
            json!({"grant_type": "password"}),
            pb::ActivateRequest { grant_type: "password".into(), ..Default::default() },
            "Validation Failed: 1: [username] is required for grant_type [password];2: [password] is required for grant_type [password];",
            vec!["username", "password"],
        ),
        (
            json!({"grant_type": "password", "username": "jacknich", "password": "x", "access_token": "t"}),
            pb::ActivateRequest { grant_type: "password".into(), username: "jacknich".into(), password: "x".into(), access_token: "t".into() },
            "Validation Failed: 1: [access_token] is not supported for grant_type [password];",
            vec!["access_token"],
        ),
        (
            json!({"grant_type": "access_token", "username": "jacknich", "password": "x"}),
            pb::ActivateRequest { grant_type: "access_token".into(), username: "jacknich".into(), password: "x".into(), ..Default::default() },
            "Validation Failed: 1: [access_token] is required for grant_type [access_token];2: [username] is not supported for grant_type [access_token];3: [password] is not supported for grant_type [access_token];",
            vec!["access_token", "username", "password"],
        ),
        (
            json!({"grant_type": "client_credentials"}),
            pb::ActivateRequest { grant_type: "client_credentials".into(), ..Default::default() },
            "Validation Failed: 1: grant_type [client_credentials] is not supported;",
            vec!["grant_type"],
        ),
    ];
    for (body, message, reason, fields) in cases {
        let result = send_json(app.es(Method::POST, ACTIVATE).json(&body)).await;
        assert_eq!(result.0, 400, "{body}");
        assert_eq!(
            result.1["error"]["type"],
            "action_request_validation_exception"
        );
        assert_eq!(result.1["error"]["reason"], reason);

        let status = app
            .profiles_client()
            .activate(as_elastic(message))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), reason);
        assert_eq!(error_type(&status), "action_request_validation_exception");
        use tonic_types::StatusExt;
        let details = status.get_error_details();
        let violated: Vec<&str> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(violated, fields);
    }
    assert_store_untouched(&app, 0).await;
}

#[tokio::test]
async fn grant_credentials_that_do_not_authenticate_get_a_401_on_both_front_ends() {
    let app = spawn_app().await;
    app.create_user("jacknich", &[], None, None).await;
    app.create_user("sleeper", &[], None, None).await;
    let (status, _) = send_json(app.es(Method::PUT, "/_security/user/sleeper/_disable")).await;
    assert_eq!(status, 200);

    for (username, password) in [
        ("jacknich", "wrong-password"),
        ("nobody", USER_PASSWORD),
        ("sleeper", USER_PASSWORD),
    ] {
        let result = app.activate_http(username, password).await;
        assert_error(
            &result,
            401,
            "security_exception",
            &format!("unable to authenticate user [{username}] for action [cluster:admin/xpack/security/profile/activate]"),
        );
        assert!(result.1["error"]["header"]["WWW-Authenticate"].is_array());
        let status = app
            .profiles_client()
            .activate(as_elastic(password_grant(username, password)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{username}");
        assert_eq!(error_type(&status), "security_exception");
    }
    assert_store_untouched(&app, 0).await;
}

#[tokio::test]
async fn uid_lists_must_not_be_empty_nor_contain_empty_uids() {
    let app = spawn_app().await;
    let empty = send_json(app.es(Method::GET, "/_security/profile/,")).await;
    assert_error(
        &empty,
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: profile UIDs must be provided;",
    );
    let inner = send_json(app.es(Method::GET, "/_security/profile/u_a,,u_b")).await;
    assert_error(
        &inner,
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: Profile UID cannot be empty;",
    );
    let blank = send_json(app.es(Method::GET, "/_security/profile/u_a,%20")).await;
    assert_error(
        &blank,
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: Profile UID cannot be empty;",
    );

    let mut client = app.profiles_client();
    let status = client
        .get_profiles(as_elastic(pb::GetProfilesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "Validation Failed: 1: profile UIDs must be provided;"
        )
    );
    let request = pb::GetProfilesRequest {
        uids: vec!["u_a".into(), "".into()],
        data: vec![],
    };
    let status = client.get_profiles(as_elastic(request)).await.unwrap_err();
    assert_eq!(
        status.message(),
        "Validation Failed: 1: Profile UID cannot be empty;"
    );
}

#[tokio::test]
async fn unknown_query_parameters_are_rejected_by_name() {
    let app = spawn_app().await;
    app.create_user("jacknich", &[], None, None).await;
    let grant =
        json!({"grant_type": "password", "username": "jacknich", "password": USER_PASSWORD});
    let one = send_json(
        app.es(Method::POST, "/_security/profile/_activate?refresh=true")
            .json(&grant),
    )
    .await;
    assert_error(
        &one,
        400,
        "illegal_argument_exception",
        "request [/_security/profile/_activate] contains unrecognized parameter: [refresh]",
    );
    let two = send_json(app.es(Method::GET, "/_security/profile/u_a?foo=1&bar=2&pretty")).await;
    assert_error(
        &two,
        400,
        "illegal_argument_exception",
        "request [/_security/profile/u_a] contains unrecognized parameters: [foo], [bar]",
    );
    assert_store_untouched(&app, 0).await;
}

#[tokio::test]
async fn callers_without_usable_credentials_get_a_401_with_challenges() {
    let app = spawn_app().await;
    let grant =
        json!({"grant_type": "password", "username": "elastic", "password": ELASTIC_PASSWORD});

    let missing = app
        .anonymous(Method::POST, ACTIVATE)
        .json(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let challenges: Vec<&str> = missing
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Basic realm="security", charset="UTF-8""#,
            r#"Bearer realm="security""#
        ]
    );
    assert_eq!(missing.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/_security/profile/_activate]"
    );

    let malformed = send_json(
        app.anonymous(Method::POST, ACTIVATE)
            .header("authorization", "Basic %%%")
            .json(&grant),
    )
    .await;
    assert_error(
        &malformed,
        401,
        "security_exception",
        "invalid basic authentication header encoding",
    );
    let wrong = send_json(
        app.as_user(
            "elastic",
            "not-the-password",
            Method::POST,
            "/_security/profile/_activate?pretty",
        )
        .json(&grant),
    )
    .await;
    assert_error(&wrong, 401, "security_exception", "unable to authenticate user [elastic] for REST request [/_security/profile/_activate?pretty]");
    let unknown_scheme = send_json(
        app.anonymous(Method::GET, "/_security/_authenticate")
            .header("authorization", "Digest abc"),
    )
    .await;
    assert_error(
        &unknown_scheme,
        401,
        "security_exception",
        "missing authentication credentials",
    );
    let bearer = send_json(
        app.anonymous(Method::GET, "/_security/_authenticate")
            .bearer_auth("no-such-token"),
    )
    .await;
    assert_error(&bearer, 401, "security_exception", "unable to authenticate with provided credentials and anonymous access is not allowed for this request");
    assert_eq!(
        bearer.1["error"]["additional_unsuccessful_credentials"],
        "oauth2 token: invalid token"
    );

    let mut client = app.profiles_client();
    let status = client
        .activate(tonic::Request::new(password_grant(
            "elastic",
            ELASTIC_PASSWORD,
        )))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "missing authentication credentials for gRPC request [/userprofiles.v1.UserProfiles/Activate]");
    let mut request = tonic::Request::new(password_grant("elastic", ELASTIC_PASSWORD));
    request
        .metadata_mut()
        .insert("authorization", "Basic !!!".parse().unwrap());
    let status = client.activate(request).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::Unauthenticated,
            "invalid basic authentication header encoding"
        )
    );
    let status = client
        .activate(authed(
            password_grant("elastic", ELASTIC_PASSWORD),
            "elastic",
            "wrong",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_store_untouched(&app, 0).await;
}

#[tokio::test]
async fn oversized_bodies_and_messages_are_refused() {
    let app = spawn_with(Arc::new(tempfile::tempdir().unwrap()), 1024).await;
    let big = format!(
        "{{\"grant_type\":\"password\",\"username\":\"{}\"}}",
        "x".repeat(4096)
    );
    let result = post_raw(&app, Some("application/json"), big).await;
    assert_error(
        &result,
        413,
        "content_too_long_exception",
        "request body of [",
    );

    let status = app
        .profiles_client()
        .activate(as_elastic(password_grant(&"x".repeat(4096), USER_PASSWORD)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert_store_untouched(&app, 0).await;
}

/// The Activate request with its string fields declared as bytes, to send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawActivateRequest {
    #[prost(bytes = "vec", tag = "1")]
    grant_type: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    username: Vec<u8>,
}

#[tokio::test]
async fn invalid_utf8_in_a_grpc_string_is_refused_before_the_engine() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.grpc.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<RawActivateRequest, pb::Profile>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/userprofiles.v1.UserProfiles/Activate",
    );
    let message = RawActivateRequest {
        grant_type: b"password".to_vec(),
        username: vec![0xff, 0xfe],
    };
    let status = grpc
        .unary(as_elastic(message), path, codec)
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Internal,
        "tonic rejects the undecodable message: {status:?}"
    );
    assert!(status.message().contains("UTF-8"), "{}", status.message());
    assert_store_untouched(&app, 0).await;
}
