//! Storage of messages: inserts under the idempotency index, lookups, statuses (with the
//! statuses that arrive before their message is known) and the message log.

use futures::TryStreamExt;
use mongodb::{
    Collection,
    bson::{self, DateTime, Document, doc},
};

use super::{ListFilter, MessageDoc, MessageError, Status};
use crate::{
    error::ApiError,
    ids::TenantId,
    store::{MESSAGES, PENDING_STATUSES, Store, is_duplicate_key},
};

async fn collection(store: &Store) -> Result<Collection<MessageDoc>, ApiError> {
    store.collection(MESSAGES).await
}

/// What an insert under the idempotency index did.
#[derive(Debug)]
pub enum Inserted {
    Inserted,
    /// A message with this key exists already: that one.
    Duplicate(Box<MessageDoc>),
}

/// Inserts unless a message with the same idempotency key exists.
pub async fn insert(store: &Store, message: &MessageDoc) -> Result<Inserted, ApiError> {
    match collection(store).await?.insert_one(message).await {
        Ok(_) => Ok(Inserted::Inserted),
        Err(e) if is_duplicate_key(&e) => {
            let tenant = message.tenant_id;
            match find_by_key(store, &tenant, &message.idempotency_key).await? {
                Some(existing) => Ok(Inserted::Duplicate(Box::new(existing))),
                // Deleted in between: a conflict the caller can retry.
                None => Err(ApiError::unavailable(
                    "database",
                    "duplicate key without a document",
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Inserts an inbound message; `false` when this wamid is already stored. One round trip.
pub async fn insert_inbound(store: &Store, message: &MessageDoc) -> Result<bool, ApiError> {
    match collection(store).await?.insert_one(message).await {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What [`insert_with_reply`] did.
#[derive(Debug)]
pub enum Stored {
    /// Both are new.
    Both,
    /// The inbound message was stored by an earlier delivery; the reply was then inserted
    /// alone, with this outcome.
    Again(Inserted),
}

/// The index of the first duplicate-key error of an `insertMany`.
fn duplicate_at(e: &mongodb::error::Error) -> Option<usize> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()?
            .iter()
            .find(|w| w.code == 11000)
            .map(|w| w.index),
        _ if is_duplicate_key(e) => Some(0),
        _ => None,
    }
}

/// Inserts an inbound message and its reply in one round trip. In order: a wamid stored
/// already stops the insert before the reply, which is then inserted alone (a retry's
/// path, so the usual one stays a single command).
pub async fn insert_with_reply(
    store: &Store,
    inbound: &MessageDoc,
    reply: &MessageDoc,
) -> Result<Stored, ApiError> {
    let messages = collection(store).await?;
    match messages.insert_many([inbound, reply]).ordered(true).await {
        Ok(_) => Ok(Stored::Both),
        Err(e) => match duplicate_at(&e) {
            Some(0) => Ok(Stored::Again(insert(store, reply).await?)),
            Some(_) => match find_by_key(store, &reply.tenant_id, &reply.idempotency_key).await? {
                Some(existing) => Ok(Stored::Again(Inserted::Duplicate(Box::new(existing)))),
                None => Err(ApiError::unavailable(
                    "database",
                    "duplicate key without a document",
                )),
            },
            None => Err(e.into()),
        },
    }
}

pub async fn find_by_key(
    store: &Store,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<MessageDoc>, ApiError> {
    Ok(collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant, "idempotencyKey": key })
        .await?)
}

/// A delivery status for an outbound message, from Meta's webhook.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub wamid: String,
    pub status: Status,
    pub at: DateTime,
    pub error: Option<MessageError>,
}

/// How a status was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    /// The message moved forward.
    Applied,
    /// The message is already at or past it.
    Stale,
    /// No message has this wamid yet (the sender has not recorded it): kept, and applied
    /// when it is recorded.
    Kept,
}

/// Where the webhook marks that a status for this wamid is kept (see [`take_pending_statuses`]).
pub fn kept_status_key(wamid: &str) -> String {
    format!("wa:kept:{wamid}")
}

/// Longer than a send's `sent` can take to be recorded; the relay's sweep applies anything
/// kept longer.
pub const KEPT_MARK_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Applies the status if it moves the message forward (sent < delivered < read; `failed`
/// only overrides up to `sent`).
pub async fn move_forward(
    store: &Store,
    tenant: &TenantId,
    s: &StatusUpdate,
) -> Result<bool, ApiError> {
    let allowed = if s.status == Status::Failed {
        doc! { "$lte": Status::Sent.rank() }
    } else {
        doc! { "$lt": s.status.rank() }
    };
    let mut set = doc! {
        "status": s.status.as_str(),
        "statusRank": s.status.rank(),
        "updatedAt": DateTime::now(),
        format!("statusAt.{}", s.status.as_str()): s.at,
    };
    if let Some(e) = &s.error {
        set.insert(
            "lastError",
            bson::to_bson(e).map_err(|e| ApiError::unavailable("database", e))?,
        );
    }
    let r = collection(store)
        .await?
        .update_one(
            doc! { "tenantId": *tenant, "waMessageId": &s.wamid, "direction": "OUT", "statusRank": allowed },
            doc! { "$set": set },
        )
        .await?;
    Ok(r.modified_count > 0)
}

/// A status from Meta. One that overtakes the sender's own record of the wamid (Meta can
/// report `delivered` before the send's response is processed) is kept in
/// `pendingStatuses` (7-day TTL) and applied when the sender records the wamid.
pub async fn apply_status(
    store: &Store,
    tenant: &TenantId,
    s: &StatusUpdate,
) -> Result<StatusApplied, ApiError> {
    if move_forward(store, tenant, s).await? {
        return Ok(StatusApplied::Applied);
    }
    let known = collection(store)
        .await?
        .count_documents(doc! { "tenantId": *tenant, "waMessageId": &s.wamid })
        .limit(1)
        .await?;
    if known > 0 {
        return Ok(StatusApplied::Stale);
    }
    let mut pending = doc! {
        "tenantId": *tenant,
        "wamid": &s.wamid,
        "status": s.status.as_str(),
        "at": s.at,
        "createdAt": DateTime::now(),
    };
    if let Some(e) = &s.error {
        pending.insert(
            "error",
            bson::to_bson(e).map_err(|e| ApiError::unavailable("database", e))?,
        );
    }
    store
        .collection::<Document>(PENDING_STATUSES)
        .await?
        .insert_one(pending)
        .await?;
    // The sender may have recorded the wamid between the update and the insert, and then
    // looked for kept statuses before this one was there: try once more.
    if move_forward(store, tenant, s).await? {
        return Ok(StatusApplied::Applied);
    }
    Ok(StatusApplied::Kept)
}

/// Applies, in order, the kept statuses of wamids the sender has just recorded, and drops
/// them. One `find` when none are waiting.
pub async fn take_pending_statuses(
    store: &Store,
    recorded: &[(TenantId, String)],
) -> Result<usize, ApiError> {
    if recorded.is_empty() {
        return Ok(0);
    }
    let wamids: Vec<&str> = recorded.iter().map(|(_, w)| w.as_str()).collect();
    let pending = store.collection::<Document>(PENDING_STATUSES).await?;
    let found: Vec<Document> = pending
        .find(doc! { "wamid": { "$in": &wamids } })
        .await?
        .try_collect()
        .await?;
    let mut applied = 0;
    let mut done = Vec::new();
    for p in &found {
        let (Ok(tenant), Ok(wamid), Ok(status)) = (
            p.get_object_id("tenantId"),
            p.get_str("wamid"),
            p.get_str("status"),
        ) else {
            continue;
        };
        // Only the tenant that owns the recorded message gets its statuses.
        let Some((tenant, _)) = recorded
            .iter()
            .find(|(t, w)| t.object_id() == tenant && w == wamid)
        else {
            continue;
        };
        let Some(status) = Status::from_meta(status) else {
            continue;
        };
        let update = StatusUpdate {
            wamid: wamid.to_owned(),
            status,
            at: p
                .get_datetime("at")
                .copied()
                .unwrap_or_else(|_| DateTime::now()),
            error: p
                .get_document("error")
                .ok()
                .and_then(|e| bson::from_document(e.clone()).ok()),
        };
        if move_forward(store, tenant, &update).await? {
            applied += 1;
        }
        if let Ok(id) = p.get_object_id("_id") {
            done.push(id);
        }
    }
    if !done.is_empty() {
        pending.delete_many(doc! { "_id": { "$in": done } }).await?;
    }
    Ok(applied)
}

/// Applies kept statuses whose wamid has been recorded since (when the sender could not
/// apply them itself), and drops those. Bounded per run; what remains waits for the next.
pub async fn sweep_pending_statuses(store: &Store) -> Result<usize, ApiError> {
    let found: Vec<Document> = store
        .collection::<Document>(PENDING_STATUSES)
        .await?
        .find(doc! {})
        .sort(doc! { "createdAt": 1 })
        .limit(500)
        .await?
        .try_collect()
        .await?;
    if found.is_empty() {
        return Ok(0);
    }
    let tenants: Vec<_> = found
        .iter()
        .filter_map(|p| p.get_object_id("tenantId").ok())
        .collect();
    let wamids: Vec<&str> = found
        .iter()
        .filter_map(|p| p.get_str("wamid").ok())
        .collect();
    let known: Vec<Document> = store
        .collection::<Document>(MESSAGES)
        .await?
        .find(doc! { "tenantId": { "$in": tenants }, "waMessageId": { "$in": wamids } })
        .projection(doc! { "tenantId": 1, "waMessageId": 1 })
        .await?
        .try_collect()
        .await?;
    let recorded: Vec<(TenantId, String)> = known
        .iter()
        .filter_map(|m| {
            Some((
                TenantId::from(m.get_object_id("tenantId").ok()?),
                m.get_str("waMessageId").ok()?.to_owned(),
            ))
        })
        .collect();
    take_pending_statuses(store, &recorded).await
}

/// Newest first.
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    f: &ListFilter,
) -> Result<Vec<MessageDoc>, ApiError> {
    let mut filter = doc! { "tenantId": *tenant };
    if let Some(to) = &f.to {
        filter.insert("customerWaId", to);
    }
    if let Some(s) = f.status {
        filter.insert("status", s.as_str());
    }
    if let Some(d) = f.direction {
        filter.insert(
            "direction",
            bson::to_bson(&d).map_err(|e| ApiError::unavailable("database", e))?,
        );
    }
    if let Some(b) = f.before {
        filter.insert("createdAt", doc! { "$lt": b });
    }
    Ok(collection(store)
        .await?
        .find(filter)
        .sort(doc! { "createdAt": -1, "_id": -1 })
        .limit(f.limit)
        .await?
        .try_collect()
        .await?)
}
