//! The storage contract, written once against `dyn Store` and run against every backend.

use serde_json::json;
use std::sync::Arc;
use userprofiles::model::{
    ProfileDoc, ProfileUser, RealmRef, RoleRecord, TokenRecord, TokenSubject, UserRecord, Versioned,
};
use userprofiles::store::postgres::PostgresStore;
use userprofiles::store::redb::RedbStore;

#[path = "support/postgres.rs"]
mod postgres;
use userprofiles::store::{CreateProfile, ProfileChange, Store, StoreError, UpdateProfile};

fn doc(uid: &str, username: &str, realm: RealmRef) -> ProfileDoc {
    ProfileDoc {
        uid: uid.into(),
        enabled: true,
        last_synchronized: 1,
        user: ProfileUser {
            username: username.into(),
            roles: vec![],
            realm,
            email: None,
            full_name: None,
        },
        labels: Default::default(),
        application_data: Default::default(),
    }
}

async fn profiles_contract(store: Arc<dyn Store>) {
    assert!(!store.profile_index_exists().await.unwrap());
    assert_eq!(store.count_profiles().await.unwrap(), 0);
    let CreateProfile::Created(first) = store
        .create_profile(doc("u_a_0", "a", RealmRef::native()))
        .await
        .unwrap()
    else {
        panic!("first create must succeed");
    };
    assert_eq!((first.seq_no, first.primary_term), (0, 1));
    assert!(store.profile_index_exists().await.unwrap());

    // The same user again: reported with the existing profile, nothing written.
    let again = store
        .create_profile(doc("u_other_0", "a", RealmRef::native()))
        .await
        .unwrap();
    assert_eq!(again, CreateProfile::UserHasProfile(first.clone()));
    // Another user on a taken uid.
    let taken = store
        .create_profile(doc("u_a_0", "a", RealmRef::reserved()))
        .await
        .unwrap();
    assert_eq!(taken, CreateProfile::UidTaken(first.clone()));

    let found = store.find_profile_by_user("a", "native").await.unwrap();
    assert_eq!(found, Some(first.clone()));
    assert_eq!(
        store.find_profile_by_user("a", "reserved").await.unwrap(),
        None
    );

    let mut changed = first.doc.clone();
    changed.labels = json!({"k": "v"}).as_object().cloned().unwrap();
    let UpdateProfile::Updated(second) = store.update_profile(changed.clone(), 0).await.unwrap()
    else {
        panic!("update with the current seq_no must succeed");
    };
    assert_eq!(second.seq_no, 1);
    assert_eq!(
        store.update_profile(changed.clone(), 0).await.unwrap(),
        UpdateProfile::Conflict {
            seq_no: second.seq_no,
            primary_term: second.primary_term
        }
    );
    assert_eq!(
        store
            .update_profile(doc("u_none_0", "n", RealmRef::native()), 0)
            .await
            .unwrap(),
        UpdateProfile::Missing
    );

    let CreateProfile::Created(other) = store
        .create_profile(doc("u_b_0", "b", RealmRef::native()))
        .await
        .unwrap()
    else {
        panic!("second user");
    };
    assert_eq!(other.seq_no, 2, "one sequence across all profiles");
    assert_eq!(store.count_profiles().await.unwrap(), 2);
    let many = store
        .get_profiles(&["u_b_0".into(), "u_x".into(), "u_a_0".into()])
        .await
        .unwrap();
    let many: Vec<_> = many.into_iter().map(Result::unwrap).collect();
    assert_eq!(many, vec![Some(other.clone()), None, Some(second.clone())]);

    // The change feed lists each profile once, at its latest write, in _seq_no order.
    assert_eq!(
        readable(store.profiles_changed_since(-1, 10).await.unwrap()),
        vec![second.clone(), other.clone()]
    );
    assert_eq!(
        readable(store.profiles_changed_since(1, 10).await.unwrap()),
        vec![other.clone()]
    );
    assert_eq!(
        readable(store.profiles_changed_since(-1, 1).await.unwrap()),
        vec![second.clone()]
    );
    // A store with a feed identity also lists every profile in uid order, for building a
    // suggest index in one pass; one without may not.
    match store.profiles_in_uid_order(None, 10).await.unwrap() {
        Some(all) => {
            assert!(store.feed_identity().await.unwrap().is_some());
            let listed: Vec<(String, i64)> =
                all.iter().map(|c| (c.uid.clone(), c.seq_no)).collect();
            assert_eq!(listed, [("u_a_0".to_owned(), 1), ("u_b_0".to_owned(), 2)]);
            assert_eq!(readable(all), vec![second.clone(), other.clone()]);
            let after_a = store
                .profiles_in_uid_order(Some("u_a_0".into()), 10)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(readable(after_a), vec![other.clone()]);
            let first = store.profiles_in_uid_order(None, 1).await.unwrap().unwrap();
            assert_eq!(readable(first), vec![second.clone()]);
        }
        None => assert!(store.feed_identity().await.unwrap().is_none()),
    }

    // A document nobody can decode any more (here: nested beyond what the store reads back)
    // fails only its own reads; the feed moves past it instead of stopping.
    let mut bad = other.doc.clone();
    let mut deep = serde_json::json!(1);
    for _ in 0..(userprofiles::limits::MAX_STORED_DEPTH + 5) {
        deep = serde_json::json!({ "k": deep });
    }
    bad.application_data.insert("app".into(), deep);
    let UpdateProfile::Updated(_) = store.update_profile(bad, other.seq_no).await.unwrap() else {
        panic!("planting the unreadable document");
    };
    let slots = store
        .get_profiles(&["u_b_0".into(), "u_a_0".into()])
        .await
        .unwrap();
    assert!(matches!(slots[0], Err(StoreError::Unreadable(_))));
    assert_eq!(slots[1].as_ref().unwrap(), &Some(second.clone()));
    assert!(matches!(
        store.get_profile("u_b_0").await,
        Err(StoreError::Unreadable(_))
    ));
    let feed = store.profiles_changed_since(1, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!((feed[0].uid.as_str(), feed[0].seq_no), ("u_b_0", 3));
    assert!(feed[0].profile.is_none());
}

fn readable(changes: Vec<ProfileChange>) -> Vec<Versioned<ProfileDoc>> {
    changes
        .into_iter()
        .map(|change| change.profile.expect("readable"))
        .collect()
}

async fn users_and_roles_contract(store: Arc<dyn Store>) {
    let user = UserRecord {
        username: "joe".into(),
        password_hash: None,
        roles: vec!["r".into()],
        full_name: None,
        email: None,
        metadata: Default::default(),
        enabled: true,
    };
    assert!(store.put_user(user.clone()).await.unwrap());
    assert!(!store.put_user(user.clone()).await.unwrap());
    assert!(!store
        .create_user_if_absent(UserRecord {
            enabled: false,
            ..user.clone()
        })
        .await
        .unwrap());
    assert_eq!(store.get_user("joe").await.unwrap(), Some(user.clone()));
    assert_eq!(store.list_users().await.unwrap(), vec![user]);
    assert!(store.delete_user("joe").await.unwrap());
    assert!(!store.delete_user("joe").await.unwrap());

    let role = RoleRecord {
        name: "r".into(),
        cluster: vec!["all".into()],
        ..Default::default()
    };
    assert!(store.put_role(role.clone()).await.unwrap());
    assert_eq!(store.get_role("r").await.unwrap(), Some(role.clone()));
    assert_eq!(store.list_roles().await.unwrap(), vec![role]);
    assert!(store.delete_role("r").await.unwrap());
    assert_eq!(store.get_role("r").await.unwrap(), None);

    let privilege = |application: &str, name: &str, action: &str| {
        userprofiles::model::ApplicationPrivilegeRecord {
            application: application.into(),
            name: name.into(),
            actions: vec![action.into(), "login:".into()],
            metadata: json!({"k": 1}).as_object().cloned().unwrap(),
        }
    };
    let written = store
        .put_application_privileges(vec![
            privilege("myapp", "write", "data:write/*"),
            privilege("kibana-.kibana", "read", "data:read/*"),
            privilege("myapp", "read", "data:read/*"),
        ])
        .await
        .unwrap();
    assert_eq!(written, vec![true, true, true]);
    let replaced = store
        .put_application_privileges(vec![privilege("myapp", "read", "data:get/*")])
        .await
        .unwrap();
    assert_eq!(replaced, vec![false]);
    assert_eq!(
        store.list_application_privileges().await.unwrap(),
        vec![
            privilege("kibana-.kibana", "read", "data:read/*"),
            privilege("myapp", "read", "data:get/*"),
            privilege("myapp", "write", "data:write/*"),
        ],
        "sorted by application, then name, as written"
    );
    assert_eq!(
        store
            .delete_application_privileges("myapp", &["write".into(), "nope".into()])
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(store.list_application_privileges().await.unwrap().len(), 2);
}

async fn tokens_contract(store: Arc<dyn Store>) {
    let token = TokenRecord {
        id: "access-digest".into(),
        refresh_digest: Some("refresh-digest".into()),
        subject: TokenSubject {
            username: "joe".into(),
            roles: vec![],
            full_name: None,
            email: None,
            metadata: Default::default(),
            realm: RealmRef::native(),
        },
        creator: ("elastic".into(), "reserved".into()),
        created_millis: 10,
        access_expires_millis: 20,
        access_invalidated: false,
        refresh_invalidated: false,
        refreshed_millis: None,
        refresh_salt: None,
        scoped: false,
        version: 0,
    };
    store.put_token(token.clone()).await.unwrap();
    assert_eq!(
        store.get_token("access-digest").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        store.get_token_by_refresh("refresh-digest").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        store.get_token_by_refresh("access-digest").await.unwrap(),
        None
    );

    let invalidated = TokenRecord {
        access_invalidated: true,
        ..token.clone()
    };
    assert!(store.update_token(invalidated.clone(), 0).await.unwrap());
    assert!(
        !store.update_token(invalidated.clone(), 0).await.unwrap(),
        "stale version loses"
    );
    let stored = store.get_token("access-digest").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.access_invalidated), (1, true));
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);

    assert_eq!(
        store
            .delete_tokens_where(Box::new(|t| t.created_millis > 100))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_tokens_where(Box::new(|t| t.created_millis == 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_token_by_refresh("refresh-digest").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn redb_keeps_the_token_contract() {
    let dir = tempfile::tempdir().unwrap();
    tokens_contract(Arc::new(RedbStore::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn redb_keeps_the_profile_contract() {
    let dir = tempfile::tempdir().unwrap();
    profiles_contract(Arc::new(RedbStore::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn redb_keeps_the_user_and_role_contract() {
    let dir = tempfile::tempdir().unwrap();
    users_and_roles_contract(Arc::new(RedbStore::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn redb_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path()).unwrap();
        store
            .create_profile(doc("u_a_0", "a", RealmRef::native()))
            .await
            .unwrap();
    }
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.get_profile("u_a_0").await.unwrap().unwrap().seq_no, 0);
}

async fn postgres_store(test: &str) -> Option<(postgres::TestPostgres, Arc<dyn Store>)> {
    let server = postgres::TestPostgres::start(test)?;
    let store = PostgresStore::connect(&server.database("postgres"))
        .await
        .unwrap();
    Some((server, Arc::new(store)))
}

#[tokio::test]
async fn postgres_keeps_the_profile_contract() {
    if let Some((_server, store)) = postgres_store("postgres_keeps_the_profile_contract").await {
        profiles_contract(store).await;
    }
}

#[tokio::test]
async fn postgres_keeps_the_user_and_role_contract() {
    if let Some((_server, store)) =
        postgres_store("postgres_keeps_the_user_and_role_contract").await
    {
        users_and_roles_contract(store).await;
    }
}

#[tokio::test]
async fn postgres_keeps_the_token_contract() {
    if let Some((_server, store)) = postgres_store("postgres_keeps_the_token_contract").await {
        tokens_contract(store).await;
    }
}

#[tokio::test]
async fn postgres_keeps_one_profile_per_user_under_concurrent_creation_from_many_connections() {
    let Some((_server, store)) = postgres_store("postgres_concurrent_creation").await else {
        return;
    };
    let attempts = (0..20).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create_profile(doc("u_a_0", "a", RealmRef::native()))
                .await
                .unwrap()
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), CreateProfile::Created(_)))
        .count();
    assert_eq!(created, 1);
    let changes = store.profiles_changed_since(-1, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
}
