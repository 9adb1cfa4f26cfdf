//! A read-through cache of decoded records for a store that is the only writer of its data
//! (the embedded redb file, which one process holds locked). Every write through the store
//! invalidates before it is acknowledged, so a read that starts after a write returns sees it.
//!
//! The race a read-through cache must not lose: a reader fetches the old record, a writer
//! commits and invalidates, then the reader fills the cache with what it fetched. Each fill
//! therefore carries the generation seen before the fetch and is dropped if any write happened
//! since (fills and invalidations take the same lock).

use quick_cache::sync::Cache;
use std::sync::Mutex;

/// Decoded records by key, absent ones included, bounded by their encoded size. quick_cache
/// rather than moka: a hit is a sharded read lock and a clone, where moka's bookkeeping per
/// read was a visible share of every authenticated request (users, roles and profiles are
/// each read once per request).
pub struct RecordCache<T: Clone + Send + Sync + 'static> {
    entries: Cache<String, Entry<T>, ByWeight>,
    generation: Mutex<u64>,
}

/// Weighs an entry by what it recorded at fill time.
#[derive(Clone)]
struct ByWeight;

impl<T> quick_cache::Weighter<String, Entry<T>> for ByWeight {
    fn weight(&self, _key: &String, entry: &Entry<T>) -> u64 {
        u64::from(entry.weight)
    }
}

#[derive(Clone)]
struct Entry<T> {
    value: Option<T>,
    /// The key and encoded record size, what the capacity counts.
    weight: u32,
}

/// What a reader saw before fetching; a fill is accepted only if no write happened since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<T: Clone + Send + Sync + 'static> RecordCache<T> {
    /// A cache holding at most `max_bytes` of records (weighed by their encoded size).
    pub fn new(max_bytes: u64) -> Self {
        // quick_cache sizes its tables from an item estimate: records weigh about 1 KiB.
        let estimated_items = usize::try_from(max_bytes / 1024).unwrap_or(1024).max(64);
        Self {
            entries: Cache::with_weighter(estimated_items, max_bytes, ByWeight),
            generation: Mutex::new(0),
        }
    }

    /// The cached record (`Some(None)`: known to be absent), or `None` on a miss.
    pub fn get(&self, key: &str) -> Option<Option<T>> {
        self.entries.get(key).map(|entry| entry.value)
    }

    /// Taken before fetching from the store.
    pub fn ticket(&self) -> Ticket {
        Ticket(*self.lock())
    }

    /// Remembers what was fetched under `ticket`, unless a write happened since. Records over
    /// 64 KiB encoded are not kept, so a few huge records cannot evict all the others.
    pub fn fill(&self, key: &str, value: Option<T>, encoded_len: usize, ticket: Ticket) {
        const MAX_RECORD_BYTES: usize = 64 * 1024;
        if encoded_len > MAX_RECORD_BYTES {
            return;
        }
        // The entry's own overhead (moka's node, the decoded struct) counted roughly.
        let weight = u32::try_from(key.len() + encoded_len + 128).unwrap_or(u32::MAX);
        let generation = self.lock();
        if *generation == ticket.0 {
            self.entries.insert(key.to_owned(), Entry { value, weight });
        }
    }

    /// Forgets `key`; called after a write to it commits and before the write is acknowledged.
    pub fn invalidate(&self, key: &str) {
        let mut generation = self.lock();
        *generation += 1;
        self.entries.remove(key);
    }

    /// Forgets everything (after a write whose keys are not known one by one).
    pub fn clear(&self) {
        let mut generation = self.lock();
        *generation += 1;
        self.entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A poisoned lock only means another thread panicked while holding a counter.
        self.generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_fetched_before_a_write_is_dropped() {
        let cache: RecordCache<String> = RecordCache::new(1 << 20);
        let before_write = cache.ticket();
        cache.invalidate("joe");
        cache.fill("joe", Some("old".into()), 3, before_write);
        assert_eq!(cache.get("joe"), None, "a stale fill must not be kept");

        let after_write = cache.ticket();
        cache.fill("joe", Some("new".into()), 3, after_write);
        assert_eq!(cache.get("joe"), Some(Some("new".into())));
        cache.invalidate("joe");
        assert_eq!(cache.get("joe"), None);
    }

    #[test]
    fn absent_records_are_cached_and_cleared_and_huge_ones_are_not_kept() {
        let cache: RecordCache<String> = RecordCache::new(1 << 20);
        let ticket = cache.ticket();
        cache.fill("ghost", None, 0, ticket);
        assert_eq!(cache.get("ghost"), Some(None));
        cache.fill("huge", Some("x".into()), 1 << 20, ticket);
        assert_eq!(cache.get("huge"), None);
        cache.clear();
        assert_eq!(cache.get("ghost"), None);
    }
}
