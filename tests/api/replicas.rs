//! Several replicas on one PostgreSQL database: every guarantee holds across them.

use crate::helpers::*;
use crate::postgres::TestPostgres;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

#[tokio::test]
async fn two_replicas_on_one_database_share_profiles_data_suggest_and_tokens() {
    let Some(pg) = TestPostgres::start("two_replicas_on_one_database") else {
        return;
    };
    let url = pg.database("replicas");
    let a = spawn_on_postgres(&url).await;
    let b = spawn_on_postgres(&url).await;

    // Concurrent first activations of the same users through both replicas.
    let users: Vec<String> = (0..8).map(|i| format!("user{i}")).collect();
    for user in &users {
        a.create_user(
            user,
            &["viewer"],
            Some(&format!("Replica User {user}")),
            None,
        )
        .await;
    }
    let attempts = users
        .iter()
        .flat_map(|user| (0..6).map(move |n| (user.clone(), n)));
    let results = futures::future::join_all(attempts.map(|(user, n)| {
        let replica = if n % 2 == 0 { &a } else { &b };
        async move {
            (
                user.clone(),
                replica.activate_http(&user, USER_PASSWORD).await,
            )
        }
    }))
    .await;
    let mut uids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seq_nos = BTreeSet::new();
    for (user, (status, body)) in &results {
        assert_eq!(*status, 200, "{body}");
        uids.entry(user.clone())
            .or_default()
            .insert(body["uid"].as_str().unwrap().to_owned());
        seq_nos.insert(body["_doc"]["_seq_no"].as_i64().unwrap());
    }
    assert!(
        uids.values().all(|set| set.len() == 1),
        "one profile per user: {uids:?}"
    );
    assert_eq!(
        seq_nos,
        (0..8).collect::<BTreeSet<i64>>(),
        "one write per user, one global sequence"
    );

    // A data update through one replica is read back through the other.
    let uid = uids["user0"].iter().next().unwrap().clone();
    let (status, _) = send_json(
        a.es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&json!({"data": {"app": {"k": "v"}}})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, read) =
        send_json(b.es(Method::GET, &format!("/_security/profile/{uid}?data=app"))).await;
    assert_eq!(read["profiles"][0]["data"], json!({"app": {"k": "v"}}));
    // Compare-and-set holds across replicas.
    let seq = read["profiles"][0]["_doc"]["_seq_no"].as_i64().unwrap();
    let path = format!("/_security/profile/{uid}/_data?if_seq_no={seq}&if_primary_term=1");
    assert_eq!(
        send_json(
            b.es(Method::POST, &path)
                .json(&json!({"data": {"app": {"k": 1}}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        send_json(
            a.es(Method::POST, &path)
                .json(&json!({"data": {"app": {"k": 2}}}))
        )
        .await
        .0,
        409
    );

    // Suggest on one replica finds a profile activated on the other within one second.
    a.create_user("newcomer", &[], Some("Fresh Newcomer"), None)
        .await;
    a.activate_http("newcomer", USER_PASSWORD).await;
    let started = Instant::now();
    let found = loop {
        let (_, body) = send_json(
            b.es(Method::POST, "/_security/profile/_suggest")
                .json(&json!({"name": "newcom"})),
        )
        .await;
        if body["total"]["value"] == 1 {
            break true;
        }
        if started.elapsed() > Duration::from_secs(1) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(found, "suggest on B saw A's activation within a second");

    // A token invalidated on one replica is refused by the other.
    let (_, token) =
        send_json(a.es(Method::POST, "/_security/oauth2/token").json(
            &json!({"grant_type": "password", "username": "user1", "password": USER_PASSWORD}),
        ))
        .await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let works = |app: &TestApp| {
        app.anonymous(Method::GET, "/_security/_authenticate")
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(works(&b).await.unwrap().status(), 200);
    send_json(
        a.es(Method::DELETE, "/_security/oauth2/token")
            .json(&json!({"token": access})),
    )
    .await;
    assert_eq!(works(&b).await.unwrap().status(), 401);

    a.stop().await;
    b.stop().await;
}

async fn health(app: &TestApp) -> ServingStatus {
    let mut client = HealthClient::new(app.grpc.clone());
    match client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(response) => response.into_inner().status(),
        Err(_) => ServingStatus::Unknown,
    }
}

async fn wait_for_health(app: &TestApp, wanted: ServingStatus) -> bool {
    for _ in 0..100 {
        if health(app).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_lost_database_gives_503_and_not_serving_and_the_service_recovers_by_itself() {
    let Some(pg) = TestPostgres::start("a_lost_database") else {
        return;
    };
    let app = spawn_on_postgres(&pg.database("outage")).await;
    app.create_user("joe", &[], None, None).await;
    assert_eq!(health(&app).await, ServingStatus::Serving);

    pg.stop_server();

    assert_both_front_ends_unavailable(&app).await;
    assert!(
        wait_for_health(&app, ServingStatus::NotServing).await,
        "health reports NOT_SERVING"
    );
    let (status, reason) = readyz(&app).await;
    assert_eq!(
        (status, reason.as_str()),
        (503, "the profile store is unreachable\n")
    );
    // Known unreachable: requests fail at once instead of waiting for the pool's 5 s timeout.
    let started = std::time::Instant::now();
    assert_both_front_ends_unavailable(&app).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "two requests took {:?} while the store was known to be down",
        started.elapsed()
    );

    pg.start_server();

    assert!(
        wait_for_health(&app, ServingStatus::Serving).await,
        "health recovers"
    );
    assert_eq!(readyz(&app).await, (200, "ok\n".to_owned()));
    let (status, body) = app.activate_http("joe", USER_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

/// The admin listener's `/readyz` status and body.
async fn readyz(app: &TestApp) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}/readyz", app.admin))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// An authenticate over HTTP answers 503 and an activation over gRPC UNAVAILABLE.
async fn assert_both_front_ends_unavailable(app: &TestApp) {
    let (status, body) = send_json(app.es(Method::GET, "/_security/_authenticate")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["reason"], "the profile store is unavailable");
    let grpc = app
        .profiles_client()
        .activate(as_elastic(password_grant("joe", USER_PASSWORD)))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), tonic::Code::Unavailable);
}
