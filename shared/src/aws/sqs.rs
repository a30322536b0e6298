//! The SQS operations the functions use, on SQS's JSON protocol.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Aws, AwsError};

#[derive(Clone)]
pub struct Sqs(Aws);

/// A message attribute (`Number` or `String`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
}

impl Attribute {
    pub fn number(value: impl ToString) -> Self {
        Self {
            data_type: "Number".into(),
            string_value: Some(value.to_string()),
        }
    }
}

/// A message to send, alone or in a batch (`id` names it in the batch's answer).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Outgoing {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub message_body: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_seconds: i32,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub message_attributes: HashMap<String, Attribute>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A received message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub receipt_handle: Option<String>,
    #[serde(default, rename = "MD5OfBody")]
    pub md5_of_body: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// System attributes asked for (`ApproximateReceiveCount`, …).
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    #[serde(default)]
    pub message_attributes: HashMap<String, Attribute>,
}

/// What to receive: up to `max` messages, waiting up to `wait_seconds` for the first,
/// each hidden for `visibility_timeout` (the queue's own when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Receive {
    pub max: i32,
    pub wait_seconds: i32,
    pub visibility_timeout: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Received {
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchResult {
    #[serde(default)]
    successful: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attributes {
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Batch<'a, T> {
    queue_url: &'a str,
    entries: &'a [T],
}

impl Sqs {
    pub fn new(aws: Aws) -> Self {
        Self(aws)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        input: &impl Serialize,
        extra_time: Duration,
    ) -> Result<T, AwsError> {
        let body = serde_json::to_vec(input).map_err(|e| AwsError::Unreadable {
            service: "sqs",
            detail: e.to_string(),
        })?;
        let out = self
            .0
            .json_call(
                "sqs",
                super::JSON_1_0,
                &format!("AmazonSQS.{action}"),
                body,
                extra_time,
            )
            .await?;
        // Some actions answer with an empty body.
        let out: &[u8] = if out.is_empty() { b"{}" } else { &out };
        serde_json::from_slice(out).map_err(|e| AwsError::Unreadable {
            service: "sqs",
            detail: format!("{action}: {e}"),
        })
    }

    pub async fn send(&self, queue_url: &str, message: &Outgoing) -> Result<(), AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            queue_url: &'a str,
            #[serde(flatten)]
            message: &'a Outgoing,
        }
        self.call::<serde_json::Value>("SendMessage", &Input { queue_url, message }, Duration::ZERO)
            .await
            .map(drop)
    }

    /// Sends up to ten messages (their `id`s distinct); the ids SQS accepted.
    pub async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[Outgoing],
    ) -> Result<Vec<String>, AwsError> {
        let out: BatchResult = self
            .call(
                "SendMessageBatch",
                &Batch { queue_url, entries },
                Duration::ZERO,
            )
            .await?;
        Ok(out.successful.into_iter().map(|e| e.id).collect())
    }

    /// Receives messages with every system and message attribute.
    pub async fn receive(&self, queue_url: &str, r: Receive) -> Result<Vec<Message>, AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            queue_url: &'a str,
            max_number_of_messages: i32,
            wait_time_seconds: i32,
            #[serde(skip_serializing_if = "Option::is_none")]
            visibility_timeout: Option<i32>,
            message_system_attribute_names: [&'a str; 1],
            message_attribute_names: [&'a str; 1],
        }
        let out: Received = self
            .call(
                "ReceiveMessage",
                &Input {
                    queue_url,
                    max_number_of_messages: r.max,
                    wait_time_seconds: r.wait_seconds,
                    visibility_timeout: r.visibility_timeout,
                    message_system_attribute_names: ["All"],
                    message_attribute_names: ["All"],
                },
                Duration::from_secs(r.wait_seconds.max(0) as u64),
            )
            .await?;
        Ok(out.messages)
    }

    pub async fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        visibility_timeout: i32,
    ) -> Result<(), AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            queue_url: &'a str,
            receipt_handle: &'a str,
            visibility_timeout: i32,
        }
        self.call::<serde_json::Value>(
            "ChangeMessageVisibility",
            &Input {
                queue_url,
                receipt_handle,
                visibility_timeout,
            },
            Duration::ZERO,
        )
        .await
        .map(drop)
    }

    pub async fn delete(&self, queue_url: &str, receipt_handle: &str) -> Result<(), AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            queue_url: &'a str,
            receipt_handle: &'a str,
        }
        self.call::<serde_json::Value>(
            "DeleteMessage",
            &Input {
                queue_url,
                receipt_handle,
            },
            Duration::ZERO,
        )
        .await
        .map(drop)
    }

    /// Deletes up to ten received messages by receipt handle.
    pub async fn delete_batch(
        &self,
        queue_url: &str,
        receipt_handles: &[&str],
    ) -> Result<(), AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct DeleteEntry<'a> {
            id: String,
            receipt_handle: &'a str,
        }
        let entries: Vec<DeleteEntry> = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, r)| DeleteEntry {
                id: i.to_string(),
                receipt_handle: r,
            })
            .collect();
        self.call::<serde_json::Value>(
            "DeleteMessageBatch",
            &Batch {
                queue_url,
                entries: &entries,
            },
            Duration::ZERO,
        )
        .await
        .map(drop)
    }

    pub async fn attributes(
        &self,
        queue_url: &str,
        names: &[&str],
    ) -> Result<HashMap<String, String>, AwsError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            queue_url: &'a str,
            attribute_names: &'a [&'a str],
        }
        let out: Attributes = self
            .call(
                "GetQueueAttributes",
                &Input {
                    queue_url,
                    attribute_names: names,
                },
                Duration::ZERO,
            )
            .await?;
        Ok(out.attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_leaves_out_what_is_unset() {
        let mut m = Outgoing {
            message_body: "{}".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            serde_json::json!({"MessageBody": "{}"})
        );
        m.id = "0".into();
        m.delay_seconds = 3;
        m.message_attributes
            .insert("notBefore".into(), Attribute::number(5));
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            serde_json::json!({"Id": "0", "MessageBody": "{}", "DelaySeconds": 3,
                "MessageAttributes": {"notBefore": {"DataType": "Number", "StringValue": "5"}}})
        );
    }

    #[test]
    fn reads_a_received_message() {
        let r: Received = serde_json::from_str(
            r#"{"Messages":[{"MessageId":"m","ReceiptHandle":"r","MD5OfBody":"x","Body":"b",
            "Attributes":{"ApproximateReceiveCount":"2"},
            "MessageAttributes":{"notBefore":{"DataType":"Number","StringValue":"7"}}}]}"#,
        )
        .expect("parse");
        let m = &r.messages[0];
        assert_eq!(m.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(
            m.message_attributes["notBefore"].string_value.as_deref(),
            Some("7")
        );
        assert_eq!(m.md5_of_body.as_deref(), Some("x"));
    }
}
