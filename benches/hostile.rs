//! The worst case under each input limit: time and memory of the most expensive request the
//! limits still admit (or the cheapest refusal of one they do not). An in-process release
//! server on loopback; memory is the process's resident set (peak reset before each case).
//! `cargo bench --bench hostile`; `BENCH_PROFILES` (default 2000) sets the suggest corpus.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use userprofiles::limits::{MAX_JSON_DEPTH, MAX_OBJECT_KEYS};
use userprofiles::pb;

#[path = "support/binary.rs"]
mod binary;
#[path = "support/mod.rs"]
mod support;
use binary::ServerProcess;

const ELASTIC: &str = "bench-elastic-password";
const PASSWORD: &str = "l0ng-r4nd0m-p@ssw0rd";

/// Resident and peak resident memory in MiB, from /proc.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak-RSS counter so each case reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Case {
    started: Instant,
}

fn start(name: &str) -> Case {
    reset_peak();
    print!("{name:<62}");
    Case {
        started: Instant::now(),
    }
}

impl Case {
    fn done(self, detail: &str) {
        let elapsed = self.started.elapsed();
        let (rss, peak) = memory();
        println!(
            " {:>9.1} ms  peak {:>6.0} MiB  rss {:>6.0} MiB  {detail}",
            elapsed.as_secs_f64() * 1e3,
            peak,
            rss
        );
    }
}

fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "k": value });
    }
    value
}

#[tokio::main]
async fn main() {
    let profiles: usize = std::env::var("BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = support::start(ELASTIC, None).await;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    let http = reqwest::Client::new();
    let base = format!("http://{http_addr}");
    let es = |method: Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .basic_auth("elastic", Some(ELASTIC))
    };
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body)
    };

    // A corpus for suggest, and one profile to write to. The corpus imports a cost-4 bcrypt
    // hash so loading measures the service, not hashing; the flood's target has a real
    // argon2id password.
    let cheap_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let cheap_hash = &cheap_hash;
    send(
        es(Method::PUT, "/_security/user/flood_target")
            .json(&json!({"password": PASSWORD, "roles": ["viewer"]})),
    )
    .await;
    let load = Instant::now();
    let mut uids = Vec::new();
    for chunk in (0..profiles).collect::<Vec<_>>().chunks(16) {
        let batch = chunk.iter().map(|i| {
            let name = format!("user{i}");
            let put = es(Method::PUT, &format!("/_security/user/{name}")).json(&json!({
                "password_hash": cheap_hash, "roles": ["viewer"],
                "full_name": format!("Hostile Bench {i}"), "email": format!("{name}@example.com")
            }));
            let activate = es(Method::POST, "/_security/profile/_activate").json(&json!({
                "grant_type": "password", "username": name, "password": PASSWORD
            }));
            async move {
                send(put).await;
                send(activate).await.1["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
        });
        uids.extend(futures::future::join_all(batch).await);
    }
    let uid = uids[0].clone();
    let (rss, _) = memory();
    println!(
        "loaded {profiles} profiles in {:.1} s; rss {rss:.0} MiB",
        load.elapsed().as_secs_f64()
    );
    println!();

    let case = start("200 concurrent wrong passwords (no account needed)");
    let flood = (0..200).map(|i| {
        let request = http
            .get(format!("{base}/_security/_authenticate"))
            .basic_auth("flood_target", Some(format!("wrong-{i}")));
        async move {
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures::future::join_all(flood).await;
    let rejected = statuses.iter().filter(|s| **s == 429).count();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    case.done(&format!("{refused} x 401, {rejected} x 429"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, _) = memory();
    println!("{:<62} rss {rss:.0} MiB", "  ... 5 s after the flood");

    let case = start("40 unauthenticated connections announcing 10 MiB bodies");
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(http_addr).await.unwrap();
        let head = "POST /_security/profile/_activate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10485759\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&vec![b' '; 1 << 20]).await;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    case.done("1 MiB sent on each, then stalled");
    drop(held);

    let case = start("update data nested at the depth limit (100), x20");
    for _ in 0..20 {
        let body = json!({"data": {"deep": nested(MAX_JSON_DEPTH - 3)}});
        let (status, _) =
            send(es(Method::POST, &format!("/_security/profile/{uid}/_data")).json(&body)).await;
        assert_eq!(status, 200);
    }
    case.done("per 20 requests");

    let case = start("update data nested 10 000 deep (refused on the raw bytes)");
    let deep_body = format!(
        "{{\"data\":{{\"deep\":{}1{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, _) = send(
        es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .header("content-type", "application/json")
            .body(deep_body),
    )
    .await;
    case.done(&format!("status {status}"));

    let wide: serde_json::Map<String, Value> = (0..MAX_OBJECT_KEYS)
        .map(|i| (format!("key{i}"), json!({"v": i})))
        .collect();
    let case = start("update data, one object at the key limit (10 000 keys)");
    let (status, _) = send(
        es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&json!({"data": {"wide": wide}})),
    )
    .await;
    case.done(&format!("status {status}"));

    // Fill the profile towards the size limit: 40 objects of 10 000 keys (~8 MiB stored).
    let case = start("update data, 8 MiB of 400 000 keys");
    let mut big = serde_json::Map::new();
    for block in 0..40 {
        let object: serde_json::Map<String, Value> = (0..MAX_OBJECT_KEYS)
            .map(|i| (format!("k{block}_{i}"), json!("value-text")))
            .collect();
        big.insert(format!("block{block}"), Value::Object(object));
    }
    let (status, body) = send(
        es(Method::POST, &format!("/_security/profile/{uid}/_data"))
            .json(&json!({"data": {"big": big}})),
    )
    .await;
    case.done(&format!("status {status} {}", body["error"]["type"]));

    let patterns: Vec<String> = (0..1000).map(|i| format!("big.*k{i}_*9*")).collect();
    let case = start("get: 1 000 patterns over the 400 000-key profile");
    let mut grpc =
        pb::user_profiles_client::UserProfilesClient::connect(format!("http://{grpc_addr}"))
            .await
            .unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC}"))
    );
    let with_auth = |message| {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", auth.parse().unwrap());
        request
    };
    let reply = grpc
        .get_profiles(with_auth(pb::GetProfilesRequest {
            uids: vec![uid.clone()],
            data: patterns.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    case.done(&format!("{} profile", reply.profiles.len()));

    // Star-heavy patterns make the most DFA states; 64 bytes each is the text budget.
    let starry: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "*{}*",
                (0..15)
                    .map(|j| format!("{}", (i + j) % 10))
                    .collect::<Vec<_>>()
                    .join("*")
            )
        })
        .map(|p| p.chars().take(64).collect())
        .collect();
    let case = start("get: 1 000 star-heavy patterns (64 KiB) over 400 000 keys");
    let reply = grpc
        .get_profiles(with_auth(pb::GetProfilesRequest {
            uids: vec![uid.clone()],
            data: starry,
        }))
        .await
        .unwrap()
        .into_inner();
    case.done(&format!("{} profile", reply.profiles.len()));

    let case = start("get: 1 000 uids in one gRPC call");
    let mut many: Vec<String> = uids.iter().take(1000).cloned().collect();
    many.resize(1000, "u_missing".into());
    let reply = grpc
        .get_profiles(with_auth(pb::GetProfilesRequest {
            uids: many,
            data: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    case.done(&format!("{} profiles", reply.profiles.len()));

    let name = vec!["hostile"; 170].join(" ");
    let case = start(&format!(
        "suggest: 170 words (1 020 clauses) x20, {profiles} profiles"
    ));
    for _ in 0..20 {
        let (status, _) = send(
            es(Method::POST, "/_security/profile/_suggest")
                .json(&json!({"name": name, "data": patterns})),
        )
        .await;
        assert_eq!(status, 200);
    }
    case.done("per 20 requests");

    let fuzzy_words: Vec<String> = (0..10).map(|i| format!("{i}{}", "z".repeat(39))).collect();
    let fuzzy_name = fuzzy_words.join(" ");
    let case = start("suggest: 10 distinct 40-character words (fuzzy budget), x5");
    for _ in 0..5 {
        let (status, _) = send(
            es(Method::POST, "/_security/profile/_suggest").json(&json!({"name": fuzzy_name})),
        )
        .await;
        assert_eq!(status, 200);
    }
    case.done("per 5 requests");

    let long_words: Vec<String> = (0..170)
        .map(|i| format!("{i}{}", "x".repeat(250)))
        .collect();
    let long_name = long_words.join(" ");
    let case = start("suggest: 170 distinct words of 253 characters, x5");
    for _ in 0..5 {
        let (status, _) =
            send(es(Method::POST, "/_security/profile/_suggest").json(&json!({"name": long_name})))
                .await;
        assert_eq!(status, 200);
    }
    case.done("per 5 requests");

    let case = start("suggest: 20 000 words (refused)");
    let (status, _) = send(
        es(Method::POST, "/_security/profile/_suggest")
            .json(&json!({"name": vec!["w"; 20_000].join(" ")})),
    )
    .await;
    case.done(&format!("status {status}"));

    let fields: Vec<String> = (0..40_000).map(|i| format!("\"f{i}\":{i}")).collect();
    let wide_body = format!("{{{}}}", fields.join(","));
    let case = start("activate: 40 000 top-level keys, authenticated (refused)");
    let (status, _) = send(
        es(Method::POST, "/_security/profile/_activate")
            .header("content-type", "application/json")
            .body(wide_body.clone()),
    )
    .await;
    case.done(&format!("status {status}"));

    // Every request records its duration, refused ones too: what the recorder holds must not
    // grow with the number of requests while nobody scrapes `/metrics`. Measured on the server
    // binary alone: this process's allocator keeps what the cases above freed.
    let case = start("unauthenticated flood for 20 s on the server binary, no scrapes");
    let (refused, growth) = flood_the_binary(&http, Duration::from_secs(20)).await;
    case.done(&format!(
        "{refused} refused; the server's rss {growth:+.1} MiB over the flood"
    ));
}

/// Starts the release binary on an empty store, sends it unauthenticated requests from 16
/// connections for `duration`, and returns how many were refused and how much its resident
/// set grew meanwhile (MiB).
async fn flood_the_binary(http: &reqwest::Client, duration: Duration) -> (u64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), None, ELASTIC);
    let url = format!("http://{}/_security/profile/u_x_0", server.http_addr);
    // A warm-up first: the resident set after start-up still shrinks for a moment.
    flood(http, &url, Duration::from_secs(2)).await;
    let before = server.rss_mib();
    let refused = flood(http, &url, duration).await;
    (refused, server.rss_mib() - before)
}

/// Sends unauthenticated GETs to `url` from 16 connections for `duration`; returns how many
/// were refused.
async fn flood(http: &reqwest::Client, url: &str, duration: Duration) -> u64 {
    let until = Instant::now() + duration;
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut refused = 0u64;
                while Instant::now() < until {
                    // A connection the server closed is reopened by the next request.
                    let Ok(response) = http.get(&url).send().await else {
                        continue;
                    };
                    assert_eq!(response.status().as_u16(), 401);
                    let _ = response.bytes().await;
                    refused += 1;
                }
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for worker in workers {
        refused += worker.await.expect("flood worker");
    }
    refused
}
