//! Activate and get: SPEC §4, §5, §9 and §11.

use super::data_filter::{CompiledFilter, DataFilter};
use super::uid::{self, MAX_DIFFERENTIATOR};
use super::{present, present_secret, Caller, Engine};
use crate::auth::password::Secret;
use crate::auth::privileges::action;
use crate::error::{Error, Violation};
use crate::model::{JsonObject, ProfileDoc, ProfileUser, Versioned};
use crate::store::{CreateProfile, StoreError, UpdateProfile, UNREADABLE_REASON};
use std::collections::BTreeMap;

/// A profile as the APIs return it: the stored document with `application_data` already
/// narrowed by the request's data filter.
pub type Profile = Versioned<ProfileDoc>;

/// Within this many milliseconds of the last synchronization, an activation that would change
/// nothing but the timestamp is skipped.
pub const ACTIVATION_SKIP_WINDOW_MILLIS: i64 = 30_000;

/// The grant types activation supports.
const GRANT_PASSWORD: &str = "password";
const GRANT_ACCESS_TOKEN: &str = "access_token";

/// The end user's credentials for activation. Empty strings count as absent.
#[derive(Debug, Clone, Default)]
pub struct ActivateRequest {
    /// `password` or `access_token`.
    pub grant_type: Option<String>,
    /// For the password grant.
    pub username: Option<String>,
    /// For the password grant.
    pub password: Option<Secret>,
    /// For the access-token grant.
    pub access_token: Option<Secret>,
}

/// Why one uid of a multi-get could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// Elasticsearch error type.
    pub error_type: &'static str,
    /// Reason text.
    pub reason: String,
}

/// The result of a multi-get.
#[derive(Debug, Clone, PartialEq)]
pub struct GetProfilesResult {
    /// Found profiles, in request order.
    pub profiles: Vec<Profile>,
    /// Failures keyed by uid, sorted by uid.
    pub errors: BTreeMap<String, ProfileError>,
}

impl ActivateRequest {
    /// Elasticsearch's grant validation, messages accumulated in its order.
    pub fn validate(&self) -> Result<(), Error> {
        let Some(grant_type) = self.grant_type.as_deref().filter(|g| !g.is_empty()) else {
            return Err(Error::validation("grant_type", "[grant_type] is required"));
        };
        let mut violations = Vec::new();
        match grant_type {
            GRANT_PASSWORD => {
                if !present(&self.username) {
                    violations.push(Violation::new(
                        "username",
                        "[username] is required for grant_type [password]",
                    ));
                }
                if !present_secret(&self.password) {
                    violations.push(Violation::new(
                        "password",
                        "[password] is required for grant_type [password]",
                    ));
                }
                if present_secret(&self.access_token) {
                    violations.push(Violation::new(
                        "access_token",
                        "[access_token] is not supported for grant_type [password]",
                    ));
                }
            }
            GRANT_ACCESS_TOKEN => {
                if !present_secret(&self.access_token) {
                    violations.push(Violation::new(
                        "access_token",
                        "[access_token] is required for grant_type [access_token]",
                    ));
                }
                if present(&self.username) {
                    violations.push(Violation::new(
                        "username",
                        "[username] is not supported for grant_type [access_token]",
                    ));
                }
                if present_secret(&self.password) {
                    violations.push(Violation::new(
                        "password",
                        "[password] is not supported for grant_type [access_token]",
                    ));
                }
            }
            other => {
                violations.push(Violation::new(
                    "grant_type",
                    format!("grant_type [{other}] is not supported"),
                ));
            }
        }
        Error::check(violations)
    }
}

/// Elasticsearch's get-profiles validation: both messages may accumulate.
pub fn validate_uids(uids: &[String]) -> Result<(), Error> {
    let mut violations = Vec::new();
    if uids.is_empty() {
        violations.push(Violation::new("uids", "profile UIDs must be provided"));
    }
    if uids.iter().any(|u| u.trim().is_empty()) {
        violations.push(Violation::new("uids", "Profile UID cannot be empty"));
    }
    Error::check(violations)
}

impl Engine {
    /// Keeps only the filtered part of each profile's data. Filtering walks every stored key,
    /// so it runs on the blocking pool, off the async workers.
    pub(super) async fn filter_data(
        &self,
        profiles: Vec<Profile>,
        filter: CompiledFilter,
    ) -> Result<Vec<Profile>, Error> {
        // Everything or nothing needs no walk: keep or clear each profile's data in place.
        match filter {
            CompiledFilter::Everything => return Ok(profiles),
            CompiledFilter::Nothing => {
                return Ok(profiles
                    .into_iter()
                    .map(|mut profile| {
                        profile.doc.application_data = JsonObject::new();
                        profile
                    })
                    .collect())
            }
            CompiledFilter::Patterns(_) => {}
        }
        let filter_all = move || {
            profiles
                .into_iter()
                .map(|mut profile| {
                    profile.doc.application_data = filter.apply(&profile.doc.application_data);
                    profile
                })
                .collect()
        };
        tokio::task::spawn_blocking(filter_all)
            .await
            .map_err(|e| Error::Internal(format!("data filter task failed: {e}")))
    }
}

/// Whether re-activating `stored` with `user` at `now` may skip the write.
fn activation_can_skip(stored: &Profile, user: &ProfileUser, now: i64) -> bool {
    stored.doc.enabled
        && stored.doc.user == *user
        && now - stored.doc.last_synchronized < ACTIVATION_SKIP_WINDOW_MILLIS
}

/// Activation always answers with empty data.
fn without_data(mut profile: Profile) -> Profile {
    profile.doc.application_data = JsonObject::new();
    profile
}

impl Engine {
    /// Creates or refreshes the profile of the end user named by the grant.
    pub async fn activate(
        &self,
        caller: &Caller,
        request: ActivateRequest,
    ) -> Result<Profile, Error> {
        request.validate()?;
        self.authorize(caller, action::PROFILE_ACTIVATE)?;
        let user = self.authenticate_grant(&request).await?;
        let profile = self.activate_user(user).await?;
        Ok(without_data(profile))
    }

    async fn authenticate_grant(&self, request: &ActivateRequest) -> Result<ProfileUser, Error> {
        // The grant type decides which credentials count (validation has checked they are
        // there); an empty field of the other grant is "not given", as in Elasticsearch.
        let grant = request.grant_type.as_deref();
        let user = match (
            grant,
            &request.username,
            &request.password,
            &request.access_token,
        ) {
            (Some(GRANT_PASSWORD), Some(username), Some(password), _) => {
                let request = format!("action [{}]", action::PROFILE_ACTIVATE);
                self.authenticate_password(username, password, &request)
                    .await?
            }
            (Some(GRANT_ACCESS_TOKEN), _, _, Some(token)) => self.authenticate_token(token).await?,
            // Validation guarantees one of the two grants is complete.
            _ => return Err(Error::validation("grant_type", "[grant_type] is required")),
        };
        Ok(user.identity.into())
    }

    /// The create-or-update cycle of SPEC §4.3, for an already authenticated end user.
    pub async fn activate_user(&self, user: ProfileUser) -> Result<Profile, Error> {
        if let Some(existing) = self
            .store()
            .find_profile_by_user(&user.username, &user.realm.realm_type)
            .await?
        {
            return self.update_for_activation(existing, user).await;
        }
        let mut differentiator = 0;
        loop {
            let doc = ProfileDoc {
                uid: uid::uid(&user.username, differentiator),
                enabled: true,
                last_synchronized: self.now(),
                user: user.clone(),
                labels: JsonObject::new(),
                application_data: JsonObject::new(),
            };
            match self.store_new_profile(doc).await? {
                CreateProfile::Created(profile) => return Ok(profile),
                // A concurrent activation of the same user won the race: refresh its profile.
                CreateProfile::UserHasProfile(existing) => {
                    return self.update_for_activation(existing, user).await
                }
                // The uid belongs to someone else (same username in another realm, or a hash
                // collision): try the next differentiator.
                CreateProfile::UidTaken(_) if differentiator < MAX_DIFFERENTIATOR => {
                    differentiator += 1;
                }
                CreateProfile::UidTaken(_) => {
                    return Err(Error::Internal(format!(
                        "profile differentiator value is too high for base Uid [{}]",
                        uid::base_uid(&user.username)
                    )))
                }
            }
        }
    }

    async fn update_for_activation(
        &self,
        stored: Profile,
        user: ProfileUser,
    ) -> Result<Profile, Error> {
        let now = self.now();
        if activation_can_skip(&stored, &user, now) {
            return Ok(stored);
        }
        let mut doc = stored.doc.clone();
        doc.enabled = true;
        doc.last_synchronized = now;
        doc.user = user.clone();
        match self.store_profile_update(doc, stored.seq_no).await? {
            UpdateProfile::Updated(profile) => Ok(profile),
            UpdateProfile::Conflict {
                seq_no,
                primary_term,
            } => {
                // Someone else wrote first; if their write already says what ours would, use it.
                if let Some(current) = self.store().get_profile(&stored.doc.uid).await? {
                    if activation_can_skip(&current, &user, self.now()) {
                        return Ok(current);
                    }
                }
                Err(Error::VersionConflict {
                    uid: stored.doc.uid.clone(),
                    required_seq_no: stored.seq_no,
                    required_primary_term: stored.primary_term,
                    current_seq_no: seq_no,
                    current_primary_term: primary_term,
                })
            }
            UpdateProfile::Missing => Err(Error::Internal(format!(
                "profile [{}] disappeared during activation",
                stored.doc.uid
            ))),
        }
    }

    /// Reads profiles by uid, in request order, with `data` narrowed by `filter`.
    pub async fn get_profiles(
        &self,
        caller: &Caller,
        uids: &[String],
        filter: &DataFilter,
    ) -> Result<GetProfilesResult, Error> {
        validate_uids(uids)?;
        self.check_name_count("uids", "profile UIDs", uids.len())?;
        let filter = filter.compile(self.limits().max_data_patterns)?;
        self.authorize(caller, action::PROFILE_GET)?;
        let mut result = GetProfilesResult {
            profiles: Vec::new(),
            errors: BTreeMap::new(),
        };
        if !self.profile_index_exists().await? {
            for uid in uids {
                result.errors.insert(
                    uid.clone(),
                    ProfileError {
                        error_type: "exception",
                        reason: "profile index does not exist".into(),
                    },
                );
            }
            return Ok(result);
        }
        let found = self.store().get_profiles(uids).await?;
        for (uid, slot) in uids.iter().zip(found) {
            match slot {
                Err(StoreError::Unreadable(detail)) => {
                    tracing::error!(uid, %detail, "a stored profile cannot be read");
                    result.errors.insert(
                        uid.clone(),
                        ProfileError {
                            error_type: "illegal_state_exception",
                            reason: UNREADABLE_REASON.into(),
                        },
                    );
                }
                Err(unavailable) => return Err(unavailable.into()),
                Ok(Some(profile)) => result.profiles.push(profile),
                Ok(None) => {
                    result.errors.insert(
                        uid.clone(),
                        ProfileError {
                            error_type: "resource_not_found_exception",
                            reason: "profile document not found".into(),
                        },
                    );
                }
            }
        }
        result.profiles = self.filter_data(result.profiles, filter).await?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        grant: Option<&str>,
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> ActivateRequest {
        ActivateRequest {
            grant_type: grant.map(Into::into),
            username: user.map(Into::into),
            password: pass.map(Secret::new),
            access_token: token.map(Secret::new),
        }
    }

    fn reason(r: ActivateRequest) -> Option<String> {
        r.validate().err().map(|e| e.reason())
    }

    #[test]
    fn grant_validation_matches_elasticsearch_messages() {
        let cases: Vec<(ActivateRequest, Option<&str>)> = vec![
            (request(Some("password"), Some("u"), Some("p"), None), None),
            (request(Some("access_token"), None, None, Some("t")), None),
            (request(None, Some("u"), Some("p"), Some("t")), Some("Validation Failed: 1: [grant_type] is required;")),
            (request(Some(""), None, None, None), Some("Validation Failed: 1: [grant_type] is required;")),
            (request(Some("password"), None, None, None), Some("Validation Failed: 1: [username] is required for grant_type [password];2: [password] is required for grant_type [password];")),
            (request(Some("password"), Some(""), Some("p"), Some("t")), Some("Validation Failed: 1: [username] is required for grant_type [password];2: [access_token] is not supported for grant_type [password];")),
            (request(Some("password"), Some("u"), Some("p"), Some("")), None),
            (request(Some("access_token"), Some("u"), Some("p"), None), Some("Validation Failed: 1: [access_token] is required for grant_type [access_token];2: [username] is not supported for grant_type [access_token];3: [password] is not supported for grant_type [access_token];")),
            (request(Some("client_credentials"), Some("u"), None, None), Some("Validation Failed: 1: grant_type [client_credentials] is not supported;")),
        ];
        for (req, expected) in cases {
            let shown = format!("{req:?}");
            assert_eq!(reason(req).as_deref(), expected, "{shown}");
        }
    }

    #[test]
    fn uid_list_validation_accumulates() {
        let reason = |uids: &[&str]| {
            validate_uids(&uids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .err()
                .map(|e| e.reason())
        };
        assert_eq!(
            reason(&[]).as_deref(),
            Some("Validation Failed: 1: profile UIDs must be provided;")
        );
        assert_eq!(
            reason(&["a", " "]).as_deref(),
            Some("Validation Failed: 1: Profile UID cannot be empty;")
        );
        assert_eq!(reason(&["a"]), None);
    }
}
