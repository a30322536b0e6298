//! The outbox: an outbound message is stored first (`enqueued: false`), then its job goes to
//! SQS, then it is marked enqueued. Whatever stops that sequence (a queue outage, a crash, a
//! function cut off at its timeout) leaves a stored message that a retry of the same request
//! completes ([`dispatch`] again), or that [`relay`] re-enqueues after a grace period. The
//! sender is idempotent per message, so a job enqueued twice is delivered once.

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
/// (idempotent: the same `$set` again), sends its job, marks it enqueued. Safe to call
/// again on the same message at any point of a previous, interrupted call.
pub async fn dispatch(outbox: Outbox<'_>, message: &MessageDoc) -> Result<(), ApiError> {
    dispatch_at(outbox, message, Booking::default()).await
}

/// [`dispatch`] for a message whose slots are booked (see [`crate::pacing::admit`]): its
/// job waits in the queue until then.
pub async fn dispatch_at(
    outbox: Outbox<'_>,
    message: &MessageDoc,
    booking: Booking,
) -> Result<(), ApiError> {
    if let Some(update) = &message.state_update {
        customer::apply(
            outbox.store,
            &message.tenant_id,
            &message.customer_wa_id,
            update,
        )
        .await?;
    }
    failpoint::hit("outbox.before_enqueue").await?;
    enqueue(outbox, message, booking).await?;
    failpoint::hit("outbox.after_enqueue").await?;
    mark_enqueued(outbox.store, message).await
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

async fn mark_enqueued(store: &Store, message: &MessageDoc) -> Result<(), ApiError> {
    let now = DateTime::now();
    store
        .collection::<MessageDoc>(MESSAGES)
        .await?
        .update_one(
            doc! { "_id": message.id, "tenantId": message.tenant_id },
            doc! { "$set": { "enqueued": true, "enqueuedAt": now } },
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
        mark_enqueued(outbox.store, &message).await?;
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
        mark_enqueued(outbox.store, message).await?;
    }
    if !released.is_empty() {
        tracing::info!(tenantId = %tenant, released = released.len(), "held messages released");
    }
    Ok(released.len())
}
