//! Group commit for the redb store: every write runs on one writer thread, and the writes that
//! queued while the previous commit was being flushed share the next write transaction and its
//! one fsync.
//!
//! redb has a single writer and `Durability::Immediate` pays one fsync per commit, so one
//! commit per write caps durable writes at the disk's flush rate (~1 000/s here) however many
//! callers wait. Batching keeps every promise a write makes: each one runs in order inside the
//! transaction and sees the writes before it (compare-and-set and create-if-absent stay exact),
//! and no caller is answered before the commit that holds its write has returned. A failed
//! commit fails every write in it; none of them was acknowledged.
//!
//! A write that fails part-way may have changed the transaction, so the batch is dropped and
//! the others are run again without it (writes are `FnMut` for that reason: they re-derive their
//! outcome from their own inputs). Write transactions cannot take a savepoint once dirty, so
//! this is the only way to roll back one member of a batch.

use super::StoreError;
use redb::{Database, WriteTransaction};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// At most this many writes share one commit: bounds how long the first of them waits for the
/// rest to run, and how much a batch holds in memory.
const MAX_BATCH: usize = 256;

/// One queued write: applied (possibly more than once, see the module docs), then answered.
trait Job: Send {
    fn apply(&mut self, tx: &WriteTransaction) -> Result<(), StoreError>;
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Pending<T, F> {
    work: F,
    outcome: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, tx: &WriteTransaction) -> Result<(), StoreError> {
        // A panic in one write must not take the writer thread (and every later write) down.
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(tx)))
            .map_err(|_| StoreError::Unavailable("a store write panicked".into()))??;
        self.outcome = Some(outcome);
        Ok(())
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let Pending { outcome, reply, .. } = *self;
        let result = committed.and_then(|()| {
            outcome.ok_or_else(|| StoreError::Unavailable("a store write was not applied".into()))
        });
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = reply.send(result);
    }
}

/// The handle to the writer thread. Dropping the last handle lets the thread finish what is
/// queued and then waits for it, so the database file is closed when the store is dropped.
pub struct GroupCommitter {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommitter {
    /// Starts the writer thread over `db`.
    pub fn start(db: Arc<Database>) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || write_loop(&db, &jobs))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the redb writer: {e}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `work` inside the next write transaction and resolves once that transaction is
    /// durably committed. `work` must do its checks before it writes, and may run more than
    /// once (only the last run's outcome counts).
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work,
            outcome: None,
            reply,
        });
        let stopped = || StoreError::Unavailable("the redb writer has stopped".into());
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(db: &Database, jobs: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("userprofiles_store_group_commit_writes").record(batch.len() as f64);
        commit_batch(db, batch);
    }
}

/// Applies `batch` in order in one transaction and commits it; a write that fails is answered
/// with its error and the rest are committed without it.
fn commit_batch(db: &Database, mut batch: Vec<Box<dyn Job>>) {
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(error) => return answer_all(batch, &StoreError::Unavailable(error.to_string())),
    };
    for index in 0..batch.len() {
        if let Err(error) = batch[index].apply(&tx) {
            let _ = tx.abort();
            batch.remove(index).answer(Err(error));
            if !batch.is_empty() {
                commit_batch(db, batch);
            }
            return;
        }
    }
    match tx.commit() {
        Ok(()) => batch.into_iter().for_each(|job| job.answer(Ok(()))),
        Err(error) => answer_all(batch, &StoreError::Unavailable(error.to_string())),
    }
}

fn answer_all(batch: Vec<Box<dyn Job>>, error: &StoreError) {
    for job in batch {
        job.answer(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

    fn open() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        (dir, db)
    }

    fn increment(tx: &WriteTransaction) -> Result<u64, StoreError> {
        let mut table = tx
            .open_table(COUNTERS)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let next = table.get("n").unwrap().map_or(0, |v| v.value()) + 1;
        table.insert("n", next).unwrap();
        Ok(next)
    }

    /// The committed counter.
    fn stored(db: &Database) -> u64 {
        let read = db.begin_read().unwrap();
        let table = read.open_table(COUNTERS).unwrap();
        let value = table.get("n").unwrap().unwrap().value();
        value
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_each_see_the_ones_before_them() {
        let (_dir, db) = open();
        let writer = Arc::new(GroupCommitter::start(Arc::clone(&db)).unwrap());
        let calls: Vec<_> = (0..500)
            .map(|_| {
                let writer = Arc::clone(&writer);
                tokio::spawn(async move { writer.write(increment).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for call in calls {
            seen.push(call.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=500).collect::<Vec<_>>());
        assert_eq!(stored(&db), 500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_write_leaves_no_trace_and_the_others_commit() {
        let (_dir, db) = open();
        let writer = Arc::new(GroupCommitter::start(Arc::clone(&db)).unwrap());
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let writer = Arc::clone(&writer);
                tokio::spawn(async move {
                    writer
                        .write(move |tx| {
                            let n = increment(tx)?;
                            if i % 10 == 3 {
                                // Fails after writing: that increment must be rolled back.
                                return Err(StoreError::Unreadable(format!("write {i} fails")));
                            }
                            if i % 10 == 7 {
                                panic!("write {i} panics");
                            }
                            Ok(n)
                        })
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        let mut failed = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        assert_eq!((ok, failed), (160, 40));
        assert_eq!(stored(&db), 160, "only the successful writes are committed");
    }

    #[tokio::test]
    async fn dropping_the_committer_closes_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let writer = GroupCommitter::start(Arc::clone(&db)).unwrap();
        writer.write(increment).await.unwrap();
        drop(writer);
        drop(db);
        assert_eq!(stored(&Database::create(&path).unwrap()), 1);
    }
}
