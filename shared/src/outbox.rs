//! The outbox: an outbound message is stored first (`enqueued: true`: its job goes to SQS
//! next, and the usual path writes nothing more), then its job goes to SQS. A failed
//! enqueue marks it `enqueued: false`, and [`relay`] re-enqueues it after a grace period; a
//! request cut off between the two is completed by its caller's retry ([`dispatch`] again),
//! or, when none comes, by the relay once the message has waited its stale period without
//! an attempt. The sender is idempotent per message, so a job enqueued twice is delivered
//! once.

use futures::TryStreamExt;
use mongodb::bson::{DateTime, doc};

use crate::{
    customer,
    error::ApiError,
    failpoint,
    ids::TenantId,
    message::MessageDoc,
    metrics::{self, Metric},
    pacing::Booking,
    queue::SendQueue,
    store::{MESSAGES, Store},
};

/// What a dispatch needs: where the message lives and the queue its job goes to.
#[derive(Clone, Copy)]
pub struct Outbox<'a> {
    pub store: &'a Store,
    /// `None` when `SEND_QUEUE_URL` is not set.
    pub queue: Option<&'a SendQueue>,
}

impl Outbox<'_> {
    fn queue(&self) -> Result<&SendQueue, ApiError> {
        self.queue
            .ok_or_else(|| ApiError::unavailable("queue", "SEND_QUEUE_URL is not set"))
    }
}

/// Completes an accepted outbound message: applies the conversation change it carries
/// (idempotent: the same `$set` again) and sends its job. Safe to call again on the same
/// message at any point of a previous, interrupted call. Returns the conversation the
/// change made.
pub async fn dispatch(
    outbox: Outbox<'_>,
    message: &MessageDoc,
) -> Result<Option<customer::Snapshot>, ApiError> {
    dispatch_at(outbox, message, Booking::default()).await
}

/// [`dispatch`] for a message whose slots are booked (see [`crate::pacing::admit`]): its
/// job waits in the queue until then.
pub async fn dispatch_at(
    outbox: Outbox<'_>,
    message: &MessageDoc,
    booking: Booking,
) -> Result<Option<customer::Snapshot>, ApiError> {
    let changed = match &message.state_update {
        Some(update) => Some(
            customer::apply(
                outbox.store,
                &message.tenant_id,
                &message.customer_wa_id,
                update,
            )
            .await?,
        ),
        None => None,
    };
    send_job(outbox, message, booking).await?;
    Ok(changed)
}

/// Longer than any function runs (the longest `Timeout` in template.yaml is 30 s): a
/// message stored this long ago by a request that has not enqueued it never will be.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a retry of the request that stored `message` must enqueue it (again): it was
/// never attempted, and either the retry holds the request's lock (whoever stored it is
/// gone), or its enqueue failed, or it was stored longer ago than any function runs.
pub fn unfinished(message: &MessageDoc, guarded: bool) -> bool {
    let abandoned = DateTime::now().timestamp_millis() - message.created_at.timestamp_millis()
        > ABANDONED_AFTER.as_millis() as i64;
    message.status == crate::message::Status::Queued
        && message.attempts == 0
        && (guarded || !message.enqueued || abandoned)
}

/// Sends the job of a stored message whose conversation change is recorded already (the
/// webhook records it with the decision). A failed send marks the message not enqueued,
/// for the relay.
pub async fn send_job(
    outbox: Outbox<'_>,
    message: &MessageDoc,
    booking: Booking,
) -> Result<(), ApiError> {
    let sent = async {
        failpoint::hit("outbox.before_enqueue").await?;
        enqueue(outbox, message, booking).await
    };
    if let Err(e) = sent.await {
        if let Err(mark) = set_enqueued(outbox.store, message, false).await {
            // The relay still finds it, after its stale period instead of its grace.
            mark.log();
        }
        return Err(e);
    }
    // One whose enqueue had failed is on its way now: the relay must not send it again.
    if !message.enqueued {
        set_enqueued(outbox.store, message, true).await?;
    }
    failpoint::hit("outbox.after_enqueue").await
}

async fn enqueue(
    outbox: Outbox<'_>,
    message: &MessageDoc,
    booking: Booking,
) -> Result<(), ApiError> {
    let mut job = message
        .job()
        .ok_or_else(|| ApiError::unavailable("outbox", "outbound message without content"))?;
    job.not_before = booking.not_before;
    job.customer_booked = booking.customer;
    outbox.queue()?.send(&job).await
}

async fn set_enqueued(store: &Store, message: &MessageDoc, enqueued: bool) -> Result<(), ApiError> {
    let now = DateTime::now();
    store
        .collection::<MessageDoc>(MESSAGES)
        .await?
        .update_one(
            doc! { "_id": message.id, "tenantId": message.tenant_id },
            doc! { "$set": { "enqueued": enqueued, "enqueuedAt": now } },
        )
        .await?;
    Ok(())
}

/// What one relay run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    /// Stored but never enqueued, past the grace period.
    pub unenqueued: usize,
    /// Enqueued but never attempted, past the stale period: the job was lost.
    pub lost: usize,
    pub failed: usize,
}

/// How many messages one run looks at (a run is bounded; the next minute's run goes on).
const RELAY_BATCH: i64 = 500;

/// Re-enqueues outbound messages that were accepted but are not on their way: stored and
/// not enqueued for longer than `grace`, or enqueued, still `queued` and never attempted
/// for longer than `stale`. Messages whose job is in the DLQ have attempts and stay there
/// (redrive is an operator's decision). Conversation state is not touched here: the
/// retry of the request that stored the message re-applies it.
pub async fn relay(
    outbox: Outbox<'_>,
    grace: std::time::Duration,
    stale: std::time::Duration,
) -> Result<RelayReport, ApiError> {
    let now = DateTime::now().timestamp_millis();
    let before = |d: std::time::Duration| DateTime::from_millis(now - d.as_millis() as i64);
    // Without a queue there is nothing to relay to: fail the run rather than scan.
    outbox.queue()?;
    let found: Vec<MessageDoc> = outbox
        .store
        .collection::<MessageDoc>(MESSAGES)
        .await?
        .find(doc! {
            "status": "queued",
            "direction": "OUT",
            "$or": [
                { "enqueued": false, "createdAt": { "$lt": before(grace) } },
                { "enqueued": true, "attempts": 0, "enqueuedAt": { "$lt": before(stale) } },
            ],
        })
        .limit(RELAY_BATCH)
        .await?
        .try_collect()
        .await?;
    let mut report = RelayReport::default();
    for message in found {
        failpoint::hit("relay.before_enqueue").await?;
        if let Err(e) = enqueue(outbox, &message, Booking::default()).await {
            e.log();
            report.failed += 1;
            continue;
        }
        set_enqueued(outbox.store, &message, true).await?;
        if message.enqueued {
            report.lost += 1;
        } else {
            report.unenqueued += 1;
        }
        tracing::info!(tenantId = %message.tenant_id, messageId = %message.id, wasEnqueued = message.enqueued, "relay re-enqueued");
        metrics::count(Metric::RelayRequeued, &[]);
    }
    Ok(report)
}

/// Releases a tenant's held messages (its token was replaced): each goes back to `queued`
/// and is enqueued once. Interrupted, the released messages are stored and not enqueued,
/// so the relay finishes the job after its grace period.
pub async fn release_held(outbox: Outbox<'_>, tenant: &TenantId) -> Result<usize, ApiError> {
    outbox.queue()?;
    let messages = outbox.store.collection::<MessageDoc>(MESSAGES).await?;
    messages
        .update_many(
            doc! { "tenantId": *tenant, "direction": "OUT", "status": "held" },
            doc! { "$set": { "status": "queued", "enqueued": false, "updatedAt": DateTime::now() } },
        )
        .await?;
    let released: Vec<MessageDoc> = messages
        .find(doc! {
            "tenantId": *tenant, "direction": "OUT", "status": "queued",
            "enqueued": false,
        })
        .sort(doc! { "createdAt": 1 })
        .await?
        .try_collect()
        .await?;
    for message in &released {
        enqueue(outbox, message, Booking::default()).await?;
        set_enqueued(outbox.store, message, true).await?;
    }
    if !released.is_empty() {
        tracing::info!(tenantId = %tenant, released = released.len(), "held messages released");
    }
    Ok(released.len())
}
