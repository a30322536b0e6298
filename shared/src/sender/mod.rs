//! The sender: the SQS handler that delivers queued messages through the Graph API.
//!
//! Per batch: claim the messages (a lease in each document, so redeliveries, duplicate jobs
//! and other instances never send twice; already-sent messages are acknowledged), then
//! decide each claimed message's slot with [`pacing`] (the number's throughput, the
//! customer's pair rate, a tenant's marketing pause, a refused token). A message that must
//! wait longer than [`pacing::HORIZON`] is given back and goes to the queue as a new,
//! delayed job (a deferral is not a receive, so it never counts towards the DLQ). The rest
//! wait for their slots in-process and call Graph concurrently, with each tenant's token
//! decrypted once per version. Every outcome of the batch (`sent` with its wamid, retries,
//! failures, holds, deferrals) is recorded in one write once its last attempt returns, then
//! statuses Meta reported before that are applied: a batch costs the same few commands
//! whether it holds one message or ten. A retry is a batch item failure with an exponential,
//! jittered visibility backoff; after the queue's maxReceiveCount the redrive policy moves
//! the job to the DLQ and the message keeps its last error.
//!
//! A message Graph accepted keeps its wamid in this process until its `sent` is written;
//! when the write fails it keeps its lease (no one else sends it) and the wamid is
//! remembered in Redis too: the job's redelivery records it without calling Graph again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mongodb::bson::DateTime;
use rand::Rng;

use crate::{
    delivery::{self, Attempt, Claim, Finish},
    error::ApiError,
    failpoint,
    ids::{MessageId, TenantId, TenantStatus},
    message::{self, API_KEY_PREFIX, MessageError},
    metrics::{self, Metric},
    outbox,
    pacing::{self, Booking, Decision, HORIZON, Lane, Timeline},
    queue::SendJob,
    state::AppState,
    tenant::{self, Sending, TokenState},
    whatsapp::{ErrorClass, GraphClient},
};

mod attempt;
mod plan;

use plan::{Plan, again_at, behind_wait};

/// The sender's own error: a batch it could not work (the claim failed), so every job of
/// it is redelivered by the queue. Never an HTTP status; it keeps its cause.
#[derive(Debug, thiserror::Error)]
#[error("the batch is redelivered: {0}")]
pub struct Redeliver(#[from] ApiError);

/// SQS caps a visibility timeout at 12 h; backoff stops growing long before.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long a wamid of an unrecorded send is remembered in Redis.
const UNRECORDED_TTL: Duration = Duration::from_secs(24 * 3600);

pub struct Sender {
    state: AppState,
    graph: GraphClient,
    /// Sent by Graph, not yet recorded: message → wamid.
    unrecorded: Mutex<HashMap<MessageId, String>>,
    /// Numbers Meta throttled, until when: attempts of this process already waiting for a
    /// slot of that number give it back instead of calling Graph.
    throttled: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Redeliver, after this delay (default: the exponential backoff).
    Retry(Option<Duration>),
    /// Acknowledge, and enqueue this job instead (delayed until its `notBefore`).
    Requeue(Box<SendJob>),
}

fn now_ms() -> i64 {
    DateTime::now().timestamp_millis()
}

fn unrecorded_key(id: &MessageId) -> String {
    format!("wa:sent:{}", id.to_hex())
}

impl Sender {
    pub fn new(state: AppState) -> Self {
        // One Graph client (and connection pool) per process.
        let graph = state.graph.clone();
        Self {
            state,
            graph,
            unrecorded: Mutex::new(HashMap::new()),
            throttled: Mutex::new(HashMap::new()),
        }
    }

    /// The Lambda handler: one claim for the batch, every send concurrently; failures
    /// reported per item.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let jobs: Vec<Option<(TenantId, MessageId, SendJob)>> =
            event.records.iter().map(read_job).collect();
        let mut outcomes = vec![Outcome::Retry(None); event.records.len()];
        // The same message twice in a batch is attempted once; its other jobs are done.
        let mut first: HashMap<MessageId, usize> = HashMap::new();
        // In batch order: a customer's messages are decided in the order they came.
        let mut ids: Vec<MessageId> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if let Some((_, id, _)) = job {
                if first.contains_key(id) {
                    outcomes[i] = Outcome::Done;
                } else {
                    first.insert(*id, i);
                    ids.push(*id);
                }
            }
        }
        if let Err(e) = self.run(&jobs, &ids, &first, &mut outcomes).await {
            // Debug keeps the cause (hosts at most, never credentials).
            tracing::warn!(error = ?e, "could not claim the batch");
        }
        for (record, job) in event.records.iter().zip(&jobs) {
            if job.is_none() {
                tracing::error!(sqsMessageId = ?record.message_id, "unreadable send job: left for the DLQ");
            }
        }
        self.requeue(&mut outcomes).await;
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

    /// Enqueues the deferred jobs (one call per ten); each one SQS took replaces its
    /// original, which is acknowledged. One it refused keeps the original, made visible
    /// again at the same time instead (a receive, the rare fallback).
    async fn requeue(&self, outcomes: &mut [Outcome]) {
        let (at, new_jobs): (Vec<usize>, Vec<SendJob>) = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Outcome::Requeue(job) => Some((i, (**job).clone())),
                _ => None,
            })
            .unzip();
        if new_jobs.is_empty() {
            return;
        }
        let accepted = match self.state.queue() {
            Ok(queue) => queue.send_batch(&new_jobs).await,
            Err(_) => vec![false; new_jobs.len()],
        };
        let now = now_ms();
        for ((i, job), ok) in at.into_iter().zip(&new_jobs).zip(accepted) {
            outcomes[i] = if ok {
                Outcome::Done
            } else {
                let wait = job.not_before.map_or(0, |at| (at - now).max(0));
                Outcome::Retry(Some(Duration::from_millis(wait as u64)))
            };
        }
    }

    async fn run(
        &self,
        jobs: &[Option<(TenantId, MessageId, SendJob)>],
        ids: &[MessageId],
        first: &HashMap<MessageId, usize>,
        outcomes: &mut [Outcome],
    ) -> Result<(), Redeliver> {
        failpoint::hit("sender.before_claim").await?;
        // Claimed first, so a slot is taken right before its send (not a database round
        // trip earlier); what pacing then holds back is given back with the batch's write.
        let mut claims =
            delivery::claim_batch(&self.state.store, ids, self.state.config.send_lease).await?;
        let remembered = self.remembered(&claims).await;
        // One profile read per tenant, then each customer's jobs one after another (their
        // order is their slots' order), different customers concurrently.
        let mut lanes: Vec<Vec<(usize, MessageId, TenantId, &SendJob)>> = Vec::new();
        let mut lane_of: HashMap<(TenantId, &str), usize> = HashMap::new();
        for id in ids {
            let Some(i) = first.get(id).copied() else {
                continue;
            };
            let Some((tenant, _, job)) = jobs.get(i).and_then(Option::as_ref) else {
                continue;
            };
            let n = *lane_of
                .entry((*tenant, job.to.as_str()))
                .or_insert_with(|| {
                    lanes.push(Vec::new());
                    lanes.len() - 1
                });
            lanes[n].push((i, *id, *tenant, job));
        }
        let mut tenants: Vec<TenantId> = lanes.iter().map(|l| l[0].2).collect();
        tenants.sort_by_key(|t| t.object_id());
        tenants.dedup();
        let profiles: HashMap<TenantId, Result<Arc<Sending>, String>> =
            futures::future::join_all(tenants.into_iter().map(|t| async move {
                let p = tenant::sending(&self.state.store, &self.state.sending, &t).await;
                (t, p.map_err(|e| e.to_string()))
            }))
            .await
            .into_iter()
            .collect();
        // Tokens before slots: a first decryption (a KMS call) must not make a message
        // miss its slot and fall behind the customer's next one.
        futures::future::join_all(profiles.iter().filter_map(|(t, p)| {
            let p = p.as_ref().ok()?;
            (p.token_state == TokenState::Valid && p.status == TenantStatus::Active)
                .then(|| self.state.token(t, p))
        }))
        .await;
        let planned: Vec<(usize, MessageId, TenantId, Plan)> =
            futures::future::join_all(lanes.into_iter().map(|lane| {
                let (profiles, claims, remembered) = (&profiles, &claims, &remembered);
                async move {
                    let mut decided = Vec::with_capacity(lane.len());
                    for (i, id, tenant, job) in lane {
                        // Only a message this attempt will send takes a slot.
                        let ours = matches!(claims.get(&id), Some(Claim::Claimed { .. }))
                            && !remembered.contains_key(&id);
                        let plan = match profiles.get(&tenant) {
                            _ if !ours => Plan::Skip,
                            Some(Ok(profile)) => self.plan(profile.clone(), job).await,
                            Some(Err(e)) => Plan::Broken(MessageError {
                                code: "credentials".into(),
                                title: e.clone(),
                                details: None,
                            }),
                            None => continue,
                        };
                        decided.push((i, id, tenant, plan));
                    }
                    decided
                }
            }))
            .await
            .into_iter()
            .flatten()
            .collect();
        let attempts: Vec<_> = planned
            .into_iter()
            .filter_map(|(i, id, tenant, plan)| {
                let job = &jobs.get(i)?.as_ref()?.2;
                Some((i, tenant, job, plan, claims.remove(&id)?))
            })
            .collect();
        let results =
            futures::future::join_all(attempts.into_iter().map(|(i, tenant, job, plan, claim)| {
                let remembered = &remembered;
                async move { (i, self.attempt(tenant, job, plan, claim, remembered).await) }
            }))
            .await;
        let finishes: Vec<Finish> = results
            .iter()
            .filter_map(|(_, a)| a.finish.clone())
            .collect();
        let recorded = self.record(&finishes).await;
        let sent: Vec<(TenantId, String)> = if recorded {
            results.iter().filter_map(|(_, a)| a.sent.clone()).collect()
        } else {
            Vec::new()
        };
        let held: HashMap<TenantId, i64> = results.iter().filter_map(|(_, a)| a.held).collect();
        for (i, attempted) in results {
            outcomes[i] = match (&attempted.finish, recorded) {
                // Not recorded: the lease stays until it expires, then the job tries again.
                (Some(_), false) => Outcome::Retry(None),
                _ => attempted.outcome,
            };
        }
        let marked = self.kept_statuses(&sent).await;
        if let Err(e) = message::take_pending_statuses(&self.state.store, &marked).await {
            // Kept statuses stay kept; the relay applies them on its next run.
            e.log();
        }
        if recorded {
            for (tenant, version) in held {
                self.release_if_replaced(&tenant, version).await;
            }
        }
        Ok(())
    }

    /// The sent wamids a status webhook marked as having a kept status (one Redis round trip
    /// per batch instead of a database look-up); all of them when Redis cannot say.
    async fn kept_statuses(&self, sent: &[(TenantId, String)]) -> Vec<(TenantId, String)> {
        if sent.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = sent
            .iter()
            .map(|(_, w)| message::store::kept_status_key(w))
            .collect();
        match self.state.locks.recall(&keys).await {
            Some(marks) => sent
                .iter()
                .zip(marks)
                .filter(|(_, m)| m.is_some())
                .map(|(s, _)| s.clone())
                .collect(),
            None => sent.to_vec(),
        }
    }

    /// Wamids of claimed messages that an earlier attempt sent but could not record: from
    /// this process's memory, else (only for interrupted attempts, so the usual batch costs
    /// no Redis call) from Redis.
    async fn remembered(&self, claims: &HashMap<MessageId, Claim>) -> HashMap<MessageId, String> {
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
        claims: &HashMap<MessageId, Claim>,
    ) -> (HashMap<MessageId, String>, Vec<MessageId>) {
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

    /// Writes every outcome of the batch in one command, retrying briefly. Sends whose
    /// `sent` could not be written keep their lease, and their wamids are remembered in
    /// Redis as well as here, so the job's redelivery records them without calling Graph.
    async fn record(&self, finishes: &[Finish]) -> bool {
        if finishes.is_empty() {
            return true;
        }
        for wait in [0, 100, 500] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let written = async {
                failpoint::hit("sender.before_record").await?;
                delivery::finish_batch(&self.state.store, finishes).await
            }
            .await;
            match written {
                Ok(()) => {
                    if let Ok(mut map) = self.unrecorded.lock() {
                        for f in finishes {
                            map.remove(&f.id);
                        }
                    }
                    if let Err(e) = failpoint::hit("sender.after_record").await {
                        e.log();
                    }
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, cause = ?e, "could not record delivery outcomes")
                }
            }
        }
        for f in finishes {
            if let Attempt::Sent { wamid } = &f.attempt {
                self.state
                    .locks
                    .remember(&unrecorded_key(&f.id), wamid, UNRECORDED_TTL)
                    .await;
                tracing::error!(messageId = %f.id, wamid = %wamid, "sent but not yet recorded: the job's redelivery records it");
            }
        }
        false
    }

    /// Keeps the wamid of a send Graph accepted until the batch's write records it, so a
    /// redelivery of its job (after a failed write, or a batch cut off) records it instead
    /// of sending again.
    fn keep_sent(&self, finish: &Finish, wamid: &str) {
        if let Ok(mut map) = self.unrecorded.lock() {
            map.insert(finish.id, wamid.to_owned());
        }
    }

    async fn back_off(&self, record: &SqsMessage, delay: Option<Duration>) {
        let Ok(queue) = self.state.queue() else {
            return;
        };
        let delay = delay.unwrap_or_else(|| {
            backoff(
                self.state.config.send_retry_base,
                crate::queue::receive_count(record),
            )
        });
        crate::queue::retry_after(&self.state.sqs, queue.url(), record, delay, MAX_BACKOFF).await;
    }
}

impl crate::queue::BatchHandler for Sender {
    fn handle(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> + Send {
        Sender::handle(self, event)
    }
}

fn read_job(record: &SqsMessage) -> Option<(TenantId, MessageId, SendJob)> {
    let job: SendJob = serde_json::from_str::<SendJob>(record.body.as_deref()?)
        .ok()?
        .with_attributes(|name| record.message_attributes.get(name)?.string_value.clone());
    Some((job.tenant_id, job.message_id, job))
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
