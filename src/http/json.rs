//! Engine results rendered as Elasticsearch's JSON documents, keys in Elasticsearch's order.

use crate::auth::AuthenticatedUser;
use crate::engine::profiles::{GetProfilesResult, Profile, ProfileError};
use crate::engine::users::UserView;
use crate::model::{ApplicationPrivilegeRecord, ProfileUser, RoleRecord, Versioned};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A profile (SPEC §1.2): `email` and `full_name` are left out when absent.
pub fn profile(profile: &Profile) -> Value {
    to_value(&ProfileBody(profile))
}

/// The get-profiles response: `errors` only when there are some.
pub fn get_profiles(result: &GetProfilesResult) -> Value {
    to_value(&ProfilesBody(result))
}

/// A serializable body as a `Value`, for `filter_path` and pretty printing; these bodies
/// have string keys only, so serializing them cannot fail.
fn to_value(body: &impl Serialize) -> Value {
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// A profile, serialized straight from the stored document: the get-profile path renders
/// one per request, and building a `Value` tree first cost as much as reading the profile.
pub struct ProfileBody<'a>(pub &'a Profile);

impl Serialize for ProfileBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Versioned {
            doc,
            seq_no,
            primary_term,
        } = self.0;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("uid", &doc.uid)?;
        map.serialize_entry("enabled", &doc.enabled)?;
        map.serialize_entry("last_synchronized", &doc.last_synchronized)?;
        map.serialize_entry("user", &ProfileUserBody(&doc.user))?;
        map.serialize_entry("labels", &doc.labels)?;
        map.serialize_entry("data", &doc.application_data)?;
        map.serialize_entry(
            "_doc",
            &DocVersion {
                primary_term: *primary_term,
                seq_no: *seq_no,
            },
        )?;
        map.end()
    }
}

struct ProfileUserBody<'a>(&'a ProfileUser);

impl Serialize for ProfileUserBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let user = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("username", &user.username)?;
        map.serialize_entry("roles", &user.roles)?;
        map.serialize_entry("realm_name", &user.realm.name)?;
        if let Some(email) = &user.email {
            map.serialize_entry("email", email)?;
        }
        if let Some(full_name) = &user.full_name {
            map.serialize_entry("full_name", full_name)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct DocVersion {
    #[serde(rename = "_primary_term")]
    primary_term: i64,
    #[serde(rename = "_seq_no")]
    seq_no: i64,
}

/// The get-profiles response, serialized straight from the engine's result.
pub struct ProfilesBody<'a>(pub &'a GetProfilesResult);

impl Serialize for ProfilesBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(
            "profiles",
            &SerializeIter(|| result.profiles.iter().map(ProfileBody)),
        )?;
        if !result.errors.is_empty() {
            map.serialize_entry("errors", &ProfileErrorsBody(&result.errors))?;
        }
        map.end()
    }
}

/// `{"count": n, "details": {uid: {"type", "reason"}}}`, as a value.
pub fn profile_errors(errors: &BTreeMap<String, ProfileError>) -> Value {
    serde_json::to_value(ProfileErrorsBody(errors)).unwrap_or(Value::Null)
}

/// Application privileges keyed by application, then name.
pub fn application_privileges(privileges: &[ApplicationPrivilegeRecord]) -> Value {
    let mut body = Map::new();
    for privilege in privileges {
        let entry = body
            .entry(privilege.application.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(names) = entry {
            names.insert(
                privilege.name.clone(),
                json!({
                    "application": privilege.application,
                    "name": privilege.name,
                    "actions": privilege.actions,
                    "metadata": privilege.metadata,
                }),
            );
        }
    }
    Value::Object(body)
}

struct ProfileErrorsBody<'a>(&'a BTreeMap<String, ProfileError>);

impl Serialize for ProfileErrorsBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Detail<'a> {
            #[serde(rename = "type")]
            error_type: &'a str,
            reason: &'a str,
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("count", &self.0.len())?;
        map.serialize_entry(
            "details",
            &SerializeMapIter(|| {
                self.0.iter().map(|(uid, e)| {
                    (
                        uid,
                        Detail {
                            error_type: e.error_type,
                            reason: &e.reason,
                        },
                    )
                })
            }),
        )?;
        map.end()
    }
}

/// A sequence serialized from an iterator, without collecting it first.
struct SerializeIter<F>(F);

impl<F, I> Serialize for SerializeIter<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// A map serialized from an iterator of pairs, without collecting it first.
struct SerializeMapIter<F>(F);

impl<F, I, K, V> Serialize for SerializeMapIter<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (K, V)>,
    K: Serialize,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map((self.0)())
    }
}

/// Users keyed by username; `profile_uid` only when asked for and present.
pub fn users(views: &[UserView]) -> Value {
    let mut body = Map::new();
    for view in views {
        let user = &view.user;
        let mut entry = json!({
            "username": user.username,
            "roles": user.roles,
            "full_name": user.full_name,
            "email": user.email,
            "metadata": user.metadata,
            "enabled": user.enabled,
        });
        if let (Some(uid), Value::Object(map)) = (&view.profile_uid, &mut entry) {
            map.insert("profile_uid".into(), uid.clone().into());
        }
        body.insert(user.username.clone(), entry);
    }
    Value::Object(body)
}

/// Roles keyed by name.
pub fn roles(roles: &[RoleRecord]) -> Value {
    let mut body = Map::new();
    for role in roles {
        let mut entry = Map::new();
        entry.insert("cluster".into(), role.cluster.clone().into());
        if !role.profile_write_applications.is_empty()
            || !role.application_manage_applications.is_empty()
        {
            entry.insert(
                "global".into(),
                json!({
                    "application": {"manage": {"applications": role.application_manage_applications}},
                    "profile": {"write": {"applications": role.profile_write_applications}},
                }),
            );
        }
        entry.insert("indices".into(), role.indices.clone().into());
        entry.insert("applications".into(), role.applications.clone().into());
        entry.insert("run_as".into(), role.run_as.clone().into());
        entry.insert("metadata".into(), Value::Object(role.metadata.clone()));
        entry.insert("transient_metadata".into(), json!({"enabled": true}));
        if let Some(description) = &role.description {
            entry.insert("description".into(), description.clone().into());
        }
        body.insert(role.name.clone(), Value::Object(entry));
    }
    Value::Object(body)
}

/// The `_authenticate` response (SPEC-security §5).
pub fn authenticate(user: &AuthenticatedUser) -> Value {
    let realm = json!({"name": user.realm.name, "type": user.realm.realm_type});
    json!({
        "username": user.username,
        "roles": user.roles,
        "full_name": user.full_name,
        "email": user.email,
        "metadata": user.metadata,
        "enabled": user.enabled(),
        "authentication_realm": realm,
        "lookup_realm": realm,
        "authentication_type": user.authentication_type.as_str(),
    })
}

/// A token endpoint answer (SPEC-security §4.1), keys in Elasticsearch's order.
pub fn issued_token(issued: &crate::engine::tokens::IssuedToken) -> Value {
    let mut body = Map::new();
    body.insert("access_token".into(), issued.access_token.expose().into());
    body.insert("type".into(), issued.token_type().into());
    body.insert("expires_in".into(), issued.expires_in.into());
    if let Some(refresh) = &issued.refresh_token {
        body.insert("refresh_token".into(), refresh.expose().into());
    }
    if let Some(scope) = issued.scope {
        body.insert("scope".into(), scope.into());
    }
    body.insert(
        "authentication".into(),
        authenticate(&issued.authentication),
    );
    Value::Object(body)
}

/// Suggest's answer (SPEC §8.4): hits carry only uid, user, labels and data.
pub fn suggest(result: &crate::engine::suggest::SuggestResult) -> Value {
    let hits: Vec<Value> = result
        .profiles
        .iter()
        .map(|p| {
            let full = profile(p);
            json!({"uid": full["uid"], "user": full["user"], "labels": full["labels"], "data": full["data"]})
        })
        .collect();
    json!({
        "took": result.took,
        "total": {"value": result.total, "relation": result.total_relation()},
        "profiles": hits,
    })
}

/// The invalidate-token answer (Elasticsearch never reports per-token errors here).
pub fn invalidation(result: &crate::engine::tokens::InvalidationResult) -> Value {
    json!({
        "invalidated_tokens": result.invalidated,
        "previously_invalidated_tokens": result.previously_invalidated,
        "error_count": result.error_count(),
    })
}
