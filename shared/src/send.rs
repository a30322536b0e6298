//! The send API: validated requests become a stored `queued` message (the outbox) and a
//! job on the send queue, exactly once per idempotency key.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    customer::{self, StateUpdate},
    error::ApiError,
    failpoint,
    idempotency::{self, Begin},
    ids::{Recipient, TenantId, TenantStatus},
    message::{self, API_KEY_PREFIX, Inserted, MessageDoc, Status},
    meta_template, outbox, pacing,
    queue::{Content, ContentKind},
    state::AppState,
    template::{self, TemplateKey},
    tenant,
};

pub const TEXT_MAX: usize = 4096;
pub const IDEMPOTENCY_KEY_MAX: usize = 200;

/// The caller's idempotency key, or a generated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None => Ok(Self(format!("gen_{}", crate::ids::random_hex(16)))),
            Some(k)
                if (1..=IDEMPOTENCY_KEY_MAX).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Self(k.to_owned()))
            }
            Some(_) => Err(ApiError::invalid(
                "idempotency_key",
                "must be 1–200 printable ASCII characters without spaces",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Deserialize)]
pub struct SendTextRequest {
    pub to: String,
    /// One of the tenant's numbers (its phoneNumberId); the first when left out.
    #[serde(default)]
    pub from: Option<String>,
    /// The message, or the media's caption; required without media.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub media: Option<template::MediaInput>,
    #[serde(default, alias = "idempotencyKey")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SendTemplateRequest {
    pub to: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(rename = "templateKey")]
    pub template_key: String,
    #[serde(default)]
    pub variables: HashMap<String, Value>,
    #[serde(default, alias = "idempotencyKey")]
    pub idempotency_key: Option<String>,
}

/// Whom a send goes to, and from which of the tenant's numbers (`None`: the first).
#[derive(Debug, Clone)]
pub struct Route {
    pub to: Recipient,
    pub from: Option<String>,
}

impl Route {
    pub fn parse(to: &str, from: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            to: Recipient::parse(to)?,
            from: from.map(str::to_owned),
        })
    }
}

/// A 202's content.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub idempotency_key: String,
}

pub async fn send_text(
    state: &AppState,
    tenant: &TenantId,
    req: &SendTextRequest,
) -> Result<Accepted, ApiError> {
    let to = Route::parse(&req.to, req.from.as_deref())?;
    let content = match &req.media {
        None => Content {
            kind: ContentKind::Text,
            text: text_of(req.text.as_deref().unwrap_or_default())?,
            ..Content::default()
        },
        Some(m) => media_content(req.text.as_deref(), m)?,
    };
    let key = IdempotencyKey::parse(req.idempotency_key.as_deref())?;
    submit(state, tenant, &to, key, content, None, Window::Required).await
}

fn text_of(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    let len = text.chars().count();
    if len == 0 {
        return Err(ApiError::invalid("text", "must not be empty"));
    }
    if len > TEXT_MAX {
        return Err(ApiError::invalid(
            "text",
            format!("must be at most {TEXT_MAX} characters (has {len})"),
        ));
    }
    Ok(text.to_owned())
}

/// A media message: the file, and `text` (or `media.caption`) as its caption.
fn media_content(text: Option<&str>, m: &template::MediaInput) -> Result<Content, ApiError> {
    use template::MediaKind::*;
    let media = m.parse("media", &[Image, Document, Video, Audio])?;
    if m.text.is_some() {
        return Err(ApiError::invalid("media.text", "is for headers; use text"));
    }
    let caption = match (
        text.map(str::trim).filter(|t| !t.is_empty()),
        m.caption("media", media.kind)?,
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "media.caption",
                "give the caption as text or media.caption, not both",
            ));
        }
        (Some(t), None) => {
            if media.kind == Audio {
                return Err(ApiError::invalid(
                    "text",
                    "audio takes no caption (WhatsApp refuses one)",
                ));
            }
            if t.chars().count() > template::rich::CAPTION_MAX {
                return Err(ApiError::invalid(
                    "text",
                    format!(
                        "is the caption: at most {} characters",
                        template::rich::CAPTION_MAX
                    ),
                ));
            }
            Some(t.to_owned())
        }
        (None, c) => c,
    };
    Ok(Content {
        kind: ContentKind::Media,
        text: caption.unwrap_or_default(),
        media: Some(crate::queue::JobMedia {
            kind: media.kind.as_str().to_owned(),
            link: media.link,
            id: media.id,
            filename: media.filename,
        }),
        ..Content::default()
    })
}

fn variable_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub async fn send_template(
    state: &AppState,
    tenant: &TenantId,
    req: &SendTemplateRequest,
) -> Result<Accepted, ApiError> {
    let to = Route::parse(&req.to, req.from.as_deref())?;
    let key = TemplateKey::parse("templateKey", &req.template_key)?;
    let idempotency = IdempotencyKey::parse(req.idempotency_key.as_deref())?;
    for (name, value) in &req.variables {
        if variable_text(value).is_none() {
            return Err(ApiError::invalid(
                format!("variables.{name}"),
                "must be a string, number or boolean",
            ));
        }
    }
    let t = template::get(&state.store, tenant, &key).await?.template;
    if !t.is_active {
        return Err(ApiError::not_found(format!("template {key} is inactive")));
    }
    let missing: Vec<String> = template::placeholders(&t.body)
        .into_iter()
        .filter(|name| !req.variables.contains_key(name))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(
            "variables",
            format!("missing values for: {}", missing.join(", ")),
        ));
    }
    let content = t.render(|name| req.variables.get(name).and_then(variable_text));
    if content.text.chars().count() > t.kind.body_max() {
        return Err(ApiError::invalid(
            "variables",
            format!(
                "the rendered body is longer than {} characters",
                t.kind.body_max()
            ),
        ));
    }
    // A sent menu must branch when the customer taps it, as if the bot had sent it.
    let state_update = t
        .kind
        .is_interactive()
        .then(|| StateUpdate::sent(t.key.clone()));
    let mut accepted = submit(
        state,
        tenant,
        &to,
        idempotency,
        content,
        state_update,
        Window::Required,
    )
    .await;
    if let Ok(a) = &mut accepted {
        tracing::info!(tenantId = %tenant, messageId = %a.message_id, templateKey = %key, "template send queued");
    }
    accepted
}

/// An approved Meta template: allowed outside the 24-hour window (the only message that
/// is). Refused (422, with a code) when unknown, not approved, or its parameters do not
/// match the template's placeholders.
pub async fn send_meta_template(
    state: &AppState,
    tenant: &TenantId,
    req: &meta_template::SendMetaTemplateRequest,
) -> Result<Accepted, ApiError> {
    let to = Route::parse(&req.to, req.from.as_deref())?;
    if req.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    if req.language.trim().is_empty() {
        return Err(ApiError::invalid(
            "language",
            "must not be empty (e.g. en_US)",
        ));
    }
    let key = IdempotencyKey::parse(req.idempotency_key.as_deref())?;
    let t =
        meta_template::approved(&state.store, tenant, req.name.trim(), req.language.trim()).await?;
    let none = meta_template::ParameterValues::default();
    let content = meta_template::render(&t, req.parameters.as_ref().unwrap_or(&none))?;
    let accepted = submit(state, tenant, &to, key, content, None, Window::Any).await;
    if let Ok(a) = &accepted {
        tracing::info!(tenantId = %tenant, messageId = %a.message_id, metaTemplate = %t.name, "Meta template send queued");
    }
    accepted
}

/// Stores the message, then enqueues it. A reused key is a 409 naming the original
/// message, but only once that message exists; a key whose message is stored but not yet
/// enqueued (an earlier attempt failed or was cut off) is completed and answered 202; a key
/// another request is still working on is a 503 to retry.
async fn submit(
    state: &AppState,
    tenant: &TenantId,
    route: &Route,
    key: IdempotencyKey,
    content: Content,
    state_update: Option<StateUpdate>,
    window: Window,
) -> Result<Accepted, ApiError> {
    // The profile the booking reads anyway (cached): a disabled tenant sends nothing, and
    // a message goes only from one of the tenant's own numbers.
    let profile = tenant::sending(&state.store, &state.sending, tenant).await?;
    if profile.status == TenantStatus::Disabled {
        return Err(ApiError::TenantDisabled { by_admin: true });
    }
    let route = &Route {
        to: route.to.clone(),
        from: profile.from_field(route.from.as_deref())?,
    };
    let to = &route.to;
    let stored_key = format!("{API_KEY_PREFIX}{}", key.as_str());
    let memo = customer::revision::memo_key(tenant, to.as_str());
    let lock = format!("wa:send:{{{tenant}:{}}}:{}", to.as_str(), key.as_str());
    let (begin, remembered) =
        idempotency::begin_with(&state.locks, &lock, state.config.idempotency_lock, &memo).await;
    let held = match begin {
        done @ (Begin::Finished | Begin::InProgress) => {
            return match message::find_by_key(&state.store, tenant, &stored_key).await? {
                // Stored by a request still holding the key (or cut off before it let go),
                // and not yet attempted: it may not be on the queue yet, so the caller
                // comes back, and the request that finds the lock free completes it.
                Some(existing)
                    if matches!(done, Begin::InProgress)
                        && existing.status == Status::Queued
                        && existing.attempts == 0 =>
                {
                    Err(ApiError::InProgress(format!(
                        "a request with idempotency_key {} is still being processed",
                        key.as_str()
                    )))
                }
                Some(existing) => Err(already_processed(&existing)),
                None => Err(ApiError::InProgress(format!(
                    "a request with idempotency_key {} is still being processed",
                    key.as_str()
                ))),
            };
        }
        Begin::Owner(held) => Some(held),
        Begin::Unguarded => None,
    };
    let known = remembered
        .as_deref()
        .and_then(customer::Snapshot::from_memo);
    let result = match window_guard(state, tenant, to, &stored_key, window, known.as_ref()).await {
        Ok(()) => {
            let guarded = held.is_some();
            store_and_enqueue(
                state,
                tenant,
                route,
                &stored_key,
                content,
                state_update,
                guarded,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Some(held) = held {
        // A conversation this send changed is remembered as it now is.
        let remember = match &result {
            Ok((_, Some(after))) => after.to_memo().map(|value| idempotency::Memo {
                key: &memo,
                value,
                rev: after.rev,
                ttl: customer::revision::MEMO_TTL,
            }),
            _ => None,
        };
        held.end_with(&state.locks, &result, remember).await;
    }
    result.map(|(id, _)| Accepted {
        message_id: id,
        idempotency_key: key.0,
    })
}

/// Whether a message needs the customer's 24-hour window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Free-form (text, media, interactive): only within 24 hours of the customer's last
    /// message.
    Required,
    /// An approved Meta template: reaches the customer any time.
    Any,
}

/// Refuses any message to a customer who opted out, and a free-form one to a customer
/// whose window is closed, before anything is stored or queued. A retry of a message accepted while the window was open is not
/// refused: it is answered as its key's first request was.
async fn window_guard(
    state: &AppState,
    tenant: &TenantId,
    to: &Recipient,
    stored_key: &str,
    window: Window,
    known: Option<&customer::Snapshot>,
) -> Result<(), ApiError> {
    // The remembered conversation answers without the database; a refusal is checked
    // against the document (the memory may predate the customer's last message).
    let remembered = known.map(|k| customer::Reach {
        last_inbound: k.last_inbound_at,
        opted_out_at: k.conversation.opted_out_at,
    });
    let refused = |reach: &customer::Reach| {
        customer::opt_out_refusal(reach).or_else(|| match window {
            Window::Required => {
                customer::window_refusal(reach.last_inbound, mongodb::bson::DateTime::now())
            }
            Window::Any => None,
        })
    };
    if remembered.as_ref().is_some_and(|r| refused(r).is_none()) {
        return Ok(());
    }
    let reach = customer::reach(&state.store, tenant, to.as_str()).await?;
    let Some(refusal) = refused(&reach) else {
        return Ok(());
    };
    if message::find_by_key(&state.store, tenant, stored_key)
        .await?
        .is_some()
    {
        return Ok(());
    }
    Err(refusal)
}

fn already_processed(existing: &MessageDoc) -> ApiError {
    let mut extra = serde_json::Map::new();
    extra.insert("messageId".into(), Value::String(existing.id.to_hex()));
    ApiError::Conflict {
        message: "Request with the given idempotency_key already processed".into(),
        extra,
    }
}

async fn store_and_enqueue(
    state: &AppState,
    tenant: &TenantId,
    route: &Route,
    stored_key: &str,
    content: Content,
    state_update: Option<StateUpdate>,
    guarded: bool,
) -> Result<(String, Option<customer::Snapshot>), ApiError> {
    let to = &route.to;
    let mut doc = MessageDoc::outbound(tenant, to.as_str(), stored_key.to_owned(), content, "api");
    doc.phone_number_id = route.from.clone();
    doc.template_key = state_update
        .as_ref()
        .and_then(|u| u.last_template_key.clone());
    doc.state_update = state_update;
    failpoint::hit("send.before_store").await?;
    if let Inserted::Duplicate(existing) = message::insert(&state.store, &doc).await? {
        // The key's first request stored it and did not finish: a message never
        // attempted may never have reached the queue, so it goes again (the sender
        // delivers it once).
        if outbox::unfinished(&existing, guarded) {
            let changed = outbox::dispatch(state.outbox(), &existing).await?;
            return Ok((existing.id.to_hex(), changed));
        }
        return Err(already_processed(&existing));
    }
    failpoint::hit("send.after_store").await?;
    let booking = book(state, tenant, route, &doc.id.to_hex()).await;
    let changed = outbox::dispatch_at(state.outbox(), &doc, booking).await?;
    Ok((doc.id.to_hex(), changed))
}

/// Books the message's slots now (see [`pacing::admit`]): a broadcast's jobs wait in the
/// queue, delayed until their slots, instead of crowding out other tenants'. Without Redis
/// the job goes at once and the sender paces what it can.
async fn book(state: &AppState, tenant: &TenantId, route: &Route, ticket: &str) -> pacing::Booking {
    let Ok(profile) = tenant::sending(&state.store, &state.sending, tenant).await else {
        return pacing::Booking::default();
    };
    let lane = pacing::Lane {
        phone_number_id: profile.number(route.from.as_deref()),
        customer: route.to.as_str(),
    };
    let local = mongodb::bson::DateTime::now().timestamp_millis();
    match pacing::admit(
        &state.locks,
        &lane,
        &profile.pacing,
        pacing::Booking::default(),
        pacing::Timeline::Schedule,
        ticket,
    )
    .await
    {
        pacing::Decision::Send { at: until, now } | pacing::Decision::Customer { until, now } => {
            pacing::Booking {
                not_before: Some(local + (until - now).max(0)),
                customer: true,
            }
        }
        pacing::Decision::Number { .. }
        | pacing::Decision::Behind { .. }
        | pacing::Decision::Unpaced => pacing::Booking::default(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_bounded() {
        assert!(IdempotencyKey::parse(Some("order-123")).is_ok());
        assert!(IdempotencyKey::parse(Some("")).is_err());
        assert!(IdempotencyKey::parse(Some("has space")).is_err());
        assert!(IdempotencyKey::parse(Some(&"k".repeat(201))).is_err());
        let a = IdempotencyKey::parse(None).expect("generated");
        let b = IdempotencyKey::parse(None).expect("generated");
        assert_ne!(a, b);
    }
}
