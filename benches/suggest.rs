//! Suggest and update-data at scale, through the engine over a real redb store, then the real
//! server binary's start-up time and resident memory on that store.
//! `cargo bench --bench suggest`; `BENCH_PROFILES` (default 100000) sets the profile count; `BENCH_KEEP=1` keeps the
//! filled store and prints where; `BENCH_STORE=<dir>` reuses such a store instead of loading
//! one, and `BENCH_ROUNDS` (default 200) sets how often the suggest queries repeat.
//! `BENCH_DATABASE_URL=<url of an empty database>` runs it all on PostgreSQL instead, where the
//! server keeps its index in memory and builds it from the change feed at every start (with
//! `BENCH_STORE` set to anything, what the database already holds is reused).

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use userprofiles::auth::privileges::{builtin_role, EffectiveRoles};
use userprofiles::auth::{AuthenticatedUser, AuthenticationType};
use userprofiles::engine::data_filter::DataFilter;
use userprofiles::engine::profile_data::UpdateDataRequest;
use userprofiles::engine::suggest::SuggestRequest;
use userprofiles::engine::{Caller, Engine, SystemClock};
use userprofiles::model::{Identity, ProfileUser, RealmRef};
use userprofiles::store::postgres::PostgresStore;
use userprofiles::store::redb::RedbStore;
use userprofiles::store::Store;

#[path = "support/binary.rs"]
mod binary;
use binary::ServerProcess;

const FIRST: &[&str] = &[
    "jack", "anna", "maria", "li", "omar", "sofia", "noah", "emma", "lucas", "mia", "arjun",
    "chen", "fatima", "ivan", "yuki", "paolo",
];
const LAST: &[&str] = &[
    "nicholson",
    "smith",
    "garcia",
    "wang",
    "kowalski",
    "okafor",
    "tanaka",
    "rossi",
    "muller",
    "silva",
    "kumar",
    "dubois",
    "novak",
    "larsen",
];
const WORKERS: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn superuser() -> Caller {
    Caller {
        user: AuthenticatedUser {
            identity: Identity {
                username: "elastic".into(),
                roles: vec!["superuser".into()],
                full_name: None,
                email: None,
                metadata: Default::default(),
                realm: RealmRef::reserved(),
            },
            authentication_type: AuthenticationType::Realm,
        },
        roles: EffectiveRoles::from_roles(&["superuser".into()], vec![builtin_role("superuser")]),
    }
}

fn user(i: usize) -> ProfileUser {
    let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
    ProfileUser {
        username: format!("{first}.{last}{i}"),
        roles: vec!["viewer".into()],
        realm: RealmRef::native(),
        email: Some(format!("{first}.{last}{i}@example.org")),
        full_name: Some(format!("{} {}", capitalize(first), capitalize(last))),
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn run_parallel<F, Fut>(n: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut i = w;
                while i < n {
                    op(i).await;
                    i += WORKERS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let profiles: usize = std::env::var("BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let kept = std::env::var_os("BENCH_STORE").map(std::path::PathBuf::from);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let database_url = std::env::var("BENCH_DATABASE_URL").ok();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = match (&database_url, &kept) {
        (None, Some(kept)) => kept.clone(),
        _ => dir.path().to_owned(),
    };
    let store: Arc<dyn Store> = match &database_url {
        Some(url) => Arc::new(PostgresStore::connect(url).await.unwrap()),
        None => Arc::new(RedbStore::open(&data_dir).unwrap()),
    };
    let engine = Engine::new(store, Arc::new(SystemClock)).unwrap();
    // As the server does: the follower indexes writes shortly after they are acknowledged.
    engine.start_background_tasks();

    if kept.is_none() {
        let e = engine.clone();
        let load = run_parallel(profiles, move |i| {
            let e = e.clone();
            async move {
                e.activate_user(user(i)).await.unwrap();
            }
        })
        .await;
        println!(
            "loaded {profiles} profiles in {:.1}s ({:.0} activations/s)",
            load.as_secs_f64(),
            profiles as f64 / load.as_secs_f64()
        );
    }

    let started = Instant::now();
    engine.refresh_suggest_index().await.unwrap();
    println!(
        "index caught up after the load: {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let caller = superuser();
    let queries = [
        "jack",
        "nich",
        "maria gar",
        "kowalsky no",
        "sofia r",
        "emma@example",
        "li wang",
        "okafor",
        "chen tan",
        "pao",
    ];
    let mut samples = Vec::new();
    let mut per_query: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
    let mut hits = 0;
    for round in 0..rounds {
        for (which, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let result = engine
                .suggest_profiles(
                    &caller,
                    SuggestRequest {
                        name: (*q).into(),
                        size: Some(10),
                        data: DataFilter::default(),
                        hint: None,
                    },
                )
                .await
                .unwrap();
            samples.push(t.elapsed());
            per_query[which].push(t.elapsed());
            if round == 0 {
                hits += result.total;
            }
        }
    }
    samples.sort();
    println!(
        "suggest over {profiles} profiles: n={} p50={:.2}ms p99={:.2}ms (first round matched {hits} in total)",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3
    );
    let medians: Vec<String> = queries
        .iter()
        .zip(&mut per_query)
        .map(|(q, times)| {
            times.sort();
            format!("{q:?} {:.2}", percentile(times, 0.5).as_secs_f64() * 1e3)
        })
        .collect();
    println!("  p50 per query (ms): {}", medians.join(", "));

    let updates = 20_000.min(profiles);
    let uids: Arc<Vec<String>> = Arc::new(
        (0..updates)
            .map(|i| userprofiles::engine::uid::uid(&user(i).username, 0))
            .collect(),
    );
    let e = engine.clone();
    let took = run_parallel(updates, move |i| {
        let (e, uids) = (e.clone(), Arc::clone(&uids));
        async move {
            let request = UpdateDataRequest {
                uid: uids[i].clone(),
                data: json!({"app": {"theme": "dark", "n": i}})
                    .as_object()
                    .cloned(),
                labels: json!({"app": {"team": format!("t{}", i % 50)}})
                    .as_object()
                    .cloned(),
                ..Default::default()
            };
            e.update_profile_data(&superuser(), request).await.unwrap();
        }
    })
    .await;
    println!(
        "update data: {updates} updates in {:.2}s = {:.0} updates/s ({WORKERS} concurrent)",
        took.as_secs_f64(),
        updates as f64 / took.as_secs_f64()
    );

    let t = Instant::now();
    let result = engine
        .suggest_profiles(
            &caller,
            SuggestRequest {
                name: "jack".into(),
                size: Some(10),
                data: DataFilter::default(),
                hint: None,
            },
        )
        .await
        .unwrap();
    println!(
        "first suggest after the updates (indexes {updates} changes): {:.1}ms, total {}",
        t.elapsed().as_secs_f64() * 1e3,
        result.total
    );

    engine.stop_background_tasks().await;
    drop(engine);
    if let Some(url) = &database_url {
        // A replica keeps its index in memory: every start builds it from the feed.
        let server = Server {
            data_dir: &data_dir,
            database_url: Some(url),
        };
        server.start(profiles, "PostgreSQL replica, index built from the feed");
        server.start(profiles, "PostgreSQL replica, again");
        return;
    }
    let server = Server {
        data_dir: &data_dir,
        database_url: None,
    };
    // The benchmark's engine kept its index in memory: the first start builds the server's
    // on-disk index from the store, the second resumes from it.
    if kept.is_none() {
        server.start(profiles, "first start, index built from the store");
    }
    server.start(profiles, "restart, index resumed from disk");
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept the store at {}", dir.keep().display());
    }
}

/// The release server binary on the store the benchmark filled.
struct Server<'a> {
    data_dir: &'a std::path::Path,
    database_url: Option<&'a str>,
}

impl Server<'_> {
    /// Starts the server and reports how long it takes to serve (store opened, suggest index
    /// built) and its resident memory then.
    fn start(&self, profiles: usize, case: &str) {
        // The benchmark's store is closed once its engine and writer are gone; give them a moment.
        std::thread::sleep(Duration::from_millis(200));
        let server =
            ServerProcess::start(self.data_dir, self.database_url, "bench-elastic-password");
        let at_start = server.rss_mib();
        // What the process keeps once start-up's buffers are handed back.
        std::thread::sleep(Duration::from_secs(2));
        let settled = server.rss_mib();
        println!(
            "server start-up on {profiles} profiles, {case}: serving after {:.2}s, RSS {at_start:.1} MiB then, {settled:.1} MiB 2 s later",
            server.started_in.as_secs_f64()
        );
    }
}
