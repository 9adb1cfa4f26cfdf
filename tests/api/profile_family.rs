//! Update data, enable/disable and suggest on both front ends (SPEC §7, §8, §10).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use userprofiles::pb;

async fn profile_of(
    app: &TestApp,
    username: &str,
    roles: &[&str],
    full_name: Option<&str>,
    email: Option<&str>,
) -> String {
    app.create_user(username, roles, full_name, email).await;
    let (status, body) = app.activate_http(username, USER_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["uid"].as_str().unwrap().to_owned()
}

async fn update(app: &TestApp, uid: &str, query: &str, body: Value) -> (u16, Value) {
    send_json(
        app.es(
            Method::PUT,
            &format!("/_security/profile/{uid}/_data{query}"),
        )
        .json(&body),
    )
    .await
}

async fn get_one(app: &TestApp, uid: &str, data: &str) -> Value {
    let (status, body) = send_json(app.es(
        Method::GET,
        &format!("/_security/profile/{uid}?data={data}"),
    ))
    .await;
    assert_eq!(status, 200);
    body["profiles"][0].clone()
}

async fn suggest(app: &TestApp, body: Value) -> Vec<String> {
    let (status, answer) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn update_data_deep_merges_objects_and_replaces_arrays_scalars_and_nulls() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "jacknich", &[], None, None).await;
    let first = json!({"labels": {"direction": "north"}, "data": {"app1": {"type": "x", "name": "a", "tags": [1, 2], "nested": {"k": 1}}}});
    assert_eq!(
        update(&app, &uid, "", first).await,
        (200, json!({"acknowledged": true}))
    );
    let second = json!({"data": {"app1": {"name": "b", "tags": [3], "nested": {"j": 2}, "type": null}, "app2": {"theme": "dark"}}});
    assert_eq!(update(&app, &uid, "?refresh=wait_for", second).await.0, 200);

    let profile = get_one(&app, &uid, "*").await;
    assert_eq!(
        profile["labels"],
        json!({"direction": "north"}),
        "labels untouched when omitted"
    );
    assert_eq!(
        profile["data"],
        json!({"app1": {"type": null, "name": "b", "tags": [3], "nested": {"k": 1, "j": 2}}, "app2": {"theme": "dark"}})
    );
    assert_eq!(profile["_doc"]["_seq_no"], 2);
    assert_eq!(
        get_one(&app, &uid, "app1.name").await["data"],
        json!({"app1": {"name": "b"}})
    );
    assert_eq!(
        get_one(&app, &uid, "app2,nothing").await["data"],
        json!({"app2": {"theme": "dark"}})
    );

    // Re-activation keeps labels and data.
    let (_, activated) = app.activate_http("jacknich", USER_PASSWORD).await;
    assert_eq!(activated["data"], json!({}));
    assert_eq!(
        get_one(&app, &uid, "*").await["data"]["app2"],
        json!({"theme": "dark"})
    );

    // The same through gRPC, read back through HTTP.
    let labels = userprofiles::grpc::convert::to_struct(
        json!({"direction": "south", "spaces": ["a", "b"]})
            .as_object()
            .unwrap(),
    );
    let request = pb::UpdateProfileDataRequest {
        uid: uid.clone(),
        labels: Some(labels),
        ..Default::default()
    };
    let ack = app
        .profiles_client()
        .update_profile_data(as_elastic(request))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.acknowledged);
    assert_eq!(
        get_one(&app, &uid, "").await["labels"],
        json!({"direction": "south", "spaces": ["a", "b"]})
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_sequence_number() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "joe", &[], None, None).await;
    let body = json!({"data": {"app": {"k": 1}}});
    update(&app, &uid, "", body.clone()).await;
    let before = get_one(&app, &uid, "").await["_doc"].clone();
    assert_eq!(update(&app, &uid, "", body).await.0, 200);
    assert_eq!(get_one(&app, &uid, "").await["_doc"], before);
}

#[tokio::test]
async fn a_stale_sequence_number_gets_a_409_with_elasticsearchs_reason_on_both_front_ends() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "joe", &[], None, None).await;
    let seq = get_one(&app, &uid, "").await["_doc"]["_seq_no"]
        .as_i64()
        .unwrap();
    let query = format!("?if_seq_no={seq}&if_primary_term=1");
    assert_eq!(
        update(&app, &uid, &query, json!({"data": {"a": {"v": 1}}}))
            .await
            .0,
        200
    );

    let (status, body) = update(&app, &uid, &query, json!({"data": {"a": {"v": 2}}})).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["type"], "version_conflict_engine_exception");
    assert_eq!(
        body["error"]["reason"],
        format!("[profile_{uid}]: version conflict, required seqNo [{seq}], primary term [1]. current document has seqNo [{}] and primary term [1]", seq + 1)
    );
    assert_eq!(body["error"]["index"], ".security-profile-8");

    let data = userprofiles::grpc::convert::to_struct(json!({"a": {"v": 3}}).as_object().unwrap());
    let request = pb::UpdateProfileDataRequest {
        uid: uid.clone(),
        data: Some(data),
        if_seq_no: Some(seq),
        if_primary_term: Some(1),
        ..Default::default()
    };
    let status = app
        .profiles_client()
        .update_profile_data(as_elastic(request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert_eq!(error_type(&status), "version_conflict_engine_exception");
    assert_eq!(
        get_one(&app, &uid, "a").await["data"],
        json!({"a": {"v": 1}}),
        "the losing writes changed nothing"
    );
}

#[tokio::test]
async fn updating_an_unknown_profile_is_a_404_that_creates_the_profile_index() {
    let app = spawn_app().await;
    let (status, body) = update(&app, "u_nobody", "", json!({"data": {"a": {}}})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "document_missing_exception");
    assert_eq!(
        body["error"]["reason"],
        "[profile_u_nobody]: document missing"
    );
    let (_, get) = send_json(app.es(Method::GET, "/_security/profile/u_nobody")).await;
    assert_eq!(
        get["errors"]["details"]["u_nobody"]["type"],
        "resource_not_found_exception"
    );
    let status = app
        .profiles_client()
        .disable_profile(as_elastic(pb::SetProfileEnabledRequest {
            uid: "u_nobody".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let (status, _) = send_json(app.es(Method::POST, "/_security/profile/u_nobody/_enable")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn update_data_is_validated_with_elasticsearch_messages_on_both_front_ends() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "joe", &[], None, None).await;
    let cases = [
        (json!({}), "Validation Failed: 1: update request is empty;"),
        (json!({"labels": {}, "data": {}}), "Validation Failed: 1: update request is empty;"),
        (json!({"data": {"app.one": {}}}), "Validation Failed: 1: application name must not contain dot, but found [app.one];"),
        (json!({"labels": {"_app": {}}}), "Validation Failed: 1: application name must not start with underscore, but found [_app];"),
    ];
    for (body, reason) in cases {
        let (status, answer) = update(&app, &uid, "", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["reason"].clone()),
            (400, json!(reason)),
            "{body}"
        );
        let request = pb::UpdateProfileDataRequest {
            uid: uid.clone(),
            labels: body
                .get("labels")
                .and_then(Value::as_object)
                .map(userprofiles::grpc::convert::to_struct),
            data: body
                .get("data")
                .and_then(Value::as_object)
                .map(userprofiles::grpc::convert::to_struct),
            ..Default::default()
        };
        let status = app
            .profiles_client()
            .update_profile_data(as_elastic(request))
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::InvalidArgument, reason)
        );
    }
    let (_, body) = update(&app, &uid, "", json!({"labels": "north"})).await;
    assert_eq!(body["error"]["type"], "x_content_parse_exception");
    assert_eq!(body["error"]["reason"], "[1:11] [update_profile_data_request_payload] labels doesn't support values of type: VALUE_STRING");
    let (_, body) = update(&app, &uid, "", json!({"data": {"a": 1}, "extra": 1})).await;
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .ends_with("unknown field [extra]"));
    let (_, body) = update(
        &app,
        &uid,
        "?if_seq_no=abc&if_primary_term=1",
        json!({"data": {"a": 1}}),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "Failed to parse long parameter [if_seq_no] with value [abc]"
    );
    let (_, body) = update(&app, &uid, "?if_seq_no=1", json!({"data": {"a": 1}})).await;
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: ifSeqNo is set, but primary term is [0];"
    );
    let (_, body) = update(&app, &uid, "?refresh=soon", json!({"data": {"a": 1}})).await;
    assert_eq!(
        body["error"]["reason"],
        "Unknown value for refresh: [soon]."
    );
    let mut deep = json!("leaf");
    for _ in 0..21 {
        deep = json!({ "k": deep });
    }
    let (status, body) = update(&app, &uid, "", json!({"labels": {"app": deep}})).await;
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (400, json!("document_parsing_exception"))
    );
    let (_, body) =
        send_json(app.es(Method::GET, &format!("/_security/profile/{uid}?data=*"))).await;
    assert_eq!(
        body["profiles"][0]["data"],
        json!({}),
        "nothing was written by the bad requests"
    );
}

#[tokio::test]
async fn profile_write_privileges_cover_only_their_applications() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "joe", &[], None, None).await;
    let role = json!({"cluster": [], "global": {"profile": {"write": {"applications": ["app*"]}}}});
    send_json(
        app.es(Method::PUT, "/_security/role/app_writer")
            .json(&role),
    )
    .await;
    app.create_user("writer", &["app_writer"], None, None).await;
    let path = format!("/_security/profile/{uid}/_data");
    let (status, _) = send_json(
        app.as_user("writer", USER_PASSWORD, Method::POST, &path)
            .json(&json!({"data": {"app1": {"x": 1}}, "labels": {"app2": {}}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send_json(
        app.as_user("writer", USER_PASSWORD, Method::POST, &path)
            .json(&json!({"data": {"app1": {"x": 1}, "other": {}}})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        "action [cluster:admin/xpack/security/profile/put/data] is unauthorized for user [writer] with effective roles [app_writer], this action is granted by the cluster privileges [manage_user_profile,manage_security,all]"
    );
}

#[tokio::test]
async fn disabled_profiles_leave_suggest_stay_readable_and_return_on_activation() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "jacknich", &[], Some("Jack Nicholson"), None).await;
    assert_eq!(suggest(&app, json!({"name": "jack"})).await, ["jacknich"]);

    let (status, body) =
        send_json(app.es(Method::POST, &format!("/_security/profile/{uid}/_disable"))).await;
    assert_eq!((status, body), (200, json!({"acknowledged": true})));
    assert!(suggest(&app, json!({"name": "jack"})).await.is_empty());
    assert_eq!(get_one(&app, &uid, "").await["enabled"], false);

    let (_, activated) = app.activate_http("jacknich", USER_PASSWORD).await;
    assert_eq!(activated["enabled"], true);
    assert_eq!(suggest(&app, json!({"name": "jack"})).await, ["jacknich"]);

    app.profiles_client()
        .disable_profile(as_elastic(pb::SetProfileEnabledRequest {
            uid: uid.clone(),
        }))
        .await
        .unwrap();
    assert!(suggest(&app, json!({})).await.is_empty());
    app.profiles_client()
        .enable_profile(as_elastic(pb::SetProfileEnabledRequest {
            uid: uid.clone(),
        }))
        .await
        .unwrap();
    let seq = get_one(&app, &uid, "").await["_doc"]["_seq_no"].clone();
    let (status, _) =
        send_json(app.es(Method::PUT, &format!("/_security/profile/{uid}/_enable"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        get_one(&app, &uid, "").await["_doc"]["_seq_no"],
        seq,
        "enabling an enabled profile is a no-op"
    );
}

async fn suggest_fixture() -> (TestApp, Vec<String>) {
    let app = spawn_app().await;
    let mut uids = Vec::new();
    for (name, full, email) in [
        ("user_foo", "Very Curious Foo", "fooemail@example.org"),
        ("user_bar", "Super Admin Bar", "bar@example.org"),
        ("user_baz", "Plain Baz", "baz@other.net"),
        ("user_qux", "Admin Qux", "qux@example.org"),
    ] {
        uids.push(profile_of(&app, name, &[], Some(full), Some(email)).await);
    }
    (app, uids)
}

#[tokio::test]
async fn suggest_matches_names_by_prefix_fuzzily_and_ranks_more_fields_first() {
    let (app, _) = suggest_fixture().await;
    let mut names = suggest(&app, json!({"name": "super admin"})).await;
    names.sort();
    assert_eq!(names, ["user_bar", "user_qux"]);
    assert_eq!(suggest(&app, json!({"name": "ver"})).await, ["user_foo"]);
    assert_eq!(
        suggest(&app, json!({"name": "kurious one"})).await,
        ["user_foo"],
        "one typo is forgiven in a word before the last"
    );
    assert!(
        suggest(&app, json!({"name": "kurious"})).await.is_empty(),
        "the last word is a prefix, matched without typos (bool_prefix)"
    );
    assert_eq!(
        suggest(&app, json!({"name": "fooem"})).await,
        ["user_foo"],
        "email tokens match by prefix"
    );
    let mut example = suggest(&app, json!({"name": "example.org"})).await;
    example.sort();
    assert_eq!(example, ["user_bar", "user_foo", "user_qux"]);
    // "bar" (not the last word) matches user_bar exactly and user_baz with one typo (AUTO
    // fuzziness); exact first. As the last word it is a prefix and matches user_bar only.
    assert_eq!(
        suggest(&app, json!({"name": "bar zz"})).await,
        ["user_bar", "user_baz"]
    );
    assert_eq!(suggest(&app, json!({"name": "bar"})).await, ["user_bar"]);
    // The last word "user" prefix-matches every username; "baz" also matches user_baz's full
    // name and email, so it matches in more fields and ranks first.
    let ranked = suggest(&app, json!({"name": "baz user"})).await;
    assert_eq!(ranked.len(), 4);
    assert_eq!(ranked[0], "user_baz");
}

#[tokio::test]
async fn suggest_without_a_name_lists_by_recency_and_hints_boost_without_excluding() {
    let (app, uids) = suggest_fixture().await;
    assert_eq!(
        suggest(&app, json!({})).await,
        ["user_qux", "user_baz", "user_bar", "user_foo"],
        "most recent first"
    );
    assert_eq!(
        suggest(&app, json!({"size": 2})).await,
        ["user_qux", "user_baz"]
    );

    update(
        &app,
        &uids[0],
        "",
        json!({"labels": {"kibana": {"spaces": ["sales"]}}}),
    )
    .await;
    update(
        &app,
        &uids[1],
        "",
        json!({"labels": {"kibana": {"spaces": ["sales"]}}}),
    )
    .await;
    let hinted = suggest(
        &app,
        json!({"hint": {"uids": [uids[1]], "labels": {"kibana.spaces": "sales"}}}),
    )
    .await;
    assert_eq!(
        hinted,
        ["user_bar", "user_foo", "user_qux", "user_baz"],
        "both hints > label only > recency"
    );
    // A hinted profile that does not match the name stays out.
    assert_eq!(
        suggest(&app, json!({"name": "qux", "hint": {"uids": [uids[0]]}})).await,
        ["user_qux"]
    );

    // gRPC speaks the same ranking.
    let request = pb::SuggestProfilesRequest {
        name: String::new(),
        size: Some(1),
        data: vec![],
        hint: Some(pb::SuggestHint {
            uids: vec![uids[2].clone()],
            labels: Default::default(),
        }),
    };
    let answer = app
        .profiles_client()
        .suggest_profiles(as_elastic(request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.total.unwrap().value, 4);
    assert_eq!(
        answer.profiles[0].user.as_ref().unwrap().username,
        "user_baz"
    );
}

#[tokio::test]
async fn suggest_returns_only_uid_user_labels_and_filtered_data() {
    let (app, uids) = suggest_fixture().await;
    update(
        &app,
        &uids[0],
        "",
        json!({"data": {"app1": {"k": 1}, "app2": {"k": 2}}}),
    )
    .await;
    let (status, body) = send_json(
        app.es(Method::GET, "/_security/profile/_suggest?data=app1")
            .json(&json!({"name": "foo"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], json!({"value": 1, "relation": "eq"}));
    assert!(body["took"].is_u64());
    let hit = &body["profiles"][0];
    let keys: Vec<&String> = hit.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["uid", "user", "labels", "data"]);
    assert_eq!(hit["data"], json!({"app1": {"k": 1}}));
    let (_, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": "foo", "data": "app2"})),
    )
    .await;
    assert_eq!(body["profiles"][0]["data"], json!({"app2": {"k": 2}}));
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest?data=app1")
            .json(&json!({"data": "app2"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["reason"], "The [data] parameter must be specified in either request body or as query parameter, but not both");
}

#[tokio::test]
async fn suggest_is_validated_with_elasticsearch_messages_on_both_front_ends() {
    let (app, _) = suggest_fixture().await;
    let cases = [
        (json!({"size": -1}), 400, "Validation Failed: 1: [size] parameter cannot be negative but was [-1];"),
        (json!({"hint": {}}), 400, "Validation Failed: 1: [hint] parameter cannot be empty;"),
        (json!({"hint": {"uids": []}}), 400, "Validation Failed: 1: [uids] hint cannot be empty;"),
        (json!({"hint": {"labels": {"a": "x", "b": "y"}}}), 400, "Validation Failed: 1: [labels] hint supports a single key, got [a,b];"),
        (json!({"hint": {"labels": {"a*": []}}}), 400, "Validation Failed: 1: [labels] hint key cannot contain wildcard;2: [labels] hint value cannot be empty;"),
        (json!({"hint": {"labels": {"a": 1}}}), 400, "[labels] hint supports either string or list of strings as its value"),
        (json!({"hint": {"labels": {"a": [1]}}}), 400, "[labels] hint supports either string value or list of strings"),
    ];
    for (body, status, reason) in cases {
        let (got, answer) = send_json(
            app.es(Method::POST, "/_security/profile/_suggest")
                .json(&body),
        )
        .await;
        assert_eq!(
            (got, answer["error"]["reason"].clone()),
            (status, json!(reason)),
            "{body}"
        );
    }
    let request = pb::SuggestProfilesRequest {
        size: Some(-1),
        ..Default::default()
    };
    let status = app
        .profiles_client()
        .suggest_profiles(as_elastic(request))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "Validation Failed: 1: [size] parameter cannot be negative but was [-1];"
        )
    );
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"size": 0})),
    )
    .await;
    assert_eq!(
        (
            status,
            body["total"]["value"].clone(),
            body["profiles"].clone()
        ),
        (200, json!(4), json!([]))
    );
}

#[tokio::test]
async fn suggest_on_a_store_without_profiles_is_empty() {
    let app = spawn_app().await;
    let (status, body) = send_json(app.es(Method::GET, "/_security/profile/_suggest")).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"took": 0, "total": {"value": 0, "relation": "eq"}, "profiles": []})
        )
    );
}

#[tokio::test]
async fn a_grpc_value_with_no_kind_is_refused_naming_its_path_and_stores_nothing() {
    let app = spawn_app().await;
    let uid = profile_of(&app, "joe", &[], None, None).await;
    update(&app, &uid, "", json!({"data": {"app": {"keep": 1}}})).await;
    let before = get_one(&app, &uid, "*").await;

    // What proto-loader users send easily: `{}` for a Value.
    let mut app_fields =
        userprofiles::grpc::convert::to_struct(json!({"list": [1, 2]}).as_object().unwrap());
    app_fields
        .fields
        .insert("keep".into(), prost_types::Value { kind: None });
    let data = prost_types::Struct {
        fields: [(
            "app".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StructValue(app_fields)),
            },
        )]
        .into(),
    };
    let request = pb::UpdateProfileDataRequest {
        uid: uid.clone(),
        data: Some(data),
        ..Default::default()
    };
    let status = app
        .profiles_client()
        .update_profile_data(as_elastic(request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("[data.app.keep] has no value"),
        "{}",
        status.message()
    );
    assert_eq!(get_one(&app, &uid, "*").await, before, "nothing was stored");
}
