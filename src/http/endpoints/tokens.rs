//! The token endpoints: create (every grant) and invalidate.

use crate::auth::password::Secret;
use crate::engine::tokens::{CreateTokenRequest, InvalidateTokenRequest};
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::body::{string_field, unknown_field};
use crate::http::call::{Call, Reply};
use crate::http::json;

pub(crate) async fn create(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
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

pub(crate) async fn invalidate(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
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
