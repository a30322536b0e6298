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

/// Outcome of [`Locks::acquire_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Ours: process, then [`Locks::finish`] (or [`Locks::finish_with`]) or [`Locks::release`].
    Acquired,
    /// Another request is processing it right now.
    Busy,
    /// Already processed.
    Done,
    /// Redis is unreachable: proceed, the database is the guard.
    Unavailable,
}

/// `SET lock processing NX PX ttl GET`, then, for the owner, `GET memo`.
static BEGIN: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local prev = redis.call('SET', KEYS[1], 'processing', 'NX', 'PX', ARGV[1], 'GET')
if prev then return {'held', prev} end
local memo = redis.call('GET', KEYS[2])
if memo then return {'ours', memo} end
return {'ours'}
",
    )
});
/// `SET lock done XX EX keep`, then the memo unless a newer revision is there.
static FINISH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], 'done', 'XX', 'EX', ARGV[1])
local cur = redis.call('GET', KEYS[2])
if cur then
  local have = tonumber(string.match(cur, '^(%d+):'))
  if have and have > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
return 1
",
    )
});
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

    /// `SET key processing NX PX ttl GET` (one round trip that both takes the lock and tells
    /// a duplicate whether the first is still running or done) and, when the lock is ours,
    /// the value remembered under `memo` (the conversation the work starts from).
    pub async fn acquire_with(
        &self,
        key: &str,
        ttl: Duration,
        memo: &str,
    ) -> (Acquire, Option<String>) {
        let mut call = BEGIN.prepare_invoke();
        call.key(key).key(memo).arg(ttl.as_millis() as u64);
        match self.invoke::<Vec<String>>(&call).await {
            None => (Acquire::Unavailable, None),
            Some(reply) => match reply.as_slice() {
                [state, prev] if state == "held" && prev == DONE => (Acquire::Done, None),
                [state, _] if state == "held" => (Acquire::Busy, None),
                [_, value] => (Acquire::Acquired, Some(value.clone())),
                _ => (Acquire::Acquired, None),
            },
        }
    }

    /// [`Self::finish`], and remembers `value` under `memo` for `memo_ttl` unless a newer
    /// revision (the number before the first `:`) is remembered there already.
    pub async fn finish_with(
        &self,
        key: &str,
        keep: Duration,
        memo: &str,
        value: &str,
        rev: i64,
        memo_ttl: Duration,
    ) {
        let mut call = FINISH.prepare_invoke();
        call.key(key)
            .key(memo)
            .arg(keep.as_secs())
            .arg(value)
            .arg(rev)
            .arg(memo_ttl.as_secs().max(1));
        let _: Option<i64> = self.invoke(&call).await;
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
