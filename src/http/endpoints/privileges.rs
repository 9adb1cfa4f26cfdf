//! Application privileges (`/_security/privilege`) and the has-privileges checks.

use crate::auth::has_privileges::{ApplicationCheck, IndexCheck, PrivilegesToCheck};
use crate::auth::privileges::CLUSTER_PRIVILEGE_NAMES;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::body::{token_name, unknown_field, unsupported_type, Field};
use crate::http::call::{Call, Reply};
use crate::http::json;
use crate::model::ApplicationPrivilegeRecord;
use serde_json::{json, Map, Value};

/// `PUT|POST /_security/privilege`: `{app: {name: {actions, metadata}}}`.
pub(crate) async fn put(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    const PARSER: &str = "application-privilege";
    let mut privileges = Vec::new();
    for application in call.body_fields(PARSER).await? {
        let Value::Object(by_name) = &application.value else {
            return Err(Error::Parse(format!(
                "expected the value for {} to be an object, but found {} instead",
                application.name,
                token_name(&application.value)
            )));
        };
        for (name, body) in by_name {
            let Value::Object(fields) = body else {
                return Err(Error::Parse(format!(
                    "expected the value for {} to be an object, but found {} instead",
                    application.name,
                    token_name(body)
                )));
            };
            privileges.push(parse_privilege(&application, name, fields)?);
        }
    }
    call.check_params(&["refresh"])?;
    call.refresh()?;
    let written = engine
        .put_application_privileges(caller, privileges)
        .await?;
    let mut body = Map::new();
    for (application, name, created) in written {
        let entry = body
            .entry(application)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(names) = entry {
            names.insert(name, json!({ "created": created }));
        }
    }
    Ok(Reply::ok(Value::Object(body)))
}

/// One privilege object, its `application` and `name` defaulting to (and required to equal)
/// the keys it sits under.
fn parse_privilege(
    application: &Field,
    name: &str,
    fields: &Map<String, Value>,
) -> Result<ApplicationPrivilegeRecord, Error> {
    const PARSER: &str = "application-privilege";
    let mut privilege = ApplicationPrivilegeRecord {
        application: application.name.clone(),
        name: name.to_owned(),
        actions: Vec::new(),
        metadata: Map::new(),
    };
    for (key, value) in fields {
        let field = Field {
            name: key.clone(),
            value: value.clone(),
            key_at: application.key_at.clone(),
            value_at: application.value_at.clone(),
        };
        match key.as_str() {
            "application" | "name" => {
                let Value::String(text) = value else {
                    return Err(unsupported_type(&field, PARSER, value));
                };
                if key == "application" {
                    privilege.application = text.clone();
                } else {
                    privilege.name = text.clone();
                }
            }
            "actions" => {
                let Value::Array(items) = value else {
                    return Err(unsupported_type(&field, PARSER, value));
                };
                for item in items {
                    let Value::String(action) = item else {
                        return Err(unsupported_type(&field, PARSER, item));
                    };
                    privilege.actions.push(action.clone());
                }
            }
            "metadata" => {
                let Value::Object(metadata) = value else {
                    return Err(unsupported_type(&field, PARSER, value));
                };
                privilege.metadata = metadata.clone();
            }
            "type" => {
                return Err(Error::IllegalState(
                    "Field type cannot be specified here".into(),
                ))
            }
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    if privilege.application != application.name {
        return Err(Error::IllegalArgument(format!(
            "privilege application [{}] in source does not match the provided application [{}]",
            privilege.application, application.name
        )));
    }
    if privilege.name != name {
        return Err(Error::IllegalArgument(format!(
            "privilege name [{}] in source does not match the provided name [{name}]",
            privilege.name
        )));
    }
    Ok(privilege)
}

/// `GET /_security/privilege[/{application}[/{name}]]`.
pub(crate) async fn get(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&[])?;
    let applications = comma_list(call, 0);
    let names = comma_list(call, 1);
    let privileges = engine
        .get_application_privileges(caller, &applications, &names)
        .await?;
    Ok(Reply::ok(json::application_privileges(&privileges)))
}

/// The path parameter at `index` as a comma list, empty items dropped (Elasticsearch's
/// `paramAsStringArray` for `{application}` and `{name}`).
fn comma_list(call: &Call, index: usize) -> Vec<String> {
    call.path_params
        .get(index)
        .map(|list| {
            list.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `DELETE /_security/privilege/{application}/{name}` (the engine answers 404 when none of
/// them existed).
pub(crate) async fn delete(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&["refresh"])?;
    call.refresh()?;
    let application = call.path_params.first().cloned().unwrap_or_default();
    let names = comma_list(call, 1);
    let found = engine
        .delete_application_privileges(caller, &application, &names)
        .await?;
    let by_name: Map<String, Value> = found
        .into_iter()
        .map(|(name, found)| (name, json!({ "found": found })))
        .collect();
    Ok(Reply::ok(json!({ application: by_name })))
}

/// `GET /_security/privilege/_builtin`: the predefined cluster and index privilege names.
pub(crate) async fn builtin(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&[])?;
    engine.authorize_builtin_privileges(caller)?;
    let mut cluster: Vec<&str> = CLUSTER_PRIVILEGE_NAMES.to_vec();
    cluster.sort_unstable();
    let mut index: Vec<&str> = crate::auth::has_privileges::INDEX_PRIVILEGE_NAMES.to_vec();
    index.sort_unstable();
    Ok(Reply::ok(json!({
        "cluster": cluster,
        "index": index,
        "remote_cluster": ["monitor_enrich", "monitor_stats"],
    })))
}

/// `GET|POST /_security/profile/_has_privileges`.
pub(crate) async fn profile_has_privileges(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    const PARSER: &str = "profile_has_privileges_request";
    let mut uids: Option<Vec<String>> = None;
    let mut privileges: Option<PrivilegesToCheck> = None;
    for field in call.body_fields(PARSER).await? {
        match field.name.as_str() {
            "uids" => uids = Some(strings(&field, PARSER, &field.value)?),
            "privileges" => privileges = Some(privileges_to_check(&field, PARSER)?),
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    call.check_params(&[])?;
    let (Some(uids), Some(privileges)) = (uids, privileges) else {
        return Err(Error::IllegalArgument("Required [uids, privileges]".into()));
    };
    let answer = engine
        .profile_has_privileges(caller, &uids, &privileges)
        .await?;
    let mut body = Map::new();
    body.insert(
        "has_privilege_uids".into(),
        answer.has_privilege_uids.into(),
    );
    if !answer.errors.is_empty() {
        body.insert("errors".into(), json::profile_errors(&answer.errors));
    }
    Ok(Reply::ok(Value::Object(body)))
}

/// `GET|POST /_security/user[/{username}]/_has_privileges`: the caller's own privileges.
pub(crate) async fn user_has_privileges(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    const PARSER: &str = "has_privileges_request";
    let fields = call.body_fields(PARSER).await?;
    call.check_params(&[])?;
    let (key_at, value_at) = fields
        .first()
        .map(|f| (f.key_at.clone(), f.value_at.clone()))
        .unwrap_or_default();
    let body = Field {
        name: "privileges".into(),
        value: Value::Object(fields.into_iter().map(|f| (f.name, f.value)).collect()),
        key_at,
        value_at,
    };
    let request = privileges_to_check(&body, PARSER)?;
    let username = call.path_params.first().map(String::as_str);
    let answer = engine
        .user_has_privileges(caller, username, &request)
        .await?;
    let result = answer.result;
    let flags = |granted: &[(String, bool)]| -> Value {
        Value::Object(
            granted
                .iter()
                .map(|(privilege, yes)| (privilege.clone(), Value::Bool(*yes)))
                .collect(),
        )
    };
    let index: Map<String, Value> = result
        .index
        .iter()
        .map(|(index, granted)| (index.clone(), flags(granted)))
        .collect();
    let application: Map<String, Value> = result
        .application
        .iter()
        .map(|(application, resources)| {
            (
                application.clone(),
                Value::Object(
                    resources
                        .iter()
                        .map(|(resource, granted)| (resource.clone(), flags(granted)))
                        .collect(),
                ),
            )
        })
        .collect();
    Ok(Reply::ok(json!({
        "username": answer.username,
        "has_all_requested": result.has_all_requested,
        "cluster": flags(&result.cluster),
        "index": index,
        "application": application,
    })))
}

/// `GET /_security/user/_privileges`: everything the caller's roles grant.
pub(crate) async fn user_privileges(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    call.bare(&[])?;
    let privileges = engine.user_privileges(caller).await?;
    let mut global = Vec::new();
    if !privileges.application_manage.is_empty() {
        global.push(
            json!({"application": {"manage": {"applications": privileges.application_manage}}}),
        );
    }
    if !privileges.profile_write.is_empty() {
        global.push(json!({"profile": {"write": {"applications": privileges.profile_write}}}));
    }
    Ok(Reply::ok(json!({
        "cluster": privileges.cluster,
        "global": global,
        "indices": privileges.indices,
        "applications": privileges.applications,
        "run_as": privileges.run_as,
    })))
}

fn strings(field: &Field, parser: &str, value: &Value) -> Result<Vec<String>, Error> {
    let Value::Array(items) = value else {
        return Err(unsupported_type(field, parser, value));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(text.clone()),
            other => Err(unsupported_type(field, parser, other)),
        })
        .collect()
}

/// The objects of an array-of-objects field.
fn entry_objects<'a>(
    field: &Field,
    parser: &str,
    value: &'a Value,
) -> Result<Vec<&'a Map<String, Value>>, Error> {
    let Value::Array(entries) = value else {
        return Err(unsupported_type(field, parser, value));
    };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Object(fields) => Ok(fields),
            other => Err(unsupported_type(field, parser, other)),
        })
        .collect()
}

/// Elasticsearch's message for a bad `indices` or `application` entry of `parser`'s body.
fn entry_error(kind: &str, parser: &str, detail: String) -> Error {
    Error::Parse(format!(
        "failed to parse {kind} privileges for role [{parser}]. {detail}"
    ))
}

fn require_fields(
    kind: &str,
    parser: &str,
    fields: &Map<String, Value>,
    required: &[&str],
) -> Result<(), Error> {
    match required.iter().find(|name| !fields.contains_key(**name)) {
        Some(missing) => Err(entry_error(
            kind,
            parser,
            format!("missing required [{missing}] field"),
        )),
        None => Ok(()),
    }
}

/// `{"cluster": [...], "index": [{names, privileges, allow_restricted_indices}], "application":
/// [{application, privileges, resources}]}`, as Elasticsearch's `parsePrivilegesToCheck`.
fn privileges_to_check(field: &Field, parser: &str) -> Result<PrivilegesToCheck, Error> {
    let Value::Object(categories) = &field.value else {
        return Err(unsupported_type(field, parser, &field.value));
    };
    let mut request = PrivilegesToCheck::default();
    for (category, value) in categories {
        let inner = Field {
            name: category.clone(),
            value: value.clone(),
            key_at: field.key_at.clone(),
            value_at: field.value_at.clone(),
        };
        match category.as_str() {
            "cluster" => request.cluster = strings(&inner, parser, value)?,
            "index" => {
                for entry in entry_objects(&inner, parser, value)? {
                    let mut check = IndexCheck {
                        names: Vec::new(),
                        privileges: Vec::new(),
                        allow_restricted_indices: false,
                    };
                    for (key, value) in entry {
                        match key.as_str() {
                            "names" => {
                                check.names = match value {
                                    Value::String(one) => vec![one.clone()],
                                    other => strings(&inner, parser, other)?,
                                }
                            }
                            "privileges" => check.privileges = strings(&inner, parser, value)?,
                            "allow_restricted_indices" => {
                                check.allow_restricted_indices = value
                                    .as_bool()
                                    .ok_or_else(|| unsupported_type(&inner, parser, value))?
                            }
                            other => {
                                return Err(entry_error(
                                    "indices",
                                    parser,
                                    format!("unexpected field [{other}]"),
                                ))
                            }
                        }
                    }
                    require_fields("indices", parser, entry, &["names", "privileges"])?;
                    request.index.push(check);
                }
            }
            "application" => {
                for fields in entry_objects(&inner, parser, value)? {
                    let mut check = ApplicationCheck {
                        application: String::new(),
                        privileges: Vec::new(),
                        resources: Vec::new(),
                    };
                    for (key, value) in fields {
                        match key.as_str() {
                            "application" => {
                                check.application = value
                                    .as_str()
                                    .ok_or_else(|| unsupported_type(&inner, parser, value))?
                                    .to_owned()
                            }
                            "privileges" => check.privileges = strings(&inner, parser, value)?,
                            "resources" => check.resources = strings(&inner, parser, value)?,
                            other => {
                                return Err(entry_error(
                                    "application",
                                    parser,
                                    format!("unexpected field [{other}]"),
                                ))
                            }
                        }
                    }
                    require_fields("application", parser, fields, &["privileges", "resources"])?;
                    request.application.push(check);
                }
            }
            other => {
                return Err(Error::Parse(format!(
                    "failed to parse privileges check [{parser}]. unexpected field [{other}]"
                )))
            }
        }
    }
    Ok(request)
}
