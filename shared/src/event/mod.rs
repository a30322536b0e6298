//! Signed event forwarding: a tenant subscribes a URL to event types; each event is POSTed
//! there as JSON (`id`, `type`, `createdAt`, `tenantId`, `data`) with
//! `X-Signature-256: sha256=<HMAC-SHA256 of the body with the subscription's secret>`,
//! through its own SQS queue (one job per event and subscription) and DLQ, retried with
//! backoff until the receiver answers 2xx: at least once, and the `id` (the same for every
//! retry, and for Meta's retries of what caused it) lets the receiver drop duplicates. A job
//! names its subscription and tenant; the forwarder loads the subscription by both, so an
//! event never reaches another tenant's URL.
//!
//! The forwarder (`crate::forwarder`) delivers them.
//!
//! Emitting is best effort after the cause is durable: the inbound message, status or
//! hand-off is stored first; an event whose enqueue fails is logged and counted
//! (`EventEnqueueFailed`), never retried by failing the webhook.

pub mod subscription;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::TenantId;

/// The event types a subscription may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.status")]
    MessageStatus,
    #[serde(rename = "meta_template.status")]
    MetaTemplateStatus,
    #[serde(rename = "customer.opted_out")]
    CustomerOptedOut,
    #[serde(rename = "handoff.started")]
    HandoffStarted,
}

pub const EVENT_TYPES: [EventType; 5] = [
    EventType::MessageReceived,
    EventType::MessageStatus,
    EventType::MetaTemplateStatus,
    EventType::CustomerOptedOut,
    EventType::HandoffStarted,
];

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message.received",
            Self::MessageStatus => "message.status",
            Self::MetaTemplateStatus => "meta_template.status",
            Self::CustomerOptedOut => "customer.opted_out",
            Self::HandoffStarted => "handoff.started",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EVENT_TYPES.into_iter().find(|t| t.as_str() == s)
    }
}

/// One event, as the receiver gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub created_at: String,
    pub tenant_id: String,
    pub data: Value,
}

impl Event {
    /// `cause` names what happened once (a wamid, a wamid and status, ...): the same cause
    /// gives the same id, so a receiver drops what Meta's retries make us emit again.
    pub fn new(tenant: &TenantId, kind: EventType, cause: &str, data: Value) -> Self {
        let digest = Sha256::digest(format!("{tenant}|{}|{cause}", kind.as_str()).as_bytes());
        Self {
            id: format!("evt_{}", &hex::encode(digest)[..24]),
            kind,
            created_at: crate::ids::rfc3339(mongodb::bson::DateTime::now()),
            tenant_id: tenant.to_string(),
            data,
        }
    }
}

/// The forwarding queue's job: one event for one subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardJob {
    pub subscription_id: String,
    pub tenant_id: String,
    pub event: Event,
}

/// Where events go: the forwarding queue (`EVENTS_QUEUE_URL`).
pub struct EventQueue<'a> {
    pub sqs: &'a crate::aws::Sqs,
    pub url: &'a str,
}

impl EventQueue<'_> {
    /// Sends the jobs ten per call; a refused one is logged and counted.
    pub async fn send(&self, jobs: &[ForwardJob]) {
        for chunk in jobs.chunks(10) {
            let entries: Vec<crate::aws::sqs::Outgoing> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, j)| {
                    Some(crate::aws::sqs::Outgoing {
                        id: i.to_string(),
                        message_body: serde_json::to_string(j).ok()?,
                        ..Default::default()
                    })
                })
                .collect();
            let refused = match self.sqs.send_batch(self.url, &entries).await {
                Ok(accepted) => chunk.len() - accepted.len(),
                Err(e) => {
                    tracing::error!(error = %e, "could not enqueue events");
                    chunk.len()
                }
            };
            if refused > 0 {
                tracing::error!(refused, "events not enqueued: not forwarded");
                crate::metrics::count(crate::metrics::Metric::EventEnqueueFailed, &[]);
            }
        }
    }
}

/// A tenant's subscriptions as emitting needs them: id and event types.
pub type Subscribers = Vec<(mongodb::bson::oid::ObjectId, Vec<EventType>)>;

/// How long a warm function reuses a tenant's subscriptions when emitting (a new or deleted
/// subscription is seen everywhere within this).
pub const SUBSCRIBERS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// What emitting needs: the store (subscriptions), their cache and the forwarding queue.
pub struct Emitter<'a> {
    pub store: &'a crate::store::Store,
    pub sqs: &'a crate::aws::Sqs,
    /// `EVENTS_QUEUE_URL`; without it nothing is forwarded.
    pub url: Option<&'a str>,
    pub subscribers: &'a crate::cache::TtlCache<TenantId, Subscribers>,
}

/// Which event types a tenant's subscriptions want (cached): what the webhook asks before
/// building any event, so a tenant nobody subscribes to costs nothing per message.
pub struct Wanted(Option<std::sync::Arc<Subscribers>>);

impl Wanted {
    pub fn wants(&self, kind: EventType) -> bool {
        self.0
            .as_ref()
            .is_some_and(|subs| subs.iter().any(|(_, types)| types.contains(&kind)))
    }
}

/// The tenant's subscriptions, through the warm cache; none without `EVENTS_QUEUE_URL` (or
/// when they cannot be read: logged and counted, the events are not forwarded).
pub async fn wanted(to: &Emitter<'_>, tenant: &TenantId) -> Wanted {
    if to.url.is_none() {
        return Wanted(None);
    }
    let subscribers = to
        .subscribers
        .get_or_load(tenant, async {
            let subs = subscription::list(to.store, tenant).await?;
            Ok::<_, crate::error::ApiError>(
                subs.into_iter()
                    .map(|s| (s.id, s.events))
                    .collect::<Subscribers>(),
            )
        })
        .await;
    match subscribers {
        Ok(s) => Wanted(Some(s)),
        Err(e) => {
            e.log();
            crate::metrics::count(crate::metrics::Metric::EventEnqueueFailed, &[]);
            Wanted(None)
        }
    }
}

/// Puts each event on the forwarding queue once per subscription that wants its type.
pub async fn emit(to: &Emitter<'_>, tenant: &TenantId, events: Vec<Event>) {
    let wanted = wanted(to, tenant).await;
    emit_to(to, tenant, &wanted, events).await;
}

/// [`emit`] with the subscriptions read already.
pub async fn emit_to(to: &Emitter<'_>, tenant: &TenantId, wanted: &Wanted, events: Vec<Event>) {
    let (Some(url), Some(subscribers)) = (to.url, wanted.0.as_ref()) else {
        return;
    };
    let jobs: Vec<ForwardJob> = events
        .iter()
        .flat_map(|event| {
            subscribers
                .iter()
                .filter(|(_, types)| types.contains(&event.kind))
                .map(|(id, _)| ForwardJob {
                    subscription_id: id.to_hex(),
                    tenant_id: tenant.to_string(),
                    event: event.clone(),
                })
        })
        .collect();
    if jobs.is_empty() {
        return;
    }
    EventQueue { sqs: to.sqs, url }.send(&jobs).await;
}
