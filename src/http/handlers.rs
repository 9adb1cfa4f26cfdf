//! One function per endpoint: parse the body and parameters as Elasticsearch's REST handler
//! does, call the engine once, render the answer.

use super::body::{
    object_fields_off_worker, string_field, token_name, unknown_field, unsupported_type, Field,
};
use super::{json, Call, Endpoint, Reply};
use crate::auth::password::Secret;
use crate::engine::data_filter::DataFilter;
use crate::engine::profile_data::UpdateDataRequest;
use crate::engine::profiles::ActivateRequest;
use crate::engine::suggest::{SuggestHint, SuggestRequest};
use crate::engine::tokens::{CreateTokenRequest, InvalidateTokenRequest};
use crate::engine::users::PutUserRequest;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::model::{JsonObject, RoleRecord};
use serde_json::{json, Value};

/// Parameters every endpoint accepts (they shape the response, not the operation).
const RESPONSE_PARAMS: &[&str] = &["pretty", "human", "error_trace", "filter_path", "format"];

pub(super) async fn handle(engine: &Engine, caller: &Caller, call: Call) -> Result<Reply, Error> {
    let filter_path = call
        .param("filter_path")
        .map(|list| DataFilter::from_comma_list(list).compile(engine.limits().max_data_patterns))
        .transpose()?;
    let mut reply = match call.endpoint {
        Endpoint::Info => info(&call),
        Endpoint::Activate => activate(engine, caller, &call).await,
        Endpoint::GetProfiles => get_profiles(engine, caller, &call).await,
        Endpoint::Authenticate => {
            call.no_body()?;
            call.check_params(&[])?;
            Ok(Reply::ok(json::authenticate(&caller.user)))
        }
        Endpoint::GetUsers => get_users(engine, caller, &call).await,
        Endpoint::PutUser => put_user(engine, caller, &call).await,
        Endpoint::DeleteUser => {
            call.no_body()?;
            call.check_params(&["refresh"])?;
            call.refresh()?;
            engine.delete_user(caller, &call.path_params[0]).await?;
            Ok(Reply::ok(json!({ "found": true })))
        }
        Endpoint::ChangePassword => change_password(engine, caller, &call).await,
        Endpoint::EnableUser | Endpoint::DisableUser => {
            call.no_body()?;
            call.check_params(&["refresh"])?;
            call.refresh()?;
            let enabled = call.endpoint == Endpoint::EnableUser;
            engine
                .set_user_enabled(caller, &call.path_params[0], enabled)
                .await?;
            Ok(Reply::ok(json!({})))
        }
        Endpoint::GetRoles => {
            call.no_body()?;
            call.check_params(&[])?;
            let names = call.path_list();
            let roles = engine.get_roles(caller, &names).await?;
            Ok(Reply::ok(json::roles(&roles)))
        }
        Endpoint::PutRole => put_role(engine, caller, &call).await,
        Endpoint::CreateToken => create_token(engine, caller, &call).await,
        Endpoint::InvalidateToken => invalidate_token(engine, caller, &call).await,
        Endpoint::UpdateProfileData => update_profile_data(engine, caller, &call).await,
        Endpoint::EnableProfile | Endpoint::DisableProfile => {
            call.no_body()?;
            call.check_params(&["refresh"])?;
            call.refresh()?;
            let enabled = call.endpoint == Endpoint::EnableProfile;
            engine
                .set_profile_enabled(caller, &call.path_params[0], enabled)
                .await?;
            Ok(Reply::ok(json!({ "acknowledged": true })))
        }
        Endpoint::SuggestProfiles => suggest_profiles(engine, caller, &call).await,
        Endpoint::DeleteRole => {
            call.no_body()?;
            call.check_params(&["refresh"])?;
            call.refresh()?;
            engine.delete_role(caller, &call.path_params[0]).await?;
            Ok(Reply::ok(json!({ "found": true })))
        }
    }?;
    if let (Some(filter), true) = (filter_path, reply.status.is_success()) {
        if let Value::Object(map) = &reply.body {
            reply.body = Value::Object(filter.apply(map));
        }
    }
    Ok(reply)
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Elasticsearch rejects any query parameter the endpoint did not consume.
    fn check_params(&self, allowed: &[&str]) -> Result<(), Error> {
        let mut unknown: Vec<&str> = Vec::new();
        for (key, _) in &self.query {
            if !allowed.contains(&key.as_str())
                && !RESPONSE_PARAMS.contains(&key.as_str())
                && !unknown.contains(&key.as_str())
            {
                unknown.push(key);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let noun = if unknown.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        let listed: Vec<String> = unknown.iter().map(|k| format!("[{k}]")).collect();
        Err(Error::IllegalArgument(format!(
            "request [{}] contains unrecognized {noun}: {}",
            self.path,
            listed.join(", ")
        )))
    }

    /// The body's top-level fields, parsed by the strict object parser named `parser`.
    async fn body_fields(&self, parser: &'static str) -> Result<Vec<Field>, Error> {
        let body = self
            .body
            .clone()
            .ok_or_else(|| Error::Parse("request body is required".into()))?;
        object_fields_off_worker(body, parser).await
    }

    fn no_body(&self) -> Result<(), Error> {
        match self.body {
            Some(_) => Err(Error::IllegalArgument(format!(
                "request [{} {}] does not support having a body",
                self.method, self.path
            ))),
            None => Ok(()),
        }
    }

    /// Validates `refresh`. Every write here is visible once acknowledged, so every valid value
    /// behaves like `wait_for`.
    fn refresh(&self) -> Result<(), Error> {
        match self.param("refresh") {
            None | Some("true" | "false" | "wait_for" | "") => Ok(()),
            Some(other) => Err(Error::IllegalArgument(format!(
                "Unknown value for refresh: [{other}]."
            ))),
        }
    }

    /// A comma-separated path parameter split as Java's `String.split(",")` does: inner empty
    /// items kept, trailing empty items dropped, nothing but commas giving an empty list.
    fn path_list(&self) -> Vec<String> {
        let Some(raw) = self.path_params.first() else {
            return Vec::new();
        };
        let mut items: Vec<String> = raw.split(',').map(str::to_owned).collect();
        while items.last().is_some_and(|s| s.is_empty()) {
            items.pop();
        }
        items
    }

    fn bool_param(&self, name: &str) -> Result<bool, Error> {
        match self.param(name) {
            None => Ok(false),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(Error::IllegalArgument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }
}

fn info(call: &Call) -> Result<Reply, Error> {
    call.no_body()?;
    call.check_params(&[])?;
    Ok(Reply::ok(json!({
        "name": "userprofiles",
        "cluster_name": "userprofiles",
        "cluster_uuid": "_na_",
        "version": {
            "number": "8.17.0",
            "build_flavor": "default",
            "build_type": "userprofiles",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })))
}

async fn activate(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    const PARSER: &str = "activate_profile_request";
    let mut request = ActivateRequest::default();
    for field in call.body_fields(PARSER).await? {
        let value = || string_field(&field, PARSER);
        match field.name.as_str() {
            "grant_type" => request.grant_type = Some(value()?),
            "username" => request.username = Some(value()?),
            "password" => request.password = Some(Secret::new(value()?)),
            "access_token" => request.access_token = Some(Secret::new(value()?)),
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    call.check_params(&[])?;
    let profile = engine.activate(caller, request).await?;
    Ok(Reply::ok(json::profile(&profile)))
}

async fn get_profiles(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.no_body()?;
    call.check_params(&["data"])?;
    let filter = call
        .param("data")
        .map(DataFilter::from_comma_list)
        .unwrap_or_default();
    let result = engine
        .get_profiles(caller, &call.path_list(), &filter)
        .await?;
    Ok(Reply::ok(json::get_profiles(&result)))
}

async fn get_users(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.no_body()?;
    call.check_params(&["with_profile_uid"])?;
    let with_profile_uid = call.bool_param("with_profile_uid")?;
    let names = call.path_list();
    let users = engine.get_users(caller, &names, with_profile_uid).await?;
    Ok(Reply::ok(json::users(&users)))
}

/// The security parsers' type error (a `parse_exception`, unlike ObjectParser's).
fn expected_type(field: &Field, expected: &str) -> Error {
    Error::Parse(format!(
        "expected field [{}] to be of type {expected}, but found [{}] instead",
        field.name,
        token_name(&field.value)
    ))
}

fn optional_string(field: &Field) -> Result<Option<String>, Error> {
    match &field.value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Null => Ok(None),
        _ => Err(expected_type(field, "string")),
    }
}

fn object(field: &Field) -> Result<JsonObject, Error> {
    match &field.value {
        Value::Object(map) => Ok(map.clone()),
        _ => Err(expected_type(field, "object")),
    }
}

/// A list of strings, also accepted as one comma-separated string (user roles).
fn string_list(field: &Field, allow_comma_string: bool) -> Result<Vec<String>, Error> {
    match &field.value {
        Value::String(s) if allow_comma_string => Ok(s
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| expected_type(field, "string"))
            })
            .collect(),
        _ => Err(expected_type(field, "array")),
    }
}

async fn put_user(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    let username = call.path_params[0].clone();
    let mut request = PutUserRequest {
        username: username.clone(),
        ..PutUserRequest::default()
    };
    for field in call.body_fields("put_user_request").await? {
        match field.name.as_str() {
            "password" => {
                request.password = Some(Secret::new(
                    optional_string(&field)?.ok_or_else(|| expected_type(&field, "string"))?,
                ))
            }
            "password_hash" => request.password_hash = optional_string(&field)?,
            "roles" => request.roles = Some(string_list(&field, true)?),
            "full_name" => request.full_name = optional_string(&field)?,
            "email" => request.email = optional_string(&field)?,
            "metadata" => {
                request.metadata = if field.value.is_null() {
                    JsonObject::new()
                } else {
                    object(&field)?
                }
            }
            "enabled" => {
                request.enabled = Some(
                    field
                        .value
                        .as_bool()
                        .ok_or_else(|| expected_type(&field, "boolean"))?,
                )
            }
            "username" => {
                let in_body = optional_string(&field)?.unwrap_or_default();
                if in_body != username {
                    return Err(Error::IllegalArgument(format!(
                        "[username] in source does not match the username provided [{username}]"
                    )));
                }
            }
            other => {
                return Err(Error::Parse(format!(
                    "failed to parse add user request. unexpected field [{other}]"
                )))
            }
        }
    }
    call.check_params(&["refresh"])?;
    call.refresh()?;
    let created = engine.put_user(caller, request).await?;
    Ok(Reply::ok(json!({ "created": created })))
}

async fn change_password(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    let (mut password, mut password_hash) = (None, None);
    for field in call.body_fields("change_password_request").await? {
        match field.name.as_str() {
            "password" => password = optional_string(&field)?.map(Secret::new),
            "password_hash" => password_hash = optional_string(&field)?,
            other => {
                return Err(Error::Parse(format!(
                    "failed to parse change password request. unexpected field [{other}]"
                )))
            }
        }
    }
    call.check_params(&["refresh"])?;
    call.refresh()?;
    let username = call.path_params.first().map(String::as_str);
    engine
        .change_password(caller, username, password, password_hash)
        .await?;
    Ok(Reply::ok(json!({})))
}

/// Reads `global`: `{"profile": {"write": {"applications": [...]}}}` (and the `application`
/// category, accepted for compatibility).
fn profile_write_applications(field: &Field) -> Result<Vec<String>, Error> {
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
    let mut applications = Vec::new();
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
            if category == "profile" {
                for app in apps {
                    let app = app.as_str().ok_or_else(|| {
                        privilege_error(format!(
                            "expected [VALUE_STRING] but found [{}] instead",
                            token_name(app)
                        ))
                    })?;
                    applications.push(app.to_owned());
                }
            }
        }
    }
    Ok(applications)
}

async fn put_role(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    let name = call.path_params[0].clone();
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
            "global" => role.profile_write_applications = profile_write_applications(&field)?,
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

async fn create_token(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    const PARSER: &str = "token_request";
    let mut request = CreateTokenRequest::default();
    for field in call.body_fields(PARSER).await? {
        let value = || string_field(&field, PARSER);
        match field.name.as_str() {
            "grant_type" => request.grant_type = Some(value()?),
            "username" => request.username = Some(value()?),
            "password" => request.password = Some(Secret::new(value()?)),
            "refresh_token" => request.refresh_token = Some(Secret::new(value()?)),
            "kerberos_ticket" => request.kerberos_ticket = Some(Secret::new(value()?)),
            "scope" => request.scope = Some(value()?),
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    call.check_params(&[])?;
    let issued = engine.create_token(caller, request).await?;
    Ok(Reply::ok(json::issued_token(&issued)))
}

async fn invalidate_token(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    const PARSER: &str = "invalidate_token";
    let mut request = InvalidateTokenRequest::default();
    for field in call.body_fields(PARSER).await? {
        let value = || string_field(&field, PARSER);
        match field.name.as_str() {
            "token" => request.token = Some(Secret::new(value()?)),
            "refresh_token" => request.refresh_token = Some(Secret::new(value()?)),
            "realm_name" => request.realm_name = Some(value()?),
            "username" => request.username = Some(value()?),
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    call.check_params(&[])?;
    let result = engine.invalidate_tokens(caller, request).await?;
    Ok(Reply::ok(json::invalidation(&result)))
}

impl Call {
    /// A `long` query parameter; negative values are kept (the engine treats them as unset).
    fn long_param(&self, name: &str) -> Result<Option<i64>, Error> {
        self.param(name)
            .map(|value| {
                value.parse::<i64>().map_err(|_| {
                    Error::IllegalArgument(format!(
                        "Failed to parse long parameter [{name}] with value [{value}]"
                    ))
                })
            })
            .transpose()
    }
}

async fn update_profile_data(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    const PARSER: &str = "update_profile_data_request_payload";
    let mut request = UpdateDataRequest {
        uid: call.path_params[0].clone(),
        ..UpdateDataRequest::default()
    };
    for field in call.body_fields(PARSER).await? {
        let object = || match &field.value {
            Value::Object(map) => Ok(map.clone()),
            other => Err(unsupported_type(&field, PARSER, other)),
        };
        match field.name.as_str() {
            "labels" => request.labels = Some(object()?),
            "data" => request.data = Some(object()?),
            _ => return Err(unknown_field(&field, PARSER)),
        }
    }
    call.check_params(&["if_seq_no", "if_primary_term", "refresh"])?;
    request.if_seq_no = call.long_param("if_seq_no")?;
    request.if_primary_term = call.long_param("if_primary_term")?;
    call.refresh()?;
    engine.update_profile_data(caller, request).await?;
    Ok(Reply::ok(json!({ "acknowledged": true })))
}

/// Parses suggest's `hint`: `{"uids": [..], "labels": {"<key>": "v" | ["v", ..]}}`.
fn suggest_hint(field: &Field) -> Result<SuggestHint, Error> {
    const PARSER: &str = "suggest_profile_request_payload_hint";
    let Value::Object(map) = &field.value else {
        return Err(unsupported_type(
            field,
            "suggest_profile_request_payload",
            &field.value,
        ));
    };
    let mut hint = SuggestHint::default();
    for (key, value) in map {
        let inner = Field {
            name: key.clone(),
            value: value.clone(),
            key_at: field.value_at.clone(),
            value_at: field.value_at.clone(),
        };
        match key.as_str() {
            "uids" => {
                let Value::Array(items) = value else {
                    return Err(unsupported_type(&inner, PARSER, value));
                };
                let uids = items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| unsupported_type(&inner, PARSER, item))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                hint.uids = Some(uids);
            }
            "labels" => {
                let Value::Object(labels) = value else {
                    return Err(unsupported_type(&inner, PARSER, value));
                };
                let mut pairs = Vec::new();
                for (label, values) in labels {
                    let values = match values {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .map(|item| {
                                item.as_str().map(str::to_owned).ok_or_else(|| {
                                    Error::Parse("[labels] hint supports either string value or list of strings".into())
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => {
                            return Err(Error::Parse(
                                "[labels] hint supports either string or list of strings as its value".into(),
                            ))
                        }
                    };
                    pairs.push((label.clone(), values));
                }
                hint.labels = Some(pairs);
            }
            _ => return Err(unknown_field(&inner, PARSER)),
        }
    }
    Ok(hint)
}

async fn suggest_profiles(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    const PARSER: &str = "suggest_profile_request_payload";
    let mut request = SuggestRequest::default();
    let mut body_data: Option<String> = None;
    if call.body.is_some() {
        for field in call.body_fields(PARSER).await? {
            match field.name.as_str() {
                "name" => request.name = string_field(&field, PARSER)?,
                "size" => {
                    request.size = Some(
                        match &field.value {
                            Value::Number(n) => n.as_i64(),
                            Value::String(s) => s.trim().parse().ok(),
                            _ => None,
                        }
                        .ok_or_else(|| unsupported_type(&field, PARSER, &field.value))?,
                    );
                }
                "data" => {
                    body_data = Some(match &field.value {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|item| {
                                item.as_str()
                                    .map(str::to_owned)
                                    .ok_or_else(|| unsupported_type(&field, PARSER, item))
                            })
                            .collect::<Result<Vec<_>, _>>()?
                            .join(","),
                        other => return Err(unsupported_type(&field, PARSER, other)),
                    })
                }
                "hint" => request.hint = Some(suggest_hint(&field)?),
                _ => return Err(unknown_field(&field, PARSER)),
            }
        }
    }
    let query_data = call.param("data");
    if body_data.is_some() && query_data.is_some() {
        return Err(Error::IllegalArgument(
            "The [data] parameter must be specified in either request body or as query parameter, but not both".into(),
        ));
    }
    call.check_params(&["data"])?;
    if let Some(data) = body_data.as_deref().or(query_data) {
        request.data = DataFilter::from_comma_list(data);
    }
    let result = engine.suggest_profiles(caller, request).await?;
    Ok(Reply::ok(json::suggest(&result)))
}
