//! The sender: the SQS handler that delivers queued messages through the Graph API.
//!
//! Per batch: claim the messages (a lease in each document, so redeliveries, duplicate jobs
//! and other instances never send twice; already-sent messages are acknowledged), decrypt
//! each tenant's token (cached in the warm function), call Graph for all of them
//! concurrently. Each `sent` + wamid is recorded as soon as its call returns (then statuses
//! Meta reported before that are applied); retries and permanent failures of the batch in
//! one write. A retry is a batch item failure with an exponential, jittered visibility
//! backoff; after the queue's maxReceiveCount the redrive policy moves the job to the DLQ
//! and the message keeps its last error.
//!
//! A message Graph accepted but whose `sent` could not be recorded keeps its lease (no one
//! else sends it) and its wamid is remembered (in this process and in Redis): the job's
//! redelivery records it without calling Graph again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mongodb::bson::{DateTime, doc, oid::ObjectId};
use rand::Rng;
use serde::Deserialize;

use crate::{
    delivery::{self, Attempt, Claim, Finish},
    error::ApiError,
    failpoint,
    ids::TenantId,
    message::{self, MessageError},
    metrics::{self, Metric},
    queue::SendJob,
    state::AppState,
    whatsapp::{Credentials, ErrorClass, GraphClient},
};

/// SQS caps a visibility timeout at 12 h; backoff stops growing long before.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long a wamid of an unrecorded send is remembered in Redis.
const UNRECORDED_TTL: Duration = Duration::from_secs(24 * 3600);

pub struct Sender {
    state: AppState,
    graph: GraphClient,
    /// Sent by Graph, not yet recorded: message → wamid.
    unrecorded: Mutex<HashMap<ObjectId, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Redeliver, after this delay (default: the exponential backoff).
    Retry(Option<Duration>),
}

/// What one message's attempt produced.
struct Attempted {
    outcome: Outcome,
    /// A retry or permanent failure, recorded with the batch.
    finish: Option<Finish>,
    /// A recorded send: its statuses may be waiting.
    sent: Option<(TenantId, String)>,
}

impl Attempted {
    fn done() -> Self {
        Self::of(Outcome::Done, None)
    }

    fn of(outcome: Outcome, finish: Option<Finish>) -> Self {
        Self {
            outcome,
            finish,
            sent: None,
        }
    }
}

fn unrecorded_key(id: &ObjectId) -> String {
    format!("wa:sent:{}", id.to_hex())
}

impl Sender {
    pub fn new(state: AppState) -> Self {
        let graph = GraphClient::new(
            &state.config.whatsapp_api_base,
            &state.config.whatsapp_api_version,
        );
        Self {
            state,
            graph,
            unrecorded: Mutex::new(HashMap::new()),
        }
    }

    /// The Lambda handler: one claim for the batch, every send concurrently; failures
    /// reported per item.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let jobs: Vec<Option<(TenantId, ObjectId, SendJob)>> =
            event.records.iter().map(read_job).collect();
        let mut outcomes = vec![Outcome::Retry(None); event.records.len()];
        // The same message twice in a batch is attempted once; its other jobs are done.
        let mut first: HashMap<ObjectId, usize> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            if let Some((_, id, _)) = job {
                if first.contains_key(id) {
                    outcomes[i] = Outcome::Done;
                } else {
                    first.insert(*id, i);
                }
            }
        }
        let ids: Vec<ObjectId> = first.keys().copied().collect();
        if let Err(e) = self.run(&jobs, &ids, &first, &mut outcomes).await {
            tracing::warn!(error = %e, "could not claim the batch: it will be redelivered");
        }
        for (record, job) in event.records.iter().zip(&jobs) {
            if job.is_none() {
                tracing::error!(sqsMessageId = ?record.message_id, "unreadable send job: left for the DLQ");
            }
        }
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(outcomes) {
            if let Outcome::Retry(delay) = outcome {
                self.back_off(record, delay).await;
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn run(
        &self,
        jobs: &[Option<(TenantId, ObjectId, SendJob)>],
        ids: &[ObjectId],
        first: &HashMap<ObjectId, usize>,
        outcomes: &mut [Outcome],
    ) -> Result<(), ApiError> {
        failpoint::hit("sender.before_claim").await?;
        let mut claims =
            delivery::claim_batch(&self.state.store, ids, self.state.config.send_lease).await?;
        let remembered = self.remembered(&claims).await;
        let attempts = ids.iter().filter_map(|id| {
            let i = *first.get(id)?;
            let (tenant, _, _) = jobs.get(i)?.as_ref()?;
            Some((i, *tenant, claims.remove(id)?))
        });
        let results = futures::future::join_all(attempts.map(|(i, tenant, claim)| {
            let remembered = &remembered;
            async move { (i, self.attempt(tenant, claim, remembered).await) }
        }))
        .await;
        let finishes: Vec<Finish> = results
            .iter()
            .filter_map(|(_, a)| a.finish.clone())
            .collect();
        let recorded = self.record(&finishes).await;
        let sent: Vec<(TenantId, String)> =
            results.iter().filter_map(|(_, a)| a.sent.clone()).collect();
        for (i, attempted) in results {
            outcomes[i] = match (&attempted.finish, recorded) {
                // Not recorded: the lease stays until it expires, then the job tries again.
                (Some(_), false) => Outcome::Retry(None),
                _ => attempted.outcome,
            };
        }
        if let Err(e) = message::take_pending_statuses(&self.state.store, &sent).await {
            // Kept statuses stay kept; the relay applies them on its next run.
            e.log();
        }
        Ok(())
    }

    /// Wamids of claimed messages that an earlier attempt sent but could not record: from
    /// this process's memory, else (only for interrupted attempts, so the usual batch costs
    /// no Redis call) from Redis.
    async fn remembered(&self, claims: &HashMap<ObjectId, Claim>) -> HashMap<ObjectId, String> {
        let (mut found, ask_redis) = self.in_memory(claims);
        if ask_redis.is_empty() {
            return found;
        }
        let keys: Vec<String> = ask_redis.iter().map(unrecorded_key).collect();
        if let Some(values) = self.state.locks.recall(&keys).await {
            for (id, wamid) in ask_redis.into_iter().zip(values) {
                if let Some(wamid) = wamid {
                    found.insert(id, wamid);
                }
            }
        }
        found
    }

    /// The claimed messages' wamids this process remembers, and the interrupted claims it
    /// does not know about.
    fn in_memory(
        &self,
        claims: &HashMap<ObjectId, Claim>,
    ) -> (HashMap<ObjectId, String>, Vec<ObjectId>) {
        let mut found = HashMap::new();
        let mut unknown = Vec::new();
        let memory = self.unrecorded.lock().ok();
        for (id, claim) in claims {
            let Claim::Claimed { interrupted, .. } = claim else {
                continue;
            };
            match memory.as_ref().and_then(|m| m.get(id)) {
                Some(wamid) => {
                    found.insert(*id, wamid.clone());
                }
                None if *interrupted => unknown.push(*id),
                None => {}
            }
        }
        (found, unknown)
    }

    /// Writes the batch's retries and failures, retrying briefly.
    async fn record(&self, finishes: &[Finish]) -> bool {
        if finishes.is_empty() {
            return true;
        }
        for wait in [0, 100, 500] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match delivery::finish_batch(&self.state.store, finishes).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, cause = ?e, "could not record delivery outcomes")
                }
            }
        }
        false
    }

    /// Records one `sent` at once (retrying briefly); until it is recorded its wamid is
    /// remembered, so a redelivery records it instead of sending again.
    async fn record_sent(&self, finish: &Finish, wamid: &str) -> bool {
        if let Ok(mut map) = self.unrecorded.lock() {
            map.insert(finish.id, wamid.to_owned());
        }
        for wait in [0, 100, 500] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let written = async {
                failpoint::hit("sender.before_record").await?;
                delivery::finish_batch(&self.state.store, std::slice::from_ref(finish)).await
            }
            .await;
            match written {
                Ok(()) => {
                    if let Ok(mut map) = self.unrecorded.lock() {
                        map.remove(&finish.id);
                    }
                    return true;
                }
                Err(e) => {
                    tracing::warn!(messageId = %finish.id, error = %e, cause = ?e, "could not record a send")
                }
            }
        }
        self.state
            .locks
            .remember(&unrecorded_key(&finish.id), wamid, UNRECORDED_TTL)
            .await;
        tracing::error!(messageId = %finish.id, wamid = %wamid, "sent but not yet recorded: the job's redelivery records it");
        false
    }

    async fn back_off(&self, record: &SqsMessage, delay: Option<Duration>) {
        let (Ok(queue), Some(receipt)) = (self.state.queue(), record.receipt_handle.as_deref())
        else {
            return;
        };
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let delay = delay.unwrap_or_else(|| backoff(self.state.config.send_retry_base, receives));
        let r = self
            .state
            .sqs
            .change_message_visibility()
            .queue_url(queue.url())
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs().min(MAX_BACKOFF.as_secs()) as i32)
            .send()
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not set the retry backoff");
        }
    }

    /// One message's attempt.
    async fn attempt(
        &self,
        tenant: TenantId,
        claim: Claim,
        remembered: &HashMap<ObjectId, String>,
    ) -> Attempted {
        let message = match claim {
            Claim::Claimed { message, .. } => message,
            Claim::Finished => return Attempted::done(),
            Claim::Busy { until } => {
                let wait = (until.timestamp_millis() - DateTime::now().timestamp_millis()).max(0);
                return Attempted::of(
                    Outcome::Retry(Some(Duration::from_millis(wait as u64 + 1000))),
                    None,
                );
            }
            Claim::Missing => {
                tracing::error!(tenantId = %tenant, "send job for an unknown message acknowledged");
                return Attempted::done();
            }
        };
        let finish = |attempt| Finish {
            id: message.id,
            tenant_id: message.tenant_id,
            attempt,
        };
        if message.tenant_id != tenant.object_id() {
            tracing::error!(tenantId = %tenant, messageId = %message.id, "send job names another tenant's message");
            let error = MessageError {
                code: "tenant_mismatch".into(),
                title: "job tenant does not own the message".into(),
                details: None,
            };
            return Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))));
        }
        if let Some(wamid) = remembered.get(&message.id) {
            return self
                .sent(
                    tenant,
                    finish(Attempt::Sent {
                        wamid: wamid.clone(),
                    }),
                    wamid,
                )
                .await;
        }
        if let Err(e) = failpoint::hit("sender.before_graph").await {
            let error = MessageError {
                code: "failpoint".into(),
                title: e.to_string(),
                details: None,
            };
            return Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))));
        }
        let credentials = match credentials(&self.state, &tenant).await {
            Ok(c) => c,
            Err(e) => {
                let error = MessageError {
                    code: "credentials".into(),
                    title: e.to_string(),
                    details: None,
                };
                return Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))));
            }
        };
        let Some(content) = message.content.as_ref() else {
            let error = MessageError {
                code: "no_content".into(),
                title: "message has no content".into(),
                details: None,
            };
            return Attempted::of(Outcome::Done, Some(finish(Attempt::Failed(error))));
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
                self.sent(
                    tenant,
                    finish(Attempt::Sent {
                        wamid: wamid.clone(),
                    }),
                    &wamid,
                )
                .await
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
                        Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))))
                    }
                    ErrorClass::Permanent => {
                        tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, "send failed permanently");
                        metrics::count(Metric::SendFailed, &[("ErrorClass", "permanent")]);
                        Attempted::of(Outcome::Done, Some(finish(Attempt::Failed(error))))
                    }
                }
            }
        }
    }

    async fn sent(&self, tenant: TenantId, finish: Finish, wamid: &str) -> Attempted {
        if !self.record_sent(&finish, wamid).await {
            return Attempted::of(Outcome::Retry(None), None);
        }
        if let Err(e) = failpoint::hit("sender.after_record").await {
            e.log();
        }
        Attempted {
            outcome: Outcome::Done,
            finish: None,
            sent: Some((tenant, wamid.to_owned())),
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
