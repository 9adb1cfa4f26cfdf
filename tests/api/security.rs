//! Users, roles and `_authenticate` on both front ends (SPEC-security §2, §3, §5).

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use userprofiles::pb;

#[tokio::test]
async fn a_user_can_be_created_read_updated_and_deleted_over_http() {
    let app = spawn_app().await;
    let body = json!({"password": USER_PASSWORD, "roles": ["viewer"], "full_name": "Jack Nicholson", "email": "jack@example.com", "metadata": {"team": "a"}});
    let (status, created) =
        send_json(app.es(Method::PUT, "/_security/user/jacknich").json(&body)).await;
    assert_eq!((status, created), (200, json!({"created": true})));
    let (_, updated) = send_json(
        app.es(Method::POST, "/_security/user/jacknich")
            .json(&json!({"roles": "viewer,editor"})),
    )
    .await;
    assert_eq!(updated, json!({"created": false}));

    let (status, users) = send_json(app.es(Method::GET, "/_security/user/jacknich,nobody")).await;
    assert_eq!(status, 200);
    assert_eq!(
        users,
        json!({"jacknich": {"username": "jacknich", "roles": ["viewer", "editor"], "full_name": null, "email": null, "metadata": {}, "enabled": true}})
    );
    // Updating without a password kept the old one.
    let (status, _) = send_json(app.as_user(
        "jacknich",
        USER_PASSWORD,
        Method::GET,
        "/_security/_authenticate",
    ))
    .await;
    assert_eq!(status, 200);

    let (status, all) = send_json(app.es(Method::GET, "/_security/user")).await;
    assert_eq!(status, 200);
    assert_eq!(all["elastic"]["metadata"], json!({"_reserved": true}));
    assert_eq!(all["elastic"]["roles"], json!(["superuser"]));
    assert!(all.get("jacknich").is_some());

    let (status, missing) = send_json(app.es(Method::GET, "/_security/user/nobody")).await;
    assert_eq!((status, missing), (404, json!({})));
    let (status, found) = send_json(app.es(Method::DELETE, "/_security/user/jacknich")).await;
    assert_eq!((status, found), (200, json!({"found": true})));
    let (status, found) = send_json(app.es(Method::DELETE, "/_security/user/jacknich")).await;
    assert_eq!((status, found), (404, json!({"found": false})));
    let (status, _) = send_json(app.as_user(
        "jacknich",
        USER_PASSWORD,
        Method::GET,
        "/_security/_authenticate",
    ))
    .await;
    assert_eq!(
        status, 401,
        "a deleted user can no longer authenticate, cached or not"
    );
}

#[tokio::test]
async fn user_writes_follow_elasticsearch_validation() {
    let app = spawn_app().await;
    let put = |name: &str, body: serde_json::Value| {
        send_json(
            app.es(Method::PUT, &format!("/_security/user/{name}"))
                .json(&body),
        )
    };
    let (s, b) = put("joe", json!({"password": "short", "roles": []})).await;
    assert_eq!(
        (s, b["error"]["type"].clone(), b["error"]["reason"].clone()),
        (
            400,
            json!("validation_exception"),
            json!("Validation Failed: 1: passwords must be at least [6] characters long;")
        )
    );
    let (s, b) = put("joe", json!({"password": USER_PASSWORD})).await;
    assert_eq!(
        (s, b["error"]["reason"].clone()),
        (400, json!("Validation Failed: 1: roles are missing;"))
    );
    let (s, b) = put("joe", json!({"roles": []})).await;
    assert_eq!((s, b["error"]["reason"].clone()), (400, json!("Validation Failed: 1: password must be specified unless you are updating an existing user;")));
    let (_, b) = put("elastic", json!({"password": USER_PASSWORD, "roles": []})).await;
    assert_eq!(
        b["error"]["reason"],
        "Validation Failed: 1: user [elastic] is reserved and only the password can be changed;"
    );
    let (_, b) = put(
        "joe",
        json!({"password": USER_PASSWORD, "roles": [], "nickname": "j"}),
    )
    .await;
    assert_eq!(
        (b["error"]["type"].clone(), b["error"]["reason"].clone()),
        (
            json!("parse_exception"),
            json!("failed to parse add user request. unexpected field [nickname]")
        )
    );
    let (_, b) = put(
        "joe",
        json!({"password": USER_PASSWORD, "roles": [], "enabled": "yes"}),
    )
    .await;
    assert_eq!(
        b["error"]["reason"],
        "expected field [enabled] to be of type boolean, but found [VALUE_STRING] instead"
    );
    let (_, b) = put(
        "joe",
        json!({"password": USER_PASSWORD, "roles": [], "username": "jim"}),
    )
    .await;
    assert_eq!(
        b["error"]["reason"],
        "[username] in source does not match the username provided [joe]"
    );
    let (_, b) = put(
        "joe",
        json!({"password": USER_PASSWORD, "roles": [], "metadata": {"_x": 1}}),
    )
    .await;
    assert_eq!(
        b["error"]["reason"],
        "Validation Failed: 1: metadata keys may not start with [_];"
    );
    let (_, b) = put("joe", json!({"password_hash": "plain", "roles": []})).await;
    assert_eq!(b["error"]["type"], "illegal_argument_exception");
    let (s, b) = send_json(app.es(Method::DELETE, "/_security/user/elastic")).await;
    assert_eq!(
        (s, b["error"]["reason"].clone()),
        (
            400,
            json!("user [elastic] is reserved and cannot be deleted")
        )
    );
}

#[tokio::test]
async fn passwords_change_and_users_enable_and_disable() {
    let app = spawn_app().await;
    app.create_user("joe", &["viewer"], None, None).await;
    let who = |user: &str, pass: &str| {
        send_json(app.as_user(user, pass, Method::GET, "/_security/_authenticate"))
    };
    assert_eq!(who("joe", USER_PASSWORD).await.0, 200);

    let (status, body) = send_json(
        app.es(Method::PUT, "/_security/user/joe/_password")
            .json(&json!({"password": "new-password"})),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(
        who("joe", USER_PASSWORD).await.0,
        401,
        "the old password no longer works"
    );
    assert_eq!(who("joe", "new-password").await.0, 200);

    // A user may change its own password without any privilege.
    let (status, _) = send_json(
        app.as_user(
            "joe",
            "new-password",
            Method::POST,
            "/_security/user/_password",
        )
        .json(&json!({"password": "newer-password"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(who("joe", "newer-password").await.0, 200);

    let (status, body) = send_json(app.es(Method::PUT, "/_security/user/joe/_disable")).await;
    assert_eq!((status, body), (200, json!({})));
    let (status, body) = who("joe", "newer-password").await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["reason"],
        "unable to authenticate user [joe] for REST request [/_security/_authenticate]"
    );
    let (_, users) = send_json(app.es(Method::GET, "/_security/user/joe")).await;
    assert_eq!(users["joe"]["enabled"], false);
    send_json(app.es(Method::POST, "/_security/user/joe/_enable")).await;
    assert_eq!(who("joe", "newer-password").await.0, 200);

    let (_, body) = send_json(app.es(Method::PUT, "/_security/user/elastic/_disable")).await;
    assert_eq!(
        body["error"]["reason"],
        "users may not update the enabled status of their own account"
    );
    let (_, body) = send_json(app.es(Method::PUT, "/_security/user/ghost/_enable")).await;
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: only existing users can be enabled;"
    );
    let (_, body) = send_json(
        app.es(Method::PUT, "/_security/user/ghost/_password")
            .json(&json!({"password": "whatever1"})),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: user must exist in order to change password;"
    );
    let (_, body) = send_json(
        app.es(Method::PUT, "/_security/user/joe/_password")
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: password is missing;"
    );
}

#[tokio::test]
async fn roles_grant_privileges_and_are_managed_over_http() {
    let app = spawn_app().await;
    let role = json!({"cluster": ["manage_user_profile"], "global": {"profile": {"write": {"applications": ["app*"]}}}, "metadata": {"version": 1}});
    let (status, body) =
        send_json(app.es(Method::PUT, "/_security/role/profiler").json(&role)).await;
    assert_eq!((status, body), (200, json!({"role": {"created": true}})));
    let (_, body) = send_json(app.es(Method::GET, "/_security/role/profiler")).await;
    assert_eq!(
        body,
        json!({"profiler": {"cluster": ["manage_user_profile"],
            "global": {"application": {"manage": {"applications": []}}, "profile": {"write": {"applications": ["app*"]}}},
            "indices": [], "applications": [], "run_as": [], "metadata": {"version": 1}, "transient_metadata": {"enabled": true}}})
    );
    let (_, all) = send_json(app.es(Method::GET, "/_security/role")).await;
    assert_eq!(all["superuser"]["cluster"], json!(["all"]));
    assert!(all.get("profiler").is_some());

    let (status, body) = send_json(
        app.es(Method::PUT, "/_security/role/bad")
            .json(&json!({"cluster": ["make_coffee"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"].as_str().unwrap().starts_with("Validation Failed: 1: unknown cluster privilege [make_coffee]. a privilege must be either one of the predefined cluster privilege names ["));
    let (_, body) = send_json(
        app.es(Method::PUT, "/_security/role/superuser")
            .json(&json!({"cluster": []})),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: Role [superuser] is reserved and may not be used.;"
    );
    let (_, body) = send_json(
        app.es(Method::PUT, "/_security/role/bad")
            .json(&json!({"clusters": []})),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "failed to parse role [bad]. unexpected field [clusters]"
    );
    let (status, body) = send_json(app.es(Method::DELETE, "/_security/role/superuser")).await;
    assert_eq!(
        (status, body["error"]["reason"].clone()),
        (
            400,
            json!("role [superuser] is reserved and cannot be deleted")
        )
    );
    let (status, body) = send_json(app.es(Method::DELETE, "/_security/role/profiler")).await;
    assert_eq!((status, body), (200, json!({"found": true})));
    let (status, body) = send_json(app.es(Method::GET, "/_security/role/profiler")).await;
    assert_eq!((status, body), (404, json!({})));
}

#[tokio::test]
async fn user_management_needs_manage_security() {
    let app = spawn_app().await;
    app.create_role("reader", &["read_security"]).await;
    app.create_user("reader", &["reader"], None, None).await;
    let (status, _) =
        send_json(app.as_user("reader", USER_PASSWORD, Method::GET, "/_security/user")).await;
    assert_eq!(status, 200, "read_security may list users");
    let (status, body) = send_json(
        app.as_user("reader", USER_PASSWORD, Method::PUT, "/_security/user/x")
            .json(&json!({"password": USER_PASSWORD, "roles": []})),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .ends_with("this action is granted by the cluster privileges [manage_security,all]"));
}

#[tokio::test]
async fn authenticate_describes_the_caller_on_both_front_ends() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["viewer"], Some("Jack Nicholson"), None)
        .await;
    let (status, body) = send_json(app.as_user(
        "jacknich",
        USER_PASSWORD,
        Method::GET,
        "/_security/_authenticate",
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"username": "jacknich", "roles": ["viewer"], "full_name": "Jack Nicholson", "email": null, "metadata": {},
            "enabled": true, "authentication_realm": {"name": "default_native", "type": "native"},
            "lookup_realm": {"name": "default_native", "type": "native"}, "authentication_type": "realm"})
    );
    let me = app
        .security_client()
        .authenticate(as_elastic(pb::AuthenticateRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "elastic");
    assert_eq!(me.authentication_realm.unwrap().name, "reserved");
    assert_eq!(me.authentication_type, "realm");
}

#[tokio::test]
async fn users_and_roles_are_managed_over_grpc_too() {
    let app = spawn_app().await;
    let mut roles = app.roles_client();
    let role = pb::Role {
        name: "profiler".into(),
        cluster: vec!["manage_user_profile".into()],
        ..Default::default()
    };
    let created = roles
        .put_role(as_elastic(pb::PutRoleRequest { role: Some(role) }))
        .await
        .unwrap()
        .into_inner();
    assert!(created.created);
    let fetched = roles
        .get_roles(as_elastic(pb::GetRolesRequest {
            names: vec!["profiler".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.roles[0].cluster, ["manage_user_profile"]);

    let mut users = app.users_client();
    let put = pb::PutUserRequest {
        username: "jacknich".into(),
        password: Some(USER_PASSWORD.into()),
        roles: vec!["profiler".into()],
        full_name: Some("Jack Nicholson".into()),
        ..Default::default()
    };
    assert!(
        users
            .put_user(as_elastic(put))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    let bad = pb::PutUserRequest {
        username: "x".into(),
        password: Some("short".into()),
        ..Default::default()
    };
    let status = users.put_user(as_elastic(bad)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(error_type(&status), "validation_exception");

    // The new user can activate profiles thanks to the role.
    let profile = app
        .profiles_client()
        .activate(authed(
            password_grant("jacknich", USER_PASSWORD),
            "jacknich",
            USER_PASSWORD,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.uid, JACKNICH_UID);
    let listed = users
        .get_users(as_elastic(pb::GetUsersRequest {
            usernames: vec!["jacknich".into()],
            with_profile_uid: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.users[0].profile_uid.as_deref(), Some(JACKNICH_UID));

    users
        .disable_user(as_elastic(pb::SetUserEnabledRequest {
            username: "jacknich".into(),
        }))
        .await
        .unwrap();
    let status = app
        .profiles_client()
        .activate(as_elastic(password_grant("jacknich", USER_PASSWORD)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    users
        .enable_user(as_elastic(pb::SetUserEnabledRequest {
            username: "jacknich".into(),
        }))
        .await
        .unwrap();
    users
        .change_password(as_elastic(pb::ChangePasswordRequest {
            username: "jacknich".into(),
            password: Some("another-password".into()),
            password_hash: None,
        }))
        .await
        .unwrap();
    let status = app
        .profiles_client()
        .activate(as_elastic(password_grant("jacknich", USER_PASSWORD)))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "old password refused after change"
    );

    assert!(
        users
            .delete_user(as_elastic(pb::DeleteUserRequest {
                username: "jacknich".into()
            }))
            .await
            .unwrap()
            .into_inner()
            .found
    );
    let status = users
        .delete_user(as_elastic(pb::DeleteUserRequest {
            username: "jacknich".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(
        roles
            .delete_role(as_elastic(pb::DeleteRoleRequest {
                name: "profiler".into()
            }))
            .await
            .unwrap()
            .into_inner()
            .found
    );
    let status = users
        .get_users(as_elastic(pb::GetUsersRequest {
            usernames: vec!["ghost".into()],
            with_profile_uid: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::NotFound, "users [ghost] not found")
    );
    let status = roles
        .get_roles(as_elastic(pb::GetRolesRequest {
            names: vec!["ghost".into()],
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}
