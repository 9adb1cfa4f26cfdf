//! Activation on both front ends (SPEC §4, §9, §11).

use crate::helpers::*;
use reqwest::Method;

#[tokio::test]
async fn activating_jacknich_over_http_yields_the_uid_from_the_documentation() {
    let app = spawn_app().await;
    app.create_user(
        "jacknich",
        &["admin", "other_role1"],
        Some("Jack Nicholson"),
        Some("jacknich@example.com"),
    )
    .await;

    let (status, body) = app.activate_http("jacknich", USER_PASSWORD).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], JACKNICH_UID);
    assert_eq!(body["enabled"], true);
    assert_eq!(body["user"]["username"], "jacknich");
    assert_eq!(
        body["user"]["roles"],
        serde_json::json!(["admin", "other_role1"])
    );
    assert_eq!(body["user"]["realm_name"], "default_native");
    assert_eq!(body["user"]["full_name"], "Jack Nicholson");
    assert_eq!(body["user"]["email"], "jacknich@example.com");
    assert_eq!(body["labels"], serde_json::json!({}));
    assert_eq!(body["data"], serde_json::json!({}));
    assert_eq!(
        body["_doc"],
        serde_json::json!({"_primary_term": 1, "_seq_no": 0})
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "uid",
            "enabled",
            "last_synchronized",
            "user",
            "labels",
            "data",
            "_doc"
        ]
    );
    let user_keys: Vec<&String> = body["user"].as_object().unwrap().keys().collect();
    assert_eq!(
        user_keys,
        ["username", "roles", "realm_name", "email", "full_name"]
    );
}

#[tokio::test]
async fn activating_jacknich_over_grpc_yields_the_same_profile() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["admin"], Some("Jack Nicholson"), None)
        .await;

    let profile = app
        .profiles_client()
        .activate(as_elastic(password_grant("jacknich", USER_PASSWORD)))
        .await
        .expect("activation succeeds")
        .into_inner();

    assert_eq!(profile.uid, JACKNICH_UID);
    assert!(profile.enabled);
    let user = profile.user.unwrap();
    assert_eq!(user.realm_name, "default_native");
    assert_eq!(user.full_name.as_deref(), Some("Jack Nicholson"));
    assert_eq!(user.email, None);
    assert_eq!(profile.doc.unwrap().seq_no, 0);

    // The same user through HTTP lands on the same document.
    let (_, body) = app.activate_http("jacknich", USER_PASSWORD).await;
    assert_eq!(body["uid"], JACKNICH_UID);
    assert_eq!(body["_doc"]["_seq_no"], 0);
    assert!(
        body["user"].get("email").is_none(),
        "absent email is omitted"
    );
}

#[tokio::test]
async fn repeated_activation_returns_the_same_profile_without_a_new_write() {
    let app = spawn_app().await;
    app.create_user("joe", &["viewer"], None, None).await;
    let (_, first) = app.activate_http("joe", USER_PASSWORD).await;
    let (status, second) = app.activate_http("joe", USER_PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(
        first, second,
        "inside 30 s an identical activation is skipped"
    );
    assert_eq!(
        second["uid"],
        "u_eGdcwXYIE3LEOrqz6p-3DHQ4HrAtxuk_ttRNFh2m7rM_0"
    );
}

#[tokio::test]
async fn a_changed_user_is_synchronized_at_once_keeping_uid() {
    let app = spawn_app().await;
    app.create_user("joe", &["viewer"], None, None).await;
    let (_, first) = app.activate_http("joe", USER_PASSWORD).await;
    app.create_user(
        "joe",
        &["viewer", "editor"],
        Some("Bazooka Joe"),
        Some("joe@bazooka.gum"),
    )
    .await;

    let (_, second) = app.activate_http("joe", USER_PASSWORD).await;

    assert_eq!(second["uid"], first["uid"]);
    assert_eq!(
        second["user"]["roles"],
        serde_json::json!(["viewer", "editor"])
    );
    assert_eq!(second["user"]["full_name"], "Bazooka Joe");
    assert_eq!(second["_doc"]["_seq_no"], 1);
    assert!(second["last_synchronized"].as_i64() >= first["last_synchronized"].as_i64());
}

#[tokio::test]
async fn fifty_concurrent_first_activations_of_one_user_yield_exactly_one_profile() {
    let app = spawn_app().await;
    app.create_user("racer", &["viewer"], None, None).await;

    let attempts = (0..50).map(|_| app.activate_http("racer", USER_PASSWORD));
    let results = futures::future::join_all(attempts).await;

    let uids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["uid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(uids.len(), 1, "one uid for every attempt");
    let seq_nos: std::collections::BTreeSet<i64> = results
        .iter()
        .map(|(_, b)| b["_doc"]["_seq_no"].as_i64().unwrap())
        .collect();
    assert_eq!(seq_nos, [0].into(), "exactly one write happened");
    // The next profile write takes the very next sequence number: no hidden extra writes.
    app.create_user("second", &["viewer"], None, None).await;
    let (_, other) = app.activate_http("second", USER_PASSWORD).await;
    assert_eq!(other["_doc"]["_seq_no"], 1);
    assert!(uids.iter().all(|u| u.ends_with("_0")));
}

#[tokio::test]
async fn a_profile_survives_a_restart_with_the_same_doc_version() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["admin"], None, None).await;
    let (_, before) = app.activate_http("jacknich", USER_PASSWORD).await;
    let data_dir = app.stop().await;

    let app = spawn_app_on(data_dir).await;
    let (status, after) =
        send_json(app.es(Method::GET, &format!("/_security/profile/{JACKNICH_UID}"))).await;

    assert_eq!(status, 200);
    assert_eq!(after["profiles"][0], before);
    assert_eq!(
        after["profiles"][0]["_doc"],
        serde_json::json!({"_primary_term": 1, "_seq_no": 0})
    );
    // The sequence counter continues where it stopped.
    app.create_user("next", &[], None, None).await;
    let (_, next) = app.activate_http("next", USER_PASSWORD).await;
    assert_eq!(next["_doc"]["_seq_no"], 1);
}

#[tokio::test]
async fn the_elastic_superuser_can_activate_its_own_profile_in_the_reserved_realm() {
    let app = spawn_app().await;
    let (status, body) = app.activate_http("elastic", ELASTIC_PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["uid"],
        "u_mGBROF_q5bmFCATbLXAcCwKa0k8JvONAwSruelyKA5E_0"
    );
    assert_eq!(body["user"]["realm_name"], "reserved");
    assert_eq!(body["user"]["roles"], serde_json::json!(["superuser"]));
}

#[tokio::test]
async fn activation_needs_the_manage_user_profile_privilege_on_both_front_ends() {
    let app = spawn_app().await;
    app.create_role("reader", &["read_security"]).await;
    app.create_role("profiler", &["manage_user_profile"]).await;
    app.create_user("reader", &["reader"], None, None).await;
    app.create_user("profiler", &["profiler"], None, None).await;
    app.create_user("joe", &[], None, None).await;
    let grant =
        serde_json::json!({"grant_type": "password", "username": "joe", "password": USER_PASSWORD});

    let (status, body) = send_json(
        app.as_user(
            "reader",
            USER_PASSWORD,
            Method::POST,
            "/_security/profile/_activate",
        )
        .json(&grant),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["type"], "security_exception");
    assert_eq!(
        body["error"]["reason"],
        "action [cluster:admin/xpack/security/profile/activate] is unauthorized for user [reader] with effective roles [reader], this action is granted by the cluster privileges [manage_user_profile,manage_security,all]"
    );

    let denied = app
        .profiles_client()
        .activate(authed(
            password_grant("joe", USER_PASSWORD),
            "reader",
            USER_PASSWORD,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(error_type(&denied), "security_exception");

    let (status, body) = send_json(
        app.as_user(
            "profiler",
            USER_PASSWORD,
            Method::POST,
            "/_security/profile/_activate",
        )
        .json(&grant),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["username"], "joe");
}

#[tokio::test]
async fn usernames_differing_only_in_case_are_different_users_with_different_uids() {
    let app = spawn_app().await;
    app.create_user("Joe", &[], None, None).await;
    app.create_user("joe", &[], None, None).await;
    let (_, upper) = app.activate_http("Joe", USER_PASSWORD).await;
    let (_, lower) = app.activate_http("joe", USER_PASSWORD).await;
    assert_eq!(
        upper["uid"],
        "u_bdi319PFxGibM-UbnxC8apvon-j6KhJ8jGwDzQXWis4_0"
    );
    assert_eq!(
        lower["uid"],
        "u_eGdcwXYIE3LEOrqz6p-3DHQ4HrAtxuk_ttRNFh2m7rM_0"
    );
    assert_eq!(lower["_doc"]["_seq_no"], 1);
}

#[tokio::test]
async fn empty_password_fields_do_not_hijack_an_access_token_grant() {
    let app = spawn_app().await;
    app.create_user("tokened", &["viewer"], None, None).await;
    let (_, token) = send_json(app.es(Method::POST, "/_security/oauth2/token").json(
        &serde_json::json!({"grant_type": "password", "username": "tokened", "password": USER_PASSWORD}),
    ))
    .await;
    let (status, profile) = send_json(app.es(Method::POST, "/_security/profile/_activate").json(
        &serde_json::json!({
            "grant_type": "access_token",
            "access_token": token["access_token"],
            "username": "",
            "password": ""
        }),
    ))
    .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["user"]["username"], "tokened");
}
