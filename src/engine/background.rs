//! The engine's own background work: keeping the suggest index up with profile writes (this
//! process's, soon after each, and other replicas', within the follow interval), and deleting
//! tokens nobody can use any more.
//!
//! The tasks belong to the engine: they hold only a weak reference between ticks, stop by
//! themselves once the engine is gone, are aborted when its last handle drops, and
//! [`Engine::stop_background_tasks`] stops them and waits (a restart reopens the store they
//! use).

use super::{Engine, Inner};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the suggest index looks for profile changes written by other replicas.
const SUGGEST_FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
/// After a write of this process wakes the follower, how long it lets more writes gather
/// before indexing them together: each catch-up ends in an index commit (a new segment), so
/// this caps commits at ~20/s under any write load, while a suggest never waits for more than
/// what gathered since.
const SUGGEST_FOLLOW_GATHER: Duration = Duration::from_millis(50);
/// How often tokens that nobody can use any more are deleted.
const TOKEN_PURGE_INTERVAL: Duration = Duration::from_secs(300);
/// How often the stored profiles are counted for the `userprofiles_profiles` gauge: a table
/// header read on redb, one `count(*)` on PostgreSQL.
const PROFILE_COUNT_INTERVAL: Duration = Duration::from_secs(10);

/// The handles of the running tasks.
#[derive(Default)]
pub(super) struct BackgroundTasks {
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        if let Ok(handles) = self.handles.get_mut() {
            for handle in handles.drain(..) {
                handle.abort();
            }
        }
    }
}

impl Engine {
    /// Starts the background work (needs a tokio runtime).
    pub fn start_background_tasks(&self) {
        let engine = Arc::downgrade(&self.inner);
        self.spawn(async move {
            loop {
                let Some(index) = engine
                    .upgrade()
                    .map(|inner| Arc::clone(&inner.suggest_index))
                else {
                    return;
                };
                if tokio::time::timeout(SUGGEST_FOLLOW_INTERVAL, index.written())
                    .await
                    .is_ok()
                {
                    tokio::time::sleep(SUGGEST_FOLLOW_GATHER).await;
                }
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                if let Err(error) = (Engine { inner }).refresh_suggest_index().await {
                    tracing::warn!(%error, "updating the suggest index failed");
                }
            }
        });
        self.spawn_every(PROFILE_COUNT_INTERVAL, |engine| async move {
            match engine.inner.store.count_profiles().await {
                Ok(count) => metrics::gauge!("userprofiles_profiles").set(count as f64),
                Err(error) => tracing::debug!(%error, "counting profiles failed"),
            }
        });
        self.spawn_every(TOKEN_PURGE_INTERVAL, |engine| async move {
            match engine.purge_expired_tokens().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged expired tokens"),
                Err(error) => tracing::warn!(%error, "purging expired tokens failed"),
            }
        });
    }

    /// Stops the background work and waits until it has.
    pub async fn stop_background_tasks(&self) {
        let handles = match self.inner.background.handles.lock() {
            Ok(mut handles) => std::mem::take(&mut *handles),
            Err(_) => return,
        };
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            let _ = handle.await;
        }
    }

    fn spawn_every<F, Fut>(&self, period: Duration, work: F)
    where
        F: Fn(Engine) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let engine: std::sync::Weak<Inner> = Arc::downgrade(&self.inner);
        self.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                work(Engine { inner }).await;
            }
        });
    }

    /// Runs `task` as one of the engine's background tasks. It must hold the engine only
    /// weakly while it waits.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut handles) = self.inner.background.handles.lock() {
            handles.push(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SystemClock;
    use crate::store::redb::RedbStore;

    #[tokio::test]
    async fn tasks_end_when_the_engine_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let engine = Engine::new(store, Arc::new(SystemClock)).unwrap();
        engine.start_background_tasks();
        let weak = Arc::downgrade(&engine.inner);
        drop(engine);
        // Nothing keeps the engine (and its store) alive once its handles are gone.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(weak.upgrade().is_none());
        // So the store can be opened again at once.
        assert!(RedbStore::open(dir.path()).is_ok());
    }
}
