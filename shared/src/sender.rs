//! The sender: the SQS handler that delivers queued messages through the Graph API.
//!
//! Per job: claim the message (an atomic lease, so redeliveries and duplicate jobs never
//! send twice; already-sent messages are acknowledged), decrypt the tenant's token (cached
//! in the warm function), call Graph, then record `sent` + wamid, or `failed` for a
//! permanent error, or keep it `queued` with the error and report a batch item failure
//! with an exponential, jittered visibility backoff. After the queue's maxReceiveCount the
//! redrive policy moves the job to the DLQ; the message keeps its last error.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mongodb::bson::{doc, oid::ObjectId};
use rand::Rng;
use serde::Deserialize;

use crate::{
    error::ApiError,
    message::{self, Claim, MessageError},
    queue::SendJob,
    secret::Secret,
    state::AppState,
    tenant::TenantId,
    whatsapp::{ErrorClass, GraphClient, SendError},
};

/// Longer than a Graph call can take (its timeout is 10 s).
const LEASE: Duration = Duration::from_secs(60);
/// SQS caps a visibility timeout at 12 h; backoff stops growing long before.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// A tenant's sending identity, decrypted.
pub struct Credentials {
    pub phone_number_id: String,
    pub token: Secret,
}

pub struct Sender {
    state: AppState,
    graph: GraphClient,
    /// First retry delay; doubles per receive (`SEND_RETRY_BASE_MS`, default 2000).
    retry_base: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Retry,
}

impl Sender {
    pub fn new(state: AppState) -> Self {
        let retry_base = std::env::var("SEND_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(2), Duration::from_millis);
        let graph = GraphClient::new(
            &state.config.whatsapp_api_base,
            &state.config.whatsapp_api_version,
        );
        Self {
            state,
            graph,
            retry_base,
        }
    }

    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// The Lambda handler: every record concurrently; failures reported per item.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes =
            futures::future::join_all(event.records.iter().map(|r| self.deliver(r))).await;
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(outcomes) {
            if outcome == Outcome::Retry {
                let id = record.message_id.clone().unwrap_or_default();
                self.back_off(record).await;
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn back_off(&self, record: &SqsMessage) {
        let (Ok(queue), Some(receipt)) = (self.state.queue(), record.receipt_handle.as_deref())
        else {
            return;
        };
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let delay = backoff(self.retry_base, receives);
        let r = self
            .state
            .sqs
            .change_message_visibility()
            .queue_url(queue.url())
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs() as i32)
            .send()
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not set the retry backoff");
        }
    }

    async fn deliver(&self, record: &SqsMessage) -> Outcome {
        let job: SendJob = match serde_json::from_str(record.body.as_deref().unwrap_or_default()) {
            Ok(j) => j,
            Err(e) => {
                // Never dropped silently: it goes to the DLQ after the last receive.
                tracing::error!(sqsMessageId = ?record.message_id, error = %e, "unreadable send job");
                return Outcome::Retry;
            }
        };
        match self.deliver_job(&job).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(tenantId = %job.tenant_id, messageId = %job.message_id, error = %e, "send attempt failed on a dependency");
                Outcome::Retry
            }
        }
    }

    async fn deliver_job(&self, job: &SendJob) -> Result<Outcome, ApiError> {
        let (Ok(tenant), Ok(id)) = (
            TenantId::parse(&job.tenant_id),
            ObjectId::parse_str(&job.message_id),
        ) else {
            tracing::error!(tenantId = %job.tenant_id, messageId = %job.message_id, "send job with invalid ids acknowledged");
            return Ok(Outcome::Done);
        };
        let message = match message::claim(&self.state, &tenant, id, LEASE).await? {
            Claim::Claimed(m) => m,
            Claim::Finished => {
                tracing::info!(tenantId = %tenant, messageId = %id, "already sent: redelivery acknowledged");
                return Ok(Outcome::Done);
            }
            Claim::Busy => return Ok(Outcome::Retry),
            Claim::Missing => {
                tracing::error!(tenantId = %tenant, messageId = %id, "send job for an unknown message acknowledged");
                return Ok(Outcome::Done);
            }
        };
        let credentials = match credentials(&self.state, &tenant).await {
            Ok(c) => c,
            Err(e) => {
                let error = MessageError {
                    code: "credentials".into(),
                    title: e.to_string(),
                    details: None,
                };
                message::record_retry(&self.state, &message, &error).await?;
                return Ok(Outcome::Retry);
            }
        };
        let content = message.content.as_ref().ok_or(ApiError::Internal)?;
        match self
            .graph
            .send(
                &credentials.phone_number_id,
                &credentials.token,
                &message.customer_wa_id,
                content,
            )
            .await
        {
            Ok(wamid) => {
                message::mark_sent(&self.state, &message, &wamid).await?;
                tracing::info!(tenantId = %tenant, messageId = %id, wamid = %wamid, attempts = message.attempts, metric = "send_ok", "sent");
                Ok(Outcome::Done)
            }
            Err(e) => self.failed(&tenant, &message, e).await,
        }
    }

    async fn failed(
        &self,
        tenant: &TenantId,
        message: &message::MessageDoc,
        e: SendError,
    ) -> Result<Outcome, ApiError> {
        let error = MessageError {
            code: e.code.clone(),
            title: e.title.clone(),
            details: e.details.clone(),
        };
        match e.class {
            ErrorClass::Retry => {
                message::record_retry(&self.state, message, &error).await?;
                tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, attempts = message.attempts, metric = "send_failed", class = "retry", "send will be retried");
                Ok(Outcome::Retry)
            }
            ErrorClass::Permanent => {
                message::mark_failed(&self.state, message, &error).await?;
                tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, metric = "send_failed", class = "permanent", "send failed permanently");
                Ok(Outcome::Done)
            }
        }
    }
}

/// `base · 2^(receives-1)`, capped, plus up to one `base` of jitter.
pub fn backoff(base: Duration, receives: u32) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    let exp = base.saturating_mul(1u32 << receives.saturating_sub(1).min(16));
    let jitter = rand::rng().random_range(0..=base.as_millis() as u64);
    exp.min(MAX_BACKOFF) + Duration::from_millis(jitter)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialDoc {
    phone_number_id: String,
    access_token_ciphertext: mongodb::bson::Binary,
}

/// The tenant's number and decrypted token, cached in the warm function.
pub async fn credentials(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Arc<Credentials>, ApiError> {
    state
        .credentials
        .get_or_load(tenant, async {
            let doc = state
                .store
                .tenants()
                .await?
                .clone_with_type::<CredentialDoc>()
                .find_one(doc! { "_id": tenant.object_id(), "status": "active" })
                .projection(doc! { "phoneNumberId": 1, "accessTokenCiphertext": 1 })
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("tenant {tenant} not found or disabled"))
                })?;
            let token = state
                .cipher()?
                .decrypt(tenant, &doc.access_token_ciphertext.bytes)
                .await?;
            Ok::<_, ApiError>(Credentials {
                phone_number_id: doc.phone_number_id,
                token,
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let base = Duration::from_secs(2);
        for (n, min) in [(1, 2), (2, 4), (3, 8), (4, 16)] {
            let d = backoff(base, n);
            assert!(
                d >= Duration::from_secs(min) && d <= Duration::from_secs(min + 2),
                "{n}: {d:?}"
            );
        }
        assert!(backoff(base, 30) <= MAX_BACKOFF + base);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
