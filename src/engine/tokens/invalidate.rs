//! Token invalidation: by access token, refresh token, realm and/or username, after a user
//! changes (delete, disable, password), and the purge of tokens nobody can use any more.

use super::{digest, REFRESH_LIFETIME_MILLIS};
use crate::auth::password::Secret;
use crate::auth::privileges::action;
use crate::engine::{present, present_secret, Caller, Engine};
use crate::error::{Error, Missing, Violation};
use crate::model::TokenRecord;

/// What to invalidate.
#[derive(Debug, Clone, Default)]
pub struct InvalidateTokenRequest {
    /// An access token.
    pub token: Option<Secret>,
    /// A refresh token.
    pub refresh_token: Option<Secret>,
    /// Every token of users from this realm.
    pub realm_name: Option<String>,
    /// Every token of this user.
    pub username: Option<String>,
}

/// Counts of an invalidation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidationResult {
    /// Tokens invalidated now.
    pub invalidated: u64,
    /// Tokens that were invalid already.
    pub previously_invalidated: u64,
}

impl InvalidationResult {
    /// Per-token failures: always 0, every invalidation here being one durable write.
    pub fn error_count(&self) -> u64 {
        0
    }
}

impl Engine {
    /// Invalidates tokens by access token, refresh token, realm and/or username.
    pub async fn invalidate_tokens(
        &self,
        caller: &Caller,
        request: InvalidateTokenRequest,
    ) -> Result<InvalidationResult, Error> {
        if present_secret(&request.token) && present_secret(&request.refresh_token) {
            return Err(Error::IllegalArgument(
                "only one of [token, refresh_token] may be sent per request".into(),
            ));
        }
        let by_token = present_secret(&request.token) || present_secret(&request.refresh_token);
        let by_owner = present(&request.realm_name) || present(&request.username);
        let mut violations = Vec::new();
        if by_owner && by_token {
            violations.push(Violation::new(
                "token",
                "token string must not be provided when realm name or username is specified",
            ));
            violations.push(Violation::new(
                "token_type",
                "token type must not be provided when realm name or username is specified",
            ));
        } else if !by_owner && !by_token {
            violations.push(Violation::new(
                "token",
                "token string must be provided when not specifying a realm name or a username",
            ));
        }
        Error::check(violations)?;
        self.authorize(caller, action::TOKEN_INVALIDATE)?;
        let mut result = InvalidationResult::default();
        if let Some(token) = request.token.filter(|t| !t.is_empty()) {
            match self.store().get_token(&digest(token.expose())).await? {
                None => return Err(Error::NothingFound(Missing::Token)),
                Some(record) => {
                    self.invalidate_halves(record, true, false, &mut result)
                        .await?
                }
            }
        } else if let Some(refresh) = request.refresh_token.filter(|t| !t.is_empty()) {
            match self
                .store()
                .get_token_by_refresh(&digest(refresh.expose()))
                .await?
            {
                None => return Err(Error::NothingFound(Missing::Token)),
                Some(record) => {
                    self.invalidate_halves(record, false, true, &mut result)
                        .await?
                }
            }
        } else {
            let now = self.now();
            for record in self.store().list_tokens().await? {
                let matches_user = request
                    .username
                    .as_deref()
                    .is_none_or(|u| u.is_empty() || u == record.subject.username);
                let matches_realm = request
                    .realm_name
                    .as_deref()
                    .is_none_or(|r| r.is_empty() || r == record.subject.realm.name);
                let live = now < record.created_millis + REFRESH_LIFETIME_MILLIS;
                if matches_user && matches_realm && live {
                    let has_refresh = record.refresh_digest.is_some();
                    self.invalidate_halves(record, true, has_refresh, &mut result)
                        .await?;
                }
            }
        }
        Ok(result)
    }

    /// Marks the requested halves invalid, counting each half as Elasticsearch does.
    async fn invalidate_halves(
        &self,
        mut record: TokenRecord,
        access: bool,
        refresh: bool,
        result: &mut InvalidationResult,
    ) -> Result<(), Error> {
        for _ in 0..5 {
            let mut changed = false;
            let mut counts = InvalidationResult::default();
            for (wanted, flag) in [
                (refresh, &mut record.refresh_invalidated),
                (access, &mut record.access_invalidated),
            ] {
                if !wanted {
                    continue;
                }
                if *flag {
                    counts.previously_invalidated += 1;
                } else {
                    *flag = true;
                    changed = true;
                    counts.invalidated += 1;
                }
            }
            if !changed
                || self
                    .store()
                    .update_token(record.clone(), record.version)
                    .await?
            {
                result.invalidated += counts.invalidated;
                result.previously_invalidated += counts.previously_invalidated;
                return Ok(());
            }
            match self.store().get_token(&record.id).await? {
                Some(current) => record = current,
                None => return Ok(()),
            }
        }
        Err(Error::Internal(format!(
            "could not invalidate token [{}] after repeated conflicts",
            &record.id[..8]
        )))
    }

    /// Invalidates every token of `username` (after a delete, disable or password change).
    pub(in crate::engine) async fn invalidate_user_tokens(
        &self,
        username: &str,
    ) -> Result<(), Error> {
        for record in self.store().list_tokens().await? {
            if record.subject.username == username
                && !(record.access_invalidated && record.refresh_invalidated)
            {
                let has_refresh = record.refresh_digest.is_some();
                self.invalidate_halves(
                    record,
                    true,
                    has_refresh,
                    &mut InvalidationResult::default(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes tokens that can no longer be used by anyone: refresh window over, or (for
    /// access-only tokens) access expired. Returns how many were removed.
    pub async fn purge_expired_tokens(&self) -> Result<u64, Error> {
        let now = self.now();
        let expired = move |t: &TokenRecord| {
            now >= t.created_millis + REFRESH_LIFETIME_MILLIS
                || (t.refresh_digest.is_none() && now >= t.access_expires_millis)
        };
        Ok(self.store().delete_tokens_where(Box::new(expired)).await?)
    }
}
