//! The read path remembers authenticated callers and decoded profiles (on the embedded store);
//! no write that could change an answer may be missed by the very next request.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

/// Status of two identical requests in a row: the second one is answered from the cache.
async fn twice(app: &TestApp, auth: &str, method: Method, path: &str) -> (u16, u16) {
    let send = || {
        app.anonymous(method.clone(), path)
            .header("authorization", auth)
            .send()
    };
    let first = send().await.unwrap().status().as_u16();
    let second = send().await.unwrap().status().as_u16();
    (first, second)
}

fn basic(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn a_remembered_caller_is_forgotten_by_every_security_write() {
    let app = spawn_app().await;
    app.create_role("profile_reader", &["read_security"]).await;
    app.create_user("cached", &["profile_reader"], None, None)
        .await;
    let auth = basic("cached", USER_PASSWORD);
    let get = "/_security/profile/u_abc_0";
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (200, 200));

    // A role edit takes the privilege away at once.
    app.create_role("profile_reader", &[]).await;
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (403, 403));
    app.create_role("profile_reader", &["read_security"]).await;
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (200, 200));

    // Disabling the user.
    let (status, _) = send_json(app.es(Method::PUT, "/_security/user/cached/_disable")).await;
    assert_eq!(status, 200);
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (401, 401));
    let (status, _) = send_json(app.es(Method::PUT, "/_security/user/cached/_enable")).await;
    assert_eq!(status, 200);
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (200, 200));

    // Changing the password: the old one stops working, the new one works.
    let (status, _) = send_json(
        app.es(Method::POST, "/_security/user/cached/_password")
            .json(&json!({"password": "a-different-passw0rd"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(twice(&app, &auth, Method::GET, get).await, (401, 401));
    let new_auth = basic("cached", "a-different-passw0rd");
    assert_eq!(twice(&app, &new_auth, Method::GET, get).await, (200, 200));

    // A bearer token, then its invalidation.
    let (status, token) = send_json(app.es(Method::POST, "/_security/oauth2/token").json(
        &json!({"grant_type": "password", "username": "cached", "password": "a-different-passw0rd"}),
    ))
    .await;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    assert_eq!(twice(&app, &bearer, Method::GET, get).await, (200, 200));
    let (status, _) = send_json(
        app.es(Method::DELETE, "/_security/oauth2/token")
            .json(&json!({ "token": access })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(twice(&app, &bearer, Method::GET, get).await, (401, 401));

    // Deleting the user.
    let (status, _) = send_json(app.es(Method::DELETE, "/_security/user/cached")).await;
    assert_eq!(status, 200);
    assert_eq!(twice(&app, &new_auth, Method::GET, get).await, (401, 401));
}

#[tokio::test]
async fn a_profile_read_twice_shows_every_write_in_between() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["viewer"], None, None).await;
    let (status, activated) = app.activate_http("jacknich", USER_PASSWORD).await;
    assert_eq!(status, 200);
    let uid = activated["uid"].as_str().unwrap().to_owned();
    let path = format!("/_security/profile/{uid}?data=*");
    for round in 0..5 {
        let (_, before) = send_json(app.es(Method::GET, &path)).await;
        let (_, again) = send_json(app.es(Method::GET, &path)).await;
        assert_eq!(before, again);
        let (status, _) = send_json(
            app.es(Method::POST, &format!("/_security/profile/{uid}/_data"))
                .json(&json!({"labels": {"round": round}, "data": {"app": {"round": round}}})),
        )
        .await;
        assert_eq!(status, 200);
        let (_, after) = send_json(app.es(Method::GET, &path)).await;
        let profile = &after["profiles"][0];
        assert_eq!(profile["labels"], json!({"round": round}));
        assert_eq!(profile["data"], json!({"app": {"round": round}}));
        assert_eq!(
            profile["_doc"]["_seq_no"].as_i64().unwrap(),
            before["profiles"][0]["_doc"]["_seq_no"].as_i64().unwrap() + 1
        );
    }
    // Disabling shows at once too.
    let (status, _) =
        send_json(app.es(Method::POST, &format!("/_security/profile/{uid}/_disable"))).await;
    assert_eq!(status, 200);
    let (_, after) = send_json(app.es(Method::GET, &path)).await;
    assert_eq!(after["profiles"][0]["enabled"], false);
}
