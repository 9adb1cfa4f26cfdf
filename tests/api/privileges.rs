//! Application privileges and the profile has-privileges check, as Kibana uses them.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn put_kibana_privileges(
    app: &TestApp,
    as_user: (&str, &str),
    space_read: &[&str],
) -> (u16, Value) {
    send_json(
        app.as_user(as_user.0, as_user.1, Method::PUT, "/_security/privilege")
            .json(&json!({
                "kibana-.kibana": {
                    "space_all": {"actions": ["login:", "version:8.0.0", "saved_object:*", "ui:*"], "metadata": {}},
                    "space_read": {"actions": space_read},
                }
            })),
    )
    .await
}

#[tokio::test]
async fn application_privileges_are_created_read_and_deleted() {
    let app = spawn_app().await;
    let (status, body) = put_kibana_privileges(
        &app,
        ("elastic", ELASTIC_PASSWORD),
        &["login:", "saved_object:*/get"],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"kibana-.kibana": {"space_all": {"created": true}, "space_read": {"created": true}}})
    );
    let (_, again) = put_kibana_privileges(&app, ("elastic", ELASTIC_PASSWORD), &["login:"]).await;
    assert_eq!(
        again,
        json!({"kibana-.kibana": {"space_all": {"created": false}, "space_read": {"created": false}}})
    );

    let (status, one) = send_json(app.es(
        Method::GET,
        "/_security/privilege/kibana-.kibana/space_read",
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        one,
        json!({"kibana-.kibana": {"space_read": {
            "application": "kibana-.kibana", "name": "space_read", "actions": ["login:"], "metadata": {}
        }}})
    );
    let (_, by_app) = send_json(app.es(Method::GET, "/_security/privilege/kibana-.kibana")).await;
    assert_eq!(by_app["kibana-.kibana"].as_object().unwrap().len(), 2);
    let (_, pattern) = send_json(app.es(Method::GET, "/_security/privilege/kibana-*")).await;
    assert_eq!(pattern, by_app);
    let (_, listed) =
        send_json(app.es(Method::GET, "/_security/privilege/otherapp,kibana-.kibana")).await;
    assert_eq!(listed, by_app);
    let (_, all) = send_json(app.es(Method::GET, "/_security/privilege")).await;
    assert_eq!(all, by_app);
    let (status, none) =
        send_json(app.es(Method::GET, "/_security/privilege/kibana-.kibana/nope")).await;
    assert_eq!((status, none), (404, json!({})));
    let (status, none) = send_json(app.es(Method::GET, "/_security/privilege/other")).await;
    assert_eq!((status, none), (404, json!({})));

    let (status, deleted) = send_json(app.es(
        Method::DELETE,
        "/_security/privilege/kibana-.kibana/space_read,nope",
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"kibana-.kibana": {"space_read": {"found": true}, "nope": {"found": false}}})
    );
    let (status, deleted) = send_json(app.es(
        Method::DELETE,
        "/_security/privilege/kibana-.kibana/space_read",
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        deleted,
        json!({"kibana-.kibana": {"space_read": {"found": false}}})
    );

    let (status, builtin) = send_json(app.es(Method::GET, "/_security/privilege/_builtin")).await;
    assert_eq!(status, 200);
    assert!(builtin["cluster"]
        .as_array()
        .unwrap()
        .contains(&json!("manage_user_profile")));
    assert!(builtin["index"]
        .as_array()
        .unwrap()
        .contains(&json!("read")));
}

#[tokio::test]
async fn invalid_application_privileges_are_refused_as_elasticsearch_does() {
    let app = spawn_app().await;
    let (status, body) = send_json(app.es(Method::PUT, "/_security/privilege").json(&json!({
        "ab": {"read": {"actions": ["plain", "data:read/*"], "metadata": {"_reserved": 1}}}
    })))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "action_request_validation_exception");
    let reason = body["error"]["reason"].as_str().unwrap();
    for message in [
        "An application name prefix must be at least 3 characters long (found 'ab')",
        "action [plain] must contain one of [ '/' , '*' , ':' ]",
        "metadata keys may not start with [_] (in privilege ab read)",
    ] {
        assert!(reason.contains(message), "{reason}");
    }
    let (status, body) = send_json(app.es(Method::PUT, "/_security/privilege").json(&json!({
        "myapp": {"read": {"application": "other", "actions": ["data:read/*"]}}
    })))
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        "privilege application [other] in source does not match the provided application [myapp]"
    );
    let (status, body) = send_json(app.es(Method::PUT, "/_security/privilege").json(&json!({
        "myapp": {"Read": {"actions": ["data:read/*"]}}
    })))
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"].as_str().unwrap().contains(
        "Application privilege names must match the pattern ^[a-z][a-zA-Z0-9_.-]*$ (found 'Read')"
    ));

    // Role application entries are checked too.
    let (status, body) = send_json(app.es(Method::PUT, "/_security/role/r1").json(&json!({
        "applications": [{"application": "myapp", "privileges": ["read"]}]
    })))
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        "failed to parse application privileges for role [r1]. missing required [resources] field"
    );
    let (status, body) = send_json(app.es(Method::PUT, "/_security/role/r1").json(&json!({
        "applications": [{"application": "a b", "privileges": ["read"], "resources": ["*"]}]
    })))
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn managing_privileges_needs_security_or_application_manage() {
    let app = spawn_app().await;
    app.create_user("kibana_server", &["kibana_system"], None, None)
        .await;
    app.create_user("nobody", &[], None, None).await;
    // kibana_system manages `kibana-*` applications only.
    let (status, body) =
        put_kibana_privileges(&app, ("kibana_server", USER_PASSWORD), &["login:"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send_json(
        app.as_user(
            "kibana_server",
            USER_PASSWORD,
            Method::PUT,
            "/_security/privilege",
        )
        .json(&json!({"myapp": {"read": {"actions": ["data:read/*"]}}})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send_json(app.as_user(
        "kibana_server",
        USER_PASSWORD,
        Method::GET,
        "/_security/privilege/kibana-.kibana",
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) =
        send_json(app.as_user("nobody", USER_PASSWORD, Method::GET, "/_security/privilege")).await;
    assert_eq!(status, 403);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("action [cluster:admin/xpack/security/privilege/get] is unauthorized"));
}

async fn has_privileges(
    app: &TestApp,
    as_user: (&str, &str),
    uids: &[&str],
    privilege: &str,
) -> (u16, Value) {
    send_json(
        app.as_user(as_user.0, as_user.1, Method::POST, "/_security/profile/_has_privileges")
            .json(&json!({
                "uids": uids,
                "privileges": {"application": [{
                    "application": "kibana-.kibana", "privileges": [privilege], "resources": ["space:default"]
                }]}
            })),
    )
    .await
}

async fn uid_of(app: &TestApp, username: &str) -> String {
    let (status, body) = app.activate_http(username, USER_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["uid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn kibana_asks_which_profiles_may_see_a_space() {
    let app = spawn_app().await;
    app.create_user("kibana_server", &["kibana_system"], None, None)
        .await;
    let kibana = ("kibana_server", USER_PASSWORD);
    // Kibana registers its privileges at start.
    let (status, _) =
        put_kibana_privileges(&app, kibana, &["login:", "saved_object:*/get", "ui:*/show"]).await;
    assert_eq!(status, 200);
    for (role, applications) in [
        (
            "space_reader",
            json!([{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:default"]}]),
        ),
        (
            "space_admin",
            json!([{"application": "kibana-*", "privileges": ["space_all"], "resources": ["space:*"]}]),
        ),
        (
            "other_space",
            json!([{"application": "kibana-.kibana", "privileges": ["space_all"], "resources": ["space:other"]}]),
        ),
    ] {
        let (status, body) = send_json(
            app.es(Method::PUT, &format!("/_security/role/{role}"))
                .json(&json!({"applications": applications})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    app.create_user("alice", &["space_reader"], None, None)
        .await;
    app.create_user("bob", &["space_admin"], None, None).await;
    app.create_user("carol", &["other_space"], None, None).await;
    app.create_user("dave", &["space_admin"], None, None).await;
    let (alice, bob, carol, dave) = (
        uid_of(&app, "alice").await,
        uid_of(&app, "bob").await,
        uid_of(&app, "carol").await,
        uid_of(&app, "dave").await,
    );
    let (status, _) =
        send_json(app.es(Method::POST, &format!("/_security/profile/{dave}/_disable"))).await;
    assert_eq!(status, 200);

    let everyone = [
        alice.as_str(),
        bob.as_str(),
        carol.as_str(),
        dave.as_str(),
        "u_missing_0",
    ];
    let (status, body) = has_privileges(&app, kibana, &everyone, "space_read").await;
    assert_eq!(status, 200, "{body}");
    // dave is disabled: left out without an error; the unknown uid is an error.
    assert_eq!(
        body,
        json!({
            "has_privilege_uids": [alice, bob],
            "errors": {"count": 1, "details": {"u_missing_0": {
                "type": "resource_not_found_exception", "reason": "profile document not found"
            }}}
        })
    );
    let (_, body) = has_privileges(&app, kibana, &everyone[..3], "space_all").await;
    assert_eq!(body, json!({"has_privilege_uids": [bob]}));

    // A privilege edit: space_read now needs an action space_all does not grant.
    put_kibana_privileges(&app, kibana, &["login:", "api:reporting"]).await;
    let (_, body) = has_privileges(&app, kibana, &everyone[..3], "space_read").await;
    assert_eq!(body, json!({"has_privilege_uids": [alice]}));

    // A role edit reaches the check at once.
    send_json(app.es(Method::PUT, "/_security/role/space_reader").json(&json!({
        "applications": [{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:other"]}]
    })))
    .await;
    let (_, body) = has_privileges(&app, kibana, &everyone[..3], "space_read").await;
    assert_eq!(body, json!({"has_privilege_uids": []}));

    // A user's new roles count only once the profile is activated again.
    app.create_user("carol", &["space_admin"], None, None).await;
    let (_, body) = has_privileges(&app, kibana, &[carol.as_str()], "space_all").await;
    assert_eq!(body, json!({"has_privilege_uids": []}));
    assert_eq!(uid_of(&app, "carol").await, carol);
    let (_, body) = has_privileges(&app, kibana, &[carol.as_str()], "space_all").await;
    assert_eq!(body, json!({"has_privilege_uids": [carol]}));
}

#[tokio::test]
async fn profile_has_privileges_validates_and_authorizes() {
    let app = spawn_app().await;
    app.create_user("nobody", &[], None, None).await;
    // No profile index yet: an empty answer.
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_has_privileges")
            .json(&json!({
                "uids": ["u_a_0"], "privileges": {"cluster": ["monitor"]}
            })),
    )
    .await;
    assert_eq!((status, body), (200, json!({"has_privilege_uids": []})));

    let (status, body) = send_json(app.es(Method::POST, "/_security/profile/_has_privileges").json(&json!({
        "uids": [], "privileges": {"application": [{"application": "*", "privileges": ["read"], "resources": ["x"]}]}
    })))
    .await;
    assert_eq!(status, 400);
    let reason = body["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("profile uids list must not be empty"),
        "{reason}"
    );
    assert!(
        reason.contains("Application names may not contain '*' (found '*')"),
        "{reason}"
    );

    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_has_privileges")
            .json(&json!({
                "uids": ["u_a_0"], "privileges": {}
            })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("must specify at least one privilege"));

    // As many uids as get profiles allows, no more.
    let too_many: Vec<String> = (0..1001).map(|i| format!("u_{i}_0")).collect();
    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_has_privileges")
            .json(&json!({"uids": too_many, "privileges": {"cluster": ["monitor"]}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("too many profile UIDs [1001]"));

    let (status, body) = send_json(
        app.es(Method::POST, "/_security/profile/_has_privileges")
            .json(&json!({
                "uids": ["u_a_0"], "privileges": {"cluster": ["not_a_privilege"]}
            })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("unknown cluster privilege [not_a_privilege]"));

    let (status, _) = send_json(
        app.as_user(
            "nobody",
            USER_PASSWORD,
            Method::POST,
            "/_security/profile/_has_privileges",
        )
        .json(&json!({"uids": ["u_a_0"], "privileges": {"cluster": ["monitor"]}})),
    )
    .await;
    assert_eq!(status, 403);

    // Cluster and index privileges of the profiles' roles.
    send_json(app.es(Method::PUT, "/_security/role/logs_writer").json(&json!({
        "cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["write", "read"]}]
    })))
    .await;
    app.create_user("writer", &["logs_writer"], None, None)
        .await;
    let writer = uid_of(&app, "writer").await;
    let check = |privileges: Value| {
        let app = &app;
        let writer = writer.clone();
        async move {
            send_json(
                app.es(Method::POST, "/_security/profile/_has_privileges")
                    .json(&json!({
                        "uids": [writer], "privileges": privileges
                    })),
            )
            .await
            .1["has_privilege_uids"]
                .as_array()
                .unwrap()
                .len()
                == 1
        }
    };
    assert!(check(json!({"cluster": ["monitor"], "index": [{"names": ["logs-1"], "privileges": ["index", "read"]}]})).await);
    assert!(!check(json!({"cluster": ["manage"]})).await);
    assert!(!check(json!({"index": [{"names": ["metrics"], "privileges": ["read"]}]})).await);
    assert!(!check(json!({"index": [{"names": ["logs-1"], "privileges": ["manage"]}]})).await);
}

#[tokio::test]
async fn privileges_and_profile_has_privileges_over_grpc() {
    use userprofiles::pb;
    let app = spawn_app().await;
    let mut privileges = pb::privileges_client::PrivilegesClient::new(app.grpc.clone());
    let define = |name: &str, actions: &[&str]| pb::ApplicationPrivilege {
        application: "kibana-.kibana".into(),
        name: name.into(),
        actions: actions.iter().map(|s| s.to_string()).collect(),
        metadata: None,
    };
    let written = privileges
        .put_privileges(as_elastic(pb::PutPrivilegesRequest {
            privileges: vec![
                define("space_all", &["login:", "saved_object:*"]),
                define("space_read", &["login:", "saved_object:*/get"]),
            ],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(written.privileges.iter().all(|p| p.created));
    let invalid = privileges
        .put_privileges(as_elastic(pb::PutPrivilegesRequest {
            privileges: vec![define("Bad", &["plain"])],
        }))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert_eq!(error_type(&invalid), "action_request_validation_exception");

    let found = privileges
        .get_privileges(as_elastic(pb::GetPrivilegesRequest {
            application: Some("kibana-.kibana".into()),
            names: vec!["space_read".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.privileges.len(), 1);
    assert_eq!(
        found.privileges[0].actions,
        vec!["login:", "saved_object:*/get"]
    );
    let missing = privileges
        .get_privileges(as_elastic(pb::GetPrivilegesRequest {
            application: Some("otherapp".into()),
            names: vec![],
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // The Kibana question over gRPC.
    let (status, _) = send_json(app.es(Method::PUT, "/_security/role/space_reader").json(&json!({
        "applications": [{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:default"]}]
    })))
    .await;
    assert_eq!(status, 200);
    app.create_user("reader", &["space_reader"], None, None)
        .await;
    app.create_user("stranger", &[], None, None).await;
    let reader = uid_of(&app, "reader").await;
    let stranger = uid_of(&app, "stranger").await;
    let answer = app
        .profiles_client()
        .has_privileges(as_elastic(pb::ProfileHasPrivilegesRequest {
            uids: vec![reader.clone(), stranger, "u_missing_0".into()],
            privileges: Some(pb::PrivilegesToCheck {
                application: vec![pb::ApplicationPrivilegesCheck {
                    application: "kibana-.kibana".into(),
                    privileges: vec!["space_read".into()],
                    resources: vec!["space:default".into()],
                }],
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.has_privilege_uids, vec![reader]);
    let errors = answer.errors.expect("the unknown uid is reported");
    assert_eq!(errors.count, 1);
    assert_eq!(
        errors.details["u_missing_0"].r#type,
        "resource_not_found_exception"
    );

    let deleted = privileges
        .delete_privileges(as_elastic(pb::DeletePrivilegesRequest {
            application: "kibana-.kibana".into(),
            names: vec!["space_read".into(), "nope".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted
            .privileges
            .iter()
            .map(|p| (p.name.as_str(), p.found))
            .collect::<Vec<_>>(),
        vec![("space_read", true), ("nope", false)]
    );
    let gone = privileges
        .delete_privileges(as_elastic(pb::DeletePrivilegesRequest {
            application: "kibana-.kibana".into(),
            names: vec!["space_read".into()],
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn callers_check_their_own_privileges() {
    let app = spawn_app().await;
    put_kibana_privileges(
        &app,
        ("elastic", ELASTIC_PASSWORD),
        &["login:", "saved_object:*/get"],
    )
    .await;
    let (status, _) = send_json(app.es(Method::PUT, "/_security/role/space_reader").json(&json!({
        "cluster": ["monitor"],
        "indices": [{"names": ["logs-*"], "privileges": ["read"], "allow_restricted_indices": false}],
        "applications": [{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:default"]}]
    })))
    .await;
    assert_eq!(status, 200);
    app.create_user("reader", &["space_reader", "missing_role"], None, None)
        .await;
    let request = json!({
        "cluster": ["monitor", "manage_security"],
        "index": [{"names": ["logs-1", "metrics"], "privileges": ["read"]}],
        "application": [{"application": "kibana-.kibana", "privileges": ["space_read", "space_all"], "resources": ["space:default"]}]
    });
    let (status, body) = send_json(
        app.as_user(
            "reader",
            USER_PASSWORD,
            Method::POST,
            "/_security/user/_has_privileges",
        )
        .json(&request),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "username": "reader",
            "has_all_requested": false,
            "cluster": {"monitor": true, "manage_security": false},
            "index": {"logs-1": {"read": true}, "metrics": {"read": false}},
            "application": {"kibana-.kibana": {"space:default": {"space_read": true, "space_all": false}}}
        })
    );
    // The superuser holds everything; GET with a body works as POST.
    let (status, body) = send_json(
        app.es(Method::GET, "/_security/user/elastic/_has_privileges")
            .json(&request),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_all_requested"], true);
    // Only about oneself.
    let (status, body) = send_json(
        app.as_user(
            "reader",
            USER_PASSWORD,
            Method::POST,
            "/_security/user/elastic/_has_privileges",
        )
        .json(&request),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        body["error"]["reason"],
        "users may only check the privileges of their own account"
    );
    let (status, body) = send_json(
        app.as_user(
            "reader",
            USER_PASSWORD,
            Method::POST,
            "/_security/user/_has_privileges",
        )
        .json(&json!({"cluster": []})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("must specify at least one privilege"));

    let (status, body) = send_json(app.as_user(
        "reader",
        USER_PASSWORD,
        Method::GET,
        "/_security/user/_privileges",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "cluster": ["monitor"],
            "global": [],
            "indices": [{"names": ["logs-*"], "privileges": ["read"], "allow_restricted_indices": false}],
            "applications": [{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:default"]}],
            "run_as": []
        })
    );
    let (_, body) = send_json(app.es(Method::GET, "/_security/user/_privileges")).await;
    assert_eq!(body["cluster"], json!(["all"]));
    assert_eq!(body["run_as"], json!(["*"]));
}

#[tokio::test]
async fn callers_check_their_own_privileges_over_grpc() {
    use userprofiles::pb;
    let app = spawn_app().await;
    send_json(app.es(Method::PUT, "/_security/role/watcher").json(&json!({
        "cluster": ["monitor"],
        "applications": [{"application": "myapp", "privileges": ["data:read/*"], "resources": ["item/*"]}]
    })))
    .await;
    app.create_user("watcher", &["watcher"], None, None).await;
    let mut security = app.security_client();
    let answer = security
        .has_privileges(authed(
            pb::HasPrivilegesRequest {
                username: None,
                privileges: Some(pb::PrivilegesToCheck {
                    cluster: vec!["monitor".into(), "manage".into()],
                    application: vec![pb::ApplicationPrivilegesCheck {
                        application: "myapp".into(),
                        privileges: vec!["data:read/items".into()],
                        resources: vec!["item/1".into(), "other".into()],
                    }],
                    ..Default::default()
                }),
            },
            "watcher",
            USER_PASSWORD,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.username, "watcher");
    assert!(!answer.has_all_requested);
    assert!(answer.cluster["monitor"]);
    assert!(!answer.cluster["manage"]);
    let resources = &answer.application["myapp"].resources;
    assert!(resources["item/1"].privileges["data:read/items"]);
    assert!(!resources["other"].privileges["data:read/items"]);

    let someone_else = security
        .has_privileges(authed(
            pb::HasPrivilegesRequest {
                username: Some("elastic".into()),
                privileges: Some(pb::PrivilegesToCheck {
                    cluster: vec!["monitor".into()],
                    ..Default::default()
                }),
            },
            "watcher",
            USER_PASSWORD,
        ))
        .await
        .unwrap_err();
    assert_eq!(someone_else.code(), tonic::Code::InvalidArgument);

    let privileges = security
        .get_user_privileges(authed(
            pb::GetUserPrivilegesRequest {},
            "watcher",
            USER_PASSWORD,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(privileges.cluster, vec!["monitor"]);
    assert_eq!(privileges.applications.len(), 1);
}
