//! `GET /`: the node information clients read for their product check.

use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::http::call::{Call, Reply};
use serde_json::json;

pub(crate) async fn info(_: &Engine, _: &Caller, call: &Call) -> Result<Reply, Error> {
    call.bare(&[])?;
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
