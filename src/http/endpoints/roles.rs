//! The role endpoints: get, put (with its `global` privileges), delete.

use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::body::{token_name, Field};
use crate::http::call::{object, optional_string, string_list, Call, Reply};
use crate::http::json;
use crate::model::RoleRecord;
use serde_json::{json, Value};

pub(crate) async fn get(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&[])?;
    let roles = engine.get_roles(caller, &call.path_list()).await?;
    Ok(Reply::ok(json::roles(&roles)))
}

pub(crate) async fn delete(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&["refresh"])?;
    call.refresh()?;
    engine.delete_role(caller, call.path_param()).await?;
    Ok(Reply::ok(json!({ "found": true })))
}

/// Reads `global`: `{"profile": {"write": {"applications": [...]}}, "application": {"manage":
/// {"applications": [...]}}}`, as (profile write, application manage) patterns.
fn global_privileges(field: &Field) -> Result<(Vec<String>, Vec<String>), Error> {
    let privilege_error = |m: String| {
        Error::XContentParse(format!(
            "[{}] failed to parse privilege. {m}",
            field.value_at
        ))
    };
    let Value::Object(categories) = &field.value else {
        return Err(privilege_error(format!(
            "expected [START_OBJECT] but found [{}] instead",
            token_name(&field.value)
        )));
    };
    let mut profile_write = Vec::new();
    let mut application_manage = Vec::new();
    for (category, body) in categories {
        let expected_name = match category.as_str() {
            "profile" => "write",
            "application" => "manage",
            other => {
                return Err(privilege_error(format!(
                    "expected one of [application, profile] but found [{other}] instead"
                )))
            }
        };
        let Some(Value::Object(inner)) = Some(body) else {
            return Err(privilege_error(format!(
                "expected [START_OBJECT] but found [{}] instead",
                token_name(body)
            )));
        };
        for (name, value) in inner {
            if name != expected_name {
                return Err(privilege_error(format!(
                    "expected field name [{expected_name}] but found [{name}] instead"
                )));
            }
            let apps = value
                .get("applications")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    privilege_error(
                        "expected field name [applications] but found none instead".into(),
                    )
                })?;
            let patterns = if category == "profile" {
                &mut profile_write
            } else {
                &mut application_manage
            };
            for app in apps {
                let app = app.as_str().ok_or_else(|| {
                    privilege_error(format!(
                        "expected [VALUE_STRING] but found [{}] instead",
                        token_name(app)
                    ))
                })?;
                patterns.push(app.to_owned());
            }
        }
    }
    Ok((profile_write, application_manage))
}

pub(crate) async fn put(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    let name = call.path_param().to_owned();
    let mut role = RoleRecord {
        name: name.clone(),
        ..RoleRecord::default()
    };
    let unexpected = |field: &str| {
        Error::Parse(format!(
            "failed to parse role [{name}]. unexpected field [{field}]"
        ))
    };
    for field in call.body_fields("role").await? {
        match field.name.as_str() {
            "cluster" => role.cluster = string_list(&field, false)?,
            "indices" | "index" | "applications" | "application" => {
                let Value::Array(items) = &field.value else {
                    return Err(Error::Parse(format!(
                        "failed to parse role [{name}]. expected field [{}] value to be an array, but found [{}] instead",
                        field.name,
                        token_name(&field.value)
                    )));
                };
                if let Some(bad) = items.iter().find(|i| !i.is_object()) {
                    return Err(Error::Parse(format!(
                        "failed to parse role [{name}]. expected field [{}] value to be an array of objects, but found an array element of type [{}]",
                        field.name,
                        token_name(bad)
                    )));
                }
                if field.name.starts_with("ind") {
                    role.indices = items.clone();
                } else {
                    role.applications = items.clone();
                }
            }
            "global" => {
                (
                    role.profile_write_applications,
                    role.application_manage_applications,
                ) = global_privileges(&field)?;
            }
            "run_as" => role.run_as = string_list(&field, false)?,
            "metadata" => role.metadata = object(&field)?,
            "transient_metadata" => {
                object(&field)?;
            }
            "description" => role.description = optional_string(&field)?,
            other => return Err(unexpected(other)),
        }
    }
    call.check_params(&["refresh"])?;
    call.refresh()?;
    let created = engine.put_role(caller, role).await?;
    Ok(Reply::ok(json!({ "role": { "created": created } })))
}
