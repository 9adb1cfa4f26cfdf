//! The user-profile endpoints: activate, get, update data, enable/disable, suggest.

use crate::auth::password::Secret;
use crate::engine::data_filter::DataFilter;
use crate::engine::profile_data::UpdateDataRequest;
use crate::engine::profiles::ActivateRequest;
use crate::engine::suggest::{SuggestHint, SuggestRequest};
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::body::{object_field, string_field, unknown_field, unsupported_type, Field};
use crate::http::call::{Call, Reply};
use crate::http::json;
use serde_json::{json, Value};

pub(crate) async fn activate(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
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

pub(crate) async fn get(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&["data"])?;
    let filter = call
        .param("data")
        .map(DataFilter::from_comma_list)
        .unwrap_or_default();
    let result = engine
        .get_profiles(caller, &call.path_list(), &filter)
        .await?;
    Ok(Reply::profiles(result))
}

pub(crate) async fn update_data(
    engine: &Engine,
    caller: &Caller,
    call: &Call,
) -> Result<Reply, Error> {
    const PARSER: &str = "update_profile_data_request_payload";
    let mut request = UpdateDataRequest {
        uid: call.path_param().to_owned(),
        ..UpdateDataRequest::default()
    };
    for field in call.body_fields(PARSER).await? {
        let slot = match field.name.as_str() {
            "labels" => &mut request.labels,
            "data" => &mut request.data,
            _ => return Err(unknown_field(&field, PARSER)),
        };
        *slot = Some(object_field(field, PARSER)?);
    }
    call.check_params(&["if_seq_no", "if_primary_term", "refresh"])?;
    request.if_seq_no = call.long_param("if_seq_no")?;
    request.if_primary_term = call.long_param("if_primary_term")?;
    call.refresh()?;
    engine.update_profile_data(caller, request).await?;
    Ok(Reply::ok(json!({ "acknowledged": true })))
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
        .set_profile_enabled(caller, call.path_param(), enabled)
        .await?;
    Ok(Reply::ok(json!({ "acknowledged": true })))
}

pub(crate) async fn suggest(engine: &Engine, caller: &Caller, call: &Call) -> Result<Reply, Error> {
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
