//! Who is calling: credential parsing, the native and reserved realms, and privileges.

pub mod cache;
pub mod has_privileges;
pub mod password;
pub mod patterns;
pub mod privileges;

use crate::error::{Challenge, Error};
use crate::model::{Identity, JsonObject, PasswordHash, RealmRef, UserRecord};
use crate::pool::BoundedPool;
use crate::store::Store;
use base64::Engine as _;
use cache::CredentialCache;
use password::{hash_password, verify_password, Secret};
use std::sync::Arc;
use tracing::Instrument;

/// Credentials presented by a caller.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The principal.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

fn header_error(reason: &str) -> Error {
    Error::Unauthenticated {
        reason: reason.to_owned(),
        challenge: Challenge::Default,
        unsuccessful_credentials: None,
    }
}

/// Parses an `Authorization` header value. `Ok(None)` means no scheme this service knows, which
/// Elasticsearch treats like a missing header.
pub fn parse_authorization(value: &[u8]) -> Result<Option<Credentials>, Error> {
    let Ok(value) = std::str::from_utf8(value) else {
        return Err(header_error("invalid basic authentication header encoding"));
    };
    // `get` rather than slicing: a header may hold multi-byte characters anywhere, and a
    // slice through one would panic.
    let after_scheme = |scheme: &str| {
        value
            .get(..scheme.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
            .and_then(|_| value.get(scheme.len()..))
            .filter(|rest| !rest.is_empty())
    };
    if let Some(encoded) = after_scheme("Basic ") {
        let encoded = encoded.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| header_error("invalid basic authentication header encoding"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| header_error("invalid basic authentication header value"))?;
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }));
    }
    if let Some(token) = after_scheme("Bearer ") {
        return Ok(Some(Credentials::Bearer(Secret::new(token.trim()))));
    }
    Ok(None)
}

/// How a caller authenticated, as `_authenticate` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationType {
    /// Username and password checked by a realm.
    Realm,
    /// An access token from the token service.
    Token,
}

impl AuthenticatedUser {
    /// Whether the user is enabled: always, since disabled users cannot authenticate.
    pub fn enabled(&self) -> bool {
        true
    }
}

impl AuthenticationType {
    /// The lower-case name Elasticsearch renders.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationType::Realm => "realm",
            AuthenticationType::Token => "token",
        }
    }
}

/// An authenticated user: an identity plus how its credentials were checked. It dereferences
/// to the [`Identity`] because everything but the authentication type is read from there.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatedUser {
    /// Who the user is.
    pub identity: Identity,
    /// How the credentials were checked.
    pub authentication_type: AuthenticationType,
}

impl std::ops::Deref for AuthenticatedUser {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.identity
    }
}

/// The built-in users and their fixed roles. They live in the `reserved` realm; only their
/// password and enabled flag can change.
pub const RESERVED_USERS: &[(&str, &[&str])] = &[
    ("elastic", &["superuser"]),
    ("kibana", &["kibana_system"]),
    ("kibana_system", &["kibana_system"]),
    ("logstash_system", &["logstash_system"]),
    ("beats_system", &["beats_system"]),
    ("apm_system", &["apm_system"]),
    (
        "remote_monitoring_user",
        &["remote_monitoring_collector", "remote_monitoring_agent"],
    ),
];

/// The fixed roles of a reserved user, or `None` for any other name.
pub fn reserved_roles(username: &str) -> Option<&'static [&'static str]> {
    RESERVED_USERS
        .iter()
        .find(|(name, _)| *name == username)
        .map(|(_, roles)| *roles)
}

/// A reserved user's public record: fixed roles and metadata, with the stored password and
/// enabled flag when they were ever set.
pub fn reserved_user_record(username: &str, stored: Option<UserRecord>) -> Option<UserRecord> {
    let roles = reserved_roles(username)?;
    let mut metadata = JsonObject::new();
    metadata.insert("_reserved".into(), true.into());
    if username == "kibana" {
        metadata.insert("_deprecated".into(), true.into());
        metadata.insert(
            "_deprecated_reason".into(),
            "Please use the [kibana_system] user instead.".into(),
        );
    }
    Some(UserRecord {
        username: username.to_owned(),
        password_hash: stored.as_ref().and_then(|s| s.password_hash.clone()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        full_name: None,
        email: None,
        metadata,
        enabled: stored.map(|s| s.enabled).unwrap_or(true),
    })
}

/// The username/password realms: reserved users first, then the native realm, as
/// Elasticsearch's realm chain orders them.
#[derive(Clone)]
pub struct PasswordRealms {
    store: Arc<dyn Store>,
    cache: CredentialCache,
    hashing: BoundedPool,
}

impl PasswordRealms {
    /// Realms over `store`, with the verified-credentials cache and the hashing pool.
    pub fn new(store: Arc<dyn Store>, cache: CredentialCache, hashing: BoundedPool) -> Self {
        Self {
            store,
            cache,
            hashing,
        }
    }

    /// Hashes a new password with argon2id on the bounded hashing pool (429 when it is full).
    pub async fn hash(&self, password: Secret) -> Result<PasswordHash, Error> {
        self.hashing
            .run(move || hash_password(&password))
            .instrument(crate::telemetry::child_span("password.hash"))
            .await?
            .map_err(Error::Internal)
    }

    /// Finds a user (reserved or native) and the realm it belongs to.
    pub async fn lookup(&self, username: &str) -> Result<Option<(UserRecord, RealmRef)>, Error> {
        let stored = self.store.get_user(username).await?;
        if reserved_roles(username).is_some() {
            return Ok(reserved_user_record(username, stored).map(|u| (u, RealmRef::reserved())));
        }
        Ok(stored.map(|u| (u, RealmRef::native())))
    }

    /// Checks a username and password. `Ok(None)` when they do not identify an enabled user.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Option<AuthenticatedUser>, Error> {
        let Some((user, realm)) = self.lookup(username).await? else {
            return Ok(None);
        };
        let Some(hash) = user.password_hash.clone() else {
            return Ok(None);
        };
        if !user.enabled || !self.password_matches(username, &hash, password).await? {
            return Ok(None);
        }
        Ok(Some(AuthenticatedUser {
            identity: Identity {
                username: user.username,
                roles: user.roles,
                full_name: user.full_name,
                email: user.email,
                metadata: user.metadata,
                realm,
            },
            authentication_type: AuthenticationType::Realm,
        }))
    }

    async fn password_matches(
        &self,
        username: &str,
        hash: &PasswordHash,
        password: &Secret,
    ) -> Result<bool, Error> {
        if self.cache.is_verified(username, hash, password) {
            return Ok(true);
        }
        // The hash is deliberately slow: it runs on the bounded pool, off the async workers.
        let (hash_for_check, password_for_check) = (hash.clone(), password.clone());
        let verified = self
            .hashing
            .run(move || verify_password(&hash_for_check, &password_for_check))
            .instrument(crate::telemetry::child_span("password.verify"))
            .await?;
        if verified {
            self.cache.remember(username, hash, password);
        }
        Ok(verified)
    }

    /// Drops cached credentials of `username`; called after every write to that user.
    pub fn forget(&self, username: &str) {
        self.cache.forget(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        match parse_authorization(basic("joe:pa:ss").as_bytes()).unwrap() {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, "joe");
                assert_eq!(password.expose(), "pa:ss");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_basic_credentials_are_rejected_with_elasticsearch_reasons() {
        let reason = |header: &str| parse_authorization(header.as_bytes()).unwrap_err().reason();
        assert_eq!(
            reason("Basic !!!"),
            "invalid basic authentication header encoding"
        );
        assert_eq!(
            reason(&basic("nocolon")),
            "invalid basic authentication header value"
        );
    }

    #[test]
    fn unknown_schemes_count_as_no_credentials() {
        assert!(parse_authorization(b"Digest abc").unwrap().is_none());
        assert!(matches!(
            parse_authorization(b"bearer tok").unwrap(),
            Some(Credentials::Bearer(_))
        ));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// No header value makes the parser panic; failures are 401s.
            #[test]
            fn arbitrary_header_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..96)) {
                if let Err(error) = parse_authorization(&raw) {
                    prop_assert_eq!(error.http_status(), 401);
                }
            }

            /// Scheme-shaped prefixes with multi-byte characters around them never panic.
            #[test]
            fn scheme_lookalikes_never_panic(prefix in "(?i)(basic|bearer)?\\PC{0,3}", rest in "\\PC{0,12}") {
                let _ = parse_authorization(format!("{prefix}{rest}").as_bytes());
            }

            /// Any username without a colon and any password come back as sent.
            #[test]
            fn basic_credentials_round_trip(username in "[^:]{0,16}", password in "\\PC{0,16}") {
                let header = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
                );
                match parse_authorization(header.as_bytes()).unwrap() {
                    Some(Credentials::Basic { username: u, password: p }) => {
                        prop_assert_eq!(u, username);
                        prop_assert_eq!(p.expose(), password.as_str());
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }
}
