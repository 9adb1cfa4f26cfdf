//! Bounded pools for expensive work: a fixed number of threads and a bounded queue in front
//! of them, as Elasticsearch's fixed thread pools have.
//!
//! Two kinds of work need one. Password hashing (`security-crypto`): argon2id is deliberately
//! slow and takes 19 MiB per hash, and a wrong password costs a hash whoever sends it. Suggest
//! queries (`search`): each fuzzy word builds automata of megabytes. Unbounded, a flood of
//! either would take every core and gigabytes of memory. Here at most `threads` jobs run at
//! once and at most `queue` wait; anything beyond is refused at once with Elasticsearch's
//! `es_rejected_execution_exception` (429). Dedicated threads (not tokio's blocking pool,
//! which grows to hundreds of threads) also keep the allocator from holding a large arena per
//! thread after a flood.

use crate::error::Error;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A cheap handle on a pool; its threads stop when the last handle is dropped.
#[derive(Clone)]
pub struct BoundedPool {
    name: &'static str,
    jobs: SyncSender<Job>,
    threads: usize,
    queue: usize,
}

impl BoundedPool {
    /// Starts `threads` threads named after the pool (0: one per core), behind a queue of
    /// `queue` jobs.
    pub fn new(name: &'static str, threads: usize, queue: usize) -> Self {
        let threads = match threads {
            0 => cores(),
            n => n,
        };
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, pool = name, "cannot start a pool thread");
            }
        }
        Self {
            name,
            jobs,
            threads,
            queue,
        }
    }

    /// Runs `job` on the pool and waits for its result without blocking an async worker.
    /// Refused at once when every thread is busy and the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, result) = tokio::sync::oneshot::channel();
        // Jobs queued or running, per pool: the password-hash queue an operator watches.
        let jobs = metrics::gauge!("userprofiles_pool_jobs", "pool" => self.name);
        let finished = jobs.clone();
        let job: Job = Box::new(move || {
            let _ = reply.send(job());
            finished.decrement(1.0);
        });
        // Counted before it is queued (a thread may finish it at once); uncounted if refused.
        jobs.increment(1.0);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                jobs.decrement(1.0);
                metrics::counter!("userprofiles_pool_rejected_total", "pool" => self.name)
                    .increment(1);
                return Err(Error::Rejected(format!(
                    "rejected execution on the [{}] pool: [{}] threads busy and the queue capacity of [{}] is full",
                    self.name, self.threads, self.queue
                )));
            }
            Err(TrySendError::Disconnected(_)) => {
                jobs.decrement(1.0);
                return Err(Error::Internal(
                    "the password-hashing pool has stopped".into(),
                ));
            }
        }
        result
            .await
            .map_err(|_| Error::Internal(format!("a job on the [{}] pool failed", self.name)))
    }
}

/// The number of cores (at least one).
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let next = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match next {
            // A panicking job drops its reply sender; the caller sees an internal error and
            // the thread goes on serving.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn jobs_run_and_return_their_results() {
        let pool = BoundedPool::new("test", 2, 4);
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_with_429() {
        let pool = BoundedPool::new("test", 1, 1);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let blocker = {
            let (pool, gate) = (pool.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = gate.lock().map(|g| g.recv());
                })
                .await
            })
        };
        // Let the blocker reach the thread, then fill the one queue slot.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 1).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = pool.run(|| 2).await.unwrap_err();
        assert_eq!(refused.http_status(), 429);
        assert_eq!(refused.es_type(), "es_rejected_execution_exception");
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 1);
        // Capacity is back once the queue drains.
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_survives() {
        let pool = BoundedPool::new("test", 1, 1);
        let failed = pool.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(failed.http_status(), 500);
        assert_eq!(pool.run(|| 5).await.unwrap(), 5);
    }
}
