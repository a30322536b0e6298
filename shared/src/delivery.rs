//! Delivery state of outbound messages, handled by the sender a batch at a time.
//!
//! Claim: a lease per message in its document (one `updateMany` with a batch token, then one
//! `find`; for a batch of one, one `findAndModify`), so every sender instance sees every
//! lease and concurrent or redelivered jobs of a message never send it twice. The lease outlives the sender's timeout and is released
//! only by the write that records the attempt's outcome: a `sent` is recorded as soon as its
//! Graph call returns; retries and failures of a batch in one `update` command (per-document
//! values picked with `$indexOfArray`).

use std::{collections::HashMap, time::Duration};

use futures::TryStreamExt;
use mongodb::bson::{self, Bson, DateTime, Document, doc, oid::ObjectId};

use crate::{
    error::ApiError,
    ids::{MessageId, TenantId},
    message::{MessageDoc, MessageError, Status},
    store::{MESSAGES, Store},
};

/// How the claim on one message ended.
#[derive(Debug)]
pub enum Claim {
    /// Ours to send. `interrupted`: an earlier attempt claimed it and never recorded an
    /// outcome (cut off, crashed, or its write failed), so Graph may already have it.
    Claimed {
        message: Box<MessageDoc>,
        interrupted: bool,
    },
    /// Sent (or failed for good) already: acknowledge the job.
    Finished,
    /// Another attempt holds the lease until then: try again after it.
    Busy {
        until: DateTime,
    },
    Missing,
}

fn epoch() -> DateTime {
    DateTime::from_millis(0)
}

/// Claims every message of a batch that is undelivered and not leased by another attempt.
pub async fn claim_batch(
    store: &Store,
    ids: &[MessageId],
    lease: Duration,
) -> Result<HashMap<MessageId, Claim>, ApiError> {
    let token = ObjectId::new();
    let now = DateTime::now();
    let until = DateTime::from_millis(now.timestamp_millis() + lease.as_millis() as i64);
    let messages = store.collection::<Document>(MESSAGES).await?;
    let wanted: Vec<Bson> = ids.iter().map(|id| (*id).into()).collect();
    // One id by equality: the `_id` index, whatever the database's planner does with `$in`.
    let id_filter = match wanted.as_slice() {
        [one] => one.clone(),
        _ => Bson::Document(doc! { "$in": &wanted }),
    };
    let claimable = doc! { "_id": id_filter, "direction": "OUT", "statusRank": 0, "leaseUntil": { "$lt": now } };
    let lease = vec![doc! { "$set": {
        // Recording an outcome removes the token: one still there is an attempt that never
        // finished.
        "interrupted": { "$ne": [{ "$ifNull": ["$leaseToken", null] }, null] },
        "status": Status::Sending.as_str(),
        "leaseUntil": until,
        "leaseToken": token,
        // A job reached the sender, so it was enqueued whatever the outbox recorded.
        "enqueued": true,
    } }];
    // One message (a quiet queue's usual batch): claimed and read in one command; only one
    // that could not be claimed is read again, to tell why.
    let claimed_one = match ids {
        [_] => {
            messages
                .find_one_and_update(claimable, lease)
                .return_document(mongodb::options::ReturnDocument::After)
                .await?
        }
        _ => {
            messages.update_many(claimable, lease).await?;
            None
        }
    };
    let docs: Vec<Document> = match claimed_one {
        Some(doc) => vec![doc],
        None => {
            messages
                .find(doc! { "_id": { "$in": wanted }, "direction": "OUT" })
                .await?
                .try_collect()
                .await?
        }
    };
    let mut claims: HashMap<MessageId, Claim> =
        ids.iter().map(|id| (*id, Claim::Missing)).collect();
    for raw in docs {
        let ours = raw.get_object_id("leaseToken").is_ok_and(|t| t == token);
        let interrupted = raw.get_bool("interrupted").unwrap_or(false);
        let Ok(message) = bson::from_document::<MessageDoc>(raw) else {
            continue;
        };
        let id = message.id;
        let claim = if message.status_rank > 0 {
            Claim::Finished
        } else if ours {
            Claim::Claimed {
                message: Box::new(message),
                interrupted,
            }
        } else {
            Claim::Busy {
                until: message.lease_until.unwrap_or(until),
            }
        };
        claims.insert(id, claim);
    }
    Ok(claims)
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent {
        wamid: String,
    },
    /// Back to `queued` with the error, for the queue to redeliver.
    Retry(MessageError),
    /// Permanent: `failed` with Graph's error.
    Failed(MessageError),
    /// The tenant's token was refused: `held` until it is replaced (not an attempt).
    Held(MessageError),
    /// Given back before Graph was called (pacing held it back; its job is re-enqueued,
    /// delayed): `queued` again, not an attempt.
    Deferred,
}

#[derive(Debug, Clone)]
pub struct Finish {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub attempt: Attempt,
}

/// `{$arrayElemAt: [values, {$indexOfArray: [ids, "$_id"]}]}`: this document's value.
fn pick(ids: &[Bson], values: Vec<Bson>) -> Document {
    doc! { "$arrayElemAt": [values, { "$indexOfArray": [ids, "$_id"] }] }
}

/// One pipeline update for every finish of one kind.
fn statement(finishes: &[&Finish], now: DateTime) -> Result<Option<Document>, ApiError> {
    let Some(first) = finishes.first() else {
        return Ok(None);
    };
    let ids: Vec<Bson> = finishes.iter().map(|f| f.id.into()).collect();
    let tenants: Vec<Bson> = finishes.iter().map(|f| f.tenant_id.into()).collect();
    let errors = || -> Result<Vec<Bson>, ApiError> {
        finishes
            .iter()
            .map(|f| match &f.attempt {
                Attempt::Retry(e) | Attempt::Failed(e) | Attempt::Held(e) => {
                    bson::to_bson(e).map_err(|e| ApiError::unavailable("database", e))
                }
                Attempt::Sent { .. } | Attempt::Deferred => Ok(Bson::Null),
            })
            .collect()
    };
    let mut set = doc! {
        "leaseUntil": epoch(),
        "updatedAt": now,
        "attempts": { "$add": [{ "$ifNull": ["$attempts", 0] }, 1] },
    };
    let mut unset = vec!["leaseToken", "interrupted"];
    match &first.attempt {
        Attempt::Sent { .. } => {
            let wamids: Vec<Bson> = finishes
                .iter()
                .map(|f| match &f.attempt {
                    Attempt::Sent { wamid } => Bson::String(wamid.clone()),
                    _ => Bson::Null,
                })
                .collect();
            set.insert("status", Status::Sent.as_str());
            set.insert("statusRank", Status::Sent.rank());
            set.insert("waMessageId", pick(&ids, wamids));
            set.insert("statusAt.sent", now);
            unset.push("lastError");
        }
        Attempt::Retry(_) => {
            set.insert("status", Status::Queued.as_str());
            set.insert("lastError", pick(&ids, errors()?));
        }
        Attempt::Deferred => {
            set.remove("attempts");
            set.insert("status", Status::Queued.as_str());
            // Its job goes back to the queue now: the relay must not take a long wait for a
            // lost job.
            set.insert("enqueued", true);
            set.insert("enqueuedAt", now);
        }
        Attempt::Held(_) => {
            set.remove("attempts");
            set.insert("status", Status::Held.as_str());
            set.insert("lastError", pick(&ids, errors()?));
        }
        Attempt::Failed(_) => {
            set.insert("status", Status::Failed.as_str());
            set.insert("statusRank", Status::Failed.rank());
            set.insert("lastError", pick(&ids, errors()?));
            set.insert("statusAt.failed", now);
        }
    }
    Ok(Some(doc! {
        // Each id with its own tenant, and only while still undelivered.
        "q": { "_id": { "$in": ids }, "tenantId": { "$in": tenants }, "statusRank": 0 },
        "u": [ { "$set": set }, { "$unset": unset } ],
        "multi": true,
    }))
}

/// Records every outcome of a batch in one `update` command (one round trip).
pub async fn finish_batch(store: &Store, finishes: &[Finish]) -> Result<(), ApiError> {
    let now = DateTime::now();
    let mut groups: [Vec<&Finish>; 5] = Default::default();
    for f in finishes {
        let slot = match f.attempt {
            Attempt::Sent { .. } => 0,
            Attempt::Retry(_) => 1,
            Attempt::Failed(_) => 2,
            Attempt::Held(_) => 3,
            Attempt::Deferred => 4,
        };
        groups[slot].push(f);
    }
    let mut updates = Vec::new();
    for group in &groups {
        if let Some(s) = statement(group, now)? {
            updates.push(s);
        }
    }
    if updates.is_empty() {
        return Ok(());
    }
    let reply = store
        .ready()
        .await?
        .run_command(doc! { "update": MESSAGES, "updates": updates, "ordered": false })
        .await?;
    if let Ok(errors) = reply.get_array("writeErrors")
        && !errors.is_empty()
    {
        return Err(ApiError::unavailable(
            "database",
            format!("{} delivery updates failed", errors.len()),
        ));
    }
    Ok(())
}
