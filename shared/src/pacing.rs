//! Pacing: Meta's throughput limit per business number and its pair rate per customer, kept
//! by every sender instance together through Redis (one script call per decision).
//!
//! Both limits are GCRA ("generic cell rate algorithm"): a key holds the theoretical arrival
//! time (TAT) of the next message; a message may go at `max(now, TAT - tolerance)` and moves
//! the TAT one interval past that. A customer has a tolerance (45 messages at once, then one
//! per 6 s by default), so a bot's quick answers are never held back while a broadcast to
//! one customer is spaced; its slot is booked however far ahead, so its messages keep their
//! order.
//!
//! A number has two timelines. Its *schedule* spreads API sends when they are accepted: a
//! broadcast of thousands books its places at the number's rate and waits in SQS as jobs
//! delayed until then, never in front of another tenant's messages. Its *send* timeline is
//! what actually leaves: every send takes a slot there right before it goes, with no
//! tolerance (an 80 msg/s number sends one message every 12.5 ms, so no second holds more
//! than 81) and never more than [`HORIZON`] ahead; a message without a slot that near goes
//! back to the queue, delayed until about then, without booking anything. A bot's reply
//! takes no place in the schedule, so it is never queued behind its own tenant's broadcast:
//! it waits at most for the send timeline.
//!
//! Redis's clock (`TIME`) is the only clock in these decisions, so instances with skewed
//! clocks still agree. Without Redis, messages go unpaced and Meta's throttling codes
//! (130429, 131056) slow the sender down through their retry.

use std::{sync::LazyLock, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{error::ApiError, locks::Locks};

/// A slot this close is waited for in-process; a later one goes back to the queue.
pub const HORIZON: Duration = Duration::from_millis(2000);
/// A delayed job is made visible this much before its slot (SQS delays are whole seconds
/// and a poll takes a moment), so it is in the sender, waiting, when its slot comes.
pub const EARLY: Duration = Duration::from_millis(500);
/// The least time between two messages to one customer, bursts included: more than a
/// send's jitter in transit, so a customer's messages reach Meta in the order they were
/// booked even when different sender instances send them.
pub const CUSTOMER_GAP: Duration = Duration::from_millis(200);
/// A customer's booked message whose slot is this old no longer holds back the ones booked
/// after it (its job was lost or its request abandoned; the relay sends it later, unordered).
pub const ORDER_STALE: Duration = Duration::from_secs(30);
/// How long a number stays slowed after Meta answered 130429 (or another throttling code).
const SLOW_FOR: Duration = Duration::from_secs(60);
/// The slowest a number gets: this many times its configured interval.
const SLOW_MAX: u32 = 16;

/// A tenant's pacing settings (`PATCH /tenants/{tenantId}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pacing {
    /// Messages per second from the tenant's number: Meta's default is 80, up to 1,000.
    pub throughput_per_second: u32,
    /// Messages one customer may get at once before the interval applies.
    pub customer_burst: u32,
    /// Seconds between messages to one customer once the burst is used.
    pub customer_interval_seconds: f64,
    /// How long API sends pause after Meta's spam / marketing limits (131048, 131049).
    pub marketing_backoff_minutes: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            throughput_per_second: 80,
            customer_burst: 45,
            customer_interval_seconds: 6.0,
            marketing_backoff_minutes: 60,
        }
    }
}

pub const THROUGHPUT_MAX: u32 = 1000;
pub const CUSTOMER_BURST_MAX: u32 = 1000;
pub const CUSTOMER_INTERVAL_MAX: f64 = 86_400.0;
pub const MARKETING_BACKOFF_MAX: u32 = 7 * 24 * 60;

impl Pacing {
    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !(1..=THROUGHPUT_MAX).contains(&self.throughput_per_second) {
            return Err(ApiError::invalid(
                "throughputPerSecond",
                format!("must be a whole number from 1 to {THROUGHPUT_MAX}"),
            ));
        }
        if !(1..=CUSTOMER_BURST_MAX).contains(&self.customer_burst) {
            return Err(ApiError::invalid(
                "customerBurst",
                format!("must be a whole number from 1 to {CUSTOMER_BURST_MAX}"),
            ));
        }
        let i = self.customer_interval_seconds;
        if !(i.is_finite() && (0.0..=CUSTOMER_INTERVAL_MAX).contains(&i)) {
            return Err(ApiError::invalid(
                "customerIntervalSeconds",
                "must be a number of seconds from 0 to 86400",
            ));
        }
        if self.marketing_backoff_minutes > MARKETING_BACKOFF_MAX {
            return Err(ApiError::invalid(
                "marketingBackoffMinutes",
                format!("must be a whole number from 0 to {MARKETING_BACKOFF_MAX}"),
            ));
        }
        Ok(())
    }

    /// How late a send may leave its slot and still count as on time: a quarter interval
    /// (2 ms at the least: the timer's own granularity).
    pub fn late_tolerance(&self) -> Duration {
        Duration::from_micros((self.number_interval_ms() * 250.0).max(2000.0) as u64)
    }

    /// The number's send interval: for one message per second less than the setting (5 %
    /// less below 20 msg/s), so a send held up in transit (a stalled connection, a busy
    /// process) never lets one second hold more than `throughputPerSecond + 1` at Meta.
    fn number_interval_ms(&self) -> f64 {
        let rate = f64::from(self.throughput_per_second.max(1));
        1000.0 / (rate - (rate * 0.05).min(1.0))
    }

    fn customer_interval_ms(&self) -> f64 {
        self.customer_interval_seconds * 1000.0
    }

    /// GCRA tolerance: `burst - 1` intervals.
    fn customer_tolerance_ms(&self) -> f64 {
        f64::from(self.customer_burst.saturating_sub(1)) * self.customer_interval_ms()
    }

    pub fn marketing_backoff(&self) -> Duration {
        Duration::from_secs(u64::from(self.marketing_backoff_minutes) * 60)
    }
}

/// Who a message goes from and to: the keys its limits live under. The hash tag keeps a
/// number's keys in one Redis Cluster slot, so a script may touch them together.
pub struct Lane<'a> {
    pub phone_number_id: &'a str,
    pub customer: &'a str,
}

impl Lane<'_> {
    fn number_key(&self) -> String {
        format!("wa:pace:{{{}}}:n", self.phone_number_id)
    }
    fn schedule_key(&self) -> String {
        format!("wa:pace:{{{}}}:schedule", self.phone_number_id)
    }
    fn slow_key(&self) -> String {
        format!("wa:pace:{{{}}}:slow", self.phone_number_id)
    }
    fn customer_key(&self) -> String {
        format!("wa:pace:{{{}}}:c:{}", self.phone_number_id, self.customer)
    }
    fn customer_last_key(&self) -> String {
        format!("wa:pace:{{{}}}:cl:{}", self.phone_number_id, self.customer)
    }
    /// The customer's booked messages not yet sent, scored by their slots.
    fn customer_pending_key(&self) -> String {
        format!("wa:pace:{{{}}}:cq:{}", self.phone_number_id, self.customer)
    }
    /// The customer's last slot on the send timeline, and whose it was.
    fn customer_sent_key(&self) -> String {
        format!("wa:pace:{{{}}}:cs:{}", self.phone_number_id, self.customer)
    }
}

/// A decision for one message. Times are Redis's epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go at `at`: the slot is booked (and the customer's, unless it was already).
    Send { at: i64, now: i64 },
    /// The customer's next slot is `until`, booked for this message; nothing else is.
    Customer { until: i64, now: i64 },
    /// The number has no slot before `until` (beyond [`HORIZON`]); nothing was booked.
    Number { until: i64, now: i64 },
    /// A message of this customer booked before this one has not gone yet (until `until`
    /// at the latest, when it is stale); nothing was booked.
    Behind { until: i64, now: i64 },
    /// Redis is unreachable: send unpaced.
    Unpaced,
}

/// What a message already holds when it is decided (see [`admit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Booking {
    /// Not before this (epoch ms).
    pub not_before: Option<i64>,
    /// The customer's slot at `not_before` is booked.
    pub customer: bool,
}

/// Which of the number's two timelines a decision books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// When an API send is accepted: its place in the number's schedule, however far ahead
    /// (the job waits in the queue until then).
    Schedule,
    /// Right before a send: the number's actual sends, never more than [`HORIZON`] ahead.
    Send,
}

const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slow = tonumber(redis.call('GET', KEYS[2]) or '1')
local nT = tonumber(ARGV[1]) * slow
local cT, ctau = tonumber(ARGV[2]), tonumber(ARGV[3])
local customer_booked = ARGV[4] == '1'
local start = math.max(now, tonumber(ARGV[5]))
local schedule = ARGV[6] == 'schedule'
local horizon = tonumber(ARGV[7])
local gap = tonumber(ARGV[8])
local ticket = ARGV[9]
local stale = tonumber(ARGV[10])
local function put(key, v)
  redis.call('SET', key, string.format('%.3f', v), 'PX', math.ceil(v - now) + 60000)
end
local function pend(c)
  if ticket ~= '' then
    redis.call('ZADD', KEYS[6], c, ticket)
    redis.call('PEXPIRE', KEYS[6], math.ceil(c - now) + stale + 60000)
  end
end
local ctat = tonumber(redis.call('GET', KEYS[3]) or '0')
if not customer_booked then
  local clast = tonumber(redis.call('GET', KEYS[5]) or '-1e15')
  local c = math.max(start, ctat - ctau, clast + gap)
  if c > start then
    put(KEYS[3], math.max(ctat, c) + cT)
    put(KEYS[5], c)
    if schedule then pend(c) end
    return {1, math.ceil(c), now}
  end
end
local key = schedule and KEYS[1] or KEYS[4]
local tat = tonumber(redis.call('GET', key) or '0')
local n = math.max(start, tat)
if not schedule and customer_booked and ticket ~= '' then
  local mine = redis.call('ZSCORE', KEYS[6], ticket)
  if mine then
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (now - stale))
    local first = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    if first[1] and first[1] ~= ticket and tonumber(first[2]) < tonumber(mine) then
      return {3, math.ceil(tonumber(first[2]) + stale), now}
    end
    local last = redis.call('GET', KEYS[7])
    if last then
      local at, who = string.match(last, '^([^|]+)|(.*)$')
      if who ~= ticket then n = math.max(n, tonumber(at) + gap) end
    end
  end
end
if not schedule and n - now > horizon then
  return {2, math.ceil(n), now}
end
put(key, n + nT)
if not customer_booked then
  put(KEYS[3], math.max(ctat, n) + cT)
  put(KEYS[5], n)
  if schedule then pend(n) end
end
if not schedule then
  redis.call('SET', KEYS[7], string.format('%.3f|%s', n, ticket), 'PX', math.ceil(n - now) + 60000)
end
return {0, math.ceil(n), now}
"#;

/// A booked message has been sent (or Graph answered it otherwise): the customer's next
/// one may go.
const SENT: &str = r#"
return redis.call('ZREM', KEYS[1], ARGV[1])
"#;

/// Slows a number Meta throttled: its interval doubles (up to 16×) for a minute, and
/// nothing more goes out from it for a second.
const SLOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slow = math.min(tonumber(redis.call('GET', KEYS[2]) or '1') * 2, tonumber(ARGV[1]))
redis.call('SET', KEYS[2], slow, 'PX', ARGV[2])
local ntat = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = math.max(ntat, now + 1000)
redis.call('SET', KEYS[1], string.format('%.3f', v), 'PX', math.ceil(v - now) + 60000)
return slow
"#;

/// Pushes a customer's next slot one interval out (Meta answered 131056).
const PUSH_CUSTOMER: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ctat = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = math.max(ctat, now) + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.3f', v), 'PX', math.ceil(v - now) + 60000)
return math.ceil(v)
"#;

static ADMIT_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ADMIT));
static SLOW_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SLOW));
static SENT_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SENT));
static PUSH_CUSTOMER_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(PUSH_CUSTOMER));

/// Decides a message in one script call: the customer's slot first (booked however far
/// ahead, so a customer's messages keep their order); only once the customer may have a
/// message, a slot on the number's `timeline`.
///
/// `ticket` (the message's id) keeps that order when jobs reach the sender out of order (one
/// batch slow to claim, another on time) or a send leaves its slot late: a message booked on
/// the schedule waits on the send timeline until every message of the customer booked
/// before it has been sent (its Graph call returned, [`sent`]) or is [`ORDER_STALE`], and
/// then leaves at least [`CUSTOMER_GAP`] after the previous one's slot.
pub async fn admit(
    locks: &Locks,
    lane: &Lane<'_>,
    pacing: &Pacing,
    held: Booking,
    timeline: Timeline,
    ticket: &str,
) -> Decision {
    let script = &*ADMIT_SCRIPT;
    let mut call = script.key(lane.schedule_key());
    call.key(lane.slow_key())
        .key(lane.customer_key())
        .key(lane.number_key())
        .key(lane.customer_last_key())
        .key(lane.customer_pending_key())
        .key(lane.customer_sent_key())
        .arg(pacing.number_interval_ms())
        .arg(pacing.customer_interval_ms())
        .arg(pacing.customer_tolerance_ms())
        .arg(if held.customer { 1 } else { 0 })
        .arg(held.not_before.unwrap_or(0))
        .arg(match timeline {
            Timeline::Schedule => "schedule",
            Timeline::Send => "send",
        })
        .arg(HORIZON.as_millis() as u64)
        .arg(CUSTOMER_GAP.as_millis() as u64)
        .arg(ticket)
        .arg(ORDER_STALE.as_millis() as u64);
    match locks.invoke::<(i64, i64, i64)>(&call).await {
        Some((0, at, now)) => Decision::Send { at, now },
        Some((1, until, now)) => Decision::Customer { until, now },
        Some((3, until, now)) => Decision::Behind { until, now },
        Some((_, until, now)) => Decision::Number { until, now },
        None => Decision::Unpaced,
    }
}

/// A booked message's Graph call returned: the customer's messages booked after it stop
/// waiting for it (see [`admit`]).
pub async fn sent(locks: &Locks, lane: &Lane<'_>, ticket: &str) {
    let script = &*SENT_SCRIPT;
    let mut call = script.key(lane.customer_pending_key());
    call.arg(ticket);
    let _ = locks.invoke::<i64>(&call).await;
}

/// Meta throttled the number (130429, 4, 80007, HTTP 429): slow it down for a while.
pub async fn slow_number(locks: &Locks, lane: &Lane<'_>) {
    let script = &*SLOW_SCRIPT;
    let mut call = script.key(lane.number_key());
    call.key(lane.slow_key())
        .arg(SLOW_MAX)
        .arg(SLOW_FOR.as_millis() as u64);
    let _ = locks.invoke::<i64>(&call).await;
}

/// Meta refused the pair rate (131056): the customer's next slot moves one interval out.
pub async fn push_customer(locks: &Locks, lane: &Lane<'_>, pacing: &Pacing) {
    let script = &*PUSH_CUSTOMER_SCRIPT;
    let mut call = script.key(lane.customer_key());
    call.arg(pacing.customer_interval_ms().max(1000.0));
    let _ = locks.invoke::<i64>(&call).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_field_out_of_range() {
        let field = |p: Pacing| match p.validate() {
            Err(ApiError::Unprocessable { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(Pacing::default().validate().is_ok());
        let d = Pacing::default();
        assert_eq!(
            field(Pacing {
                throughput_per_second: 0,
                ..d
            }),
            "throughputPerSecond"
        );
        assert_eq!(
            field(Pacing {
                throughput_per_second: 1001,
                ..d
            }),
            "throughputPerSecond"
        );
        assert_eq!(
            field(Pacing {
                customer_burst: 0,
                ..d
            }),
            "customerBurst"
        );
        assert_eq!(
            field(Pacing {
                customer_interval_seconds: f64::NAN,
                ..d
            }),
            "customerIntervalSeconds"
        );
        assert_eq!(
            field(Pacing {
                marketing_backoff_minutes: MARKETING_BACKOFF_MAX + 1,
                ..d
            }),
            "marketingBackoffMinutes"
        );
    }

    #[test]
    fn tolerance_is_burst_minus_one_intervals() {
        let p = Pacing {
            customer_burst: 2,
            customer_interval_seconds: 2.0,
            ..Pacing::default()
        };
        assert_eq!(p.customer_tolerance_ms(), 2000.0);
        // 80 msg/s is paced at 79, 1,000 at 999, 10 at 9.5.
        assert!((Pacing::default().number_interval_ms() - 1000.0 / 79.0).abs() < 1e-9);
        let ten = Pacing {
            throughput_per_second: 10,
            ..Pacing::default()
        };
        assert!((ten.number_interval_ms() - 1000.0 / 9.5).abs() < 1e-9);
    }
}
