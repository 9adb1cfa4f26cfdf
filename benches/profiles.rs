//! End-to-end benchmark: an in-process server on loopback, driven over HTTP and gRPC.
//! Prints latency percentiles and throughput; `cargo bench --bench profiles`.
//! `BENCH_USERS` (default 2000) sets how many users are created and activated;
//! `BENCH_DATABASE_URL` runs the server on PostgreSQL instead of the embedded store.

use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use userprofiles::pb;

#[path = "support/mod.rs"]
mod support;

const ELASTIC: &str = "bench-elastic-password";
const CONCURRENCY: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "{name:<40} n={:<6} p50={:>8.3}ms p99={:>8.3}ms throughput={:>9.0}/s",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len() as f64 / wall.as_secs_f64()
    );
}

/// Runs `op(i)` for i in 0..n with `CONCURRENCY` workers; returns per-call latencies and wall time.
async fn drive<F, Fut>(n: usize, op: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (op, next) = (Arc::clone(&op), Arc::clone(&next));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        return samples;
                    }
                    let t = Instant::now();
                    op(i).await;
                    samples.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = support::start(ELASTIC, std::env::var("BENCH_DATABASE_URL").ok()).await;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    let http = reqwest::Client::new();
    let base = format!("http://{http_addr}");

    // Ten application privileges and a role granting them through one broader privilege, so the
    // has-privileges row resolves definitions and covers patterns for every profile.
    let mut definitions = serde_json::Map::new();
    for p in 0..10 {
        definitions.insert(
            format!("p{p}"),
            serde_json::json!({"actions": [format!("action:p{p}/*"), "login:"]}),
        );
    }
    definitions.insert(
        "all".into(),
        serde_json::json!({"actions": ["action:*", "login:"]}),
    );
    let r = http
        .put(format!("{base}/_security/privilege"))
        .basic_auth("elastic", Some(ELASTIC))
        .json(&serde_json::json!({ "benchapp": definitions }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .put(format!("{base}/_security/role/bench_app_user"))
        .basic_auth("elastic", Some(ELASTIC))
        .json(&serde_json::json!({"applications": [
            {"application": "benchapp", "privileges": ["all"], "resources": ["space:*"]}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Users get an imported low-cost bcrypt hash so set-up time measures the service, not hashing.
    let hash = bcrypt::hash("bench-password", 4).unwrap();
    let started = Instant::now();
    for i in 0..users {
        // Every third user lacks the application role, so the check answers both ways; a team
        // role (100 of them, undefined) makes the role sets differ as in a real organisation.
        let team = format!("team{}", i % 100);
        let roles = if i % 3 == 0 {
            vec!["viewer", team.as_str()]
        } else {
            vec!["viewer", "bench_app_user", team.as_str()]
        };
        let body = serde_json::json!({"password_hash": hash, "roles": roles, "full_name": format!("User {i}")});
        let r = http
            .put(format!("{base}/_security/user/user{i}"))
            .basic_auth("elastic", Some(ELASTIC))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    println!(
        "created {users} users in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let activate = |http: reqwest::Client, base: String| {
        move |i: usize| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let body = serde_json::json!({"grant_type": "password", "username": format!("user{i}"), "password": "bench-password"});
                let r = http
                    .post(format!("{base}/_security/profile/_activate"))
                    .basic_auth("elastic", Some(ELASTIC))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    // Half the users activate cold: their password is verified by bcrypt (cost 4, ~1 ms of a
    // core), which bounds that row. The other half authenticated first, as a login does before
    // Kibana activates the profile, so their credentials are cached and the row measures
    // creating the profile: the store write and its durable commit.
    let cold = users / 2;
    let (samples, wall) = drive(cold, activate(http.clone(), base.clone())).await;
    report("HTTP activate, first, cold credentials", samples, wall);
    let authenticate = {
        let (http, base) = (http.clone(), base.clone());
        move |i: usize| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http
                    .get(format!("{base}/_security/_authenticate"))
                    .basic_auth(format!("user{}", cold + i), Some("bench-password"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    let (samples, wall) = drive(users - cold, authenticate).await;
    report("HTTP authenticate, first (bcrypt)", samples, wall);
    let warm = {
        let activate = activate(http.clone(), base.clone());
        move |i: usize| activate(cold + i)
    };
    let (samples, wall) = drive(users - cold, warm).await;
    report("HTTP activate, first, cached credentials", samples, wall);
    let (samples, wall) = drive(users, activate(http.clone(), base.clone())).await;
    report("HTTP activate, repeat (skip rule)", samples, wall);

    let uids: Arc<Vec<String>> = Arc::new(
        (0..users)
            .map(|i| {
                let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("user{i}").as_bytes());
                format!(
                    "u_{}_0",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
                )
            })
            .collect(),
    );
    let get = {
        let (http, base, uids) = (http.clone(), base.clone(), Arc::clone(&uids));
        move |i: usize| {
            let (http, base, uids) = (http.clone(), base.clone(), Arc::clone(&uids));
            async move {
                let r = http
                    .get(format!(
                        "{base}/_security/profile/{}?data=*",
                        uids[i % uids.len()]
                    ))
                    .basic_auth("elastic", Some(ELASTIC))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    let (samples, wall) = drive(users * 5, get).await;
    report("HTTP get one profile", samples, wall);

    let update = {
        let (http, base, uids) = (http.clone(), base.clone(), Arc::clone(&uids));
        move |i: usize| {
            let (http, base, uids) = (http.clone(), base.clone(), Arc::clone(&uids));
            async move {
                let body = serde_json::json!({"data": {"app": {"visits": i}}});
                let r = http
                    .post(format!(
                        "{base}/_security/profile/{}/_data",
                        uids[i % uids.len()]
                    ))
                    .basic_auth("elastic", Some(ELASTIC))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    let (samples, wall) = drive(users * 2, update).await;
    report("HTTP update data (durable)", samples, wall);

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC}"))
    );
    let grpc_get = {
        let (channel, uids) = (channel.clone(), Arc::clone(&uids));
        move |i: usize| {
            let mut client = pb::user_profiles_client::UserProfilesClient::new(channel.clone());
            let mut request = tonic::Request::new(pb::GetProfilesRequest {
                uids: vec![
                    uids[i % uids.len()].clone(),
                    uids[(i + 1) % uids.len()].clone(),
                ],
                data: vec![],
            });
            request
                .metadata_mut()
                .insert("authorization", auth.parse().unwrap());
            async move {
                client.get_profiles(request).await.unwrap();
            }
        }
    };
    let (samples, wall) = drive(users * 5, grpc_get).await;
    report("gRPC get two profiles", samples, wall);

    // One caller at a time, so the latency is the server's work on 1,000 uids (Kibana filters a
    // suggest page or an assignee list this way), not queueing.
    let checked = uids.len().min(1000);
    let body = serde_json::json!({
        "uids": &uids[..checked],
        "privileges": {"application": [{
            "application": "benchapp",
            "privileges": (0..10).map(|p| format!("p{p}")).collect::<Vec<_>>(),
            "resources": ["space:default"],
        }]}
    });
    let mut samples = Vec::new();
    let started = Instant::now();
    for _ in 0..50 {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/_security/profile/_has_privileges"))
            .basic_auth("elastic", Some(ELASTIC))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: serde_json::Value = r.json().await.unwrap();
        let granted = answer["has_privilege_uids"].as_array().unwrap().len();
        assert_eq!(granted, (0..checked).filter(|i| i % 3 != 0).count());
        samples.push(t.elapsed());
    }
    report(
        &format!("HTTP has_privileges, {checked} uids x 10"),
        samples,
        started.elapsed(),
    );
}
