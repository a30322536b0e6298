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
