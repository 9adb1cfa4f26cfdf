//! The native-realm user endpoints, and authenticate (who am I).

use crate::auth::password::Secret;
use crate::engine::users::PutUserRequest;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::call::{expected_type, object, optional_string, string_list, Call, Reply};
use crate::http::json;
use crate::model::JsonObject;
use serde_json::json;

pub(crate) async fn authenticate(_: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&[])?;
    Ok(Reply::ok(json::authenticate(&caller.user)))
}

pub(crate) async fn get(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&["with_profile_uid"])?;
    let with_profile_uid = call.bool_param("with_profile_uid")?;
    let users = engine
        .get_users(caller, &call.path_list(), with_profile_uid)
        .await?;
    Ok(Reply::ok(json::users(&users)))
}

pub(crate) async fn put(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    let username = call.path_param().to_owned();
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

pub(crate) async fn delete(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&["refresh"])?;
    call.refresh()?;
    engine.delete_user(caller, call.path_param()).await?;
    Ok(Reply::ok(json!({ "found": true })))
}

pub(crate) async fn change_password(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
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

pub(crate) async fn enable(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    set_enabled(engine, caller, call, true).await
}

pub(crate) async fn disable(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    set_enabled(engine, caller, call, false).await
}

async fn set_enabled(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
    enabled: bool,
) -> Result<Reply, Error> {
    call.bare(&["refresh"])?;
    call.refresh()?;
    engine
        .set_user_enabled(caller, call.path_param(), enabled)
        .await?;
    Ok(Reply::ok(json!({})))
}
