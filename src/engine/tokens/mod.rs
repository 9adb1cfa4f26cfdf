//! The token service: SPEC-security §4. Random bearer tokens, stored only as SHA-256 digests,
//! expiring access tokens, single-use refresh tokens with Elasticsearch's ±30 s reuse window,
//! and invalidation by token, refresh token, user or realm.

mod invalidate;

pub use invalidate::{InvalidateTokenRequest, InvalidationResult};

use super::{present, present_secret, Caller, Engine};
use crate::auth::password::Secret;
use crate::auth::privileges::action;
use crate::auth::{AuthenticatedUser, AuthenticationType};
use crate::error::{Challenge, Error, Violation};
use crate::model::TokenRecord;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Refresh tokens work for 24 hours after their token was created.
pub const REFRESH_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// A refresh token used again within this window of its first use returns the same new pair.
pub const REFRESH_REUSE_WINDOW_MILLIS: i64 = 30_000;

const GRANT_TYPES: &str = "[password, _kerberos, refresh_token, client_credentials]";

/// A token request, as the token endpoint receives it. Empty strings count as absent.
#[derive(Debug, Clone, Default)]
pub struct CreateTokenRequest {
    /// `password`, `client_credentials`, `refresh_token` (or `_kerberos`).
    pub grant_type: Option<String>,
    /// For the password grant.
    pub username: Option<String>,
    /// For the password grant.
    pub password: Option<Secret>,
    /// For the refresh grant.
    pub refresh_token: Option<Secret>,
    /// For the Kerberos grant.
    pub kerberos_ticket: Option<Secret>,
    /// Any scope: echoed as `full`.
    pub scope: Option<String>,
}

/// A freshly issued token pair.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: Secret,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, except for `client_credentials`.
    pub refresh_token: Option<Secret>,
    /// `Some("full")` when the request named a scope.
    pub scope: Option<&'static str>,
    /// The user the token authenticates.
    pub authentication: AuthenticatedUser,
}

/// The only token type the service issues.
pub const TOKEN_TYPE: &str = "Bearer";

impl IssuedToken {
    /// How to present the token: always [`TOKEN_TYPE`].
    pub fn token_type(&self) -> &'static str {
        TOKEN_TYPE
    }
}

/// Hex SHA-256 of a token string: the only form in which tokens are stored.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> Secret {
    Secret::new(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// The token pair that supersedes a refreshed one, derived from the old refresh token (which
/// only its holder knows) and a stored salt, so a repeat refresh inside the reuse window can
/// hand out the same pair without the store ever holding a token string.
fn superseding_pair(old_refresh: &Secret, salt: &str) -> (Secret, Secret) {
    let derive = |label: &str| {
        let mut hasher = Sha256::new();
        hasher.update(label.as_bytes());
        hasher.update(salt.as_bytes());
        hasher.update(old_refresh.expose().as_bytes());
        Secret::new(URL_SAFE_NO_PAD.encode(hasher.finalize()))
    };
    (derive("access"), derive("refresh"))
}

impl CreateTokenRequest {
    /// Elasticsearch's validation, in the OAuth2 error format.
    pub fn validate(&self) -> Result<(), Error> {
        let mut violations = Vec::new();
        let grant = self.grant_type.as_deref().unwrap_or_default();
        let unsupported = |field: &'static str, set: bool, violations: &mut Vec<Violation>| {
            if set {
                violations.push(Violation::new(
                    field,
                    format!("{field} is not supported with the {grant} grant_type"),
                ));
            }
        };
        let required = |field: &'static str, set: bool, violations: &mut Vec<Violation>| {
            if !set {
                violations.push(Violation::new(field, format!("{field} is missing")));
            }
        };
        let (user, pass, refresh, ticket) = (
            present(&self.username),
            present_secret(&self.password),
            present_secret(&self.refresh_token),
            present_secret(&self.kerberos_ticket),
        );
        match grant {
            "password" => {
                required("username", user, &mut violations);
                required("password", pass, &mut violations);
                unsupported("kerberos_ticket", ticket, &mut violations);
                unsupported("refresh_token", refresh, &mut violations);
            }
            "refresh_token" => {
                unsupported("username", user, &mut violations);
                unsupported("password", pass, &mut violations);
                unsupported("kerberos_ticket", ticket, &mut violations);
                required("refresh_token", refresh, &mut violations);
            }
            "client_credentials" => {
                unsupported("username", user, &mut violations);
                unsupported("password", pass, &mut violations);
                unsupported("kerberos_ticket", ticket, &mut violations);
                unsupported("refresh_token", refresh, &mut violations);
            }
            "_kerberos" => {
                required("kerberos_ticket", ticket, &mut violations);
                unsupported("username", user, &mut violations);
                unsupported("password", pass, &mut violations);
                unsupported("refresh_token", refresh, &mut violations);
            }
            _ => violations.push(Violation::new(
                "grant_type",
                format!("grant_type only supports the values: {GRANT_TYPES}"),
            )),
        }
        if violations.is_empty() {
            return Ok(());
        }
        let error = if violations.iter().any(|v| v.message.contains("grant_type")) {
            "unsupported_grant_type"
        } else {
            "invalid_request"
        };
        let description = Error::ActionValidation(violations.clone()).reason();
        Err(Error::OAuth {
            error,
            description,
            violations,
        })
    }
}

fn invalid_grant(description: &str) -> Error {
    Error::OAuth {
        error: "invalid_grant",
        description: description.into(),
        violations: Vec::new(),
    }
}

fn expired_token() -> Error {
    Error::Unauthenticated {
        reason: "token expired".into(),
        challenge: Challenge::ExpiredToken,
        unsuccessful_credentials: None,
    }
}

impl Engine {
    /// Issues a token (password or client-credentials grant) or refreshes one.
    pub async fn create_token(
        &self,
        caller: &Caller,
        request: CreateTokenRequest,
    ) -> Result<IssuedToken, Error> {
        request.validate()?;
        let scope = present(&request.scope).then_some("full");
        let creator = (caller.user.username.clone(), caller.user.realm.name.clone());
        match request.grant_type.as_deref() {
            Some("refresh_token") => {
                self.authorize(caller, action::TOKEN_REFRESH)?;
                let refresh = request.refresh_token.unwrap_or_else(|| Secret::new(""));
                self.refresh_token(&creator, &refresh, scope).await
            }
            Some("password") => {
                self.authorize(caller, action::TOKEN_CREATE)?;
                let username = request.username.unwrap_or_default();
                let password = request.password.unwrap_or_else(|| Secret::new(""));
                let request = format!("action [{}]", action::TOKEN_CREATE);
                let user = self
                    .authenticate_password(&username, &password, &request)
                    .await?;
                self.issue(&user, creator, true, scope).await
            }
            Some("client_credentials") => {
                self.authorize(caller, action::TOKEN_CREATE)?;
                let user = AuthenticatedUser {
                    authentication_type: AuthenticationType::Realm,
                    ..caller.user.clone()
                };
                self.issue(&user, creator, false, scope).await
            }
            // Validation admits only `_kerberos` here, and there is no Kerberos realm.
            _ => {
                self.authorize(caller, action::TOKEN_CREATE)?;
                Err(Error::unable_to_authenticate(
                    "_kerberos",
                    &format!("action [{}]", action::TOKEN_CREATE),
                ))
            }
        }
    }

    async fn issue(
        &self,
        user: &AuthenticatedUser,
        creator: (String, String),
        with_refresh: bool,
        scope: Option<&'static str>,
    ) -> Result<IssuedToken, Error> {
        let access = new_token();
        let refresh = with_refresh.then(new_token);
        let now = self.now();
        let record = TokenRecord {
            id: digest(access.expose()),
            refresh_digest: refresh.as_ref().map(|r| digest(r.expose())),
            subject: user.identity.clone(),
            creator,
            created_millis: now,
            access_expires_millis: now + self.token_lifetime_millis(),
            access_invalidated: false,
            refresh_invalidated: false,
            refreshed_millis: None,
            refresh_salt: None,
            scoped: scope.is_some(),
            version: 0,
        };
        self.store().put_token(record).await?;
        Ok(IssuedToken {
            access_token: access,
            expires_in: self.token_lifetime_millis() / 1000,
            refresh_token: refresh,
            scope,
            authentication: user.clone(),
        })
    }

    fn token_lifetime_millis(&self) -> i64 {
        self.inner.settings.token_lifetime.as_millis() as i64
    }

    async fn refresh_token(
        &self,
        creator: &(String, String),
        refresh: &Secret,
        scope: Option<&'static str>,
    ) -> Result<IssuedToken, Error> {
        let refresh_digest = digest(refresh.expose());
        // A lost compare-and-set means a concurrent refresh of the same token: re-read and
        // answer as a repeat inside the reuse window.
        for _ in 0..3 {
            let Some(old) = self.store().get_token_by_refresh(&refresh_digest).await? else {
                return Err(invalid_grant("could not refresh the requested token"));
            };
            let now = self.now();
            if now >= old.created_millis + REFRESH_LIFETIME_MILLIS {
                return Err(invalid_grant("token document has expired"));
            }
            if old.refresh_invalidated {
                return Err(invalid_grant("token has been invalidated"));
            }
            if &old.creator != creator {
                return Err(invalid_grant(
                    "tokens must be refreshed by the creating client",
                ));
            }
            let user = AuthenticatedUser {
                identity: old.subject.clone(),
                authentication_type: AuthenticationType::Realm,
            };
            if let (Some(refreshed), Some(salt)) =
                (old.refreshed_millis, old.refresh_salt.as_deref())
            {
                if now > refreshed + REFRESH_REUSE_WINDOW_MILLIS {
                    return Err(invalid_grant(
                        "token has already been refreshed more than 30 seconds in the past",
                    ));
                }
                if now < refreshed - REFRESH_REUSE_WINDOW_MILLIS {
                    return Err(invalid_grant("token has been refreshed more than 30 seconds in the future, clock skew too great"));
                }
                let (access, new_refresh) = superseding_pair(refresh, salt);
                let record = self.superseding_record(&old, &access, &new_refresh, refreshed);
                // Idempotent: the pair may already be stored by the first refresh.
                if self.store().get_token(&record.id).await?.is_none() {
                    self.store().put_token(record.clone()).await?;
                }
                let expires_in = ((record.access_expires_millis - now) / 1000).max(0);
                return Ok(IssuedToken {
                    access_token: access,
                    expires_in,
                    refresh_token: Some(new_refresh),
                    scope,
                    authentication: user,
                });
            }
            let salt: String = digest(&URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()));
            let marked = TokenRecord {
                refreshed_millis: Some(now),
                refresh_salt: Some(salt.clone()),
                ..old.clone()
            };
            if !self.store().update_token(marked, old.version).await? {
                continue;
            }
            let (access, new_refresh) = superseding_pair(refresh, &salt);
            let record = self.superseding_record(&old, &access, &new_refresh, now);
            self.store().put_token(record).await?;
            return Ok(IssuedToken {
                access_token: access,
                expires_in: self.token_lifetime_millis() / 1000,
                refresh_token: Some(new_refresh),
                scope,
                authentication: user,
            });
        }
        Err(invalid_grant("could not refresh the requested token"))
    }

    fn superseding_record(
        &self,
        old: &TokenRecord,
        access: &Secret,
        refresh: &Secret,
        created: i64,
    ) -> TokenRecord {
        TokenRecord {
            id: digest(access.expose()),
            refresh_digest: Some(digest(refresh.expose())),
            subject: old.subject.clone(),
            creator: old.creator.clone(),
            created_millis: created,
            access_expires_millis: created + self.token_lifetime_millis(),
            access_invalidated: false,
            refresh_invalidated: false,
            refreshed_millis: None,
            refresh_salt: None,
            scoped: old.scoped,
            version: 0,
        }
    }

    /// Authenticates a bearer access token.
    pub async fn authenticate_token(&self, token: &Secret) -> Result<AuthenticatedUser, Error> {
        Ok(self.authenticate_token_until(token).await?.0)
    }

    /// [`Self::authenticate_token`], with the time the token stops being accepted.
    pub(crate) async fn authenticate_token_until(
        &self,
        token: &Secret,
    ) -> Result<(AuthenticatedUser, i64), Error> {
        let Some(record) = self.store().get_token(&digest(token.expose())).await? else {
            return Err(super::invalid_bearer_token());
        };
        if record.access_invalidated || self.now() >= record.access_expires_millis {
            return Err(expired_token());
        }
        let expires_millis = record.access_expires_millis;
        Ok((
            AuthenticatedUser {
                identity: record.subject,
                authentication_type: AuthenticationType::Token,
            },
            expires_millis,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        grant: &str,
        user: bool,
        pass: bool,
        refresh: bool,
        ticket: bool,
    ) -> CreateTokenRequest {
        CreateTokenRequest {
            grant_type: Some(grant.into()),
            username: user.then(|| "u".to_owned()),
            password: pass.then(|| Secret::new("p")),
            refresh_token: refresh.then(|| Secret::new("r")),
            kerberos_ticket: ticket.then(|| Secret::new("k")),
            scope: None,
        }
    }

    fn outcome(r: CreateTokenRequest) -> Option<(String, String)> {
        match r.validate() {
            Ok(()) => None,
            Err(Error::OAuth {
                error, description, ..
            }) => Some((error.to_owned(), description)),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn token_requests_are_validated_with_oauth_error_codes() {
        assert_eq!(outcome(request("password", true, true, false, false)), None);
        assert_eq!(
            outcome(request("client_credentials", false, false, false, false)),
            None
        );
        assert_eq!(
            outcome(request("refresh_token", false, false, true, false)),
            None
        );
        assert_eq!(
            outcome(request("password", false, false, false, false)),
            Some((
                "invalid_request".into(),
                "Validation Failed: 1: username is missing;2: password is missing;".into()
            ))
        );
        assert_eq!(
            outcome(request("password", true, true, true, false)),
            Some(("unsupported_grant_type".into(), "Validation Failed: 1: refresh_token is not supported with the password grant_type;".into()))
        );
        assert_eq!(
            outcome(request("authorization_code", false, false, false, false)),
            Some(("unsupported_grant_type".into(), "Validation Failed: 1: grant_type only supports the values: [password, _kerberos, refresh_token, client_credentials];".into()))
        );
        assert_eq!(
            outcome(request("refresh_token", true, false, false, false)).unwrap().1,
            "Validation Failed: 1: username is not supported with the refresh_token grant_type;2: refresh_token is missing;"
        );
    }

    #[test]
    fn the_superseding_pair_is_stable_for_one_refresh_token_and_salt() {
        let old = Secret::new("old-refresh");
        let (a1, r1) = superseding_pair(&old, "salt");
        let (a2, r2) = superseding_pair(&old, "salt");
        assert_eq!((a1.expose(), r1.expose()), (a2.expose(), r2.expose()));
        assert_ne!(a1.expose(), r1.expose());
        let (a3, _) = superseding_pair(&Secret::new("other"), "salt");
        assert_ne!(a1.expose(), a3.expose());
    }
}
