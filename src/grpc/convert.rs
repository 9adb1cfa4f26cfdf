//! Conversions between protobuf messages and engine types, and errors to `tonic::Status`.

use crate::engine::profiles::Profile;
use crate::engine::users::UserView;
use crate::error::Error;
use crate::model::{JsonObject, RoleRecord};
use crate::pb;
use prost_types::value::Kind;
use std::collections::HashMap;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every error this service returns.
const ERROR_DOMAIN: &str = "userprofiles";

/// Renders an engine error as a gRPC status with google.rpc details: ErrorInfo whose reason is
/// the Elasticsearch error type, and BadRequest field violations for validation failures.
pub fn status(error: &Error) -> Status {
    error.log_server_side();
    let mut details = ErrorDetails::new();
    let mut metadata = HashMap::new();
    metadata.insert("http_status".to_owned(), error.http_status().to_string());
    if let Error::Unauthenticated { challenge, .. } = error {
        metadata.insert(
            "www_authenticate".to_owned(),
            challenge.header_values().join(", "),
        );
    }
    details.set_error_info(error.es_type(), ERROR_DOMAIN, metadata);
    for violation in error.violations() {
        details.add_bad_request_violation(violation.field, violation.message.clone());
    }
    Status::with_error_details(error.grpc_code(), error.reason(), details)
}

/// JSON to protobuf `Value`.
pub fn to_pb_value(value: &serde_json::Value) -> prost_types::Value {
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object to protobuf `Struct`.
pub fn to_struct(map: &JsonObject) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), to_pb_value(v)))
            .collect(),
    }
}

/// Protobuf `Value` to JSON. Whole numbers come back as integers, so values written through
/// gRPC read back the same through the JSON gateway. A `Value` with no kind set, or a number
/// JSON cannot hold (NaN, ±infinity), is invalid in protobuf's JSON mapping: refused, naming
/// its path, rather than stored as `null` (which would wipe data on merge).
fn from_pb_value(
    value: &prost_types::Value,
    field: &'static str,
    path: &mut String,
) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    let invalid = |path: &str, what: &str| Error::validation(field, format!("[{path}] {what}"));
    Ok(match &value.kind {
        None => {
            return Err(invalid(
                path,
                "has no value: a google.protobuf.Value must set one of its kinds",
            ))
        }
        Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::NumberValue(n)) if !n.is_finite() => {
            return Err(invalid(path, "is not a finite number"))
        }
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                J::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(J::Number)
                    .ok_or_else(|| invalid(path, "is not a finite number"))?
            }
        }
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            let mut items = Vec::with_capacity(list.values.len());
            for (index, item) in list.values.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                items.push(from_pb_value(item, field, path)?);
                path.truncate(len);
            }
            J::Array(items)
        }
        Some(Kind::StructValue(s)) => J::Object(struct_fields(s, field, path)?),
    })
}

fn struct_fields(
    value: &prost_types::Struct,
    field: &'static str,
    path: &mut String,
) -> Result<JsonObject, Error> {
    let mut keys: Vec<&String> = value.fields.keys().collect();
    keys.sort();
    let mut object = JsonObject::new();
    for key in keys {
        let len = path.len();
        path.push('.');
        path.push_str(key);
        object.insert(key.clone(), from_pb_value(&value.fields[key], field, path)?);
        path.truncate(len);
    }
    Ok(object)
}

/// Protobuf `Struct` (the request field `field`) to a JSON object, keys sorted (protobuf maps
/// carry no order).
pub fn from_struct(value: &prost_types::Struct, field: &'static str) -> Result<JsonObject, Error> {
    struct_fields(value, field, &mut field.to_owned())
}

/// An optional `Struct` field as an optional JSON object.
pub fn optional_object(
    value: Option<&prost_types::Struct>,
    field: &'static str,
) -> Result<Option<JsonObject>, Error> {
    value.map(|s| from_struct(s, field)).transpose()
}

/// Per-uid failures, present only when there are some.
pub fn profile_errors(
    errors: std::collections::BTreeMap<String, crate::engine::profiles::ProfileError>,
) -> Option<pb::ProfileErrors> {
    (!errors.is_empty()).then(|| pb::ProfileErrors {
        count: errors.len() as i32,
        details: errors
            .into_iter()
            .map(|(uid, e)| {
                (
                    uid,
                    pb::ErrorCause {
                        r#type: e.error_type.to_owned(),
                        reason: e.reason,
                    },
                )
            })
            .collect(),
    })
}

/// A suggest hit: uid, user, labels and data only.
pub fn suggested_profile(profile: Profile) -> pb::SuggestedProfile {
    let full = self::profile(profile);
    pb::SuggestedProfile {
        uid: full.uid,
        user: full.user,
        labels: full.labels,
        data: full.data,
    }
}

/// Engine profile to protobuf.
pub fn profile(profile: Profile) -> pb::Profile {
    let doc = profile.doc;
    pb::Profile {
        uid: doc.uid,
        enabled: doc.enabled,
        last_synchronized: doc.last_synchronized,
        user: Some(pb::ProfileUser {
            username: doc.user.username,
            roles: doc.user.roles,
            realm_name: doc.user.realm.name,
            realm_domain: None,
            email: doc.user.email,
            full_name: doc.user.full_name,
        }),
        labels: Some(to_struct(&doc.labels)),
        data: Some(to_struct(&doc.application_data)),
        doc: Some(pb::DocVersion {
            primary_term: profile.primary_term,
            seq_no: profile.seq_no,
        }),
    }
}

/// Engine user view to protobuf (never the password hash).
pub fn user(view: UserView) -> pb::User {
    let user = view.user;
    pb::User {
        username: user.username,
        roles: user.roles,
        full_name: user.full_name,
        email: user.email,
        metadata: Some(to_struct(&user.metadata)),
        enabled: user.enabled,
        profile_uid: view.profile_uid,
    }
}

/// An authenticated user as `_authenticate` describes it.
pub fn authentication(user: crate::auth::AuthenticatedUser) -> pb::AuthenticateResponse {
    let enabled = user.enabled();
    let authentication_type = user.authentication_type.as_str().to_owned();
    let identity = user.identity;
    let realm = pb::RealmRef {
        name: identity.realm.name,
        r#type: identity.realm.realm_type,
    };
    pb::AuthenticateResponse {
        username: identity.username,
        roles: identity.roles,
        full_name: identity.full_name,
        email: identity.email,
        metadata: Some(to_struct(&identity.metadata)),
        enabled,
        authentication_realm: Some(realm.clone()),
        lookup_realm: Some(realm),
        authentication_type,
    }
}

/// Engine role to protobuf.
pub fn role(role: RoleRecord) -> pb::Role {
    let structs = |values: &[serde_json::Value]| {
        values
            .iter()
            .map(|v| match v {
                serde_json::Value::Object(map) => to_struct(map),
                _ => prost_types::Struct::default(),
            })
            .collect()
    };
    pb::Role {
        indices: structs(&role.indices),
        applications: structs(&role.applications),
        name: role.name,
        cluster: role.cluster,
        global: Some(pb::GlobalPrivileges {
            profile_write_applications: role.profile_write_applications,
            application_manage_applications: role.application_manage_applications,
        }),
        run_as: role.run_as,
        metadata: Some(to_struct(&role.metadata)),
        description: role.description,
    }
}

/// Protobuf role to the engine's record.
pub fn role_record(role: pb::Role) -> Result<RoleRecord, Error> {
    let objects = |structs: &[prost_types::Struct], field| {
        structs
            .iter()
            .map(|s| from_struct(s, field).map(serde_json::Value::Object))
            .collect::<Result<Vec<_>, Error>>()
    };
    let global = role.global.unwrap_or_default();
    Ok(RoleRecord {
        name: role.name,
        cluster: role.cluster,
        profile_write_applications: global.profile_write_applications,
        application_manage_applications: global.application_manage_applications,
        indices: objects(&role.indices, "indices")?,
        applications: objects(&role.applications, "applications")?,
        run_as: role.run_as,
        metadata: optional_object(role.metadata.as_ref(), "metadata")?.unwrap_or_default(),
        description: role.description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_a_round_trip_through_struct() {
        let original = json!({"a": {"b": [1, 2.5, "x", null, true]}, "n": -3});
        let map = original.as_object().unwrap();
        assert_eq!(
            serde_json::Value::Object(from_struct(&to_struct(map), "data").unwrap()),
            original
        );
    }

    #[test]
    fn validation_errors_carry_field_violations_and_the_elasticsearch_type() {
        let error = Error::validation(
            "username",
            "[username] is required for grant_type [password]",
        );
        let status = status(&error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().unwrap().reason,
            "action_request_validation_exception"
        );
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            "username"
        );
    }
}
