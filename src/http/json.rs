//! Engine results rendered as Elasticsearch's JSON documents, keys in Elasticsearch's order.

use crate::auth::AuthenticatedUser;
use crate::engine::profiles::{GetProfilesResult, Profile};
use crate::engine::users::UserView;
use crate::model::RoleRecord;
use serde_json::{json, Map, Value};

/// A profile (SPEC §1.2): `email` and `full_name` are left out when absent.
pub fn profile(profile: &Profile) -> Value {
    let doc = &profile.doc;
    let mut user = Map::new();
    user.insert("username".into(), doc.user.username.clone().into());
    user.insert("roles".into(), doc.user.roles.clone().into());
    user.insert("realm_name".into(), doc.user.realm.name.clone().into());
    if let Some(email) = &doc.user.email {
        user.insert("email".into(), email.clone().into());
    }
    if let Some(full_name) = &doc.user.full_name {
        user.insert("full_name".into(), full_name.clone().into());
    }
    json!({
        "uid": doc.uid,
        "enabled": doc.enabled,
        "last_synchronized": doc.last_synchronized,
        "user": user,
        "labels": doc.labels,
        "data": doc.application_data,
        "_doc": { "_primary_term": profile.primary_term, "_seq_no": profile.seq_no },
    })
}

/// The get-profiles response: `errors` only when there are some.
pub fn get_profiles(result: &GetProfilesResult) -> Value {
    let mut body = Map::new();
    body.insert(
        "profiles".into(),
        result.profiles.iter().map(profile).collect(),
    );
    if !result.errors.is_empty() {
        let details: Map<String, Value> = result
            .errors
            .iter()
            .map(|(uid, e)| {
                (
                    uid.clone(),
                    json!({"type": e.error_type, "reason": e.reason}),
                )
            })
            .collect();
        body.insert(
            "errors".into(),
            json!({"count": result.errors.len(), "details": details}),
        );
    }
    Value::Object(body)
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
        if !role.profile_write_applications.is_empty() {
            entry.insert(
                "global".into(),
                json!({
                    "application": {"manage": {"applications": []}},
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
