//! The forwarder: the events queue's consumer. Each job is one event for one subscription,
//! loaded by its id *and* the job's tenant (a job naming another tenant's subscription is
//! dropped), POSTed signed to the subscription's URL; a receiver that does not answer 2xx
//! gets it again after an exponential, jittered backoff (the queue's visibility), until the
//! queue's redrive policy moves the job to the events DLQ. Every attempt is recorded
//! (`eventDeliveries`, kept 7 days) in one write per batch.

use std::{sync::OnceLock, time::Duration};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mongodb::bson::{DateTime, doc, oid::ObjectId};

use crate::{
    cache::TtlCache,
    event::{
        ForwardJob,
        subscription::{DELIVERIES, DeliveryDoc, SUBSCRIPTIONS, SubscriptionDoc},
    },
    ids::TenantId,
    metrics::{self, Metric},
    secret::Secret,
    state::AppState,
};

/// A receiver's time to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Decrypted signing secrets, per subscription.
const SECRET_TTL: Duration = Duration::from_secs(300);
pub const SIGNATURE_HEADER: &str = "X-Signature-256";

/// `sha256=<hex HMAC-SHA256 of body with secret>`: Meta's signature scheme, which
/// receivers verify the same way.
pub use crate::webhook::signature::sign as signature;

pub struct Forwarder {
    state: AppState,
    http: OnceLock<reqwest::Client>,
    secrets: TtlCache<ObjectId, Secret>,
}

/// What one job's attempt came to.
enum Attempted {
    Delivered,
    /// Receive it again later.
    Retry,
    /// Nothing to deliver (unreadable, or its subscription is gone): acknowledged.
    Dropped,
}

impl Forwarder {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            http: OnceLock::new(),
            secrets: TtlCache::new(SECRET_TTL),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::tls::client(TIMEOUT)
                // A receiver's redirect is not followed: the signature is for its URL.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }

    /// The Lambda handler: every job of the batch concurrently; the ones to retry reported
    /// as batch item failures.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let attempts =
            futures::future::join_all(event.records.iter().map(|record| self.attempt(record)))
                .await;
        let (outcomes, deliveries): (Vec<Attempted>, Vec<Option<DeliveryDoc>>) =
            attempts.into_iter().unzip();
        let deliveries: Vec<DeliveryDoc> = deliveries.into_iter().flatten().collect();
        if !deliveries.is_empty() {
            let logged = async {
                self.state
                    .store
                    .collection::<DeliveryDoc>(DELIVERIES)
                    .await?
                    .insert_many(&deliveries)
                    .await?;
                Ok::<_, crate::error::ApiError>(())
            };
            if let Err(e) = logged.await {
                // The log is for people; a missing line never holds an event back.
                e.log();
            }
        }
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(outcomes) {
            if let Attempted::Retry = outcome {
                self.back_off(record).await;
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn attempt(&self, record: &SqsMessage) -> (Attempted, Option<DeliveryDoc>) {
        let Some(job) = record
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<ForwardJob>(b).ok())
        else {
            tracing::error!(sqsMessageId = ?record.message_id, "unreadable event job dropped");
            return (Attempted::Dropped, None);
        };
        let (Ok(sub_id), Ok(tenant)) = (
            ObjectId::parse_str(&job.subscription_id),
            TenantId::parse(&job.tenant_id),
        ) else {
            tracing::error!(sqsMessageId = ?record.message_id, "event job with bad ids dropped");
            return (Attempted::Dropped, None);
        };
        let sub = match self.subscription(&sub_id, &tenant).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::info!(tenantId = %tenant, subscriptionId = %sub_id, "event for a deleted subscription dropped");
                return (Attempted::Dropped, None);
            }
            Err(e) => {
                e.log();
                return (Attempted::Retry, None);
            }
        };
        let secret = match self.secret(&sub).await {
            Ok(s) => s,
            Err(e) => {
                e.log();
                return (Attempted::Retry, None);
            }
        };
        let Ok(body) = serde_json::to_vec(&job.event) else {
            return (Attempted::Dropped, None);
        };
        let started = std::time::Instant::now();
        let sent = self
            .http()
            .post(&sub.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), &body),
            )
            .header("X-Event-Id", &job.event.id)
            .header("X-Event-Type", job.event.kind.as_str())
            .body(body)
            .send()
            .await;
        let (status, error) = match sent {
            Ok(r) => (r.status().as_u16(), None),
            // Without the URL: it may carry the receiver's own tokens.
            Err(e) => (0, Some(e.without_url().to_string())),
        };
        let ok = (200..300).contains(&status);
        let attempt = crate::queue::receive_count(record);
        tracing::info!(tenantId = %tenant, subscriptionId = %sub_id, eventId = %job.event.id, status, attempt, "event forwarded");
        metrics::count(
            if ok {
                Metric::EventDelivered
            } else {
                Metric::EventRetried
            },
            &[],
        );
        let delivery = DeliveryDoc {
            subscription_id: sub_id,
            tenant_id: tenant,
            event_id: job.event.id.clone(),
            event_type: job.event.kind,
            attempt,
            status,
            ok,
            error: error.or_else(|| (!ok).then(|| format!("the receiver answered HTTP {status}"))),
            duration_ms: started.elapsed().as_millis() as u64,
            at: DateTime::now(),
        };
        (
            if ok {
                Attempted::Delivered
            } else {
                Attempted::Retry
            },
            Some(delivery),
        )
    }

    async fn subscription(
        &self,
        id: &ObjectId,
        tenant: &TenantId,
    ) -> Result<Option<SubscriptionDoc>, crate::error::ApiError> {
        Ok(self
            .state
            .store
            .collection::<SubscriptionDoc>(SUBSCRIPTIONS)
            .await?
            .find_one(doc! { "_id": *id, "tenantId": *tenant })
            .await?)
    }

    async fn secret(
        &self,
        sub: &SubscriptionDoc,
    ) -> Result<std::sync::Arc<Secret>, crate::error::ApiError> {
        self.secrets
            .get_or_load(&sub.id, async {
                self.state
                    .cipher()?
                    .decrypt(&sub.tenant_id, &sub.secret_ciphertext.bytes)
                    .await
            })
            .await
    }

    async fn back_off(&self, record: &SqsMessage) {
        let Some(url) = self.state.config.events_queue_url.as_deref() else {
            return;
        };
        let delay = crate::sender::backoff(
            self.state.config.send_retry_base,
            crate::queue::receive_count(record),
        );
        crate::queue::retry_after(&self.state.sqs, url, record, delay, MAX_BACKOFF).await;
    }
}

impl crate::queue::BatchHandler for Forwarder {
    fn handle(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> + Send {
        Forwarder::handle(self, event)
    }
}
