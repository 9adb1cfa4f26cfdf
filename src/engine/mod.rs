//! The profile engine: every rule of the profile, user and role APIs lives here, once.
//!
//! The engine is a cheap `Clone` handle over shared state. It never sees the wire: front ends
//! turn requests into the plain types below and render the results. Each operation follows
//! Elasticsearch's order of checks: the caller is authenticated first (by the front end calling
//! [`Engine::authenticate`]), then the request is validated, then the caller is authorized, then
//! the work is done.

mod background;
mod caller_cache;
pub mod data_filter;
pub mod privileges;
pub mod profile_data;
pub mod profiles;
pub mod roles;
pub mod suggest;
pub mod tokens;
pub mod uid;
pub mod users;

use crate::auth::cache::CredentialCache;
use crate::auth::privileges::EffectiveRoles;
use crate::auth::{AuthenticatedUser, Credentials, PasswordRealms};
use crate::error::{Challenge, Error};
use crate::limits::RequestLimits;
use crate::pool::BoundedPool;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The source of "now", replaceable in tests of time-based rules.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: for tests and benchmarks of time-based rules.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock showing `millis` since the Unix epoch.
    pub fn at(millis: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(millis))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether a request field was given. Elasticsearch treats an empty string as not given, so
/// front ends pass fields through as they came and the engine alone decides.
pub(crate) fn present(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// [`present`] for secrets.
pub(crate) fn present_secret(value: &Option<crate::auth::password::Secret>) -> bool {
    value.as_ref().is_some_and(|v| !v.is_empty())
}

/// An authenticated caller with its resolved roles.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the caller is.
    pub user: AuthenticatedUser,
    /// What the caller's roles allow.
    pub roles: EffectiveRoles,
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How long an access token works (Elasticsearch's `xpack.security.authc.token.timeout`).
    pub token_lifetime: Duration,
    /// Largest combined size of a profile's labels and data, in bytes
    /// (Elasticsearch's `xpack.security.profile.max_size`).
    pub profile_max_size_bytes: usize,
    /// Per-request bounds.
    pub limits: RequestLimits,
    /// Where the suggest index is kept between runs; in memory (rebuilt at every start)
    /// without one.
    pub suggest_index_dir: Option<std::path::PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(20 * 60),
            profile_max_size_bytes: 10 * 1024 * 1024,
            limits: RequestLimits::default(),
            suggest_index_dir: None,
        }
    }
}

/// Shared engine state.
struct Inner {
    store: Arc<dyn Store>,
    realms: PasswordRealms,
    clock: Arc<dyn Clock>,
    settings: EngineSettings,
    suggest_index: Arc<crate::search::SuggestIndex>,
    profile_locks: StripedLocks,
    search_pool: BoundedPool,
    background: background::BackgroundTasks,
    callers: caller_cache::CallerCache,
    /// Set once the store says the profile index exists: nothing deletes it, so from then on
    /// no request asks the store again (a query per get on PostgreSQL).
    profile_index_seen: std::sync::atomic::AtomicBool,
}

/// Per-profile write turns: a fixed set of async mutexes, a profile taking the one its uid
/// hashes to. Fixed memory whatever the number of profiles; two profiles sharing a stripe
/// only wait for each other.
pub(crate) struct StripedLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl StripedLocks {
    fn new(count: usize) -> Self {
        Self {
            stripes: (0..count).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// Waits for `key`'s turn.
    pub(crate) async fn lock(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        // `DefaultHasher::new()` has fixed keys: a key always picks the same stripe.
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % self.stripes.len() as u64) as usize;
        self.stripes[index].lock().await
    }
}

/// How many profile write locks there are.
const PROFILE_LOCK_STRIPES: usize = 256;

/// The one engine both front ends call.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// How long a verified password is remembered (Elasticsearch's realm cache default, 20 minutes).
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(20 * 60);
/// How many users' verified passwords are remembered (Elasticsearch's default).
const CREDENTIAL_CACHE_MAX_USERS: u64 = 100_000;
/// How many authenticated callers are remembered (only successes are, so an unauthenticated
/// client cannot fill it; a caller with its roles is about a kilobyte).
const CALLER_CACHE_MAX_CALLERS: usize = 10_000;

impl Engine {
    /// An engine over `store`, reading time from `clock`, with default settings.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Self::with_settings(store, clock, EngineSettings::default())
    }

    /// An engine with explicit settings. Its suggest index starts empty: call
    /// [`Engine::refresh_suggest_index`] to load it (suggest also does before each query).
    pub fn with_settings(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Result<Self, Error> {
        let cache = CredentialCache::new(CREDENTIAL_CACHE_TTL, CREDENTIAL_CACHE_MAX_USERS);
        let suggest_index = Arc::new(crate::search::SuggestIndex::open(
            settings.suggest_index_dir.as_deref(),
        )?);
        let search_pool = BoundedPool::new(
            "search",
            settings.limits.search_threads,
            settings.limits.search_queue,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                realms: PasswordRealms::new(
                    Arc::clone(&store),
                    cache,
                    BoundedPool::new(
                        "security-crypto",
                        settings.limits.hash_threads,
                        settings.limits.hash_queue,
                    ),
                ),
                store,
                clock,
                settings,
                suggest_index,
                profile_locks: StripedLocks::new(PROFILE_LOCK_STRIPES),
                search_pool,
                background: background::BackgroundTasks::default(),
                callers: caller_cache::CallerCache::new(CALLER_CACHE_MAX_CALLERS),
                profile_index_seen: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Whether any profile was ever created (Elasticsearch's "profile index exists"), asking
    /// the store only until it first says yes.
    async fn profile_index_exists(&self) -> Result<bool, Error> {
        use std::sync::atomic::Ordering;
        if self.inner.profile_index_seen.load(Ordering::Acquire) {
            return Ok(true);
        }
        let exists = self.store().profile_index_exists().await?;
        if exists {
            self.inner.profile_index_seen.store(true, Ordering::Release);
        }
        Ok(exists)
    }

    /// Creates a profile. Profile writes go through this and [`Self::store_profile_update`]
    /// only, so the suggest index hears of every acknowledged one.
    async fn store_new_profile(
        &self,
        doc: crate::model::ProfileDoc,
    ) -> Result<crate::store::CreateProfile, Error> {
        let outcome = self.store().create_profile(doc).await?;
        if let crate::store::CreateProfile::Created(profile) = &outcome {
            self.inner.suggest_index.note_written(profile.seq_no);
        }
        Ok(outcome)
    }

    /// Compare-and-set update of a profile (see [`Self::store_new_profile`]).
    async fn store_profile_update(
        &self,
        doc: crate::model::ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<crate::store::UpdateProfile, Error> {
        let outcome = self.store().update_profile(doc, expected_seq_no).await?;
        if let crate::store::UpdateProfile::Updated(profile) = &outcome {
            self.inner.suggest_index.note_written(profile.seq_no);
        }
        Ok(outcome)
    }

    /// The per-request bounds this engine enforces.
    pub fn limits(&self) -> &RequestLimits {
        &self.inner.settings.limits
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    /// Authenticates a caller from its raw `Authorization` header, as both front ends receive
    /// it. `request` describes the request for Elasticsearch's 401 reasons, e.g. `REST request
    /// [/_security/_authenticate]` (written only when a 401 needs it). A caller remembered for
    /// the same header is found before the header is even decoded.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        request: &(dyn std::fmt::Display + Sync),
    ) -> Result<Arc<Caller>, Error> {
        let missing = || Error::Unauthenticated {
            reason: format!("missing authentication credentials for {request}"),
            challenge: Challenge::Default,
            unsuccessful_credentials: None,
        };
        let header = authorization.ok_or_else(missing)?;
        // Read before authenticating: a write that lands meanwhile makes the entry stale.
        let remembered = self
            .store()
            .security_generation()
            .map(|generation| (generation, self.inner.callers.key(header)));
        if let Some((generation, key)) = &remembered {
            if let Some(caller) = self.inner.callers.get(key, *generation, self.now()) {
                return Ok(caller);
            }
        }
        let credentials = crate::auth::parse_authorization(header)?.ok_or_else(missing)?;
        self.authenticate_uncached(credentials, request, remembered)
            .await
    }

    /// Checks `credentials` and resolves the caller's roles; remembers the caller under `key`
    /// (with the generation read before the check) when the store allows it.
    async fn authenticate_uncached(
        &self,
        credentials: Credentials,
        request: &(dyn std::fmt::Display + Sync),
        remembered: Option<(u64, caller_cache::CredentialKey)>,
    ) -> Result<Arc<Caller>, Error> {
        let credential_ttl = i64::try_from(CREDENTIAL_CACHE_TTL.as_millis()).unwrap_or(i64::MAX);
        let mut expires_millis = self.now().saturating_add(credential_ttl);
        let user = match credentials {
            Credentials::Basic { username, password } => {
                self.authenticate_password(&username, &password, request)
                    .await?
            }
            Credentials::Bearer(token) => {
                let (user, token_expires_millis) = self.authenticate_token_until(&token).await?;
                expires_millis = expires_millis.min(token_expires_millis);
                user
            }
        };
        let roles = self.resolve_roles(&user.roles).await?;
        let caller = Arc::new(Caller { user, roles });
        if let Some((generation, key)) = remembered {
            self.inner
                .callers
                .insert(key, Arc::clone(&caller), generation, expires_millis);
        }
        Ok(caller)
    }

    /// Checks a username and password with the realms; `request` names what they were for in
    /// the 401.
    async fn authenticate_password(
        &self,
        username: &str,
        password: &crate::auth::password::Secret,
        request: &(dyn std::fmt::Display + Sync),
    ) -> Result<AuthenticatedUser, Error> {
        self.inner
            .realms
            .authenticate(username, password)
            .await?
            .ok_or_else(|| Error::unable_to_authenticate(username, request))
    }

    async fn resolve_roles(&self, names: &[String]) -> Result<EffectiveRoles, Error> {
        let mut roles = EffectiveRoles::default();
        for name in names {
            let definition = roles::find_role(self.store(), name).await?;
            roles.add(name, definition.as_deref());
        }
        Ok(roles.finish())
    }

    /// Refuses a call naming more than the per-request maximum of uids, users or roles: each
    /// is a store read.
    fn check_name_count(&self, field: &'static str, what: &str, count: usize) -> Result<(), Error> {
        let max = self.limits().max_uids;
        if count > max {
            return Err(Error::validation(
                field,
                format!("too many {what} [{count}], at most [{max}] may be requested at once"),
            ));
        }
        Ok(())
    }

    /// Refuses `action` unless the caller's roles allow it.
    fn authorize(&self, caller: &Caller, action: &str) -> Result<(), Error> {
        if caller.roles.allows(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                caller.roles.denial_message(&caller.user.username, action),
            ))
        }
    }
}

/// The 401 for a bearer token the service cannot use.
fn invalid_bearer_token() -> Error {
    Error::Unauthenticated {
        reason: "unable to authenticate with provided credentials and anonymous access is not allowed for this request".into(),
        challenge: Challenge::Default,
        unsuccessful_credentials: Some("oauth2 token: invalid token".into()),
    }
}
