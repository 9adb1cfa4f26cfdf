//! The release server binary as a child process, for benchmarks that measure the server alone
//! (start-up time, resident memory) rather than the benchmark's own process.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running server binary; killed when dropped.
// Each benchmark reads the fields it measures (start-up time, or the address to load).
#[allow(dead_code)]
pub struct ServerProcess {
    child: std::process::Child,
    /// Where its HTTP gateway listens.
    pub http_addr: String,
    /// From spawning it until it said it was serving.
    pub started_in: Duration,
}

impl ServerProcess {
    /// Starts the binary on `data_dir` (or on PostgreSQL at `database_url`) and waits until it
    /// is serving.
    pub fn start(data_dir: &Path, database_url: Option<&str>, elastic_password: &str) -> Self {
        let started = Instant::now();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_userprofiles"));
        command
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(url) = database_url {
            command
                .env("USERPROFILES_STORE", "postgres")
                .env("USERPROFILES_DATABASE_URL", url);
        }
        let mut child = command
            .env("ELASTIC_PASSWORD", elastic_password)
            .env("USERPROFILES_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let logs = std::io::BufReader::new(child.stderr.take().expect("its log"));
        let mut lines = logs.lines().map_while(Result::ok);
        let serving = lines
            .find(|line| line.contains("userprofiles serving"))
            .expect("the server reported serving");
        let started_in = started.elapsed();
        // Keeps reading its log, so that writing it never fails.
        std::thread::spawn(move || lines.for_each(drop));
        let http_addr = serving
            .split_whitespace()
            .find_map(|field| field.strip_prefix("http_addr="))
            .expect("the serving line names the HTTP address")
            .to_owned();
        Self {
            child,
            http_addr,
            started_in,
        }
    }

    /// Its resident set now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
