//! Messages, inbound and outbound, in one collection. Every message carries an idempotency
//! key under a unique `(tenantId, idempotencyKey)` index: `in:<wamid>` for inbound,
//! `auto-reply:<inbound wamid>` for the engine's replies, the caller's key for API sends.

use mongodb::{
    Collection,
    bson::{self, DateTime, doc, oid::ObjectId},
};
use serde::{Deserialize, Serialize};

use crate::{
    customer::StateUpdate,
    error::ApiError,
    queue::{Content, SendJob},
    state::AppState,
    store::{MESSAGES, is_duplicate_key},
    template::TemplateKey,
    tenant::TenantId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "IN")]
    In,
    #[serde(rename = "OUT")]
    Out,
}

/// Delivery status. The rank only moves forward (see [`Status::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Received,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl Status {
    /// sent < delivered < read; `failed` is terminal and only overrides up to `sent`.
    pub fn rank(self) -> i32 {
        match self {
            Status::Received | Status::Queued | Status::Sending => 0,
            Status::Sent => 1,
            Status::Delivered => 2,
            Status::Read => 3,
            Status::Failed => 4,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => Status::Sent,
            "delivered" => Status::Delivered,
            "read" => Status::Read,
            "failed" => Status::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageError {
    pub code: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tenant_id: ObjectId,
    pub direction: Direction,
    /// `text`, `button_reply`, `list_reply`, `button`, `image`, ... (inbound) or the
    /// content kind (outbound).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_message_id: Option<String>,
    pub customer_wa_id: String,
    pub idempotency_key: String,
    pub status: Status,
    pub status_rank: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bson::Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_timestamp: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_key: Option<TemplateKey>,
    /// `auto_reply` or `api` for outbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The conversation change this reply makes, re-applied if a retry finishes the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_update: Option<StateUpdate>,
    #[serde(default)]
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<MessageError>,
    #[serde(default)]
    pub enqueue_failed: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl MessageDoc {
    pub fn outbound(
        tenant: &TenantId,
        to: &str,
        idempotency_key: String,
        content: Content,
        source: &str,
    ) -> Self {
        let now = DateTime::now();
        let kind = match content.kind {
            crate::queue::ContentKind::Text => "text",
            crate::queue::ContentKind::InteractiveButton => "interactive_button",
        };
        Self {
            id: ObjectId::new(),
            tenant_id: tenant.object_id(),
            direction: Direction::Out,
            kind: kind.into(),
            body: Some(content.text.clone()),
            payload_id: None,
            wa_message_id: None,
            customer_wa_id: to.to_owned(),
            idempotency_key,
            status: Status::Queued,
            status_rank: Status::Queued.rank(),
            raw: None,
            wa_timestamp: None,
            content: Some(content),
            template_key: None,
            source: Some(source.into()),
            in_reply_to: None,
            state_update: None,
            attempts: 0,
            last_error: None,
            enqueue_failed: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// The SQS job for an outbound message.
    pub fn job(&self) -> Option<SendJob> {
        Some(SendJob {
            tenant_id: self.tenant_id.to_hex(),
            message_id: self.id.to_hex(),
            to: self.customer_wa_id.clone(),
            content: self.content.clone()?,
            idempotency_key: self.idempotency_key.clone(),
        })
    }
}

async fn collection(state: &AppState) -> Result<Collection<MessageDoc>, ApiError> {
    state.store.collection(MESSAGES).await
}

/// Inserts unless a message with the same idempotency key exists; then returns that one.
pub async fn insert(
    state: &AppState,
    message: &MessageDoc,
) -> Result<Result<(), MessageDoc>, ApiError> {
    match collection(state).await?.insert_one(message).await {
        Ok(_) => Ok(Ok(())),
        Err(e) if is_duplicate_key(&e) => {
            let tenant = TenantId::from(message.tenant_id);
            match find_by_key(state, &tenant, &message.idempotency_key).await? {
                Some(existing) => Ok(Err(existing)),
                // Deleted in between: report as a conflict the caller can retry.
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
pub async fn insert_inbound(state: &AppState, message: &MessageDoc) -> Result<bool, ApiError> {
    match collection(state).await?.insert_one(message).await {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn find_by_key(
    state: &AppState,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<MessageDoc>, ApiError> {
    Ok(collection(state)
        .await?
        .find_one(doc! { "tenantId": tenant.object_id(), "idempotencyKey": key })
        .await?)
}

/// Records that enqueueing failed, so a retry re-enqueues instead of trusting it.
pub async fn mark_enqueue_failed(state: &AppState, message: &MessageDoc, why: &str) {
    let r = async {
        collection(state)
            .await?
            .update_one(
                doc! { "_id": message.id, "tenantId": message.tenant_id },
                doc! { "$set": {
                    "enqueueFailed": true,
                    "lastError": { "code": "enqueue", "title": why },
                    "updatedAt": DateTime::now(),
                } },
            )
            .await
            .map_err(ApiError::from)
    }
    .await;
    if r.is_err() {
        tracing::error!(messageId = %message.id, "could not record the enqueue failure");
    }
}

pub async fn clear_enqueue_failed(state: &AppState, message: &MessageDoc) -> Result<(), ApiError> {
    collection(state)
        .await?
        .update_one(
            doc! { "_id": message.id, "tenantId": message.tenant_id },
            doc! { "$set": { "enqueueFailed": false, "updatedAt": DateTime::now() }, "$unset": { "lastError": "" } },
        )
        .await?;
    Ok(())
}

/// A delivery status from Meta for an outbound message, applied only if it moves the
/// message forward. Returns whether it changed anything.
pub async fn apply_status(
    state: &AppState,
    tenant: &TenantId,
    wamid: &str,
    status: Status,
    at: DateTime,
    error: Option<MessageError>,
) -> Result<bool, ApiError> {
    let rank = status.rank();
    let allowed = if status == Status::Failed {
        doc! { "$lte": Status::Sent.rank() }
    } else {
        doc! { "$lt": rank }
    };
    let mut set = doc! {
        "status": status.as_str(),
        "statusRank": rank,
        "updatedAt": DateTime::now(),
        format!("statusAt.{}", status.as_str()): at,
    };
    if let Some(e) = error {
        set.insert(
            "lastError",
            bson::to_bson(&e).map_err(|_| ApiError::Internal)?,
        );
    }
    let r = collection(state)
        .await?
        .update_one(
            doc! { "tenantId": tenant.object_id(), "waMessageId": wamid, "direction": "OUT", "statusRank": allowed },
            doc! { "$set": set },
        )
        .await?;
    Ok(r.modified_count > 0)
}

/// The sender's record of a successful Graph API call.
pub async fn mark_sent(
    state: &AppState,
    message: &MessageDoc,
    wamid: &str,
) -> Result<(), ApiError> {
    collection(state)
        .await?
        .update_one(
            doc! { "_id": message.id, "tenantId": message.tenant_id, "statusRank": { "$lt": Status::Sent.rank() } },
            doc! { "$set": {
                "status": Status::Sent.as_str(),
                "statusRank": Status::Sent.rank(),
                "waMessageId": wamid,
                "updatedAt": DateTime::now(),
                "statusAt.sent": DateTime::now(),
            } },
        )
        .await?;
    Ok(())
}
