//! The sender: the SQS handler that delivers queued messages through the Graph API.
//!
//! Per batch: claim the messages (an atomic lease, so redeliveries and duplicate jobs never
//! send twice; already-sent messages are acknowledged), decrypt each tenant's token (cached
//! in the warm function), call Graph for all of them concurrently, then record `sent` +
//! wamid, or `failed` for a permanent error, or `queued` with the error and a batch item
//! failure with an exponential, jittered visibility backoff. After the queue's maxReceiveCount the
//! redrive policy moves the job to the DLQ; the message keeps its last error.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mongodb::bson::{doc, oid::ObjectId};
use rand::Rng;
use serde::Deserialize;

use crate::{
    delivery::{self, Attempt, Claim, Finish},
    error::ApiError,
    message::MessageError,
    metrics::{self, Metric},
    queue::SendJob,
    secret::Secret,
    state::AppState,
    tenant::TenantId,
    whatsapp::{ErrorClass, GraphClient},
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

    /// The Lambda handler: one claim for the batch, every send concurrently, one write
    /// for all outcomes; failures reported per item.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let jobs: Vec<Option<(TenantId, ObjectId, SendJob)>> =
            event.records.iter().map(read_job).collect();
        let ids: Vec<ObjectId> = jobs.iter().flatten().map(|(_, id, _)| *id).collect();
        let mut outcomes = vec![Outcome::Retry; event.records.len()];
        match delivery::claim_batch(&self.state, &ids, LEASE).await {
            Ok(delivery::Claims { mut claims, leases }) => {
                let attempts = jobs.iter().enumerate().filter_map(|(i, job)| {
                    let (tenant, id, _) = job.as_ref()?;
                    Some((i, *tenant, claims.remove(id)?))
                });
                let results =
                    futures::future::join_all(attempts.map(|(i, tenant, claim)| async move {
                        (i, self.attempt(tenant, claim).await)
                    }))
                    .await;
                let finishes: Vec<Finish> =
                    results.iter().filter_map(|(_, (_, f))| f.clone()).collect();
                let recorded = self.record(&finishes).await;
                self.state.locks.release_many(&leases).await;
                for (i, (outcome, finish)) in results {
                    outcomes[i] = match (finish, recorded) {
                        // Sent but not recorded: acknowledge anyway, a retry would send twice.
                        (
                            Some(Finish {
                                attempt: Attempt::Sent { .. },
                                ..
                            }),
                            false,
                        ) => Outcome::Done,
                        (Some(_), false) => Outcome::Retry,
                        _ => outcome,
                    };
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim the batch: it will be redelivered")
            }
        }
        for (record, job) in event.records.iter().zip(&jobs) {
            if job.is_none() {
                tracing::error!(sqsMessageId = ?record.message_id, "unreadable send job: left for the DLQ");
            }
        }
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(outcomes) {
            if outcome == Outcome::Retry {
                self.back_off(record).await;
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Writes the batch's outcomes, retrying briefly: after Graph accepted a message,
    /// losing its record is worse than a short wait.
    async fn record(&self, finishes: &[Finish]) -> bool {
        for wait in [0, 100, 500] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match delivery::finish_batch(&self.state, finishes).await {
                Ok(()) => return true,
                Err(e) => tracing::warn!(error = %e, "could not record delivery outcomes"),
            }
        }
        for f in finishes {
            if let Attempt::Sent { wamid } = &f.attempt {
                tracing::error!(messageId = %f.id, wamid = %wamid, "sent but not recorded: reconcile this message");
            }
        }
        false
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

    /// One message's attempt; the `Finish` (if any) is what to record.
    async fn attempt(&self, tenant: TenantId, claim: Claim) -> (Outcome, Option<Finish>) {
        let message = match claim {
            Claim::Claimed(m) => m,
            Claim::Finished => return (Outcome::Done, None),
            Claim::Busy => return (Outcome::Retry, None),
            Claim::Missing => {
                tracing::error!(tenantId = %tenant, "send job for an unknown message acknowledged");
                return (Outcome::Done, None);
            }
        };
        let finish = |attempt| Finish {
            id: message.id,
            tenant_id: message.tenant_id,
            attempt,
        };
        if message.tenant_id != tenant.object_id() {
            tracing::error!(tenantId = %tenant, messageId = %message.id, "send job names another tenant's message");
            return (
                Outcome::Retry,
                Some(finish(Attempt::Retry(MessageError {
                    code: "tenant_mismatch".into(),
                    title: "job tenant does not own the message".into(),
                    details: None,
                }))),
            );
        }
        let credentials = match credentials(&self.state, &tenant).await {
            Ok(c) => c,
            Err(e) => {
                let error = MessageError {
                    code: "credentials".into(),
                    title: e.to_string(),
                    details: None,
                };
                return (Outcome::Retry, Some(finish(Attempt::Retry(error))));
            }
        };
        let Some(content) = message.content.as_ref() else {
            let error = MessageError {
                code: "no_content".into(),
                title: "message has no content".into(),
                details: None,
            };
            return (Outcome::Done, Some(finish(Attempt::Failed(error))));
        };
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
                tracing::info!(tenantId = %tenant, messageId = %message.id, wamid = %wamid, attempt = message.attempts + 1, "sent");
                metrics::count(Metric::SendOk, &[]);
                (Outcome::Done, Some(finish(Attempt::Sent { wamid })))
            }
            Err(e) => {
                let error = MessageError {
                    code: e.code.clone(),
                    title: e.title.clone(),
                    details: e.details.clone(),
                };
                match e.class {
                    ErrorClass::Retry => {
                        tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, attempt = message.attempts + 1, "send will be retried");
                        metrics::count(Metric::SendFailed, &[("ErrorClass", "retry")]);
                        (Outcome::Retry, Some(finish(Attempt::Retry(error))))
                    }
                    ErrorClass::Permanent => {
                        tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, "send failed permanently");
                        metrics::count(Metric::SendFailed, &[("ErrorClass", "permanent")]);
                        (Outcome::Done, Some(finish(Attempt::Failed(error))))
                    }
                }
            }
        }
    }
}

fn read_job(record: &SqsMessage) -> Option<(TenantId, ObjectId, SendJob)> {
    let job: SendJob = serde_json::from_str(record.body.as_deref()?).ok()?;
    let tenant = TenantId::parse(&job.tenant_id).ok()?;
    let id = ObjectId::parse_str(&job.message_id).ok()?;
    Some((tenant, id, job))
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
