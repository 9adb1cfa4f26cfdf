//! The clients users have, unmodified, against the real server: the official Elasticsearch
//! JavaScript client on the gateway and @grpc/grpc-js with proto-loader on the gRPC port
//! (`clients/node/`). They need Node.js and `npm ci --prefix clients/node`; without them these
//! tests say so loudly and pass, unless `REQUIRE_NODE_CLIENTS=1` (set by `.ci/run`), under
//! which a missing client is a failure.

use crate::helpers::*;
use std::path::{Path, PathBuf};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/node")
}

/// Whether Node.js and the installed client packages are there; panics under
/// `REQUIRE_NODE_CLIENTS=1` when they are not.
fn node_clients_available() -> bool {
    let node = std::process::Command::new("node").arg("--version").output();
    let installed = clients_dir()
        .join("node_modules/@elastic/elasticsearch")
        .is_dir()
        && clients_dir().join("node_modules/@grpc/grpc-js").is_dir();
    if node.is_ok_and(|o| o.status.success()) && installed {
        return true;
    }
    let required = std::env::var("REQUIRE_NODE_CLIENTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "REQUIRE_NODE_CLIENTS=1 but Node.js or clients/node/node_modules is missing (npm ci --prefix clients/node)"
    );
    eprintln!(
        "\n*** SKIPPED: Node.js client tests need `node` and `npm ci --prefix clients/node` ***\n"
    );
    false
}

/// Runs `script` with `env`, off the async workers (the server runs on this test's runtime),
/// and returns its standard output; fails the test with the script's output if it fails.
async fn run_node(script: &str, env: Vec<(&'static str, String)>) -> String {
    let owned = script.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(&owned)
            .current_dir(clients_dir())
            .envs(env)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_official_javascript_client_works_unmodified() {
    if !node_clients_available() {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_node(
        "es-client.mjs",
        vec![
            ("ES_URL", app.http.clone()),
            ("ELASTIC_PASSWORD", ELASTIC_PASSWORD.to_owned()),
        ],
    )
    .await;
    assert!(stdout.contains("es-client: 12 checks passed"), "{stdout}");
}

#[tokio::test]
async fn grpc_js_with_proto_loader_calls_every_user_profiles_method() {
    if !node_clients_available() {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_node(
        "grpc-client.mjs",
        vec![
            ("GRPC_ADDR", app.grpc_addr.clone()),
            ("ELASTIC_PASSWORD", ELASTIC_PASSWORD.to_owned()),
        ],
    )
    .await;
    assert!(stdout.contains("grpc-client: 7 checks passed"), "{stdout}");
}
