//! Strategies for property tests over JSON: arbitrary values and objects, bounded in depth and
//! width so a case stays small.

use crate::model::JsonObject;
use proptest::prelude::*;
use serde_json::Value;

/// Keys mixing letters, dots, stars and non-ASCII, so paths and patterns collide often.
pub fn key() -> impl Strategy<Value = String> {
    "[ab.*é_]{0,4}"
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Quarters print and parse exactly, whatever the float formatting.
        (-4000i32..4000).prop_map(|q| Value::from(f64::from(q) / 4.0)),
        "\\PC{0,6}".prop_map(Value::String),
    ]
}

/// Any JSON value nesting up to `depth` containers.
pub fn value(depth: u32) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(depth, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Any JSON object whose values nest up to `depth` containers.
pub fn object(depth: u32) -> impl Strategy<Value = JsonObject> {
    prop::collection::vec((key(), value(depth)), 0..6)
        .prop_map(|entries| entries.into_iter().collect())
}
