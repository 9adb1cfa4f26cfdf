//! The engine's time- and state-dependent activation rules (SPEC §4.3, §9.2, §11), driven with
//! a manual clock over a real redb store.

use serde_json::json;
use std::sync::Arc;
use userprofiles::auth::privileges::{builtin_role, EffectiveRoles};
use userprofiles::auth::{AuthenticatedUser, AuthenticationType};
use userprofiles::engine::data_filter::DataFilter;
use userprofiles::engine::{Caller, Clock, Engine, ManualClock};
use userprofiles::error::Error;
use userprofiles::model::{
    ApplicationPrivilegeRecord, Identity, ProfileDoc, ProfileUser, RealmRef, RoleRecord,
    TokenRecord, UserRecord, Versioned,
};
use userprofiles::store::redb::RedbStore;
use userprofiles::store::{
    CreateProfile, FeedIdentity, ProfileChange, ProfileSlot, Store, StoreError, TokenPredicate,
    UpdateProfile,
};

struct Fixture {
    engine: Engine,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let clock = Arc::new(ManualClock::at(1_642_650_651_037));
        let engine = Engine::new(Arc::clone(&store), clock.clone()).unwrap();
        Self {
            engine,
            store,
            clock,
            _dir: dir,
        }
    }

    fn advance(&self, millis: u64) {
        self.clock.advance(std::time::Duration::from_millis(millis));
    }

    /// Writes labels, data or the enabled flag straight into the stored profile.
    async fn edit(&self, uid: &str, edit: impl FnOnce(&mut userprofiles::model::ProfileDoc)) {
        let current = self.store.get_profile(uid).await.unwrap().unwrap();
        let mut doc = current.doc.clone();
        edit(&mut doc);
        assert!(matches!(
            self.store
                .update_profile(doc, current.seq_no)
                .await
                .unwrap(),
            UpdateProfile::Updated(_)
        ));
    }
}

fn user(username: &str, roles: &[&str]) -> ProfileUser {
    ProfileUser {
        username: username.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        realm: RealmRef::native(),
        email: None,
        full_name: None,
    }
}

fn superuser() -> Caller {
    Caller {
        user: AuthenticatedUser {
            identity: Identity {
                username: "elastic".into(),
                roles: vec!["superuser".into()],
                full_name: None,
                email: None,
                metadata: Default::default(),
                realm: RealmRef::reserved(),
            },
            authentication_type: AuthenticationType::Realm,
        },
        roles: EffectiveRoles::from_roles(&["superuser".into()], vec![builtin_role("superuser")]),
    }
}

#[tokio::test]
async fn identical_activation_is_skipped_inside_30_seconds_and_refreshed_after() {
    let f = Fixture::new();
    let first = f
        .engine
        .activate_user(user("jacknich", &["admin"]))
        .await
        .unwrap();
    f.edit(&first.doc.uid, |doc| {
        doc.labels = json!({"direction": "north"}).as_object().cloned().unwrap();
        doc.application_data = json!({"app1": {"key1": "value1"}})
            .as_object()
            .cloned()
            .unwrap();
    })
    .await;
    let stored = f.store.get_profile(&first.doc.uid).await.unwrap().unwrap();

    f.advance(29_999);
    let skipped = f
        .engine
        .activate_user(user("jacknich", &["admin"]))
        .await
        .unwrap();
    assert_eq!(skipped, stored, "no write inside the window");

    f.advance(1);
    let refreshed = f
        .engine
        .activate_user(user("jacknich", &["admin"]))
        .await
        .unwrap();
    assert_eq!(refreshed.seq_no, stored.seq_no + 1);
    assert_eq!(refreshed.doc.last_synchronized, f.clock.now_millis());
    assert_eq!(refreshed.doc.labels, stored.doc.labels, "labels untouched");
    assert_eq!(
        refreshed.doc.application_data, stored.doc.application_data,
        "data untouched"
    );
    assert_eq!(refreshed.doc.uid, first.doc.uid);
}

#[tokio::test]
async fn activation_re_enables_a_disabled_profile_even_inside_the_window() {
    let f = Fixture::new();
    let first = f.engine.activate_user(user("joe", &[])).await.unwrap();
    f.edit(&first.doc.uid, |doc| doc.enabled = false).await;
    f.advance(10);
    let again = f.engine.activate_user(user("joe", &[])).await.unwrap();
    assert!(again.doc.enabled);
    assert_eq!(again.seq_no, 2, "create, disable, re-enable");
}

#[tokio::test]
async fn a_changed_user_block_replaces_the_stored_one_including_nulls() {
    let f = Fixture::new();
    let mut with_email = user("joe", &["a"]);
    with_email.email = Some("joe@example.com".into());
    f.engine.activate_user(with_email).await.unwrap();
    let updated = f
        .engine
        .activate_user(user("joe", &["a", "b"]))
        .await
        .unwrap();
    assert_eq!(updated.doc.user.roles, ["a", "b"]);
    assert_eq!(
        updated.doc.user.email, None,
        "absent email overwrites the stored one"
    );
}

#[tokio::test]
async fn the_same_username_from_another_realm_gets_the_next_differentiator_up_to_nine() {
    let f = Fixture::new();
    let native = f.engine.activate_user(user("rac_user", &[])).await.unwrap();
    assert_eq!(
        native.doc.uid,
        "u_ikGyRZWg_2c9Uzv14Glz1FnuFq-96f47IROJPQ5p70U_0"
    );
    for n in 1..=9 {
        let mut other = user("rac_user", &[]);
        other.realm = RealmRef {
            name: format!("realm{n}"),
            realm_type: format!("type{n}"),
        };
        let profile = f.engine.activate_user(other).await.unwrap();
        assert_eq!(
            profile.doc.uid,
            format!("u_ikGyRZWg_2c9Uzv14Glz1FnuFq-96f47IROJPQ5p70U_{n}")
        );
    }
    let mut eleventh = user("rac_user", &[]);
    eleventh.realm = RealmRef {
        name: "realm10".into(),
        realm_type: "type10".into(),
    };
    let error = f.engine.activate_user(eleventh).await.unwrap_err();
    assert_eq!(
        error,
        Error::Internal("profile differentiator value is too high for base Uid [u_ikGyRZWg_2c9Uzv14Glz1FnuFq-96f47IROJPQ5p70U]".into())
    );
}

#[tokio::test]
async fn get_filters_stored_data_and_always_returns_labels_in_full() {
    let f = Fixture::new();
    let profile = f.engine.activate_user(user("jacknich", &[])).await.unwrap();
    f.edit(&profile.doc.uid, |doc| {
        doc.labels = json!({"direction": "north"}).as_object().cloned().unwrap();
        doc.application_data = json!({"app1": {"key1": "value1", "key2": 2}, "app2": {"x": true}})
            .as_object()
            .cloned()
            .unwrap();
    })
    .await;
    let uids = vec![profile.doc.uid.clone()];
    let cases = [
        (vec![], json!({})),
        (
            vec!["*"],
            json!({"app1": {"key1": "value1", "key2": 2}, "app2": {"x": true}}),
        ),
        (vec!["app1.key1"], json!({"app1": {"key1": "value1"}})),
        (
            vec!["app*"],
            json!({"app1": {"key1": "value1", "key2": 2}, "app2": {"x": true}}),
        ),
        (vec!["app2", "nothing"], json!({"app2": {"x": true}})),
    ];
    for (keys, expected) in cases {
        let result = f
            .engine
            .get_profiles(&superuser(), &uids, &DataFilter::new(&keys))
            .await
            .unwrap();
        let found = &result.profiles[0].doc;
        assert_eq!(
            serde_json::Value::Object(found.application_data.clone()),
            expected,
            "{keys:?}"
        );
        assert_eq!(found.labels["direction"], "north");
    }
}

mod tokens {
    use super::*;
    use userprofiles::auth::password::Secret;
    use userprofiles::engine::tokens::CreateTokenRequest;

    fn refresh_request(token: &Secret) -> CreateTokenRequest {
        CreateTokenRequest {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(token.clone()),
            ..Default::default()
        }
    }

    fn invalid_grant(error: Error) -> String {
        match error {
            Error::OAuth {
                error: "invalid_grant",
                description,
                ..
            } => description,
            other => panic!("expected invalid_grant, got {other:?}"),
        }
    }

    async fn client_token(f: &Fixture) -> userprofiles::engine::tokens::IssuedToken {
        // A password-grant token (with a refresh token) for the bootstrapped `elastic` user.
        let request = CreateTokenRequest {
            grant_type: Some("password".into()),
            username: Some("elastic".into()),
            password: Some(Secret::new("elastic-pass")),
            ..Default::default()
        };
        f.engine
            .bootstrap_elastic(Some(Secret::new("elastic-pass")))
            .await
            .unwrap();
        f.engine.create_token(&superuser(), request).await.unwrap()
    }

    #[tokio::test]
    async fn a_refresh_token_reused_after_30_seconds_is_refused() {
        let f = Fixture::new();
        let issued = client_token(&f).await;
        let refresh = issued.refresh_token.clone().unwrap();
        let first = f
            .engine
            .create_token(&superuser(), refresh_request(&refresh))
            .await
            .unwrap();
        f.advance(30_000);
        let repeat = f
            .engine
            .create_token(&superuser(), refresh_request(&refresh))
            .await
            .unwrap();
        assert_eq!(
            repeat.access_token, first.access_token,
            "inside the window: the same pair"
        );
        f.advance(1);
        let late = f
            .engine
            .create_token(&superuser(), refresh_request(&refresh))
            .await
            .unwrap_err();
        assert_eq!(
            invalid_grant(late),
            "token has already been refreshed more than 30 seconds in the past"
        );
    }

    #[tokio::test]
    async fn refresh_tokens_expire_after_24_hours_and_are_then_purged() {
        let f = Fixture::new();
        let issued = client_token(&f).await;
        assert_eq!(f.engine.purge_expired_tokens().await.unwrap(), 0);
        f.advance(24 * 60 * 60 * 1000);
        let error = f
            .engine
            .create_token(
                &superuser(),
                refresh_request(issued.refresh_token.as_ref().unwrap()),
            )
            .await
            .unwrap_err();
        assert_eq!(invalid_grant(error), "token document has expired");
        assert_eq!(f.engine.purge_expired_tokens().await.unwrap(), 1);
        let gone = f
            .engine
            .create_token(
                &superuser(),
                refresh_request(issued.refresh_token.as_ref().unwrap()),
            )
            .await
            .unwrap_err();
        assert_eq!(invalid_grant(gone), "could not refresh the requested token");
    }

    #[tokio::test]
    async fn access_tokens_expire_after_the_configured_lifetime() {
        let f = Fixture::new();
        let issued = client_token(&f).await;
        assert!(f
            .engine
            .authenticate_token(&issued.access_token)
            .await
            .is_ok());
        f.advance(20 * 60 * 1000 - 1);
        assert!(f
            .engine
            .authenticate_token(&issued.access_token)
            .await
            .is_ok());
        f.advance(1);
        let error = f
            .engine
            .authenticate_token(&issued.access_token)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "token expired");
    }

    #[tokio::test]
    async fn a_remembered_bearer_caller_ends_with_its_token() {
        let f = Fixture::new();
        let issued = client_token(&f).await;
        let header = format!("Bearer {}", issued.access_token.expose());
        let bearer = || Some(header.as_bytes());
        for _ in 0..2 {
            assert!(f.engine.authenticate(bearer(), &"a test").await.is_ok());
        }
        f.advance(20 * 60 * 1000 - 1);
        assert!(f.engine.authenticate(bearer(), &"a test").await.is_ok());
        f.advance(1);
        let error = f
            .engine
            .authenticate(bearer(), &"a test")
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "token expired");
    }
}

#[tokio::test]
async fn updates_beyond_the_profile_size_limit_are_refused_and_change_nothing() {
    use userprofiles::engine::profile_data::UpdateDataRequest;
    use userprofiles::engine::EngineSettings;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
    let settings = EngineSettings {
        profile_max_size_bytes: 64,
        ..EngineSettings::default()
    };
    let engine =
        Engine::with_settings(Arc::clone(&store), Arc::new(ManualClock::at(0)), settings).unwrap();
    let profile = engine.activate_user(user("joe", &[])).await.unwrap();
    let request = |text: &str| UpdateDataRequest {
        uid: profile.doc.uid.clone(),
        data: json!({"app": {"text": text}}).as_object().cloned(),
        ..Default::default()
    };
    engine
        .update_profile_data(&superuser(), request("small"))
        .await
        .unwrap();
    let error = engine
        .update_profile_data(&superuser(), request(&"x".repeat(100)))
        .await
        .unwrap_err();
    assert_eq!(
        error.reason(),
        format!("cannot update profile [{}] because the combined profile size of [121] bytes exceeds the maximum of [64] bytes", profile.doc.uid)
    );
    let stored = store.get_profile(&profile.doc.uid).await.unwrap().unwrap();
    assert_eq!(stored.doc.application_data["app"]["text"], "small");
}

#[tokio::test]
async fn an_on_disk_suggest_index_is_reused_on_its_store_and_rebuilt_on_another() {
    use userprofiles::engine::EngineSettings;
    let index_dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine_on = |dir: &std::path::Path| {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir).unwrap());
        let settings = EngineSettings {
            suggest_index_dir: Some(index_dir.path().join("suggest")),
            ..EngineSettings::default()
        };
        Engine::with_settings(store, Arc::new(ManualClock::at(0)), settings).unwrap()
    };
    let names = |engine: Engine, name: &'static str| async move {
        let found = suggest_named(&engine, name).await;
        let names: Vec<String> = found
            .profiles
            .iter()
            .map(|p| p.doc.user.username.clone())
            .collect();
        names
    };

    let a = engine_on(dir_a.path());
    a.activate_user(user("alice", &[])).await.unwrap();
    a.refresh_suggest_index().await.unwrap();
    assert_eq!(names(a.clone(), "alice").await, ["alice"]);
    drop(a);

    // Same store: the index resumes where its last commit got to (nothing to index, so no
    // new commit), and follows new writes.
    let meta = || std::fs::read_to_string(index_dir.path().join("suggest/meta.json")).unwrap();
    let committed = meta();
    let a = engine_on(dir_a.path());
    a.refresh_suggest_index().await.unwrap();
    assert_eq!(meta(), committed, "reused as it was, not rebuilt");
    a.activate_user(user("alfred", &[])).await.unwrap();
    let mut found = names(a.clone(), "al").await;
    found.sort();
    assert_eq!(found, ["alfred", "alice"]);
    drop(a);

    // Another store under the same index directory: nothing of the first store's shows.
    let b = engine_on(dir_b.path());
    b.refresh_suggest_index().await.unwrap();
    assert!(names(b.clone(), "al").await.is_empty());
    b.activate_user(user("bob", &[])).await.unwrap();
    assert_eq!(names(b.clone(), "bob").await, ["bob"]);
    drop(b);

    // And back: the index followed b, so for a it is rebuilt from a's store.
    let a = engine_on(dir_a.path());
    a.refresh_suggest_index().await.unwrap();
    assert!(names(a.clone(), "bob").await.is_empty());
    let mut found = names(a.clone(), "al").await;
    found.sort();
    assert_eq!(found, ["alfred", "alice"]);
    drop(a);

    // An index an older build wrote (another file format, same schema) is rebuilt, not read.
    let current = meta();
    let older = current.replace(r#"\"format\":4"#, r#"\"format\":0"#);
    assert_ne!(older, current, "the commit records its format");
    std::fs::write(index_dir.path().join("suggest/meta.json"), &older).unwrap();
    let a = engine_on(dir_a.path());
    a.refresh_suggest_index().await.unwrap();
    assert!(meta().contains(r#"\"format\":4"#), "rebuilt in this format");
    let mut found = names(a.clone(), "al").await;
    found.sort();
    assert_eq!(found, ["alfred", "alice"]);
}

/// A redb store that writes while the suggest index reads it in one pass: before the pass
/// (after the index took the feed's position) and after the pass has returned the profiles.
struct WritesDuringThePass {
    inner: Arc<RedbStore>,
    passes: std::sync::atomic::AtomicUsize,
}

impl WritesDuringThePass {
    async fn rename(&self, uid: &str, full_name: &str) {
        let mut stored = self.inner.get_profile(uid).await.unwrap().unwrap();
        stored.doc.user.full_name = Some(full_name.into());
        let written = self.inner.update_profile(stored.doc, stored.seq_no).await;
        assert!(matches!(written.unwrap(), UpdateProfile::Updated(_)));
    }
}

#[async_trait::async_trait]
impl Store for WritesDuringThePass {
    async fn profiles_in_uid_order(
        &self,
        after_uid: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<ProfileChange>>, StoreError> {
        use std::sync::atomic::Ordering;
        let first = self.passes.fetch_add(1, Ordering::SeqCst) == 0;
        if first {
            // Written after the index read the feed's position: the pass sees it, and so
            // does the feed after the pass.
            self.rename(&uid_of("alice"), "Alice Before").await;
        }
        let found = self.inner.profiles_in_uid_order(after_uid, limit).await;
        if first {
            // Written after the pass read the profile: only the feed brings it.
            self.rename(&uid_of("bob"), "Bob Later").await;
            let mut carol = self
                .inner
                .get_profile(&uid_of("alice"))
                .await
                .unwrap()
                .unwrap()
                .doc;
            carol.uid = uid_of("carol");
            carol.user.username = "carol".into();
            carol.user.full_name = Some("Carol New".into());
            self.inner.create_profile(carol).await.unwrap();
        }
        found
    }

    async fn get_profile(&self, uid: &str) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        self.inner.get_profile(uid).await
    }
    async fn get_profiles(&self, uids: &[String]) -> Result<Vec<ProfileSlot>, StoreError> {
        self.inner.get_profiles(uids).await
    }
    async fn find_profile_by_user(
        &self,
        username: &str,
        realm_type: &str,
    ) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        self.inner.find_profile_by_user(username, realm_type).await
    }
    async fn create_profile(&self, doc: ProfileDoc) -> Result<CreateProfile, StoreError> {
        self.inner.create_profile(doc).await
    }
    async fn update_profile(
        &self,
        doc: ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<UpdateProfile, StoreError> {
        self.inner.update_profile(doc, expected_seq_no).await
    }
    async fn profiles_changed_since(
        &self,
        after_seq_no: i64,
        limit: usize,
    ) -> Result<Vec<ProfileChange>, StoreError> {
        self.inner.profiles_changed_since(after_seq_no, limit).await
    }
    async fn create_profile_index(&self) -> Result<(), StoreError> {
        self.inner.create_profile_index().await
    }
    async fn profile_index_exists(&self) -> Result<bool, StoreError> {
        self.inner.profile_index_exists().await
    }
    async fn count_profiles(&self) -> Result<u64, StoreError> {
        self.inner.count_profiles().await
    }
    fn security_generation(&self) -> Option<u64> {
        self.inner.security_generation()
    }
    async fn feed_identity(&self) -> Result<Option<FeedIdentity>, StoreError> {
        self.inner.feed_identity().await
    }
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.get_user(username).await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.list_users().await
    }
    async fn put_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.inner.put_user(user).await
    }
    async fn create_user_if_absent(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.inner.create_user_if_absent(user).await
    }
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        self.inner.delete_user(username).await
    }
    async fn get_role(&self, name: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.inner.get_role(name).await
    }
    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.inner.list_roles().await
    }
    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        self.inner.put_role(role).await
    }
    async fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_role(name).await
    }
    async fn put_application_privileges(
        &self,
        privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<bool>, StoreError> {
        self.inner.put_application_privileges(privileges).await
    }
    async fn list_application_privileges(
        &self,
    ) -> Result<Vec<ApplicationPrivilegeRecord>, StoreError> {
        self.inner.list_application_privileges().await
    }
    async fn delete_application_privileges(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        self.inner
            .delete_application_privileges(application, names)
            .await
    }
    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.inner.put_token(token).await
    }
    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.get_token(id).await
    }
    async fn get_token_by_refresh(
        &self,
        refresh_digest: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.get_token_by_refresh(refresh_digest).await
    }
    async fn update_token(
        &self,
        token: TokenRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.inner.update_token(token, expected_version).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn delete_tokens_where(&self, expired: TokenPredicate) -> Result<u64, StoreError> {
        self.inner.delete_tokens_where(expired).await
    }
}

/// What the superuser's suggest for `name` finds.
async fn suggest_named(
    engine: &Engine,
    name: &str,
) -> userprofiles::engine::suggest::SuggestResult {
    engine
        .suggest_profiles(
            &superuser(),
            userprofiles::engine::suggest::SuggestRequest {
                name: name.into(),
                data: DataFilter::default(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn uid_of(username: &str) -> String {
    userprofiles::engine::uid::uid(username, 0)
}

#[tokio::test]
async fn writes_while_the_index_is_built_in_one_pass_are_neither_lost_nor_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let redb = Arc::new(RedbStore::open(dir.path()).unwrap());
    let loading = Engine::new(redb.clone(), Arc::new(ManualClock::at(0))).unwrap();
    for name in ["alice", "bob", "dave"] {
        let profile = loading.activate_user(user(name, &[])).await.unwrap();
        assert_eq!(profile.doc.uid, uid_of(name));
    }
    drop(loading);

    let store = Arc::new(WritesDuringThePass {
        inner: redb,
        passes: Default::default(),
    });
    let engine = Engine::new(store.clone(), Arc::new(ManualClock::at(0))).unwrap();
    engine.refresh_suggest_index().await.unwrap();
    assert_eq!(
        store.passes.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the index was built in one pass"
    );
    let suggest = |name: &'static str| {
        let engine = engine.clone();
        async move {
            let found = suggest_named(&engine, name).await;
            let names: Vec<(String, Option<String>)> = found
                .profiles
                .iter()
                .map(|p| (p.doc.user.username.clone(), p.doc.user.full_name.clone()))
                .collect();
            (found.total, names)
        }
    };
    let one = |username: &str, full_name: &str| {
        (1, vec![(username.to_owned(), Some(full_name.to_owned()))])
    };
    // Seen by the pass and replayed by the feed: one document.
    assert_eq!(suggest("before").await, one("alice", "Alice Before"));
    // Changed after the pass read it: the old words are gone.
    assert_eq!(suggest("later").await, one("bob", "Bob Later"));
    assert_eq!(suggest("bob").await, one("bob", "Bob Later"));
    // Created after the pass: brought by the feed.
    assert_eq!(suggest("carol").await, one("carol", "Carol New"));
    // Every profile once.
    assert_eq!(suggest("").await.0, 4);
}
