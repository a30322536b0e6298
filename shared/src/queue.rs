//! The send queue: outbound jobs for the sender function, in the seed's shape.

use serde::{Deserialize, Serialize};

use crate::{
    aws::{AwsError, Sqs, sqs},
    error::ApiError,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    #[default]
    Text,
    InteractiveButton,
    InteractiveList,
    /// An image, document, video or audio (`media`), with `text` as its caption.
    Media,
    /// An approved Meta template (`template`); `text` is its body as the customer reads it.
    MetaTemplate,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::InteractiveButton => "interactive_button",
            Self::InteractiveList => "interactive_list",
            Self::Media => "media",
            Self::MetaTemplate => "meta_template",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobButton {
    pub id: String,
    pub title: String,
}

/// A list message's menu: the button that opens it and its sections of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    pub button: String,
    pub sections: Vec<JobSection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<JobRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A file WhatsApp fetches (`link`) or one uploaded to Meta before (`id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMedia {
    /// `image`, `document`, `video` or `audio`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// An interactive message's header: text, or an image or document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<JobMedia>,
}

/// An approved Meta template with its parameters, in Meta's `template` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTemplate {
    pub name: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<serde_json::Value>,
}

/// What to send. The seed's shape (`kind`, `text`, `buttons`) plus, by kind, a list, a
/// header and footer, a media file or a Meta template; absent parts are not serialised, so
/// a text or button job is exactly the seed's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub kind: ContentKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<JobButton>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<JobList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<JobHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<JobMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<JobTemplate>,
}

/// `{tenantId, messageId, to, content:{kind, text, buttons?}, idempotencyKey}`, plus the
/// pacing fields below when a job was scheduled or deferred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    #[serde(with = "crate::ids::hex_id")]
    pub tenant_id: crate::ids::TenantId,
    #[serde(with = "crate::ids::hex_id")]
    pub message_id: crate::ids::MessageId,
    pub to: String,
    /// The tenant's number it goes from (none: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub content: Content,
    pub idempotency_key: String,
    /// Not to be sent before this (epoch milliseconds): a booked customer slot, the end of
    /// a number's backlog or of a tenant's pause. Travels as the SQS message attribute
    /// `notBefore`, so the body keeps the seed's shape.
    #[serde(skip)]
    pub not_before: Option<i64>,
    /// The customer's slot at `notBefore` is booked for this message already (attribute
    /// `customerBooked`).
    #[serde(skip)]
    pub customer_booked: bool,
}

pub const NOT_BEFORE_ATTRIBUTE: &str = "notBefore";
pub const CUSTOMER_BOOKED_ATTRIBUTE: &str = "customerBooked";

impl SendJob {
    /// The slots this job holds.
    pub fn booking(&self) -> crate::pacing::Booking {
        crate::pacing::Booking {
            not_before: self.not_before,
            customer: self.customer_booked,
        }
    }

    /// This job as an SQS message: the body in the seed's shape, the pacing fields as
    /// attributes, delayed until shortly before `notBefore`.
    fn outgoing(&self, id: String, now_ms: i64) -> Option<sqs::Outgoing> {
        let mut attributes = std::collections::HashMap::new();
        if let Some(at) = self.not_before {
            attributes.insert(NOT_BEFORE_ATTRIBUTE.to_owned(), sqs::Attribute::number(at));
        }
        if self.customer_booked {
            attributes.insert(
                CUSTOMER_BOOKED_ATTRIBUTE.to_owned(),
                sqs::Attribute::number(1),
            );
        }
        Some(sqs::Outgoing {
            id,
            message_body: serde_json::to_string(self).ok()?,
            delay_seconds: delay_seconds(self.not_before, now_ms),
            message_attributes: attributes,
        })
    }

    /// Reads the pacing attributes of a received message (string values, as Lambda
    /// delivers them).
    pub fn with_attributes(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        self.not_before = get(NOT_BEFORE_ATTRIBUTE).and_then(|v| v.parse().ok());
        self.customer_booked = get(CUSTOMER_BOOKED_ATTRIBUTE).is_some_and(|v| v == "1");
        self
    }
}

/// The longest one SQS delay we ask for (SQS allows 900 s): below the relay's stale period
/// (`RELAY_STALE_SECS`, 900), so a deferred job is back before the relay could take it for
/// lost. A longer deferral hops.
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(600);

/// Whole seconds until [`EARLY`](crate::pacing::EARLY) before `not_before`, rounded down:
/// a job arrives a little early and the sender waits the rest in-process, so a slot is kept
/// to the millisecond rather than to SQS's whole seconds.
pub fn delay_seconds(not_before: Option<i64>, now_ms: i64) -> i32 {
    let Some(at) = not_before else {
        return 0;
    };
    let wait = (at - now_ms - crate::pacing::EARLY.as_millis() as i64).max(0);
    (wait / 1000).min(MAX_DELAY.as_secs() as i64) as i32
}

fn now_ms() -> i64 {
    mongodb::bson::DateTime::now().timestamp_millis()
}

#[derive(Clone)]
pub struct SendQueue {
    sqs: Sqs,
    url: String,
}

impl SendQueue {
    pub fn new(sqs: Sqs, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, job: &SendJob) -> Result<(), ApiError> {
        let message = job
            .outgoing(String::new(), now_ms())
            .ok_or(ApiError::Internal)?;
        self.sqs
            .send(&self.url, &message)
            .await
            .map_err(|e| ApiError::unavailable("queue", e))
    }

    /// Enqueues jobs ten per call, each delayed until its `notBefore`; `true` for each job
    /// SQS accepted.
    pub async fn send_batch(&self, jobs: &[SendJob]) -> Vec<bool> {
        let mut accepted = vec![false; jobs.len()];
        let now = now_ms();
        for (chunk_no, chunk) in jobs.chunks(10).enumerate() {
            let entries: Vec<sqs::Outgoing> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, job)| job.outgoing(i.to_string(), now))
                .collect();
            match self.sqs.send_batch(&self.url, &entries).await {
                Ok(ids) => {
                    for i in ids.iter().filter_map(|id| id.parse::<usize>().ok()) {
                        if let Some(ok) = accepted.get_mut(chunk_no * 10 + i) {
                            *ok = true;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not re-enqueue deferred jobs"),
            }
        }
        accepted
    }
}

/// A message parked in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub sqs_message_id: String,
    pub receive_count: String,
    pub body: String,
}

/// A DLQ message received for a look: invisible until it is released or deleted.
struct Parked {
    letter: DeadLetter,
    receipt: Option<String>,
}

impl Parked {
    /// The tenant and message its job names (`None`: an unreadable job).
    fn job(&self) -> Option<(crate::ids::TenantId, crate::ids::MessageId)> {
        serde_json::from_str::<SendJob>(&self.letter.body)
            .ok()
            .map(|j| (j.tenant_id, j.message_id))
    }
}

/// Receives up to `max` DLQ messages, each invisible for `hold_secs`.
async fn park(
    sqs: &Sqs,
    dlq_url: &str,
    max: usize,
    hold_secs: i32,
) -> Result<Vec<Parked>, AwsError> {
    let mut parked: Vec<Parked> = Vec::new();
    while parked.len() < max {
        let got = sqs
            .receive(
                dlq_url,
                sqs::Receive {
                    max: 10,
                    wait_seconds: 0,
                    visibility_timeout: Some(hold_secs),
                },
            )
            .await?;
        if got.is_empty() {
            break;
        }
        for mut m in got {
            parked.push(Parked {
                letter: DeadLetter {
                    sqs_message_id: m.message_id.unwrap_or_default(),
                    receive_count: m
                        .attributes
                        .remove("ApproximateReceiveCount")
                        .unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                },
                receipt: m.receipt_handle,
            });
        }
    }
    Ok(parked)
}

/// Makes parked messages visible again.
async fn release<'a>(
    sqs: &Sqs,
    dlq_url: &str,
    parked: impl IntoIterator<Item = &'a Parked>,
) -> Result<(), AwsError> {
    for r in parked.into_iter().filter_map(|p| p.receipt.as_deref()) {
        sqs.change_visibility(dlq_url, r, 0).await?;
    }
    Ok(())
}

/// Lists up to `max` DLQ messages without removing them (each is made visible again).
pub async fn dead_letters(
    sqs: &Sqs,
    dlq_url: &str,
    max: usize,
) -> Result<Vec<DeadLetter>, AwsError> {
    let parked = park(sqs, dlq_url, max, 30).await?;
    release(sqs, dlq_url, &parked).await?;
    Ok(parked.into_iter().map(|p| p.letter).collect())
}

/// How many DLQ messages one request looks through for a tenant's (the DLQ is shared).
pub const DEAD_LETTER_SCAN: usize = 1000;

/// The messages of `tenant` whose jobs are in the DLQ, with how many jobs each has there;
/// every job is made visible again. A look running at the same time (another request, a
/// redrive) may hide some for a few seconds.
pub async fn tenant_dead_letters(
    sqs: &Sqs,
    dlq_url: &str,
    tenant: &crate::ids::TenantId,
) -> Result<Vec<(crate::ids::MessageId, usize)>, AwsError> {
    let parked = park(sqs, dlq_url, DEAD_LETTER_SCAN, 30).await?;
    release(sqs, dlq_url, &parked).await?;
    let mut found: Vec<(crate::ids::MessageId, usize)> = Vec::new();
    for (_, id) in parked
        .iter()
        .filter_map(Parked::job)
        .filter(|(t, _)| t == tenant)
    {
        match found.iter_mut().find(|(m, _)| *m == id) {
            Some((_, n)) => *n += 1,
            None => found.push((id, 1)),
        }
    }
    Ok(found)
}

/// Moves `tenant`'s DLQ jobs (only those of `only`'s messages, when given) back to the send
/// queue: one job per message, every other job of it deleted. Each is deleted from the DLQ
/// only after the send queue accepted its message's job; everything else is made visible
/// again. Returns the messages sent back.
pub async fn redrive_tenant(
    sqs: &Sqs,
    dlq_url: &str,
    queue_url: &str,
    tenant: &crate::ids::TenantId,
    only: Option<&[crate::ids::MessageId]>,
) -> Result<Vec<crate::ids::MessageId>, AwsError> {
    let parked = park(sqs, dlq_url, DEAD_LETTER_SCAN, 60).await?;
    let mut moved: Vec<crate::ids::MessageId> = Vec::new();
    let mut others: Vec<&Parked> = Vec::new();
    for p in &parked {
        let ours = p
            .job()
            .filter(|(t, m)| t == tenant && only.is_none_or(|ids| ids.contains(m)));
        let Some((_, id)) = ours else {
            others.push(p);
            continue;
        };
        if !moved.contains(&id) {
            sqs.send(queue_url, &verbatim(p.letter.body.clone()))
                .await?;
            moved.push(id);
            tracing::info!(tenantId = %tenant, messageId = %id, "redriven");
            crate::metrics::count(crate::metrics::Metric::DlqRedrive, &[]);
        }
        if let Some(r) = &p.receipt {
            sqs.delete(dlq_url, r).await?;
        }
    }
    release(sqs, dlq_url, others).await?;
    Ok(moved)
}

/// A job body sent as it is (no delay, no attributes).
fn verbatim(body: String) -> sqs::Outgoing {
    sqs::Outgoing {
        message_body: body,
        ..Default::default()
    }
}

/// Moves every DLQ message back to the send queue; returns how many moved. A message is
/// deleted from the DLQ only after the send queue accepted it.
pub async fn redrive(sqs: &Sqs, dlq_url: &str, queue_url: &str) -> Result<usize, AwsError> {
    let mut moved = 0;
    loop {
        let got = sqs
            .receive(
                dlq_url,
                sqs::Receive {
                    max: 10,
                    wait_seconds: 0,
                    visibility_timeout: Some(60),
                },
            )
            .await?;
        if got.is_empty() {
            return Ok(moved);
        }
        for m in got {
            sqs.send(queue_url, &verbatim(m.body.unwrap_or_default()))
                .await?;
            if let Some(r) = &m.receipt_handle {
                sqs.delete(dlq_url, r).await?;
            }
            moved += 1;
            tracing::info!(sqsMessageId = ?m.message_id, "redriven");
            crate::metrics::count(crate::metrics::Metric::DlqRedrive, &[]);
        }
    }
}

/// How many times SQS has handed out this message (1 for the first receive).
pub fn receive_count(record: &aws_lambda_events::event::sqs::SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// A batch item to retry: hidden for `delay` (capped at SQS's 12 h, and at `max`) before
/// its next receive.
pub async fn retry_after(
    sqs: &Sqs,
    queue_url: &str,
    record: &aws_lambda_events::event::sqs::SqsMessage,
    delay: std::time::Duration,
    max: std::time::Duration,
) {
    let Some(receipt) = record.receipt_handle.as_deref() else {
        return;
    };
    let hidden = delay.min(max).as_secs().min(43_200) as i32;
    if let Err(e) = sqs.change_visibility(queue_url, receipt, hidden).await {
        tracing::warn!(error = %e, "could not set the retry backoff");
    }
}

/// A consumer of an SQS event source's batches (reporting batch item failures).
pub trait BatchHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: aws_lambda_events::event::sqs::SqsEvent,
    ) -> impl Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse> + Send;
}

/// What a batch handler's invocation returns to the Lambda runtime.
pub type BatchFuture = std::pin::Pin<
    Box<
        dyn Future<
                Output = Result<
                    aws_lambda_events::event::sqs::SqsBatchResponse,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send,
    >,
>;

/// The function the Lambda runtime (and the local queue shim) invokes with each batch.
pub fn lambda_handler<H: BatchHandler>(
    handler: H,
) -> impl Fn(aws_lambda_events::event::sqs::SqsEvent) -> BatchFuture + Clone + Send + Sync + 'static
{
    let handler = std::sync::Arc::new(handler);
    move |event| {
        let handler = handler.clone();
        Box::pin(async move { Ok(handler.handle(event).await) })
    }
}
