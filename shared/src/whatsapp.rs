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

/// What the sender does about a failed send: one class per row of the table in
/// [`class_of`] (and in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient (network, timeout, 5xx, 1, 2, 131000, 131057): back off and retry; the
    /// queue's receive count moves it to the DLQ after five.
    Retry,
    /// The number's throughput (130429, 4, 80007, HTTP 429): slow that number, retry.
    /// Never counts towards the DLQ.
    PaceNumber,
    /// The pair rate (131056): retry that customer one interval later.
    PaceCustomer,
    /// Spam and marketing limits (131048, 131049): pause the tenant's API sends.
    BackOffTenant,
    /// The token (190 and other auth errors, HTTP 401): hold the tenant's messages until
    /// its token is replaced.
    Hold,
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

/// Graph's error code (and HTTP status) → what to do, and a reason a reader of the message
/// understands where Meta's own title is terse.
pub fn class_of(status: u16, code: Option<i64>) -> (ErrorClass, Option<&'static str>) {
    use ErrorClass::*;
    match code {
        Some(131047) => (
            Permanent,
            Some(
                "Outside the 24-hour customer service window: the customer has not written in \
                 the last 24 hours, so only an approved Meta template can reach them",
            ),
        ),
        Some(130429) => (
            PaceNumber,
            Some("Throughput limit of the business number reached"),
        ),
        Some(4 | 80007) => (
            PaceNumber,
            Some("Rate limit of the app or the WhatsApp Business Account reached"),
        ),
        Some(131056) => (
            PaceCustomer,
            Some("Too many messages to this customer in a short time (pair rate limit)"),
        ),
        Some(131048 | 131049) => (
            BackOffTenant,
            Some("Meta limited sends to this customer (spam or marketing limit)"),
        ),
        Some(0 | 190 | 102 | 10 | 200..=299) => (
            Hold,
            Some("The access token is expired, revoked or lacks permission: replace it"),
        ),
        Some(1 | 2 | 131000 | 131057) => (Retry, None),
        _ if status == 401 => (
            Hold,
            Some("The access token is expired, revoked or lacks permission: replace it"),
        ),
        _ if status == 429 => (PaceNumber, None),
        _ if status >= 500 => (Retry, None),
        _ => (Permanent, None),
    }
}

/// Classifies a non-2xx Graph answer.
pub fn classify(status: u16, body: &str) -> SendError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let graph_title = error
        .and_then(|e| e.get("error_user_title").or_else(|| e.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let details = error
        .and_then(|e| e.get("error_data"))
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (class, reason) = class_of(status, code);
    let (title, details) = match reason {
        // Meta's own words stay, as the details.
        Some(reason) => (reason.to_owned(), details.or(graph_title)),
        None => (
            graph_title.unwrap_or_else(|| format!("HTTP {status}")),
            details,
        ),
    };
    SendError {
        class,
        code: code.map_or_else(|| format!("http_{status}"), |c| c.to_string()),
        title,
        details,
    }
}

/// A readable reason for a failure Meta reported in a status webhook, if the code has one.
pub fn reason_for(code: &str) -> Option<&'static str> {
    class_of(400, code.parse().ok()).1
}

/// The `/messages` request body for `content`.
pub fn payload(to: &str, content: &Content) -> Value {
    let mut p = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    });
    let (kind, part) = match content.kind {
        ContentKind::Text => (
            "text",
            json!({ "preview_url": false, "body": content.text }),
        ),
        ContentKind::InteractiveButton => (
            "interactive",
            interactive(
                content,
                "button",
                json!({
                    "buttons": content.buttons.iter().map(|b| json!({
                        "type": "reply",
                        "reply": { "id": b.id, "title": b.title },
                    })).collect::<Vec<_>>(),
                }),
            ),
        ),
        ContentKind::InteractiveList => {
            let list = content.list.as_ref();
            (
                "interactive",
                interactive(
                    content,
                    "list",
                    json!({
                        "button": list.map(|l| l.button.as_str()).unwrap_or_default(),
                        "sections": list.map(|l| l.sections.iter().map(|s| {
                            let mut section = json!({ "rows": s.rows.iter().map(|r| {
                                let mut row = json!({ "id": r.id, "title": r.title });
                                if let Some(d) = &r.description {
                                    row["description"] = json!(d);
                                }
                                row
                            }).collect::<Vec<_>>() });
                            if let Some(t) = &s.title {
                                section["title"] = json!(t);
                            }
                            section
                        }).collect::<Vec<_>>()).unwrap_or_default(),
                    }),
                ),
            )
        }
        ContentKind::Media => {
            let m = content.media.as_ref();
            let kind = m.map(|m| m.kind.as_str()).unwrap_or("document");
            let mut part = media_object(m);
            // Audio takes no caption; WhatsApp refuses one.
            if !content.text.is_empty() && kind != "audio" {
                part["caption"] = json!(content.text);
            }
            (kind, part)
        }
        ContentKind::MetaTemplate => {
            let t = content.template.as_ref();
            let mut part = json!({
                "name": t.map(|t| t.name.as_str()).unwrap_or_default(),
                "language": { "code": t.map(|t| t.language.as_str()).unwrap_or_default() },
            });
            if let Some(t) = t.filter(|t| !t.components.is_empty()) {
                part["components"] = json!(t.components);
            }
            ("template", part)
        }
    };
    p["type"] = json!(kind);
    p[kind] = part;
    p
}

/// `{link}` or `{id}`, with the file name of a document.
fn media_object(m: Option<&crate::queue::JobMedia>) -> Value {
    let mut o = json!({});
    if let Some(m) = m {
        if let Some(id) = &m.id {
            o["id"] = json!(id);
        } else if let Some(link) = &m.link {
            o["link"] = json!(link);
        }
        if let Some(f) = &m.filename
            && m.kind == "document"
        {
            o["filename"] = json!(f);
        }
    }
    o
}

/// An interactive object: header and footer when the content has them.
fn interactive(content: &Content, kind: &str, action: Value) -> Value {
    let mut i = json!({
        "type": kind,
        "body": { "text": content.text },
        "action": action,
    });
    if let Some(h) = &content.header {
        i["header"] = match (&h.text, &h.media) {
            (_, Some(m)) => json!({ "type": m.kind, m.kind.clone(): media_object(Some(m)) }),
            (Some(t), None) => json!({ "type": "text", "text": t }),
            (None, None) => Value::Null,
        };
    }
    if let Some(f) = &content.footer {
        i["footer"] = json!({ "text": f });
    }
    i
}

/// A Graph call that failed, for a caller that is not the sender: the HTTP status, what the
/// error means ([`class_of`]) and Graph's own message (never the token).
#[derive(Debug, Clone)]
pub struct GraphFailure {
    pub status: u16,
    pub class: ErrorClass,
    pub message: String,
}

impl GraphFailure {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            class: ErrorClass::Retry,
            message: message.into(),
        }
    }

    fn of_response(status: u16, body: &str) -> Self {
        let e = classify(status, body);
        // "Object with ID … does not exist" (100/33) is Graph's not-found.
        let missing = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["error"]["error_subcode"].as_i64())
            == Some(33);
        Self {
            status: if missing { 404 } else { status },
            class: e.class,
            message: e.title,
        }
    }

    /// Not found stays a 404; a refused token is the tenant's to fix (409 with a code);
    /// anything else is Graph's failure, a 502 naming Graph's words.
    pub fn into_api(self, what: &str) -> crate::error::ApiError {
        use crate::error::ApiError;
        if self.status == 404 {
            return ApiError::not_found(format!("{what}: Graph has none"));
        }
        if self.class == ErrorClass::Hold {
            let mut extra = serde_json::Map::new();
            extra.insert("code".into(), json!("access_token_invalid"));
            return ApiError::Conflict {
                message: format!(
                    "{what}: Meta refused the tenant's access token ({}): replace it with PUT /tenants/{{tenantId}}/access-token",
                    self.message
                ),
                extra,
            };
        }
        ApiError::BadGateway(format!(
            "{what}: Graph answered {}: {}",
            self.status, self.message
        ))
    }
}

#[derive(Clone)]
pub struct GraphClient {
    /// Built on first use: a TLS client loads the system's root certificates, which a cold
    /// start that never calls Graph (most webhook invocations) should not wait for.
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    base: String,
    version: String,
}

impl GraphClient {
    pub fn new(base: &str, version: &str) -> Self {
        Self {
            http: std::sync::Arc::default(),
            base: base.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::tls::client(TIMEOUT)
                .pool_max_idle_per_host(32)
                .build()
                .unwrap_or_default()
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base,
            self.version,
            path.trim_start_matches('/')
        )
    }

    /// A GET of Graph JSON; `url` must be under this client's base (a `paging.next` from
    /// elsewhere never receives the token).
    pub async fn get_json(&self, url: &str, token: &Secret) -> Result<Value, GraphFailure> {
        // A development tenant's mock token has no Graph behind it: nothing to read.
        if is_mock_token(token.expose()) {
            return Err(GraphFailure::new(
                404,
                "a mock token reads nothing from Graph",
            ));
        }
        if !url.starts_with(&format!("{}/", self.base)) {
            return Err(GraphFailure::new(502, "Graph pointed outside its own host"));
        }
        self.get_with(url, token).await
    }

    /// A GET of Graph JSON with this bearer.
    async fn get_with(
        &self,
        url: impl reqwest::IntoUrl,
        bearer: &Secret,
    ) -> Result<Value, GraphFailure> {
        let response = self
            .http()
            .get(url)
            .bearer_auth(bearer.expose())
            .send()
            .await
            .map_err(|e| GraphFailure::new(502, e.without_url().to_string()))?;
        Self::json_of(response).await
    }

    /// Every template of a WhatsApp Business Account, following `paging.next`.
    pub async fn message_templates(
        &self,
        waba_id: &str,
        token: &Secret,
    ) -> Result<Vec<Value>, GraphFailure> {
        if is_mock_token(token.expose()) {
            return Ok(Vec::new());
        }
        let mut url = self.url(&format!(
            "{waba_id}/message_templates?fields=id,name,language,status,category,components,quality_score,rejected_reason&limit=100"
        ));
        let mut out = Vec::new();
        // Bounded: a WABA holds at most a few thousand templates.
        for _ in 0..100 {
            let page = self.get_json(&url, token).await?;
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["paging"]["next"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// A media file's bytes and MIME type, in Graph's two steps: the media's URL (valid for
    /// minutes), then the download with the same token.
    pub async fn media(
        &self,
        media_id: &str,
        token: &Secret,
    ) -> Result<(bytes::Bytes, String), GraphFailure> {
        let meta = self.get_json(&self.url(media_id), token).await?;
        let Some(url) = meta["url"].as_str() else {
            return Err(GraphFailure::new(404, "no url"));
        };
        let response = self
            .http()
            .get(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| GraphFailure::new(502, e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(GraphFailure::new(
                status,
                format!("the media download answered HTTP {status}"),
            ));
        }
        let mime = meta["mime_type"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GraphFailure::new(502, e.without_url().to_string()))?;
        Ok((bytes, mime))
    }

    /// Embedded Signup's first step: the code the browser got from Meta, exchanged for a
    /// business token (`GET oauth/access_token` with the app's id and secret). The secret
    /// travels in the query, as Graph requires; reqwest's errors drop the URL.
    pub async fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &Secret,
        code: &str,
    ) -> Result<Secret, GraphFailure> {
        let url = reqwest::Url::parse_with_params(
            &self.url("oauth/access_token"),
            &[
                ("client_id", app_id),
                ("client_secret", app_secret.expose()),
                ("code", code),
            ],
        )
        .map_err(|_| GraphFailure::new(502, "the Graph base URL is not a URL"))?;
        let response = self
            .http()
            .get(url)
            .send()
            .await
            .map_err(|e| GraphFailure::new(502, e.without_url().to_string()))?;
        let body = Self::json_of(response).await?;
        body["access_token"]
            .as_str()
            .map(|t| Secret::new(t.to_owned()))
            .ok_or_else(|| GraphFailure::new(502, "Graph answered without access_token"))
    }

    /// The WhatsApp Business Accounts a business token was granted
    /// (`debug_token`'s `whatsapp_business_management` scope), read with the app's token.
    pub async fn shared_wabas(
        &self,
        app_id: &str,
        app_secret: &Secret,
        token: &Secret,
    ) -> Result<Vec<String>, GraphFailure> {
        let app_token = Secret::new(format!("{app_id}|{}", app_secret.expose()));
        let url = reqwest::Url::parse_with_params(
            &self.url("debug_token"),
            &[("input_token", token.expose())],
        )
        .map_err(|_| GraphFailure::new(502, "the Graph base URL is not a URL"))?;
        let body = self.get_with(url, &app_token).await?;
        Ok(body["data"]["granular_scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["scope"] == "whatsapp_business_management")
            .flat_map(|s| s["target_ids"].as_array().cloned().unwrap_or_default())
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect())
    }

    /// The numbers of a WhatsApp Business Account.
    pub async fn phone_numbers(
        &self,
        waba_id: &str,
        token: &Secret,
    ) -> Result<Vec<Value>, GraphFailure> {
        let url = self.url(&format!(
            "{waba_id}/phone_numbers?fields=id,display_phone_number,verified_name,platform_type,status"
        ));
        let page = self.get_json(&url, token).await?;
        Ok(page["data"].as_array().cloned().unwrap_or_default())
    }

    /// A POST of Graph JSON to `path` (under the version) with the token.
    pub async fn post_json(
        &self,
        path: &str,
        token: &Secret,
        body: &Value,
    ) -> Result<Value, GraphFailure> {
        let response = self
            .http()
            .post(self.url(path))
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| GraphFailure::new(502, e.without_url().to_string()))?;
        Self::json_of(response).await
    }

    async fn json_of(response: reqwest::Response) -> Result<Value, GraphFailure> {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(GraphFailure::of_response(status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|_| GraphFailure::new(502, "Graph answered something that is not JSON"))
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
            return Ok(format!("wamid.mock_{}", crate::ids::random_hex(12)));
        }
        let url = format!(
            "{}/{}/{}/messages",
            self.base, self.version, phone_number_id
        );
        let response = self
            .http()
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
        let table = [
            (1, ErrorClass::Retry),
            (2, ErrorClass::Retry),
            (131000, ErrorClass::Retry),
            (131057, ErrorClass::Retry),
            (4, ErrorClass::PaceNumber),
            (80007, ErrorClass::PaceNumber),
            (130429, ErrorClass::PaceNumber),
            (131056, ErrorClass::PaceCustomer),
            (131048, ErrorClass::BackOffTenant),
            (131049, ErrorClass::BackOffTenant),
            (190, ErrorClass::Hold),
            (0, ErrorClass::Hold),
            (200, ErrorClass::Hold),
            (100, ErrorClass::Permanent),
            (131026, ErrorClass::Permanent),
            (131047, ErrorClass::Permanent),
            (131051, ErrorClass::Permanent),
            (132001, ErrorClass::Permanent),
        ];
        for (code, class) in table {
            let e = classify(400, &graph(code));
            assert_eq!(e.class, class, "{code}");
            assert_eq!(e.code, code.to_string());
            assert_eq!(e.details.as_deref(), Some("d"));
        }
        let window = classify(400, &graph(131047));
        assert!(window.title.contains("24-hour"), "{}", window.title);
        assert_eq!(classify(500, "oops").class, ErrorClass::Retry);
        assert_eq!(classify(503, "").code, "http_503");
        assert_eq!(classify(429, "").class, ErrorClass::PaceNumber);
        assert_eq!(classify(401, "").class, ErrorClass::Hold);
        assert_eq!(classify(404, "").class, ErrorClass::Permanent);
        assert!(reason_for("131047").is_some());
        assert!(reason_for("131026").is_none());
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
            ..Content::default()
        };
        let p = payload("34600111222", &content);
        assert_eq!(p["type"], "interactive");
        assert_eq!(
            p["interactive"]["action"]["buttons"][0],
            json!({"type": "reply", "reply": {"id": "a", "title": "A"}})
        );
    }
}
