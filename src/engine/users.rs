//! Native users, the reserved users and `_authenticate`: SPEC-security §2 and §5.

use super::{Caller, Engine};
use crate::auth::password::{parse_imported_hash, Secret, SUPPORTED_HASH_ALGORITHMS};
use crate::auth::privileges::action;
use crate::auth::{reserved_roles, reserved_user_record, AuthenticationType, RESERVED_USERS};
use crate::error::{Error, Missing, Violation};
use crate::model::{JsonObject, PasswordHash, RealmRef, UserRecord};

/// The shortest password Elasticsearch accepts.
const MIN_PASSWORD_CHARS: usize = 6;
/// Longest user or role name stored in the native realm.
pub const MAX_NAME_CHARS: usize = 507;

/// Elasticsearch's name rule: printable Basic Latin, 1 to 507 characters, no surrounding spaces.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name.chars().all(|c| (' '..='~').contains(&c))
        && !name.starts_with(' ')
        && !name.ends_with(' ')
}

/// The message for a bad name; `kind` is `User` or `Role`.
pub fn invalid_name_message(kind: &str) -> String {
    format!(
        "{kind} names must be at least 1 and no more than {MAX_NAME_CHARS} characters. They can contain alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed."
    )
}

/// A user to create or replace.
#[derive(Debug, Clone, Default)]
pub struct PutUserRequest {
    /// The principal.
    pub username: String,
    /// A new password.
    pub password: Option<Secret>,
    /// A hash to store instead of a password.
    pub password_hash: Option<String>,
    /// Roles; `None` when the request did not say (an error).
    pub roles: Option<Vec<String>>,
    /// Full name.
    pub full_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Metadata.
    pub metadata: JsonObject,
    /// Enabled flag; defaults to true.
    pub enabled: Option<bool>,
}

/// A user as the get API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserView {
    /// The record (its password hash is never rendered).
    pub user: UserRecord,
    /// The profile uid, when asked for and present.
    pub profile_uid: Option<String>,
}

fn short_password() -> Error {
    Error::Validation(vec![Violation::new(
        "password",
        format!("passwords must be at least [{MIN_PASSWORD_CHARS}] characters long"),
    )])
}

/// What a request asks to store as a user's password, once its cheap rules have passed.
enum NewPassword {
    /// A password still to hash.
    ToHash(Secret),
    /// An imported hash, already checked.
    Imported(PasswordHash),
    /// Nothing: keep the stored hash.
    Unchanged,
}

/// The cheap rules of a password or an imported hash (no hashing here).
fn check_new_password(
    password: Option<Secret>,
    imported: Option<&str>,
) -> Result<NewPassword, Error> {
    match (password, imported) {
        (Some(_), Some(_)) => Err(Error::Validation(vec![Violation::new(
            "password_hash",
            "password_hash has already been set",
        )])),
        (Some(password), None) => {
            if password.expose().chars().count() < MIN_PASSWORD_CHARS {
                return Err(short_password());
            }
            Ok(NewPassword::ToHash(password))
        }
        (None, Some(hash)) => parse_imported_hash(hash).map(NewPassword::Imported).ok_or_else(|| {
            Error::IllegalArgument(format!(
                "The provided password hash is not a hash or it could not be resolved to a supported hash algorithm. The supported password hash algorithms are [{SUPPORTED_HASH_ALGORITHMS}]"
            ))
        }),
        (None, None) => Ok(NewPassword::Unchanged),
    }
}

impl Engine {
    /// Creates or replaces a native user; true when created.
    pub async fn put_user(&self, caller: &Caller, request: PutUserRequest) -> Result<bool, Error> {
        // Elasticsearch checks the password while parsing, before anything else.
        let new_password =
            check_new_password(request.password.clone(), request.password_hash.as_deref())?;
        let mut violations = Vec::new();
        if request.roles.is_none() {
            violations.push(Violation::new("roles", "roles are missing"));
        }
        if request.metadata.keys().any(|k| k.starts_with('_')) {
            violations.push(Violation::new(
                "metadata",
                "metadata keys may not start with [_]",
            ));
        }
        Error::check(violations)?;
        self.authorize(caller, action::USER_PUT)?;
        // Elasticsearch hashes while parsing, before authorization; here the slow hash is
        // spent only on requests the caller may make.
        let new_hash = self.hash_new_password(new_password).await?;
        let username = request.username;
        let mut violations = Vec::new();
        if reserved_roles(&username).is_some() {
            violations.push(Violation::new(
                "username",
                format!("user [{username}] is reserved and only the password can be changed"),
            ));
        } else if !valid_name(&username) {
            violations.push(Violation::new("username", invalid_name_message("User")));
        }
        let roles = request.roles.unwrap_or_default();
        if roles.iter().any(|r| !valid_name(r)) {
            violations.push(Violation::new("roles", invalid_name_message("Role")));
        }
        Error::check(violations)?;
        let existing = self.store().get_user(&username).await?;
        let password_changed = new_hash.is_some() && existing.is_some();
        let enabled = request.enabled.unwrap_or(true);
        let password_hash = match (new_hash, existing) {
            (Some(hash), _) => Some(hash),
            (None, Some(existing)) => existing.password_hash,
            (None, None) => {
                return Err(Error::Validation(vec![Violation::new(
                    "password",
                    "password must be specified unless you are updating an existing user",
                )]))
            }
        };
        let created = self
            .store()
            .put_user(UserRecord {
                username: username.clone(),
                password_hash,
                roles,
                full_name: request.full_name,
                email: request.email,
                metadata: request.metadata,
                enabled,
            })
            .await?;
        self.inner.realms.forget(&username);
        if password_changed || !enabled {
            self.invalidate_user_tokens(&username).await?;
        }
        Ok(created)
    }

    /// Reads users by name (all users when `names` is empty); unknown names are left out, and
    /// naming only unknown users is [`Error::NoneFound`].
    pub async fn get_users(
        &self,
        caller: &Caller,
        names: &[String],
        with_profile_uid: bool,
    ) -> Result<Vec<UserView>, Error> {
        self.check_name_count("usernames", "usernames", names.len())?;
        self.authorize(caller, action::USER_GET)?;
        let mut users = Vec::new();
        if names.is_empty() {
            for (name, _) in RESERVED_USERS {
                if let Some(user) = reserved_user_record(name, self.store().get_user(name).await?) {
                    users.push((user, RealmRef::reserved()));
                }
            }
            for user in self.store().list_users().await? {
                if reserved_roles(&user.username).is_none() {
                    users.push((user, RealmRef::native()));
                }
            }
        } else {
            for name in names {
                if let Some(found) = self.inner.realms.lookup(name).await? {
                    users.push(found);
                }
            }
        }
        if !names.is_empty() && users.is_empty() {
            return Err(Error::NoneFound(format!(
                "users [{}] not found",
                names.join(",")
            )));
        }
        let mut views = Vec::with_capacity(users.len());
        for (user, realm) in users {
            let profile_uid = if with_profile_uid {
                self.store()
                    .find_profile_by_user(&user.username, &realm.realm_type)
                    .await?
                    .map(|p| p.doc.uid)
            } else {
                None
            };
            views.push(UserView { user, profile_uid });
        }
        Ok(views)
    }

    /// Deletes a native user ([`Error::NothingFound`] when there was none).
    pub async fn delete_user(&self, caller: &Caller, username: &str) -> Result<(), Error> {
        self.authorize(caller, action::USER_DELETE)?;
        if reserved_roles(username).is_some() {
            return Err(Error::IllegalArgument(format!(
                "user [{username}] is reserved and cannot be deleted"
            )));
        }
        let found = self.store().delete_user(username).await?;
        self.inner.realms.forget(username);
        if !found {
            return Err(Error::NothingFound(Missing::User(username.to_owned())));
        }
        self.invalidate_user_tokens(username).await?;
        Ok(())
    }

    /// Changes a password; `username` `None` means the caller's own.
    pub async fn change_password(
        &self,
        caller: &Caller,
        username: Option<&str>,
        password: Option<Secret>,
        password_hash: Option<String>,
    ) -> Result<(), Error> {
        if password.is_none() && password_hash.is_none() {
            return Err(Error::validation("password", "password is missing"));
        }
        let new_password = check_new_password(password, password_hash.as_deref())?;
        // No name (or an empty one, all a protobuf string can say for "none") means the caller.
        let username = username
            .filter(|name| !name.is_empty())
            .unwrap_or(&caller.user.username)
            .to_owned();
        // Anyone may change their own password, but only having proved it with that password
        // (Elasticsearch allows the rule to realm authentication only): a stolen access token
        // must not become a permanent takeover. Everything else needs the privilege, and the
        // privilege is checked before any hashing is spent on the request.
        let own_with_password = username == caller.user.username
            && caller.user.authentication_type == AuthenticationType::Realm;
        if !own_with_password {
            self.authorize(caller, action::USER_CHANGE_PASSWORD)?;
        }
        let new_hash = self.hash_new_password(new_password).await?;
        let Some((mut record, _)) = self.inner.realms.lookup(&username).await? else {
            return Err(Error::Validation(vec![Violation::new(
                "username",
                "user must exist in order to change password",
            )]));
        };
        record.password_hash = new_hash;
        self.store().put_user(record).await?;
        self.inner.realms.forget(&username);
        self.invalidate_user_tokens(&username).await?;
        Ok(())
    }

    /// Enables or disables a user.
    pub async fn set_user_enabled(
        &self,
        caller: &Caller,
        username: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        if !valid_name(username) {
            return Err(Error::validation("username", invalid_name_message("User")));
        }
        self.authorize(caller, action::USER_SET_ENABLED)?;
        if username == caller.user.username {
            return Err(Error::IllegalArgument(
                "users may not update the enabled status of their own account".into(),
            ));
        }
        let Some((mut record, _)) = self.inner.realms.lookup(username).await? else {
            let verb = if enabled { "enabled" } else { "disabled" };
            return Err(Error::Validation(vec![Violation::new(
                "username",
                format!("only existing users can be {verb}"),
            )]));
        };
        record.enabled = enabled;
        self.store().put_user(record).await?;
        self.inner.realms.forget(username);
        if !enabled {
            self.invalidate_user_tokens(username).await?;
        }
        Ok(())
    }

    /// Turns a password or an imported hash into the hash to store; hashing runs on the
    /// bounded hashing pool, never on the async workers.
    async fn hash_new_password(
        &self,
        new_password: NewPassword,
    ) -> Result<Option<PasswordHash>, Error> {
        match new_password {
            NewPassword::ToHash(password) => self.inner.realms.hash(password).await.map(Some),
            NewPassword::Imported(hash) => Ok(Some(hash)),
            NewPassword::Unchanged => Ok(None),
        }
    }

    /// Gives `elastic` its first password on a store where it has none. Returns the password
    /// when one was generated (to be shown to the operator once), `None` otherwise.
    pub async fn bootstrap_elastic(
        &self,
        configured: Option<Secret>,
    ) -> Result<Option<Secret>, Error> {
        if let Some(existing) = self.store().get_user("elastic").await? {
            if existing.password_hash.is_some() {
                return Ok(None);
            }
        }
        let generated = configured.is_none();
        let password = configured.unwrap_or_else(generate_password);
        if password.expose().chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::IllegalArgument(format!(
                "ELASTIC_PASSWORD must be at least [{MIN_PASSWORD_CHARS}] characters long"
            )));
        }
        let hash = self.inner.realms.hash(password.clone()).await?;
        let mut record = reserved_user_record("elastic", None)
            .ok_or_else(|| Error::Internal("elastic is not a reserved user".into()))?;
        record.password_hash = Some(hash);
        // Two replicas starting together must not overwrite each other's bootstrap password.
        let written = self.store().create_user_if_absent(record).await?;
        Ok((written && generated).then_some(password))
    }
}

/// A random 20-character password from an unambiguous alphabet.
fn generate_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    Secret::new(
        (0..20)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_elasticsearch_rule() {
        assert!(valid_name("jacknich"));
        assert!(valid_name("john doe@example.com"));
        assert!(!valid_name(""));
        assert!(!valid_name(" lead"));
        assert!(!valid_name("trail "));
        assert!(!valid_name("tab\there"));
        assert!(!valid_name("ünïcode"));
        assert!(valid_name(&"a".repeat(507)));
        assert!(!valid_name(&"a".repeat(508)));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a, b);
    }
}
