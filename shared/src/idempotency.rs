//! One protocol for "this request's work happens once", used by the webhook (per inbound
//! wamid) and the send API (per idempotency key).
//!
//! Redis holds a short lock: `processing` while one request works, `done` once its work is
//! durable. The lock never outlives the function holding it (its TTL, `IDEMPOTENCY_LOCK_MS`,
//! is shorter than the function's timeout), so a request cut off mid-work never makes a
//! retry believe the work was done. A request that meets another one still working waits a
//! moment for it; if it is still working it gets [`Begin::InProgress`], which callers turn
//! into a retryable answer. Redis is an optimisation: the unique indexes in MongoDB are the
//! final guard, Redis up or down.

use std::time::Duration;

use crate::locks::{Acquire, Locks};

/// How long "done" is remembered (Meta retries for up to 7 days; past this the unique
/// indexes answer).
pub const DONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// A duplicate waits this fraction of the lock's TTL for the request that holds it before
/// answering "retry" (2 s of the default 8): long enough that concurrent deliveries of one
/// wamid all see 200, short enough to stay well inside the function's timeout.
const WAIT_DIVISOR: u32 = 4;
const POLL: Duration = Duration::from_millis(50);

/// What [`begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// This request does the work; end it with [`Held::end`].
    Owner(Held),
    /// The work was done and is durable.
    Finished,
    /// Another request is still working on it: answer "retry", never "done".
    InProgress,
    /// Redis is unreachable: do the work, the unique indexes decide.
    Unguarded,
}

/// A lock this request holds.
#[derive(Debug)]
#[must_use = "end the lock with end()"]
pub struct Held {
    key: String,
}

impl Held {
    /// Done (the work is durable: duplicates may answer "done" without the database) or,
    /// after a failure, released so a retry may take over at once.
    pub async fn end<T, E>(self, locks: &Locks, outcome: &Result<T, E>) {
        match outcome {
            Ok(_) => locks.finish(&self.key, DONE_TTL).await,
            Err(_) => locks.release(&self.key).await,
        }
    }

    /// [`Self::end`], remembering `memo` with "done" in the same round trip.
    pub async fn end_with<T, E>(
        self,
        locks: &Locks,
        outcome: &Result<T, E>,
        memo: Option<Memo<'_>>,
    ) {
        match (outcome, memo) {
            (Ok(_), Some(m)) => {
                locks
                    .finish_with(&self.key, DONE_TTL, m.key, &m.value, m.rev, m.ttl)
                    .await
            }
            _ => self.end(locks, outcome).await,
        }
    }
}

/// Takes the lock for `key` or learns who has it, waiting briefly for a holder to finish;
/// when the work is ours, also reads what is remembered under `memo` (the state the work
/// starts from), in the same round trip.
pub async fn begin_with(
    locks: &Locks,
    key: &str,
    ttl: Duration,
    memo: &str,
) -> (Begin, Option<String>) {
    let deadline = tokio::time::Instant::now() + ttl / WAIT_DIVISOR;
    loop {
        let (acquired, remembered) = locks.acquire_with(key, ttl, memo).await;
        let begin = match acquired {
            Acquire::Acquired => Begin::Owner(Held {
                key: key.to_owned(),
            }),
            Acquire::Done => Begin::Finished,
            Acquire::Unavailable => Begin::Unguarded,
            Acquire::Busy if tokio::time::Instant::now() >= deadline => Begin::InProgress,
            Acquire::Busy => {
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        return (begin, remembered);
    }
}

/// What a finished request leaves remembered for the next one (see [`begin_with`]).
#[derive(Debug)]
pub struct Memo<'a> {
    pub key: &'a str,
    pub value: String,
    /// Only a newer revision replaces what is remembered.
    pub rev: i64,
    pub ttl: Duration,
}
