//! Every store call, timed and traced: `userprofiles_store_operation_duration_seconds`
//! `{operation}` and, when traces are exported, a child span of the request per call.
//!
//! A wrapper rather than code in each backend, so both backends are measured the same way and
//! neither carries telemetry.

use super::{
    CreateProfile, FeedIdentity, ProfileChange, ProfileSlot, Store, StoreError, TokenPredicate,
    UpdateProfile,
};
use crate::model::{
    ApplicationPrivilegeRecord, ProfileDoc, RoleRecord, TokenRecord, UserRecord, Versioned,
};
use async_trait::async_trait;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;

/// A store whose calls are measured.
pub struct InstrumentedStore<S: ?Sized> {
    inner: std::sync::Arc<S>,
    /// `db.system.name` on the spans: `redb` or `postgresql`.
    system: &'static str,
}

impl<S: Store + ?Sized> InstrumentedStore<S> {
    /// Wraps `inner`; `system` names the backend on spans.
    pub fn new(inner: std::sync::Arc<S>, system: &'static str) -> Self {
        Self { inner, system }
    }

    async fn measured<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let name = operation.name();
        // Only inside a request: the background polls (health, suggest follower) would
        // otherwise export a one-span trace every second. DEBUG: with only the log output at
        // its default level the span is never built.
        let span = if crate::telemetry::in_traced_request() {
            tracing::debug_span!(
                "store",
                otel.name = name,
                otel.kind = "client",
                db.system.name = self.system,
                db.operation.name = name,
            )
        } else {
            tracing::Span::none()
        };
        let started = Instant::now();
        let result = call.instrument(span).await;
        operation
            .histogram()
            .record(started.elapsed().as_secs_f64());
        result
    }
}

macro_rules! operations {
    ($($variant:ident => $name:literal),* $(,)?) => {
        #[derive(Clone, Copy)]
        enum Operation { $($variant),* }

        const OPERATION_NAMES: &[&str] = &[$($name),*];

        impl Operation {
            fn name(self) -> &'static str {
                OPERATION_NAMES[self as usize]
            }
        }
    };
}

operations! {
    GetProfile => "get_profile",
    GetProfiles => "get_profiles",
    FindProfileByUser => "find_profile_by_user",
    CreateProfile => "create_profile",
    UpdateProfile => "update_profile",
    ProfilesChangedSince => "profiles_changed_since",
    ProfilesInUidOrder => "profiles_in_uid_order",
    CreateProfileIndex => "create_profile_index",
    ProfileIndexExists => "profile_index_exists",
    CountProfiles => "count_profiles",
    FeedIdentity => "feed_identity",
    GetUser => "get_user",
    ListUsers => "list_users",
    PutUser => "put_user",
    CreateUserIfAbsent => "create_user_if_absent",
    DeleteUser => "delete_user",
    GetRole => "get_role",
    ListRoles => "list_roles",
    PutRole => "put_role",
    DeleteRole => "delete_role",
    PutApplicationPrivileges => "put_application_privileges",
    ListApplicationPrivileges => "list_application_privileges",
    DeleteApplicationPrivileges => "delete_application_privileges",
    PutToken => "put_token",
    GetToken => "get_token",
    GetTokenByRefresh => "get_token_by_refresh",
    UpdateToken => "update_token",
    ListTokens => "list_tokens",
    DeleteTokensWhere => "delete_tokens_where",
    Ping => "ping",
}

impl Operation {
    /// The operation's histogram handle, registered once (a registry lookup per call would
    /// cost more than a cached read).
    fn histogram(self) -> &'static metrics::Histogram {
        static HANDLES: OnceLock<Vec<metrics::Histogram>> = OnceLock::new();
        &HANDLES.get_or_init(|| {
            OPERATION_NAMES
                .iter()
                .map(|name| {
                    metrics::histogram!(
                        "userprofiles_store_operation_duration_seconds",
                        "operation" => *name
                    )
                })
                .collect()
        })[self as usize]
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for InstrumentedStore<S> {
    async fn get_profile(&self, uid: &str) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        self.measured(Operation::GetProfile, self.inner.get_profile(uid))
            .await
    }

    async fn get_profiles(&self, uids: &[String]) -> Result<Vec<ProfileSlot>, StoreError> {
        self.measured(Operation::GetProfiles, self.inner.get_profiles(uids))
            .await
    }

    async fn find_profile_by_user(
        &self,
        username: &str,
        realm_type: &str,
    ) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        self.measured(
            Operation::FindProfileByUser,
            self.inner.find_profile_by_user(username, realm_type),
        )
        .await
    }

    async fn create_profile(&self, doc: ProfileDoc) -> Result<CreateProfile, StoreError> {
        self.measured(Operation::CreateProfile, self.inner.create_profile(doc))
            .await
    }

    async fn update_profile(
        &self,
        doc: ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<UpdateProfile, StoreError> {
        self.measured(
            Operation::UpdateProfile,
            self.inner.update_profile(doc, expected_seq_no),
        )
        .await
    }

    async fn profiles_changed_since(
        &self,
        after_seq_no: i64,
        limit: usize,
    ) -> Result<Vec<ProfileChange>, StoreError> {
        self.measured(
            Operation::ProfilesChangedSince,
            self.inner.profiles_changed_since(after_seq_no, limit),
        )
        .await
    }

    async fn profiles_in_uid_order(
        &self,
        after_uid: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<ProfileChange>>, StoreError> {
        self.measured(
            Operation::ProfilesInUidOrder,
            self.inner.profiles_in_uid_order(after_uid, limit),
        )
        .await
    }

    async fn create_profile_index(&self) -> Result<(), StoreError> {
        self.measured(
            Operation::CreateProfileIndex,
            self.inner.create_profile_index(),
        )
        .await
    }

    async fn profile_index_exists(&self) -> Result<bool, StoreError> {
        self.measured(
            Operation::ProfileIndexExists,
            self.inner.profile_index_exists(),
        )
        .await
    }

    async fn count_profiles(&self) -> Result<u64, StoreError> {
        self.measured(Operation::CountProfiles, self.inner.count_profiles())
            .await
    }

    fn security_generation(&self) -> Option<u64> {
        self.inner.security_generation()
    }

    async fn feed_identity(&self) -> Result<Option<FeedIdentity>, StoreError> {
        self.measured(Operation::FeedIdentity, self.inner.feed_identity())
            .await
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.measured(Operation::GetUser, self.inner.get_user(username))
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.measured(Operation::ListUsers, self.inner.list_users())
            .await
    }

    async fn put_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.measured(Operation::PutUser, self.inner.put_user(user))
            .await
    }

    async fn create_user_if_absent(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.measured(
            Operation::CreateUserIfAbsent,
            self.inner.create_user_if_absent(user),
        )
        .await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        self.measured(Operation::DeleteUser, self.inner.delete_user(username))
            .await
    }

    async fn get_role(&self, name: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.measured(Operation::GetRole, self.inner.get_role(name))
            .await
    }

    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.measured(Operation::ListRoles, self.inner.list_roles())
            .await
    }

    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        self.measured(Operation::PutRole, self.inner.put_role(role))
            .await
    }

    async fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        self.measured(Operation::DeleteRole, self.inner.delete_role(name))
            .await
    }

    async fn put_application_privileges(
        &self,
        privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<bool>, StoreError> {
        self.measured(
            Operation::PutApplicationPrivileges,
            self.inner.put_application_privileges(privileges),
        )
        .await
    }

    async fn list_application_privileges(
        &self,
    ) -> Result<Vec<ApplicationPrivilegeRecord>, StoreError> {
        self.measured(
            Operation::ListApplicationPrivileges,
            self.inner.list_application_privileges(),
        )
        .await
    }

    async fn delete_application_privileges(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        self.measured(
            Operation::DeleteApplicationPrivileges,
            self.inner.delete_application_privileges(application, names),
        )
        .await
    }

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.measured(Operation::PutToken, self.inner.put_token(token))
            .await
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.measured(Operation::GetToken, self.inner.get_token(id))
            .await
    }

    async fn get_token_by_refresh(
        &self,
        refresh_digest: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.measured(
            Operation::GetTokenByRefresh,
            self.inner.get_token_by_refresh(refresh_digest),
        )
        .await
    }

    async fn update_token(
        &self,
        token: TokenRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.measured(
            Operation::UpdateToken,
            self.inner.update_token(token, expected_version),
        )
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.measured(Operation::ListTokens, self.inner.list_tokens())
            .await
    }

    async fn delete_tokens_where(&self, expired: TokenPredicate) -> Result<u64, StoreError> {
        self.measured(
            Operation::DeleteTokensWhere,
            self.inner.delete_tokens_where(expired),
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.measured(Operation::Ping, self.inner.ping()).await
    }
}
