//! Hostile input: one test per way a request could once take the service down, and the bounds
//! that now hold instead (issue 8). Each asserts the error the caller gets in its protocol and
//! that the service goes on serving everyone else.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use userprofiles::limits::{MAX_JSON_DEPTH, MAX_OBJECT_KEYS, MAX_STORED_DEPTH};
use userprofiles::pb;

/// An object nested so that its innermost value sits at `depth` (the object itself is 1).
fn nested_object(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "k": value });
    }
    value
}

async fn activated(app: &TestApp, username: &str) -> String {
    app.create_user(username, &["viewer"], Some("Hostile Tester"), None)
        .await;
    let (status, profile) = app.activate_http(username, USER_PASSWORD).await;
    assert_eq!(status, 200, "{profile}");
    profile["uid"].as_str().unwrap().to_owned()
}

async fn get_data(app: &TestApp, uid: &str) -> (u16, Value) {
    send_json(app.es(Method::GET, &format!("/_security/profile/{uid}?data=*"))).await
}

async fn suggest_status(app: &TestApp) -> u16 {
    send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "hostile"})),
    )
    .await
    .0
}

#[tokio::test]
async fn data_nested_past_the_limit_is_refused_and_everything_at_the_limit_survives_a_restart() {
    let app = spawn_app().await;
    let uid = activated(&app, "deep").await;
    let update = |body: Value| {
        app.es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&body)
    };
    // The finding: data ~125 objects deep was stored and could never be read again.
    let (status, error) = send_json(update(json!({"data": {"app": nested_object(125)}}))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["type"], "x_content_parse_exception");
    let reason = error["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("nesting depth (101) exceeds the maximum allowed (100"),
        "{reason}"
    );
    assert_eq!(get_data(&app, &uid).await.0, 200);
    assert_eq!(suggest_status(&app).await, 200);

    // At the limit: body root (1) > data (2) > app (3) > ... innermost object at 100; labels
    // at their own (flattened-field) limit of 20 objects.
    let deepest = json!({
        "labels": {"app": nested_object(19)},
        "data": {"app": nested_object(MAX_JSON_DEPTH - 3)}
    });
    let (status, body) = send_json(update(deepest.clone())).await;
    assert_eq!(status, 200, "{body}");
    // Widest object allowed, on a second profile.
    let wide_uid = activated(&app, "wide").await;
    let wide: serde_json::Map<String, Value> = (0..MAX_OBJECT_KEYS)
        .map(|i| (format!("key{i}"), json!(i)))
        .collect();
    let (status, body) = send_json(
        app.es(
            Method::POST,
            &format!("/_security/profile/{wide_uid}/_data"),
        )
        .json(&json!({"data": {"app": wide}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut too_wide = wide.clone();
    too_wide.insert("one_more".into(), json!(0));
    let (status, _) = send_json(
        app.es(
            Method::POST,
            &format!("/_security/profile/{wide_uid}/_data"),
        )
        .json(&json!({"data": {"app": too_wide}})),
    )
    .await;
    assert_eq!(status, 400);

    let data_dir = app.stop().await;
    let app = spawn_app_on(data_dir).await;
    let (status, body) = get_data(&app, &uid).await;
    assert_eq!(status, 200);
    assert_eq!(body["profiles"][0]["data"], deepest["data"]);
    assert_eq!(body["profiles"][0]["labels"], deepest["labels"]);
    let (status, body) = get_data(&app, &wide_uid).await;
    assert_eq!(status, 200);
    assert_eq!(body["profiles"][0]["data"]["app"], Value::Object(wide));
    assert_eq!(suggest_status(&app).await, 200);
}

#[tokio::test]
async fn a_store_holding_an_unreadable_profile_starts_and_serves_everything_else() {
    let app = spawn_app().await;
    let bad_uid = activated(&app, "corrupted").await;
    let good_uid = activated(&app, "healthy").await;
    let data_dir = app.stop().await;
    {
        // Plant a document the store cannot read back, as an older version or a damaged file
        // might have left it.
        use userprofiles::store::{redb::RedbStore, Store, UpdateProfile};
        let store = RedbStore::open(data_dir.path()).unwrap();
        let current = store.get_profile(&bad_uid).await.unwrap().unwrap();
        let mut doc = current.doc.clone();
        doc.application_data
            .insert("app".into(), nested_object(MAX_STORED_DEPTH + 5));
        let written = store.update_profile(doc, current.seq_no).await.unwrap();
        assert!(matches!(written, UpdateProfile::Updated(_)));
    }
    let app = spawn_app_on(data_dir).await;
    let (status, body) = send_json(app.es(
        Method::GET,
        &format!("/_security/profile/{bad_uid},{good_uid}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profiles"][0]["uid"], good_uid.as_str());
    assert_eq!(
        body["errors"]["details"][&bad_uid]["type"],
        "illegal_state_exception"
    );
    // Suggest works for everyone; the unreadable profile is simply not among the results.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "hostile tester"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let uids: Vec<&str> = body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, [good_uid.as_str()]);
    // Writes to the bad profile fail on their own, with a 500 rather than "store down".
    let (status, body) = send_json(
        app.es(Method::POST, &format!("/_security/profile/{bad_uid}/_data"))
            .json(&json!({"data": {"app": {"fresh": true}}})),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["type"], "illegal_state_exception");
}

#[tokio::test]
async fn suggest_names_with_too_many_words_are_refused_like_elasticsearch() {
    let app = spawn_app().await;
    activated(&app, "suggested").await;
    let words = |n: usize| vec!["word"; n].join(" ");
    // 6 clauses per word: 170 words are 1 020 clauses, 171 are 1 026 > 1 024.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": words(170)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": words(20_000)})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        body["error"]["reason"],
        "Query rewrite failed: too many clauses"
    );
    // One enormous "word" is split as Elasticsearch's tokenizer splits it (255 characters a
    // token), so it is as many clauses as it is long.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "x".repeat(500_000)})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "x".repeat(255 * 170)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let status = app
        .profiles_client()
        .suggest_profiles(as_elastic(pb::SuggestProfilesRequest {
            name: words(171),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // Hints are bounded too (Elasticsearch's index.max_terms_count).
    let uids: Vec<String> = (0..65_537).map(|i| format!("u_{i}")).collect();
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "x", "hint": {"uids": uids}})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("[index.max_terms_count]"));
}

#[tokio::test]
async fn a_suggest_flood_is_bounded_by_the_search_pool() {
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), |options| {
        options.settings.limits.search_threads = 1;
        options.settings.limits.search_queue = 1;
    })
    .await;
    activated(&app, "searched").await;
    // Ten distinct long words: the most expensive query the budget admits.
    let name: Vec<String> = (0..10).map(|i| format!("{i}{}", "y".repeat(39))).collect();
    let name = name.join(" ");
    let queries = (0..12).map(|_| {
        let request = app
            .es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": name}));
        async move { send_json(request).await }
    });
    let outcomes = futures::future::join_all(queries).await;
    assert!(
        outcomes.iter().all(|(s, _)| *s == 200 || *s == 429),
        "{outcomes:?}"
    );
    let rejected: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert!(
        !rejected.is_empty(),
        "one thread and one queue slot cannot hold 12 queries"
    );
    assert_eq!(
        rejected[0]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(suggest_status(&app).await, 200);
}

#[tokio::test]
async fn wide_bodies_are_refused_and_unauthenticated_ones_never_read() {
    let app = spawn_app().await;
    let fields: Vec<String> = (0..40_000).map(|i| format!("\"f{i}\":{i}")).collect();
    let wide = format!("{{{}}}", fields.join(","));
    // No credentials: refused from the headers alone.
    let (status, body) = send_json(
        app.anonymous(Method::POST, "/_security/profile/_activate")
            .header("content-type", "application/json")
            .body(wide.clone()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // With credentials: the key limit, with the position Jackson would report.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_activate")
            .header("content-type", "application/json")
            .body(wide),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "x_content_parse_exception");
    assert!(body["error"]["reason"].as_str().unwrap().starts_with("[1:"));
    // Under the key limit: duplicates are still found, at the second occurrence.
    let fields: Vec<String> = (0..9_000).map(|i| format!("\"f{i}\":{i}")).collect();
    let duplicated = format!("{{{},\n\"f3\":0}}", fields.join(","));
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_activate")
            .header("content-type", "application/json")
            .body(duplicated),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["reason"], "[2:1] Duplicate field 'f3'");
}

#[tokio::test]
async fn a_wrong_password_flood_is_bounded_by_the_hashing_pool() {
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), |options| {
        options.settings.limits.hash_threads = 1;
        options.settings.limits.hash_queue = 2;
    })
    .await;
    app.create_user("victim", &["viewer"], None, None).await;
    let attempts = (0..40).map(|i| {
        let request = app.as_user(
            "victim",
            &format!("wrong-{i}"),
            Method::GET,
            "/_security/_authenticate",
        );
        async move { send_json(request).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let rejected: Vec<&Value> = outcomes
        .iter()
        .filter(|(status, _)| *status == 429)
        .map(|(_, body)| body)
        .collect();
    assert!(
        outcomes.iter().all(|(s, _)| *s == 401 || *s == 429),
        "{outcomes:?}"
    );
    assert!(!rejected.is_empty(), "a queue of 2 cannot hold 40 hashes");
    assert_eq!(
        rejected[0]["error"]["type"],
        "es_rejected_execution_exception"
    );
    // The flood is over: the real user gets in.
    let (status, _) = send_json(app.as_user(
        "victim",
        USER_PASSWORD,
        Method::GET,
        "/_security/_authenticate",
    ))
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn hashing_waits_for_authorization() {
    let app = spawn_app().await;
    app.create_user("nobody", &["viewer"], None, None).await;
    // A caller without manage_security is refused before its password is hashed; a short
    // password is still the 400 Elasticsearch gives while parsing.
    let (status, body) = send_json(
        app.as_user(
            "nobody",
            USER_PASSWORD,
            Method::PUT,
            "/_security/user/other",
        )
        .json(&json!({"password": "l0ng-enough-password", "roles": []})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send_json(
        app.as_user(
            "nobody",
            USER_PASSWORD,
            Method::PUT,
            "/_security/user/other",
        )
        .json(&json!({"password": "short", "roles": []})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn data_filters_have_a_pattern_cap_and_stay_exact() {
    let app = spawn_app().await;
    let uid = activated(&app, "filtered").await;
    let data: serde_json::Map<String, Value> = (0..2_000)
        .map(|i| (format!("key{i}"), json!({"inner": i})))
        .collect();
    let (status, _) = send_json(
        app.es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&json!({"data": {"app": data}})),
    )
    .await;
    assert_eq!(status, 200);
    let mut client = app.profiles_client();
    let patterns = |n: usize| -> Vec<String> { (0..n).map(|i| format!("app.key{i}*")).collect() };
    let reply = client
        .get_profiles(as_elastic(pb::GetProfilesRequest {
            uids: vec![uid.clone()],
            data: patterns(1_000),
        }))
        .await
        .unwrap()
        .into_inner();
    let app_data = reply.profiles[0].data.as_ref().unwrap().fields["app"].clone();
    let Some(prost_types::value::Kind::StructValue(app_data)) = app_data.kind else {
        panic!("app data");
    };
    // key0* .. key999* select key0..key999 and key1000..key1999 (prefixes key1*): all 2 000.
    assert_eq!(app_data.fields.len(), 2_000);
    let status = client
        .get_profiles(as_elastic(pb::GetProfilesRequest {
            uids: vec![uid.clone()],
            data: patterns(1_001),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("too many data keys [1001]"));
}

#[tokio::test]
async fn a_token_cannot_change_its_users_password() {
    let app = spawn_app().await;
    app.create_user("holder", &["viewer"], None, None).await;
    let (status, token) = send_json(
        app.es(Method::POST, "/_security/oauth2/token")
            .json(&json!({
                "grant_type": "password", "username": "holder", "password": USER_PASSWORD
            })),
    )
    .await;
    assert_eq!(status, 200);
    let access = token["access_token"].as_str().unwrap();
    let (status, body) = send_json(
        app.anonymous(Method::POST, "/_security/user/_password")
            .bearer_auth(access)
            .json(&json!({"password": "stolen-and-changed"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "security_exception");
    // The password still works; with it, the user may change it.
    let (status, _) = send_json(
        app.as_user(
            "holder",
            USER_PASSWORD,
            Method::POST,
            "/_security/user/_password",
        )
        .json(&json!({"password": "a-new-l0ng-password"})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_non_ascii_authorization_header_is_a_401_on_both_front_ends() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC_PASSWORD}"));
    let mut raw = b"Basic\xc2\xa0".to_vec();
    raw.extend_from_slice(encoded.as_bytes());
    let header = reqwest::header::HeaderValue::from_bytes(&raw).unwrap();
    let response = app
        .anonymous(Method::GET, "/_security/_authenticate")
        .header("authorization", header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let text = response.text().await.unwrap();
    assert!(!text.contains(ELASTIC_PASSWORD) && !text.contains(&encoded));

    let mut request = tonic::Request::new(pb::AuthenticateRequest {});
    request.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::try_from(&raw[..]).unwrap(),
    );
    let status = app
        .security_client()
        .authenticate(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

/// Sends raw bytes on a fresh connection and returns what the server answered (until it
/// closed the connection or `wait` passed).
async fn raw_exchange(addr: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_and_oversized_requests_are_cut_off() {
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), |options| {
        options.transport.header_read_timeout = Duration::from_millis(500);
        options.transport.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = app.http.trim_start_matches("http://").to_owned();
    // An unauthenticated body is never waited for: the 401 comes back at once.
    let answer = raw_exchange(
        &addr,
        b"POST /_security/profile/_activate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10485759\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // Headers that never finish: the connection is closed.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /_security/_authenticate HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the server closes a connection whose headers never finish");
    if let Ok(read) = closed {
        let answer = String::from_utf8_lossy(&buffer[..read]);
        assert!(read == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // A connection that never sends a byte is closed as well.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer))
        .await
        .expect("the server closes a connection that never sends anything");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // The same on the gRPC listener: a client that never sends its HTTP/2 preface.
    let grpc_addr = app.grpc_addr.clone();
    let mut silent = TcpStream::connect(&grpc_addr).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer))
        .await
        .expect("the gRPC listener closes a connection that never sends anything");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // An authenticated body that stalls: 408.
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC_PASSWORD}"));
    let stalled = format!(
        "POST /_security/profile/_activate HTTP/1.1\r\nhost: x\r\nauthorization: Basic {credentials}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"grant"
    );
    let answer = raw_exchange(&addr, stalled.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("timeout_exception"));
    // Request line and headers over Elasticsearch's limits.
    let (status, body) = send_json(app.es(
        Method::GET,
        &format!("/_security/profile/{}", "u".repeat(5_000)),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "too_long_http_line_exception");
    assert_eq!(
        body["error"]["reason"],
        "An HTTP line is larger than 4096 bytes."
    );
    let (status, body) = send_json(
        app.es(Method::GET, "/_security/_authenticate")
            .header("x-padding", "p".repeat(17_000)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "too_long_http_header_exception");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), |options| {
        options.transport.max_connections = 2;
    })
    .await;
    // wait_until_ready's client keeps an idle connection: make a fresh client per request.
    let addr = app.http.trim_start_matches("http://").to_owned();
    let held: Vec<TcpStream> =
        futures::future::join_all((0..2).map(|_| TcpStream::connect(addr.clone())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    // Let the server accept the held connections (one of which may replace the idle one).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let request = fresh
        .get(format!("{}/_security/_authenticate", app.http))
        .basic_auth("elastic", Some(ELASTIC_PASSWORD))
        .send();
    let waiting = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection is not served while two are held"
    );
    drop(held);
    let response = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a slot frees")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn invented_grpc_methods_do_not_become_metric_series() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.grpc.clone());
    for i in 0..5 {
        grpc.ready().await.unwrap();
        let path: tonic::codegen::http::uri::PathAndQuery =
            format!("/userprofiles.v1.Invented/Method{i}")
                .parse()
                .unwrap();
        let outcome = grpc
            .unary(
                tonic::Request::new(()),
                path,
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert!(outcome.is_err());
    }
    let metrics = app.metrics_text().await;
    assert!(
        !metrics.contains("Invented"),
        "raw paths leaked into metrics"
    );
    assert!(metrics.contains(r#"grpc_service="unknown",grpc_method="unknown""#));
}

#[tokio::test]
async fn concurrent_unconditional_updates_of_one_profile_all_succeed() {
    let app = spawn_app().await;
    let uid = activated(&app, "contended").await;
    let updates = (0..60).map(|i| {
        let request = app
            .es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&json!({"data": {"app": {format!("k{i}"): i}}}));
        async move { send_json(request).await }
    });
    let outcomes = futures::future::join_all(updates).await;
    assert!(outcomes.iter().all(|(s, _)| *s == 200), "{outcomes:?}");
    let (_, body) = get_data(&app, &uid).await;
    assert_eq!(
        body["profiles"][0]["data"]["app"]
            .as_object()
            .unwrap()
            .len(),
        60
    );
}

#[tokio::test]
async fn a_crafted_password_hash_is_a_400_that_never_echoes_it() {
    let app = spawn_app().await;
    let crafted = format!("$2a$1\u{e9}{}", "x".repeat(53));
    let (status, body) = send_json(
        app.es(Method::PUT, "/_security/user/crafted")
            .json(&json!({"password_hash": crafted, "roles": []})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "illegal_argument_exception");
    assert!(!body.to_string().contains(&crafted));
}

#[tokio::test]
async fn grpc_get_profiles_caps_the_uids_per_call() {
    let app = spawn_app().await;
    let uid = activated(&app, "capped").await;
    let mut client = app.profiles_client();
    let mut uids: Vec<String> = (0..999).map(|i| format!("u_missing_{i}")).collect();
    uids.push(uid);
    let reply = client
        .get_profiles(as_elastic(pb::GetProfilesRequest {
            uids: uids.clone(),
            data: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.profiles.len(), 1);
    uids.push("u_one_too_many".into());
    let status = client
        .get_profiles(as_elastic(pb::GetProfilesRequest { uids, data: vec![] }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(error_type(&status), "action_request_validation_exception");
}

#[tokio::test]
async fn bodies_in_flight_are_bounded_like_elasticsearchs_breaker() {
    use base64::Engine as _;
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), |options| {
        options.max_body_bytes = 1 << 20;
        options.transport.max_in_flight_body_bytes = 1 << 20;
    })
    .await;
    let addr = app.http.trim_start_matches("http://").to_owned();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC_PASSWORD}"));
    // One caller announces 600 000 bytes and sends them slowly: they are held meanwhile.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(format!(
        "POST /_security/profile/_activate HTTP/1.1\r\nhost: x\r\nauthorization: Basic {credentials}\r\ncontent-type: application/json\r\ncontent-length: 600000\r\n\r\n{{"
    ).as_bytes())
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = format!("{{\"grant_type\":\"{}\"}}", "x".repeat(599_980));
    let (status, error) = send_json(
        app.es(Method::POST, "/_security/profile/_activate")
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["type"], "circuit_breaking_exception");
    assert!(error["error"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("[in_flight_requests] Data too large"));
    // Small requests still pass, and once the slow caller is gone, so does the large one.
    let (status, _) = send_json(app.es(Method::GET, "/_security/_authenticate")).await;
    assert_eq!(status, 200);
    drop(slow);
    let mut status = 0;
    for _ in 0..50 {
        status = send_json(
            app.es(Method::POST, "/_security/profile/_activate")
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await
        .0;
        if status != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 400,
        "the reservation is released with the connection"
    );
}

#[tokio::test]
async fn grpc_get_users_and_roles_cap_the_names_per_call() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..1_001).map(|i| format!("name{i}")).collect();
    let status = app
        .users_client()
        .get_users(as_elastic(pb::GetUsersRequest {
            usernames: names.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = app
        .roles_client()
        .get_roles(as_elastic(pb::GetRolesRequest { names }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn grpc_headers_beyond_the_limit_are_refused() {
    let app = spawn_app().await;
    let mut client = app.security_client();
    let mut padded = as_elastic(pb::AuthenticateRequest {});
    padded
        .metadata_mut()
        .insert("x-padding", "p".repeat(20_000).parse().unwrap());
    assert!(
        client.authenticate(padded).await.is_err(),
        "20 KB of headers passes the 16 KiB limit"
    );
    // The connection pool recovers and normal calls go on.
    let mut client = app.security_client();
    let reply = client
        .authenticate(as_elastic(pb::AuthenticateRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.username, "elastic");
}
