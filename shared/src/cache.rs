//! A small TTL cache for what a warm function may reuse across invocations (tenant by
//! phone number, bot configuration). Entries are shared `Arc`s; a miss loads outside the lock.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded by the number of tenants; drop expired entries as we go.
            if entries.len() > 10_000 {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            entries.insert(key, (Instant::now(), value.clone()));
        }
        value
    }

    pub fn invalidate(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Cached value, or `load()`'s, cached. Errors are not cached.
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<Arc<V>, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let v = load.await?;
        Ok(self.insert(key.clone(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expires_and_invalidates() {
        let cache = TtlCache::new(Duration::from_millis(30));
        let v = cache.get_or_load(&1, async { Ok::<_, ()>("a") }).await;
        assert_eq!(v.map(|v| *v), Ok("a"));
        let v = cache.get_or_load(&1, async { Ok::<_, ()>("b") }).await;
        assert_eq!(v.map(|v| *v), Ok("a"), "cached");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(cache.get(&1).is_none(), "expired");
        cache.insert(1, "c");
        cache.invalidate(&1);
        assert!(cache.get(&1).is_none());
    }
}
