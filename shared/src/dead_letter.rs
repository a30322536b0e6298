//! A tenant's dead letters: its messages whose send jobs the queue's redrive policy moved to
//! the DLQ (five receives without a delivery), with their last error, and their redrive.
//! The DLQ is shared by every tenant, so each request looks through it (up to
//! [`queue::DEAD_LETTER_SCAN`] jobs) and leaves other tenants' jobs where they were. A redriven
//! message is delivered once: the sender's claim skips a message sent meanwhile.

use futures::TryStreamExt;
use mongodb::bson::doc;
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    ids::{MessageId, TenantId},
    message::{MessageDoc, MessageView},
    queue,
    store::{MESSAGES, Store},
};

/// Messages one redrive request may name.
pub const REDRIVE_MAX: usize = 100;

/// Where the dead letters are: the DLQ, and the queue they go back to.
pub struct DeadLetterQueue<'a> {
    pub sqs: &'a crate::aws::Sqs,
    pub dlq_url: &'a str,
    pub queue_url: &'a str,
}

/// A message whose job is in the DLQ.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    #[serde(flatten)]
    pub message: MessageView,
    /// Its jobs in the DLQ (a duplicate job can die too; a redrive sends one).
    pub dead_jobs: usize,
}

/// `POST /tenants/{tenantId}/dead-letters/redrive` body: every dead letter of the tenant, or
/// only these messages'.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveRequest {
    #[serde(default)]
    pub message_ids: Option<Vec<String>>,
}

impl RedriveRequest {
    pub fn ids(&self) -> Result<Option<Vec<MessageId>>, ApiError> {
        let Some(ids) = &self.message_ids else {
            return Ok(None);
        };
        if ids.is_empty() || ids.len() > REDRIVE_MAX {
            return Err(ApiError::invalid(
                "messageIds",
                format!("must name 1–{REDRIVE_MAX} messages (leave it out for all)"),
            ));
        }
        ids.iter()
            .enumerate()
            .map(|(i, s)| {
                MessageId::parse(s).ok_or_else(|| {
                    ApiError::invalid(format!("messageIds[{i}]"), "must be a 24-character hex id")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

fn unavailable(e: crate::aws::AwsError) -> ApiError {
    ApiError::unavailable("queue", e)
}

/// The tenant's dead letters, newest first.
pub async fn list(
    store: &Store,
    dlq: &DeadLetterQueue<'_>,
    tenant: &TenantId,
) -> Result<Vec<DeadLetterView>, ApiError> {
    let dead = queue::tenant_dead_letters(dlq.sqs, dlq.dlq_url, tenant)
        .await
        .map_err(unavailable)?;
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<_> = dead.iter().map(|(id, _)| id.object_id()).collect();
    let docs: Vec<MessageDoc> = store
        .collection::<MessageDoc>(MESSAGES)
        .await?
        .find(doc! { "tenantId": *tenant, "_id": { "$in": ids } })
        .sort(doc! { "createdAt": -1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .map(|d| DeadLetterView {
            message: d.view(),
            dead_jobs: dead
                .iter()
                .find(|(id, _)| *id == d.id)
                .map_or(0, |(_, n)| *n),
        })
        .collect())
}

/// Sends the tenant's dead letters (or `only` these) back to the send queue; returns their
/// ids.
pub async fn redrive(
    dlq: &DeadLetterQueue<'_>,
    tenant: &TenantId,
    only: Option<&[MessageId]>,
) -> Result<Vec<String>, ApiError> {
    let moved = queue::redrive_tenant(dlq.sqs, dlq.dlq_url, dlq.queue_url, tenant, only)
        .await
        .map_err(unavailable)?;
    Ok(moved.iter().map(MessageId::to_hex).collect())
}
