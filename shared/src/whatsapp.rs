//! The WhatsApp Cloud API (Graph) client: payloads exactly as the Cloud API expects them and
//! errors classified into retry / permanent from Graph's `error.code` and the HTTP status.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    queue::{Content, ContentKind},
    secret::Secret,
};

/// Graph call timeout; the sender's lease (`SEND_LEASE_MS`, 40 s) and the queue's
/// visibility timeout are far longer, so a slow call never overlaps a redelivery.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Tokens with this prefix simulate a successful send without any HTTP (accepted at
/// registration only with `APP_ENV=development`).
pub const MOCK_TOKEN_PREFIX: &str = "mock_";

pub fn is_mock_token(token: &str) -> bool {
    token.starts_with(MOCK_TOKEN_PREFIX)
}

/// A tenant's sending identity, decrypted.
pub struct Credentials {
    pub phone_number_id: String,
    pub token: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network, timeout, 5xx, 429 and Graph's throttling/transient codes.
    Retry,
    /// Everything else: the same request would fail again.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub class: ErrorClass,
    pub code: String,
    pub title: String,
    pub details: Option<String>,
}

/// Graph codes that are worth retrying: 1/2 (unknown/service), 4 (app rate limit), 80007
/// (WABA rate limit), 130429 (throughput), 131056 (pair rate), 131057 (account in
/// maintenance).
const RETRY_CODES: &[i64] = &[1, 2, 4, 80007, 130429, 131056, 131057];

/// Classifies a non-2xx Graph answer.
pub fn classify(status: u16, body: &str) -> SendError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let title = error
        .and_then(|e| e.get("error_user_title").or_else(|| e.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let details = error
        .and_then(|e| e.get("error_data"))
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let retry = status >= 500 || status == 429 || code.is_some_and(|c| RETRY_CODES.contains(&c));
    SendError {
        class: if retry {
            ErrorClass::Retry
        } else {
            ErrorClass::Permanent
        },
        code: code.map_or_else(|| format!("http_{status}"), |c| c.to_string()),
        title,
        details,
    }
}

/// The `/messages` request body for `content`.
pub fn payload(to: &str, content: &Content) -> Value {
    match content.kind {
        ContentKind::Text => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "preview_url": false, "body": content.text },
        }),
        ContentKind::InteractiveButton => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": { "text": content.text },
                "action": {
                    "buttons": content.buttons.iter().map(|b| json!({
                        "type": "reply",
                        "reply": { "id": b.id, "title": b.title },
                    })).collect::<Vec<_>>(),
                },
            },
        }),
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl GraphClient {
    pub fn new(base: &str, version: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(32)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
        }
    }

    /// Sends one message; returns its wamid.
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &Secret,
        to: &str,
        content: &Content,
    ) -> Result<String, SendError> {
        if is_mock_token(token.expose()) {
            return Ok(format!("wamid.mock_{}", ulid_like()));
        }
        let url = format!(
            "{}/{}/{}/messages",
            self.base, self.version, phone_number_id
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .json(&payload(to, content))
            .send()
            .await
            .map_err(|e| SendError {
                class: ErrorClass::Retry,
                code: if e.is_timeout() {
                    "timeout".into()
                } else {
                    "network".into()
                },
                // reqwest's message names the URL, never the bearer token.
                title: e.without_url().to_string(),
                details: None,
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(classify(status, &body));
        }
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["messages"][0]["id"].as_str().map(str::to_owned))
            .ok_or_else(|| SendError {
                class: ErrorClass::Retry,
                code: "bad_response".into(),
                title: "Graph answered without messages[0].id".into(),
                details: None,
            })
    }
}

fn ulid_like() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::JobButton;

    #[test]
    fn classifies_graph_errors() {
        let graph = |code: i64| {
            format!(
                r#"{{"error":{{"message":"m","type":"OAuthException","code":{code},"error_data":{{"details":"d"}}}}}}"#
            )
        };
        for code in [1, 2, 4, 80007, 130429, 131056, 131057] {
            assert_eq!(
                classify(400, &graph(code)).class,
                ErrorClass::Retry,
                "{code}"
            );
        }
        for code in [100, 131026, 131047, 131051, 190] {
            let e = classify(400, &graph(code));
            assert_eq!(e.class, ErrorClass::Permanent, "{code}");
            assert_eq!(e.code, code.to_string());
            assert_eq!(e.details.as_deref(), Some("d"));
        }
        assert_eq!(classify(500, "oops").class, ErrorClass::Retry);
        assert_eq!(classify(503, "").code, "http_503");
        assert_eq!(classify(429, "").class, ErrorClass::Retry);
        assert_eq!(classify(404, "").class, ErrorClass::Permanent);
    }

    #[test]
    fn interactive_payload_keeps_buttons() {
        let content = Content {
            kind: ContentKind::InteractiveButton,
            text: "Pick".into(),
            buttons: vec![JobButton {
                id: "a".into(),
                title: "A".into(),
            }],
        };
        let p = payload("34600111222", &content);
        assert_eq!(p["type"], "interactive");
        assert_eq!(
            p["interactive"]["action"]["buttons"][0],
            json!({"type": "reply", "reply": {"id": "a", "title": "A"}})
        );
    }
}
