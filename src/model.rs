//! Plain data every layer shares: the stored shapes of profiles, users, roles and tokens (serde
//! for persistence); the wire shapes live in `grpc/` and `http/`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object: labels, data and metadata.
pub type JsonObject = Map<String, Value>;

/// The realm that authenticated a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmRef {
    /// Realm name, e.g. `default_native` or `reserved`.
    pub name: String,
    /// Realm type, e.g. `native` or `reserved`.
    #[serde(rename = "type")]
    pub realm_type: String,
}

impl RealmRef {
    /// The native realm, the home of users created through the API.
    pub fn native() -> Self {
        Self {
            name: "default_native".into(),
            realm_type: "native".into(),
        }
    }

    /// The realm of built-in users such as `elastic`.
    pub fn reserved() -> Self {
        Self {
            name: "reserved".into(),
            realm_type: "reserved".into(),
        }
    }
}

/// The user block of a profile, replaced wholesale by each activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUser {
    /// The principal name.
    pub username: String,
    /// Roles at the time of activation.
    pub roles: Vec<String>,
    /// The realm that authenticated the user.
    pub realm: RealmRef,
    /// Email, if the user has one.
    pub email: Option<String>,
    /// Full name, if the user has one.
    pub full_name: Option<String>,
}

/// A stored profile document (Elasticsearch's `user_profile` source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileDoc {
    /// The unique id, also the storage key.
    pub uid: String,
    /// Disabled profiles are hidden from suggest but still readable.
    pub enabled: bool,
    /// Epoch millis of the last activation that wrote the document.
    pub last_synchronized: i64,
    /// The end user.
    pub user: ProfileUser,
    /// Searchable labels.
    pub labels: JsonObject,
    /// Opaque application data.
    pub application_data: JsonObject,
}

/// A stored document with the version the store assigned to its last write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// The document.
    pub doc: T,
    /// Store-wide sequence number of the write.
    pub seq_no: i64,
    /// Primary term (always 1 here).
    pub primary_term: i64,
}

/// How a stored user proves its identity.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user known to the service: native users and built-in (reserved) users whose password or
/// enabled flag was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The principal name (the storage key).
    pub username: String,
    /// The password hash; `None` for a reserved user that never got a password.
    pub password_hash: Option<PasswordHash>,
    /// Assigned roles.
    pub roles: Vec<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Arbitrary metadata.
    pub metadata: JsonObject,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
}

/// A role: cluster privileges plus what is stored for clients but not enforced here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RoleRecord {
    /// The role name (the storage key).
    pub name: String,
    /// Cluster privilege names or `cluster:` action patterns.
    pub cluster: Vec<String>,
    /// Application patterns whose profile labels and data this role may write.
    pub profile_write_applications: Vec<String>,
    /// Application patterns whose application privileges this role may manage
    /// (`global.application.manage`).
    #[serde(default)]
    pub application_manage_applications: Vec<String>,
    /// Index privileges, kept as given.
    pub indices: Vec<Value>,
    /// Application privileges, kept as given.
    pub applications: Vec<Value>,
    /// Run-as targets, kept as given.
    pub run_as: Vec<String>,
    /// Arbitrary metadata.
    pub metadata: JsonObject,
    /// Optional description.
    pub description: Option<String>,
}

/// Who a user is, as a realm describes them at authentication: what an authenticated caller
/// carries and what a token captures at creation (stored in the token record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The principal.
    pub username: String,
    /// Assigned role names.
    pub roles: Vec<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Metadata.
    pub metadata: JsonObject,
    /// The realm that checked the credentials.
    pub realm: RealmRef,
}

/// The identity a token stands for, captured when the token was created.
pub type TokenSubject = Identity;

impl From<Identity> for ProfileUser {
    /// A profile keeps the identity minus metadata (Elasticsearch's profile `user` block).
    fn from(identity: Identity) -> Self {
        Self {
            username: identity.username,
            roles: identity.roles,
            realm: identity.realm,
            email: identity.email,
            full_name: identity.full_name,
        }
    }
}

/// An application privilege (Elasticsearch's `ApplicationPrivilegeDescriptor`): a name an
/// application gives to a set of its action patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationPrivilegeRecord {
    /// The application, e.g. `kibana-.kibana`.
    pub application: String,
    /// The privilege name, e.g. `space_read`.
    pub name: String,
    /// Action patterns (each holds `/`, `:` or `*`), in the order given.
    pub actions: Vec<String>,
    /// Arbitrary metadata.
    pub metadata: JsonObject,
}

/// A stored access token (and its refresh token, if any). Token strings are never stored: the
/// record is keyed by the SHA-256 of the access token and indexed by that of the refresh token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hex SHA-256 of the access token (the storage key).
    pub id: String,
    /// Hex SHA-256 of the refresh token, when one was issued.
    pub refresh_digest: Option<String>,
    /// Whom the token authenticates.
    pub subject: TokenSubject,
    /// The caller that created the token (username, realm name); only it may refresh.
    pub creator: (String, String),
    /// Creation time, epoch millis; refresh tokens live 24 hours from here.
    pub created_millis: i64,
    /// When the access token stops working, epoch millis.
    pub access_expires_millis: i64,
    /// The access token was invalidated.
    pub access_invalidated: bool,
    /// The refresh token was invalidated.
    pub refresh_invalidated: bool,
    /// When the refresh token was used, epoch millis.
    pub refreshed_millis: Option<i64>,
    /// Random salt from which the superseding pair is derived (with the refresh token itself).
    pub refresh_salt: Option<String>,
    /// Whether the response should echo `scope: full`.
    pub scoped: bool,
    /// Incremented by every write; compare-and-set guard.
    pub version: u64,
}

/// The JSON token name Elasticsearch uses in type errors.
pub fn token_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}
