//! Meta templates: the message templates Meta approved for a tenant's WhatsApp Business
//! Account, the only messages that reach a customer outside the 24-hour window. Read from
//! Graph (`sync`), kept current by Meta's template webhooks, and sent with their parameters
//! checked against the placeholders they have, so a send Meta would refuse never queues.
//! (Our own "templates" are the bot's messages; see [`crate::template`].)

use futures::TryStreamExt;
use mongodb::{
    Collection,
    bson::{DateTime, Document, doc},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    ids::TenantId,
    placeholder,
    queue::{Content, ContentKind, JobTemplate},
    store::{META_TEMPLATES, Store},
};

/// Distinct placeholders of `text`, in order of first appearance.
fn placeholders(text: &str) -> Vec<String> {
    placeholder::META.names(text)
}

/// The parameters a template takes, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Text placeholders of a TEXT header, or 1 for a media header.
    pub header: u32,
    /// `TEXT`, `IMAGE`, `DOCUMENT`, `VIDEO`, `LOCATION`, or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_format: Option<String>,
    pub body: u32,
    pub buttons: Vec<ButtonParameters>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonParameters {
    pub index: u32,
    /// Meta's button type: `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `COPY_CODE`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    /// Placeholders of a dynamic URL (`URL`) or the code (`COPY_CODE`): required values.
    pub parameters: u32,
}

/// Counts the parameters of Meta's `components` array.
pub fn parameters_of(components: &Value) -> Parameters {
    let mut p = Parameters::default();
    for c in components.as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or_default().to_ascii_uppercase();
        match kind.as_str() {
            "HEADER" => {
                let format = c["format"].as_str().unwrap_or("TEXT").to_ascii_uppercase();
                p.header = match format.as_str() {
                    "TEXT" => placeholders(c["text"].as_str().unwrap_or_default()).len() as u32,
                    "IMAGE" | "DOCUMENT" | "VIDEO" => 1,
                    _ => 0,
                };
                p.header_format = Some(format);
            }
            "BODY" => p.body = placeholders(c["text"].as_str().unwrap_or_default()).len() as u32,
            "BUTTONS" => {
                for (i, b) in c["buttons"].as_array().into_iter().flatten().enumerate() {
                    let kind = b["type"].as_str().unwrap_or_default().to_ascii_uppercase();
                    let parameters = match kind.as_str() {
                        "URL" => placeholders(b["url"].as_str().unwrap_or_default()).len() as u32,
                        "COPY_CODE" => 1,
                        _ => 0,
                    };
                    p.buttons.push(ButtonParameters {
                        index: i as u32,
                        kind,
                        text: b["text"].as_str().unwrap_or_default().to_owned(),
                        parameters,
                    });
                }
            }
            _ => {}
        }
    }
    p
}

/// A stored Meta template. `(tenantId, name, language)` is unique.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaTemplateDoc {
    pub tenant_id: TenantId,
    pub waba_id: String,
    /// Meta's template id.
    #[serde(default)]
    pub meta_id: Option<String>,
    pub name: String,
    pub language: String,
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub quality_score: Option<String>,
    /// Why Meta rejected, paused or disabled it, when it said.
    #[serde(default)]
    pub reason: Option<String>,
    /// Meta's components, as Graph returned them (JSON text: Meta's shapes vary).
    pub components: String,
    pub parameters: Parameters,
    pub updated_at: DateTime,
}

/// The API's view of a Meta template.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaTemplateView {
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: Option<String>,
    pub quality_score: Option<String>,
    pub reason: Option<String>,
    pub meta_id: Option<String>,
    pub components: Value,
    pub parameters: Parameters,
    pub updated_at: String,
}

impl MetaTemplateDoc {
    pub fn view(&self) -> MetaTemplateView {
        MetaTemplateView {
            name: self.name.clone(),
            language: self.language.clone(),
            status: self.status.clone(),
            category: self.category.clone(),
            quality_score: self.quality_score.clone(),
            reason: self.reason.clone(),
            meta_id: self.meta_id.clone(),
            components: serde_json::from_str(&self.components).unwrap_or(Value::Null),
            parameters: self.parameters.clone(),
            updated_at: crate::ids::rfc3339(self.updated_at),
        }
    }

    /// Meta's `components`, parsed.
    fn components(&self) -> Value {
        serde_json::from_str(&self.components).unwrap_or(Value::Null)
    }
}

/// One template as Graph's `message_templates` lists it.
#[derive(Debug, Deserialize)]
pub struct GraphTemplate {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub language: String,
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub components: Value,
    #[serde(default)]
    pub quality_score: Option<Value>,
    #[serde(default)]
    pub rejected_reason: Option<String>,
}

async fn collection(store: &Store) -> Result<Collection<MetaTemplateDoc>, ApiError> {
    store.collection(META_TEMPLATES).await
}

/// Replaces the tenant's stored templates with what Graph listed: each is upserted, and
/// one Meta no longer lists (deleted there) is removed. Returns them, by name.
pub async fn replace_all(
    store: &Store,
    tenant: &TenantId,
    waba_id: &str,
    listed: Vec<GraphTemplate>,
) -> Result<Vec<MetaTemplateDoc>, ApiError> {
    let now = DateTime::now();
    let coll = collection(store).await?;
    let mut kept = Vec::with_capacity(listed.len());
    for t in listed {
        let parameters = parameters_of(&t.components);
        let quality = t
            .quality_score
            .as_ref()
            .and_then(|q| q.get("score").or(Some(q)))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let doc = MetaTemplateDoc {
            tenant_id: *tenant,
            waba_id: waba_id.to_owned(),
            meta_id: t.id,
            name: t.name,
            language: t.language,
            status: t.status.to_ascii_uppercase(),
            category: t.category,
            quality_score: quality,
            reason: t.rejected_reason.filter(|r| r != "NONE"),
            components: t.components.to_string(),
            parameters,
            updated_at: now,
        };
        coll.replace_one(
            doc! { "tenantId": *tenant, "name": &doc.name, "language": &doc.language },
            &doc,
        )
        .upsert(true)
        .await?;
        kept.push(doc);
    }
    let names: Vec<Document> = kept
        .iter()
        .map(|d| doc! { "name": &d.name, "language": &d.language })
        .collect();
    let mut gone = doc! { "tenantId": *tenant };
    if !names.is_empty() {
        gone.insert("$nor", names);
    }
    coll.delete_many(gone).await?;
    kept.sort_by(|a, b| (&a.name, &a.language).cmp(&(&b.name, &b.language)));
    Ok(kept)
}

/// Reads the WABA's templates from Graph with the tenant's token and stores them.
pub async fn sync(
    store: &Store,
    graph: &crate::whatsapp::GraphClient,
    token: &crate::secret::Secret,
    tenant: &TenantId,
    waba_id: &str,
) -> Result<Vec<MetaTemplateDoc>, ApiError> {
    let listed = graph
        .message_templates(waba_id, token)
        .await
        .map_err(|e| e.into_api("reading the Meta templates"))?;
    let templates: Vec<GraphTemplate> = listed
        .into_iter()
        .filter_map(|v| match serde_json::from_value(v) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(tenantId = %tenant, error = %e, "Meta template of an unknown shape skipped");
                None
            }
        })
        .collect();
    let saved = replace_all(store, tenant, waba_id, templates).await?;
    tracing::info!(tenantId = %tenant, count = saved.len(), "Meta templates synced");
    Ok(saved)
}

pub async fn list(store: &Store, tenant: &TenantId) -> Result<Vec<MetaTemplateDoc>, ApiError> {
    Ok(collection(store)
        .await?
        .find(doc! { "tenantId": *tenant })
        .sort(doc! { "name": 1, "language": 1 })
        .await?
        .try_collect()
        .await?)
}

/// A change Meta reported in a template webhook.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub quality_score: Option<String>,
    pub category: Option<String>,
}

/// Which template a webhook is about, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub meta_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    pub change: Change,
}

/// Reads a `message_template_status_update`, `message_template_quality_update` or
/// `template_category_update` change value.
pub fn read_change(field: &str, v: &Value) -> Option<Update> {
    let id = match &v["message_template_id"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let change = match field {
        "message_template_status_update" => Change {
            status: text("event").map(|e| e.to_ascii_uppercase()),
            reason: text("reason").filter(|r| r != "NONE"),
            ..Change::default()
        },
        "message_template_quality_update" => Change {
            quality_score: text("new_quality_score"),
            ..Change::default()
        },
        "template_category_update" => Change {
            category: text("new_category"),
            ..Change::default()
        },
        _ => return None,
    };
    Some(Update {
        meta_id: id,
        name: text("message_template_name"),
        language: text("message_template_language"),
        change,
    })
}

/// Applies a template webhook to the templates of every tenant on `waba_id` (routed by the
/// entry's WABA id, matched by Meta's id, else by name and language). Returns how many
/// stored templates changed.
pub async fn apply_change(store: &Store, waba_id: &str, update: &Update) -> Result<u64, ApiError> {
    let change = &update.change;
    let mut filter = doc! { "wabaId": waba_id };
    match (update.meta_id.as_deref(), update.name.as_deref()) {
        (Some(id), _) => {
            filter.insert("metaId", id);
        }
        (None, Some(name)) => {
            filter.insert("name", name);
            if let Some(l) = &update.language {
                filter.insert("language", l);
            }
        }
        (None, None) => return Ok(0),
    }
    let mut set = doc! { "updatedAt": DateTime::now() };
    if let Some(s) = &change.status {
        set.insert("status", s);
        set.insert("reason", change.reason.clone());
    }
    if let Some(q) = &change.quality_score {
        set.insert("qualityScore", q);
    }
    if let Some(c) = &change.category {
        set.insert("category", c);
    }
    Ok(collection(store)
        .await?
        .update_many(filter, doc! { "$set": set })
        .await?
        .modified_count)
}

/// `POST /tenants/{tenantId}/send/meta-template` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMetaTemplateRequest {
    pub to: String,
    /// One of the tenant's numbers; the first when left out.
    #[serde(default)]
    pub from: Option<String>,
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub parameters: Option<ParameterValues>,
    #[serde(default, alias = "idempotencyKey")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterValues {
    #[serde(default)]
    pub header: Vec<Value>,
    #[serde(default)]
    pub body: Vec<Value>,
    #[serde(default)]
    pub buttons: Vec<ButtonValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonValue {
    pub index: u32,
    /// A quick reply's payload (echoed back when tapped; a bot button's id continues the
    /// bot's tree) or a URL / copy-code button's value.
    pub payload: String,
}

pub const PARAMETER_MAX: usize = 1024;

fn text_value(field: &str, v: &Value) -> Result<String, ApiError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            return Err(ApiError::invalid(
                field,
                "must be a string, number or boolean",
            ));
        }
    };
    if s.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > PARAMETER_MAX {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {PARAMETER_MAX} characters"),
        ));
    }
    Ok(s)
}

fn count_mismatch(field: &str, want: u32, got: usize) -> ApiError {
    ApiError::refused(
        "parameter_count_mismatch",
        field,
        format!("the template takes {want} parameter(s) here, {got} given"),
    )
}

/// The template's stored form, looked up for a send: 422 when unknown or not approved.
pub async fn approved(
    store: &Store,
    tenant: &TenantId,
    name: &str,
    language: &str,
) -> Result<MetaTemplateDoc, ApiError> {
    let t = collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant, "name": name, "language": language })
        .await?
        .ok_or_else(|| {
            ApiError::refused(
                "meta_template_unknown",
                "name",
                format!(
                    "no Meta template {name:?} in language {language:?}: sync the tenant's \
                     Meta templates (POST /tenants/{{tenantId}}/meta-templates/sync)"
                ),
            )
        })?;
    if t.status != "APPROVED" {
        return Err(ApiError::refused(
            "template_not_approved",
            "name",
            format!(
                "Meta template {name:?} ({language}) is {}, not APPROVED{}",
                t.status,
                t.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(t)
}

/// The text of the template's `kind` component (`HEADER`, `BODY`), or "".
fn component_text(t: &MetaTemplateDoc, kind: &str) -> String {
    t.components()
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c["type"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(kind))
        })
        .and_then(|c| c["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A text parameter; a template with named placeholders (`{{order_id}}`) needs each
/// value's `parameter_name`, one with positional ones (`{{1}}`) must not have it.
fn text_parameter(name: Option<&String>, text: String) -> Value {
    match name.filter(|n| !n.bytes().all(|b| b.is_ascii_digit())) {
        Some(n) => json!({ "type": "text", "parameter_name": n, "text": text }),
        None => json!({ "type": "text", "text": text }),
    }
}

/// Checks `values` against the template's placeholders and builds the message: Meta's
/// `template` payload, and its body as the customer reads it for the message log.
pub fn render(t: &MetaTemplateDoc, values: &ParameterValues) -> Result<Content, ApiError> {
    let p = &t.parameters;
    if values.header.len() != p.header as usize {
        return Err(count_mismatch(
            "parameters.header",
            p.header,
            values.header.len(),
        ));
    }
    if values.body.len() != p.body as usize {
        return Err(count_mismatch("parameters.body", p.body, values.body.len()));
    }
    let mut components = Vec::new();
    if p.header > 0 {
        let format = p.header_format.as_deref().unwrap_or("TEXT");
        let params: Vec<Value> = match format {
            "IMAGE" | "DOCUMENT" | "VIDEO" => {
                let v = text_value("parameters.header[0]", &values.header[0])?;
                let kind = format.to_ascii_lowercase();
                let source = if v.starts_with("https://") || v.starts_with("http://") {
                    json!({ "link": v })
                } else {
                    json!({ "id": v })
                };
                vec![json!({ "type": kind, kind.clone(): source })]
            }
            _ => {
                let names = placeholders(&component_text(t, "HEADER"));
                values
                    .header
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        text_value(&format!("parameters.header[{i}]"), v)
                            .map(|s| text_parameter(names.get(i), s))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        components.push(json!({ "type": "header", "parameters": params }));
    }
    let body: Vec<String> = values
        .body
        .iter()
        .enumerate()
        .map(|(i, v)| text_value(&format!("parameters.body[{i}]"), v))
        .collect::<Result<_, _>>()?;
    if !body.is_empty() {
        let names = placeholders(&component_text(t, "BODY"));
        components.push(json!({
            "type": "body",
            "parameters": body
                .iter()
                .enumerate()
                .map(|(i, s)| text_parameter(names.get(i), s.clone()))
                .collect::<Vec<_>>(),
        }));
    }
    for (i, b) in values.buttons.iter().enumerate() {
        let field = format!("parameters.buttons[{i}]");
        let Some(spec) = p.buttons.iter().find(|s| s.index == b.index) else {
            return Err(ApiError::refused(
                "parameter_count_mismatch",
                format!("{field}.index"),
                format!("the template has no button {}", b.index),
            ));
        };
        if values.buttons[..i].iter().any(|o| o.index == b.index) {
            return Err(ApiError::invalid(
                format!("{field}.index"),
                "names a button twice",
            ));
        }
        let payload = text_value(
            &format!("{field}.payload"),
            &Value::String(b.payload.clone()),
        )?;
        let (sub_type, parameter) = match spec.kind.as_str() {
            "QUICK_REPLY" => (
                "quick_reply",
                json!({ "type": "payload", "payload": payload }),
            ),
            "URL" if spec.parameters > 0 => ("url", json!({ "type": "text", "text": payload })),
            "COPY_CODE" => (
                "copy_code",
                json!({ "type": "coupon_code", "coupon_code": payload }),
            ),
            other => {
                return Err(ApiError::refused(
                    "parameter_count_mismatch",
                    format!("{field}.index"),
                    format!("button {} ({other}) takes no parameter", b.index),
                ));
            }
        };
        components.push(json!({
            "type": "button", "sub_type": sub_type, "index": b.index.to_string(),
            "parameters": [parameter],
        }));
    }
    for spec in p.buttons.iter().filter(|s| s.parameters > 0) {
        if !values.buttons.iter().any(|b| b.index == spec.index) {
            return Err(count_mismatch(
                &format!("parameters.buttons (index {})", spec.index),
                spec.parameters,
                0,
            ));
        }
    }
    let text = component_text(t, "BODY");
    let names = placeholders(&text);
    let body_text = if text.is_empty() {
        t.name.clone()
    } else {
        placeholder::META.fill(&text, |name| {
            names
                .iter()
                .position(|n| n == name)
                .and_then(|i| body.get(i))
                .cloned()
        })
    };
    Ok(Content {
        kind: ContentKind::MetaTemplate,
        text: body_text,
        template: Some(JobTemplate {
            name: t.name.clone(),
            language: t.language.clone(),
            components,
        }),
        ..Content::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_of(components: Value) -> MetaTemplateDoc {
        MetaTemplateDoc {
            tenant_id: TenantId::generate(),
            waba_id: "1".into(),
            meta_id: None,
            name: "order_update".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: None,
            quality_score: None,
            reason: None,
            parameters: parameters_of(&components),
            components: components.to_string(),
            updated_at: DateTime::now(),
        }
    }

    #[test]
    fn counts_parameters_and_renders_meta_shape() {
        let t = doc_of(json!([
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}. {{1}}!"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Menu"},
                {"type": "URL", "text": "Track", "url": "https://x.test/t/{{1}}"}]}
        ]));
        assert_eq!(t.parameters.header, 1);
        assert_eq!(t.parameters.body, 3);
        assert_eq!(t.parameters.buttons[1].parameters, 1);
        let values = ParameterValues {
            header: vec![json!("42")],
            body: vec![json!("Ana"), json!(42), json!("today")],
            buttons: vec![
                ButtonValue {
                    index: 0,
                    payload: "btn_menu".into(),
                },
                ButtonValue {
                    index: 1,
                    payload: "42".into(),
                },
            ],
        };
        let c = render(&t, &values).expect("renders");
        assert_eq!(c.text, "Hi Ana, order 42 ships today. Ana!");
        let tpl = c.template.expect("template");
        assert_eq!(
            tpl.components[0],
            json!({"type": "header", "parameters": [{"type": "text", "text": "42"}]})
        );
        assert_eq!(
            tpl.components[2],
            json!({"type": "button", "sub_type": "quick_reply", "index": "0",
            "parameters": [{"type": "payload", "payload": "btn_menu"}]})
        );
        let short = ParameterValues {
            body: vec![json!("Ana")],
            ..ParameterValues::default()
        };
        assert!(matches!(
            render(&t, &short),
            Err(ApiError::Refused {
                code: "parameter_count_mismatch",
                ..
            })
        ));
        let no_url = ParameterValues {
            header: vec![json!("42")],
            body: vec![json!("a"), json!("b"), json!("c")],
            buttons: vec![],
        };
        assert!(
            render(&t, &no_url).is_err(),
            "the URL button's value is required"
        );
    }

    #[test]
    fn named_parameters_carry_their_names() {
        let t = doc_of(json!([{"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}}"}]));
        let values = ParameterValues {
            body: vec![json!("Ana"), json!("A-1")],
            ..ParameterValues::default()
        };
        let c = render(&t, &values).expect("renders");
        assert_eq!(c.text, "Hi Ana, order A-1");
        assert_eq!(
            c.template.expect("template").components[0]["parameters"][1],
            json!({"type": "text", "parameter_name": "order_id", "text": "A-1"})
        );
    }

    #[test]
    fn reads_template_webhooks() {
        let Update {
            meta_id: id,
            name,
            language: lang,
            change: c,
        } = read_change(
            "message_template_status_update",
            &json!({"event": "PAUSED", "message_template_id": 123, "message_template_name": "n",
                "message_template_language": "en_US", "reason": "LOW_QUALITY"}),
        )
        .expect("known field");
        assert_eq!(
            (id.as_deref(), name.as_deref(), lang.as_deref()),
            (Some("123"), Some("n"), Some("en_US"))
        );
        assert_eq!(c.status.as_deref(), Some("PAUSED"));
        assert_eq!(c.reason.as_deref(), Some("LOW_QUALITY"));
        assert!(read_change("messages", &json!({})).is_none());
    }
}
