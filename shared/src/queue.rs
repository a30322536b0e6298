//! The send queue: outbound jobs for the sender function, in the seed's shape.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Text,
    InteractiveButton,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobButton {
    pub id: String,
    pub title: String,
}

/// What to send: plain text, or text with reply buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub kind: ContentKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<JobButton>,
}

/// `{tenantId, messageId, to, content:{kind, text, buttons?}, idempotencyKey}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    pub tenant_id: String,
    pub message_id: String,
    pub to: String,
    pub content: Content,
    pub idempotency_key: String,
}

#[derive(Clone)]
pub struct SendQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl SendQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, job: &SendJob) -> Result<(), ApiError> {
        let body = serde_json::to_string(job).map_err(|_| ApiError::Internal)?;
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                ApiError::unavailable("queue", aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        Ok(())
    }
}

/// A message parked in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub sqs_message_id: String,
    pub receive_count: String,
    pub body: String,
}

/// Lists up to `max` DLQ messages without removing them (each is made visible again).
pub async fn dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    max: usize,
) -> Result<Vec<DeadLetter>, aws_sdk_sqs::Error> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let mut seen: Vec<DeadLetter> = Vec::new();
    let mut receipts = Vec::new();
    while seen.len() < max {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in got {
            if let Some(r) = m.receipt_handle.clone() {
                receipts.push(r);
            }
            seen.push(DeadLetter {
                sqs_message_id: m.message_id.clone().unwrap_or_default(),
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                            .cloned()
                    })
                    .unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            });
        }
    }
    for r in receipts {
        sqs.change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(r)
            .visibility_timeout(0)
            .send()
            .await?;
    }
    Ok(seen)
}

/// Moves every DLQ message back to the send queue; returns how many moved. A message is
/// deleted from the DLQ only after the send queue accepted it.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, aws_sdk_sqs::Error> {
    let mut moved = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return Ok(moved);
        }
        for m in got {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(m.body.clone().unwrap_or_default())
                .send()
                .await?;
            if let Some(r) = m.receipt_handle {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(r)
                    .send()
                    .await?;
            }
            moved += 1;
            tracing::info!(sqsMessageId = ?m.message_id, "redriven");
            crate::metrics::count(crate::metrics::Metric::DlqRedrive, &[]);
        }
    }
}
