//! The token service and the access_token grant on both front ends (SPEC-security §4).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use userprofiles::pb;

const TOKEN: &str = "/_security/oauth2/token";

async fn password_token(app: &TestApp, username: &str, password: &str) -> Value {
    let (status, body) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "password", "username": username, "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn authenticate_bearer(app: &TestApp, token: &str) -> (u16, Value) {
    send_json(
        app.anonymous(Method::GET, "/_security/_authenticate")
            .bearer_auth(token),
    )
    .await
}

fn grpc_token_grant(grant: &str) -> pb::CreateTokenRequest {
    pb::CreateTokenRequest {
        grant_type: grant.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_password_grant_issues_a_token_pair_that_authenticates_the_user() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["viewer"], Some("Jack Nicholson"), None)
        .await;
    let body = password_token(&app, "jacknich", USER_PASSWORD).await;

    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "type",
            "expires_in",
            "refresh_token",
            "authentication"
        ]
    );
    assert_eq!(body["type"], "Bearer");
    assert_eq!(body["expires_in"], 1200);
    assert_eq!(body["authentication"]["username"], "jacknich");
    assert_eq!(body["authentication"]["authentication_type"], "realm");

    let (status, me) = authenticate_bearer(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "jacknich");
    assert_eq!(me["authentication_type"], "token");
    assert_eq!(
        me["authentication_realm"],
        json!({"name": "default_native", "type": "native"})
    );

    // The same token over gRPC metadata.
    let mut request = tonic::Request::new(pb::AuthenticateRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", body["access_token"].as_str().unwrap())
            .parse()
            .unwrap(),
    );
    let me = app
        .security_client()
        .authenticate(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.username.as_str(), me.authentication_type.as_str()),
        ("jacknich", "token")
    );
}

#[tokio::test]
async fn activation_through_an_access_token_equals_activation_through_the_password() {
    let app = spawn_app().await;
    app.create_user(
        "jacknich",
        &["admin"],
        Some("Jack Nicholson"),
        Some("jacknich@example.com"),
    )
    .await;
    let (_, by_password) = app.activate_http("jacknich", USER_PASSWORD).await;
    let token = password_token(&app, "jacknich", USER_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, by_token) = send_json(
        app.es(Method::POST, "/_security/profile/_activate")
            .json(&json!({"grant_type": "access_token", "access_token": token})),
    )
    .await;
    assert_eq!(status, 200, "{by_token}");
    assert_eq!(
        by_token, by_password,
        "same uid, same document, skip rule applies"
    );
    assert_eq!(by_token["uid"], JACKNICH_UID);

    let grant = pb::ActivateRequest {
        grant_type: "access_token".into(),
        access_token: token,
        ..Default::default()
    };
    let profile = app
        .profiles_client()
        .activate(as_elastic(grant))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.uid, JACKNICH_UID);
    assert_eq!(
        profile.doc.unwrap().seq_no,
        by_password["_doc"]["_seq_no"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn an_access_token_as_the_first_activation_creates_the_password_users_profile() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let token = password_token(&app, "joe", USER_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = pb::ActivateRequest {
        grant_type: "access_token".into(),
        access_token: token,
        ..Default::default()
    };
    let first = app
        .profiles_client()
        .activate(as_elastic(grant))
        .await
        .unwrap()
        .into_inner();
    let (_, by_password) = app.activate_http("joe", USER_PASSWORD).await;
    assert_eq!(by_password["uid"], first.uid);
}

#[tokio::test]
async fn invalidated_tokens_are_refused_at_once_on_both_front_ends() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let body = password_token(&app, "joe", USER_PASSWORD).await;
    let access = body["access_token"].as_str().unwrap();

    let (status, result) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": access})),
    )
    .await;
    assert_eq!(
        (status, result),
        (
            200,
            json!({"invalidated_tokens": 1, "previously_invalidated_tokens": 0, "error_count": 0})
        )
    );
    let (_, again) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": access})),
    )
    .await;
    assert_eq!(
        again,
        json!({"invalidated_tokens": 0, "previously_invalidated_tokens": 1, "error_count": 0})
    );

    let response = app
        .anonymous(Method::GET, "/_security/_authenticate")
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="security", error="invalid_token", error_description="The access token expired""#
        ]
    );
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["reason"], "token expired");

    let grant = pb::ActivateRequest {
        grant_type: "access_token".into(),
        access_token: access.into(),
        ..Default::default()
    };
    let status = app
        .profiles_client()
        .activate(as_elastic(grant))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unauthenticated, "token expired")
    );

    let (status, missing) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": "no-such-token"})),
    )
    .await;
    assert_eq!(
        (status, missing),
        (
            404,
            json!({"invalidated_tokens": 0, "previously_invalidated_tokens": 0, "error_count": 0})
        )
    );
    let status = app
        .tokens_client()
        .invalidate_token(as_elastic(pb::InvalidateTokenRequest {
            token: "no-such-token".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let clock = Arc::new(userprofiles::engine::ManualClock::at(1_700_000_000_000));
    let app_clock = Arc::clone(&clock);
    let app = spawn_tuned(Arc::new(tempfile::tempdir().unwrap()), move |options| {
        options.settings.token_lifetime = Duration::from_secs(1);
        options.clock = app_clock;
    })
    .await;
    app.create_user("joe", &[], None, None).await;
    let body = password_token(&app, "joe", USER_PASSWORD).await;
    assert_eq!(body["expires_in"], 1);
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(authenticate_bearer(&app, &access).await.0, 200);

    clock.advance(Duration::from_millis(1_001));

    let (status, refused) = authenticate_bearer(&app, &access).await;
    assert_eq!(
        (status, refused["error"]["reason"].clone()),
        (401, json!("token expired"))
    );
    let mut request = tonic::Request::new(pb::AuthenticateRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    assert_eq!(
        app.security_client()
            .authenticate(request)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    // The refresh token outlives the access token.
    let (status, refreshed) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
}

#[tokio::test]
async fn the_refresh_flow_issues_a_new_pair_once_and_repeats_it_inside_the_window() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let first = password_token(&app, "joe", USER_PASSWORD).await;
    let refresh = json!({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]});

    let (status, second) = send_json(app.es(Method::POST, TOKEN).json(&refresh)).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["authentication"]["username"], "joe");
    let (status, me) = authenticate_bearer(&app, second["access_token"].as_str().unwrap()).await;
    assert_eq!((status, me["username"].clone()), (200, json!("joe")));

    // A repeat within 30 s hands out the same pair, as Elasticsearch does.
    let (_, repeat) = send_json(app.es(Method::POST, TOKEN).json(&refresh)).await;
    assert_eq!(
        (
            repeat["access_token"].clone(),
            repeat["refresh_token"].clone()
        ),
        (
            second["access_token"].clone(),
            second["refresh_token"].clone()
        )
    );

    // Over gRPC, the new refresh token works once more.
    let message = pb::CreateTokenRequest {
        refresh_token: second["refresh_token"].as_str().unwrap().into(),
        ..grpc_token_grant("refresh_token")
    };
    let third = app
        .tokens_client()
        .create_token(as_elastic(message))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(third.r#type, "Bearer");
    assert!(third.refresh_token.is_some());

    // Only the creating client may refresh.
    app.create_role("tokens", &["manage_token"]).await;
    app.create_user("other", &["tokens"], None, None).await;
    let stranger =
        json!({"grant_type": "refresh_token", "refresh_token": third.refresh_token.unwrap()});
    let (status, body) = send_json(
        app.as_user("other", USER_PASSWORD, Method::POST, TOKEN)
            .json(&stranger),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "tokens must be refreshed by the creating client"})
        )
    );
}

#[tokio::test]
async fn refresh_and_access_tokens_cannot_stand_in_for_each_other() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let pair = password_token(&app, "joe", USER_PASSWORD).await;
    let (status, body) = authenticate_bearer(&app, pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["reason"], "unable to authenticate with provided credentials and anonymous access is not allowed for this request");

    let (status, body) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "refresh_token", "refresh_token": pair["access_token"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "could not refresh the requested token"})
        )
    );
    let message = pb::CreateTokenRequest {
        refresh_token: pair["access_token"].as_str().unwrap().into(),
        ..grpc_token_grant("refresh_token")
    };
    let status = app
        .tokens_client()
        .create_token(as_elastic(message))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), error_type(&status)),
        (tonic::Code::InvalidArgument, "invalid_grant".to_owned())
    );
}

#[tokio::test]
async fn malformed_unknown_and_truncated_tokens_are_refused() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let access = password_token(&app, "joe", USER_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [
        &access[..access.len() - 4],
        "not a token at all",
        "dGhpcyBpcyBub3QgYSB0b2tlbg==",
        "%%%",
    ] {
        let (status, body) = send_json(
            app.anonymous(Method::GET, "/_security/_authenticate")
                .header("authorization", format!("Bearer {token}")),
        )
        .await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(
            body["error"]["additional_unsuccessful_credentials"],
            "oauth2 token: invalid token"
        );
        let grant = json!({"grant_type": "access_token", "access_token": token});
        let (status, _) = send_json(
            app.es(Method::POST, "/_security/profile/_activate")
                .json(&grant),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (_, profiles) = send_json(app.es(Method::GET, "/_security/profile/u_x")).await;
    assert_eq!(
        profiles["errors"]["details"]["u_x"]["reason"], "profile index does not exist",
        "no profile was created"
    );
}

#[tokio::test]
async fn token_requests_are_validated_with_oauth_errors_on_both_front_ends() {
    let app = spawn_app().await;
    let cases = [
        (json!({"grant_type": "password"}), "invalid_request", "Validation Failed: 1: username is missing;2: password is missing;"),
        (json!({"grant_type": "password", "username": "u", "password": "p", "refresh_token": "r"}), "unsupported_grant_type", "Validation Failed: 1: refresh_token is not supported with the password grant_type;"),
        (json!({"grant_type": "client_credentials", "username": "u"}), "unsupported_grant_type", "Validation Failed: 1: username is not supported with the client_credentials grant_type;"),
        (json!({"grant_type": "refresh_token"}), "invalid_request", "Validation Failed: 1: refresh_token is missing;"),
        (json!({"grant_type": "magic"}), "unsupported_grant_type", "Validation Failed: 1: grant_type only supports the values: [password, _kerberos, refresh_token, client_credentials];"),
        (json!({}), "unsupported_grant_type", "Validation Failed: 1: grant_type only supports the values: [password, _kerberos, refresh_token, client_credentials];"),
    ];
    for (body, error, description) in cases {
        let (status, answer) = send_json(app.es(Method::POST, TOKEN).json(&body)).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"error": error, "error_description": description})
            ),
            "{body}"
        );
    }
    let (status, body) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "password", "ticket": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["reason"].clone()),
        (400, json!("[1:26] [token_request] unknown field [ticket]"))
    );

    let message = pb::CreateTokenRequest {
        username: "u".into(),
        ..grpc_token_grant("client_credentials")
    };
    let status = app
        .tokens_client()
        .create_token(as_elastic(message))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(error_type(&status), "unsupported_grant_type");
    assert_eq!(
        status.message(),
        "Validation Failed: 1: username is not supported with the client_credentials grant_type;"
    );

    let (status, body) = send_json(app.es(Method::DELETE, TOKEN).json(&json!({}))).await;
    assert_eq!((status, body["error"]["reason"].clone()), (400, json!("Validation Failed: 1: token string must be provided when not specifying a realm name or a username;")));
    let (_, body) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": "a", "username": "joe"})),
    )
    .await;
    assert_eq!(body["error"]["reason"], "Validation Failed: 1: token string must not be provided when realm name or username is specified;2: token type must not be provided when realm name or username is specified;");
    let (_, body) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": "a", "refresh_token": "b"})),
    )
    .await;
    assert_eq!(
        body["error"]["reason"],
        "only one of [token, refresh_token] may be sent per request"
    );
    let both = pb::InvalidateTokenRequest {
        token: "a".into(),
        refresh_token: "b".into(),
        ..Default::default()
    };
    let status = app
        .tokens_client()
        .invalidate_token(as_elastic(both))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "only one of [token, refresh_token] may be sent per request"
        )
    );
}

#[tokio::test]
async fn client_credentials_tokens_have_no_refresh_token_and_need_manage_token() {
    let app = spawn_app().await;
    let (status, body) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "client_credentials", "scope": "whatever"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "full");
    assert_eq!(body["authentication"]["username"], "elastic");

    app.create_user("plain", &[], None, None).await;
    let (status, body) = send_json(
        app.as_user("plain", USER_PASSWORD, Method::POST, TOKEN)
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["error"]["reason"].as_str().unwrap().ends_with(
        "this action is granted by the cluster privileges [manage_token,manage_security,all]"
    ));
}

#[tokio::test]
async fn deleting_disabling_or_re_passwording_a_user_kills_its_tokens() {
    let app = spawn_app().await;
    for name in ["gone", "sleepy", "moved"] {
        app.create_user(name, &[], None, None).await;
    }
    let token = |name: &'static str| {
        let app = &app;
        async move {
            password_token(app, name, USER_PASSWORD).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (gone, sleepy, moved) = (
        token("gone").await,
        token("sleepy").await,
        token("moved").await,
    );

    send_json(app.es(Method::DELETE, "/_security/user/gone")).await;
    send_json(app.es(Method::PUT, "/_security/user/sleepy/_disable")).await;
    send_json(
        app.es(Method::PUT, "/_security/user/moved/_password")
            .json(&json!({"password": "a-new-password"})),
    )
    .await;

    for token in [gone, sleepy, moved] {
        assert_eq!(authenticate_bearer(&app, &token).await.0, 401);
    }
    // Re-enabling does not resurrect old tokens.
    send_json(app.es(Method::PUT, "/_security/user/sleepy/_enable")).await;
}

#[tokio::test]
async fn invalidating_by_user_counts_both_halves_of_each_pair() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let a = password_token(&app, "joe", USER_PASSWORD).await;
    password_token(&app, "joe", USER_PASSWORD).await;
    let (status, body) = send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"username": "joe"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"invalidated_tokens": 4, "previously_invalidated_tokens": 0, "error_count": 0})
        )
    );
    let (status, body) = send_json(
        app.es(Method::POST, TOKEN)
            .json(&json!({"grant_type": "refresh_token", "refresh_token": a["refresh_token"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "token has been invalidated"})
        )
    );
    let result = app
        .tokens_client()
        .invalidate_token(as_elastic(pb::InvalidateTokenRequest {
            realm_name: "default_native".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            result.invalidated_tokens,
            result.previously_invalidated_tokens
        ),
        (0, 4)
    );
}

#[tokio::test]
async fn a_token_still_works_after_a_restart() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let pair = password_token(&app, "joe", USER_PASSWORD).await;
    let invalidated = password_token(&app, "joe", USER_PASSWORD).await;
    send_json(
        app.es(Method::DELETE, TOKEN)
            .json(&json!({"token": invalidated["access_token"]})),
    )
    .await;
    let dir = app.stop().await;

    let app = spawn_app_on(dir).await;
    assert_eq!(
        authenticate_bearer(&app, pair["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    assert_eq!(
        authenticate_bearer(&app, invalidated["access_token"].as_str().unwrap())
            .await
            .0,
        401,
        "invalidation survives too"
    );
}
