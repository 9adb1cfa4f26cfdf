//! Getting profiles on both front ends (SPEC §5, §6).

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use userprofiles::pb;

#[tokio::test]
async fn a_store_that_never_held_a_profile_reports_a_missing_index_per_uid() {
    let app = spawn_app().await;
    let (status, body) = send_json(app.es(Method::GET, "/_security/profile/u_b,u_a")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"profiles": [], "errors": {"count": 2, "details": {
            "u_a": {"type": "exception", "reason": "profile index does not exist"},
            "u_b": {"type": "exception", "reason": "profile index does not exist"}
        }}})
    );

    let response = app
        .profiles_client()
        .get_profiles(as_elastic(pb::GetProfilesRequest {
            uids: vec!["u_a".into()],
            data: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    let errors = response.errors.expect("errors present");
    assert_eq!(errors.count, 1);
    assert_eq!(errors.details["u_a"].r#type, "exception");
    assert_eq!(errors.details["u_a"].reason, "profile index does not exist");
}

#[tokio::test]
async fn profiles_come_back_in_request_order_with_per_uid_errors() {
    let app = spawn_app().await;
    app.create_user("jacknich", &["admin"], None, None).await;
    app.create_user("joe", &["viewer"], None, None).await;
    let (_, jack) = app.activate_http("jacknich", USER_PASSWORD).await;
    let (_, joe) = app.activate_http("joe", USER_PASSWORD).await;
    let (jack_uid, joe_uid) = (jack["uid"].as_str().unwrap(), joe["uid"].as_str().unwrap());

    let path = format!("/_security/profile/{joe_uid},u_missing,{jack_uid}");
    let (status, body) = send_json(app.es(Method::GET, &path)).await;

    assert_eq!(status, 200);
    assert_eq!(body["profiles"], json!([joe, jack]));
    assert_eq!(
        body["errors"],
        json!({"count": 1, "details": {"u_missing": {"type": "resource_not_found_exception", "reason": "profile document not found"}}})
    );

    let response = app
        .profiles_client()
        .get_profiles(as_elastic(pb::GetProfilesRequest {
            uids: vec![joe_uid.into(), "u_missing".into(), jack_uid.into()],
            data: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    let uids: Vec<&str> = response.profiles.iter().map(|p| p.uid.as_str()).collect();
    assert_eq!(uids, [joe_uid, jack_uid]);
    assert_eq!(
        response.errors.unwrap().details["u_missing"].r#type,
        "resource_not_found_exception"
    );
}

#[tokio::test]
async fn errors_are_omitted_when_every_uid_is_found() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let (_, joe) = app.activate_http("joe", USER_PASSWORD).await;
    let (_, body) = send_json(app.es(
        Method::GET,
        &format!("/_security/profile/{}?data=*", joe["uid"].as_str().unwrap()),
    ))
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["profiles"][0]["data"], json!({}));
}

#[tokio::test]
async fn get_is_allowed_with_read_security_and_refused_without_it() {
    let app = spawn_app().await;
    app.create_role("reader", &["read_security"]).await;
    app.create_user("reader", &["reader"], None, None).await;
    app.create_user("nobody", &["ghost_role"], None, None).await;

    let (status, _) = send_json(app.as_user(
        "reader",
        USER_PASSWORD,
        Method::GET,
        "/_security/profile/u_x",
    ))
    .await;
    assert_eq!(status, 200);

    let (status, body) = send_json(app.as_user(
        "nobody",
        USER_PASSWORD,
        Method::GET,
        "/_security/profile/u_x",
    ))
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        "action [cluster:admin/xpack/security/profile/get] is unauthorized for user [nobody] with effective roles [] (assigned roles [ghost_role] were not found), this action is granted by the cluster privileges [manage_user_profile,read_security,manage_security,all]"
    );
    let status = app
        .profiles_client()
        .get_profiles(authed(
            pb::GetProfilesRequest {
                uids: vec!["u_x".into()],
                data: vec![],
            },
            "nobody",
            USER_PASSWORD,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn duplicate_uids_are_returned_once_per_mention() {
    let app = spawn_app().await;
    app.create_user("joe", &[], None, None).await;
    let (_, joe) = app.activate_http("joe", USER_PASSWORD).await;
    let uid = joe["uid"].as_str().unwrap();
    let (_, body) =
        send_json(app.es(Method::GET, &format!("/_security/profile/{uid},{uid}"))).await;
    assert_eq!(body["profiles"].as_array().unwrap().len(), 2);
}
