//! The clients users have, unmodified, against the real server: the official Elasticsearch
//! JavaScript and Python clients on the gateway, @grpc/grpc-js with proto-loader and grpcio on
//! the gRPC port (`clients/node/`, `clients/python/`). They need Node.js with
//! `npm ci --prefix clients/node`, and a virtualenv at `clients/python/.venv` with
//! `clients/python/requirements.txt`; without them these tests say so loudly and pass, unless
//! `REQUIRE_CLIENTS=1` (set by `.ci/run`), under which a missing client is a failure.

use crate::helpers::*;
use std::path::{Path, PathBuf};

fn clients_dir(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(language)
}

fn interpreter(language: &str) -> PathBuf {
    match language {
        "node" => PathBuf::from("node"),
        _ => clients_dir("python").join(".venv/bin/python"),
    }
}

/// Whether a language's interpreter and installed client packages are there; panics under
/// `REQUIRE_CLIENTS=1` when they are not.
fn clients_available(language: &str) -> bool {
    let (installed, setup) = match language {
        "node" => (
            clients_dir("node")
                .join("node_modules/@elastic/elasticsearch")
                .is_dir(),
            "npm ci --prefix clients/node",
        ),
        _ => (
            true,
            "python3 -m venv clients/python/.venv && clients/python/.venv/bin/pip install -r clients/python/requirements.txt",
        ),
    };
    let runs = std::process::Command::new(interpreter(language))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if runs && installed {
        return true;
    }
    let required = std::env::var("REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "REQUIRE_CLIENTS=1 but the {language} clients are not installed ({setup})"
    );
    eprintln!("\n*** SKIPPED: the {language} client tests need: {setup} ***\n");
    false
}

/// Runs `script` of `language` with `env`, off the async workers (the server runs on this
/// test's runtime), and returns its standard output; fails the test with the script's output
/// if it fails.
async fn run_client(language: &str, script: &str, env: Vec<(&'static str, String)>) -> String {
    let owned = script.to_owned();
    let program = interpreter(language);
    let dir = clients_dir(language);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .arg(&owned)
            .current_dir(dir)
            .envs(env)
            .output()
            .expect("the client runs")
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
    if !clients_available("node") {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_client(
        "node",
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
    if !clients_available("node") {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_client(
        "node",
        "grpc-client.mjs",
        vec![
            ("GRPC_ADDR", app.grpc_addr.clone()),
            ("ELASTIC_PASSWORD", ELASTIC_PASSWORD.to_owned()),
        ],
    )
    .await;
    assert!(stdout.contains("grpc-client: 7 checks passed"), "{stdout}");
}

#[tokio::test]
async fn the_official_python_client_works_unmodified() {
    if !clients_available("python") {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_client(
        "python",
        "es_client.py",
        vec![
            ("ES_URL", app.http.clone()),
            ("ELASTIC_PASSWORD", ELASTIC_PASSWORD.to_owned()),
        ],
    )
    .await;
    assert!(stdout.contains("es_client.py: 9 checks passed"), "{stdout}");
}

#[tokio::test]
async fn grpcio_with_stubs_generated_from_the_contract_works() {
    if !clients_available("python") {
        return;
    }
    let app = spawn_app().await;
    let stdout = run_client(
        "python",
        "grpc_client.py",
        vec![
            ("GRPC_ADDR", app.grpc_addr.clone()),
            ("ELASTIC_PASSWORD", ELASTIC_PASSWORD.to_owned()),
        ],
    )
    .await;
    assert!(
        stdout.contains("grpc_client.py: 3 checks passed"),
        "{stdout}"
    );
}
