//! Redis: the locks of the [`idempotency`](crate::idempotency) protocol and small
//! remembered values. `SET … NX PX … GET` needs Redis ≥ 7.0. Redis is an optimisation: when
//! it is down, callers go on without it and unique indexes keep the outcome exactly-once.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::{AsyncCommands, aio::ConnectionManager, aio::ConnectionManagerConfig};
use tokio::sync::Mutex as AsyncMutex;

use crate::secret::Secret;

/// Outcome of [`Locks::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Ours: process, then [`Locks::finish`] or [`Locks::release`].
    Acquired,
    /// Another request is processing it right now.
    Busy,
    /// Already processed.
    Done,
    /// Redis is unreachable: proceed, the database is the guard.
    Unavailable,
}

const PROCESSING: &str = "processing";
const DONE: &str = "done";
/// How long a failed connection is remembered, so an outage costs one timeout per
/// interval rather than one per message.
const RETRY_AFTER: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_millis(300);

pub struct Locks {
    client: Option<redis::Client>,
    conn: AsyncMutex<Option<ConnectionManager>>,
    failed_at: Mutex<Option<Instant>>,
}

impl Locks {
    pub fn new(url: Option<&Secret>) -> Self {
        let client = url.and_then(|u| match redis::Client::open(u.expose()) {
            Ok(c) => Some(c),
            Err(_) => {
                tracing::error!("REDIS_URL is not a valid Redis URL: running without locks");
                None
            }
        });
        Self {
            client,
            conn: AsyncMutex::new(None),
            failed_at: Mutex::new(None),
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.client.as_ref()?;
        if let Ok(failed) = self.failed_at.lock()
            && failed.is_some_and(|at| at.elapsed() < RETRY_AFTER)
        {
            return None;
        }
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Some(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                *slot = Some(conn.clone());
                Some(conn)
            }
            Ok(Err(e)) => {
                self.mark_failed(&e.to_string());
                None
            }
            Err(_) => {
                self.mark_failed("connect timed out");
                None
            }
        }
    }

    fn mark_failed(&self, why: &str) {
        tracing::warn!(error = why, "redis unavailable: continuing without locks");
        if let Ok(mut f) = self.failed_at.lock() {
            *f = Some(Instant::now());
        }
    }

    /// `SET key processing NX PX ttl GET`: one round trip that both takes the lock and
    /// tells a duplicate whether the first is still running or done.
    pub async fn acquire(&self, key: &str, ttl: Duration) -> Acquire {
        let Some(mut conn) = self.connection().await else {
            return Acquire::Unavailable;
        };
        let result: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(key)
            .arg(PROCESSING)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .arg("GET")
            .query_async(&mut conn)
            .await;
        match result {
            Ok(None) => Acquire::Acquired,
            Ok(Some(v)) if v == DONE => Acquire::Done,
            Ok(Some(_)) => Acquire::Busy,
            Err(e) => {
                self.mark_failed(&e.to_string());
                Acquire::Unavailable
            }
        }
    }

    /// Marks the work done (kept `keep` long, so late duplicates skip without the database).
    pub async fn finish(&self, key: &str, keep: Duration) {
        if let Some(mut conn) = self.connection().await {
            let r: redis::RedisResult<()> = conn
                .set_options(
                    key,
                    DONE,
                    redis::SetOptions::default()
                        .conditional_set(redis::ExistenceCheck::XX)
                        .with_expiration(redis::SetExpiry::EX(keep.as_secs())),
                )
                .await;
            if let Err(e) = r {
                self.mark_failed(&e.to_string());
            }
        }
    }

    /// Remembers a value for `ttl` (best effort).
    pub async fn remember(&self, key: &str, value: &str, ttl: Duration) {
        if let Some(mut conn) = self.connection().await {
            let r: redis::RedisResult<()> = conn.set_ex(key, value, ttl.as_secs().max(1)).await;
            if let Err(e) = r {
                self.mark_failed(&e.to_string());
            }
        }
    }

    /// The values remembered under `keys`, in one round trip (`None`: Redis unavailable).
    pub async fn recall(&self, keys: &[String]) -> Option<Vec<Option<String>>> {
        if keys.is_empty() {
            return Some(Vec::new());
        }
        let mut conn = self.connection().await?;
        let r: redis::RedisResult<Vec<Option<String>>> =
            redis::cmd("MGET").arg(keys).query_async(&mut conn).await;
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.mark_failed(&e.to_string());
                None
            }
        }
    }

    /// Runs a Lua script (EVALSHA, loading it on first use): one round trip, atomic in Redis.
    /// `None` when Redis is unreachable or the script failed.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut conn = self.connection().await?;
        match call.invoke_async(&mut conn).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.mark_failed(&e.to_string());
                None
            }
        }
    }

    /// Gives the lock up after a failure, so Meta's retry can process the message at once.
    pub async fn release(&self, key: &str) {
        if let Some(mut conn) = self.connection().await {
            let r: redis::RedisResult<()> = conn.del(key).await;
            if let Err(e) = r {
                self.mark_failed(&e.to_string());
            }
        }
    }
}
