//! The WhatsApp webhook: signature, tenant routing, storage, the engine, the reply queue.
//!
//! Exactly once, never lost: the [`idempotency`](crate::idempotency) lock makes one delivery
//! of a wamid do the work; a duplicate answers 200 only once that work is durable, and 503
//! (Meta retries) while it is still going on. The unique idempotency keys (`in:<wamid>`,
//! `auto-reply:<wamid>`) are the guard when Redis is down. Anything that fails after the
//! inbound is stored answers 5xx, so Meta retries, and the retry finishes what is missing
//! (the [`outbox`](crate::outbox) relay is the backstop when no retry comes).

pub mod payload;
pub mod signature;

use mongodb::bson::DateTime;

use crate::{
    config::AppEnv,
    customer::{self, Conversation, LastReply, Snapshot, StateUpdate, Touch, revision},
    engine::{self, BotConfig, Decision, Inbound},
    error::ApiError,
    event::{self, Event, EventType},
    failpoint, flow,
    idempotency::{self, Begin, Memo},
    ids::{TenantId, TenantStatus},
    message::{
        self, Inserted, MessageDoc, MessageError, Status, Stored, Trigger, store::StatusUpdate,
    },
    meta_template,
    metrics::{self, Metric},
    outbox,
    pacing::Booking,
    state::AppState,
    template, tenant,
};
pub use payload::{InboundMessage, Notification};

/// Checks the signature (or the development exception) before anything is parsed.
pub fn authenticate(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    match &state.config.app_secret {
        Some(secret) => {
            signature::verify(secret.expose().as_bytes(), body, signature).map_err(|e| {
                tracing::warn!(reason = e.message(), "webhook refused");
                metrics::count(Metric::WebhookSignatureFailure, &[]);
                ApiError::Unauthorized(e.message().into())
            })
        }
        None if state.config.app_env == AppEnv::Development => Ok(()),
        // Refused with a 5xx: Meta keeps retrying, so nothing is lost once it is configured.
        None => Err(ApiError::unavailable(
            "webhook",
            "APP_SECRET is not set: unsigned webhooks are accepted only with APP_ENV=development",
        )),
    }
}

/// `GET /whatsapp/webhook`: Meta's subscription challenge.
pub fn verify_subscription(
    state: &AppState,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> Result<String, ApiError> {
    let ok = mode == Some("subscribe")
        && token.is_some_and(|t| {
            state
                .config
                .verify_token
                .as_ref()
                .is_some_and(|v| v.matches(t))
        });
    if ok {
        Ok(challenge.unwrap_or_default().to_owned())
    } else {
        Err(ApiError::Forbidden("verification failed".into()))
    }
}

/// What one delivery contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub messages: usize,
    pub duplicates: usize,
    pub replies: usize,
    pub statuses: usize,
    pub template_updates: usize,
    pub ignored_changes: usize,
}

/// Parses a verified body: malformed JSON is a 400; JSON of an unknown shape is logged and
/// acknowledged (Meta would retry it forever otherwise).
pub fn parse(body: &[u8]) -> Result<Option<Notification>, ApiError> {
    match serde_json::from_slice::<Notification>(body) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.is_syntax() || e.is_eof() => {
            Err(ApiError::bad_request(format!("malformed JSON: {e}")))
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook body of an unknown shape acknowledged");
            Ok(None)
        }
    }
}

/// One `messages` change of a notification, read: its number, statuses and messages (with
/// the sender's profile name). Pure, so the bench measures exactly what `handle` runs.
#[derive(Debug)]
pub struct ParsedChange {
    pub phone_number_id: String,
    pub statuses: Vec<payload::StatusValue>,
    pub messages: Vec<(InboundMessage, Option<String>)>,
}

/// A Meta template webhook (status, quality or category), routed by the entry's WABA id.
#[derive(Debug)]
pub struct TemplateChange {
    pub waba_id: String,
    pub update: meta_template::Update,
}

/// What a notification is about.
#[derive(Debug, Default)]
pub struct Changes {
    pub messages: Vec<ParsedChange>,
    pub templates: Vec<TemplateChange>,
    /// Changes of other fields, or unreadable ones.
    pub ignored: usize,
}

/// The changes of a notification that concern messages and Meta templates; the rest is
/// counted as ignored.
pub fn changes(notification: Notification) -> Changes {
    let mut ignored = 0;
    let mut out = Vec::new();
    let mut templates = Vec::new();
    for entry in notification.entry {
        let waba_id = entry.id;
        for change in entry.changes {
            let field = change.field.as_deref().unwrap_or_default();
            if field == "messages" {
                match message_change(change.value.as_deref()) {
                    Some(c) => out.push(c),
                    None => ignored += 1,
                }
                continue;
            }
            let value: serde_json::Value = change
                .value
                .as_deref()
                .and_then(|v| serde_json::from_str(v.get()).ok())
                .unwrap_or_default();
            match (&waba_id, meta_template::read_change(field, &value)) {
                (Some(waba), Some(update)) => templates.push(TemplateChange {
                    waba_id: waba.clone(),
                    update,
                }),
                _ => ignored += 1,
            }
        }
    }
    Changes {
        messages: out,
        templates,
        ignored,
    }
}

fn message_change(value: Option<&serde_json::value::RawValue>) -> Option<ParsedChange> {
    let value: payload::ChangeValue = match value.map(|v| serde_json::from_str(v.get())) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "webhook change of an unknown shape skipped");
            return None;
        }
        None => payload::ChangeValue::default(),
    };
    let Some(number) = value
        .metadata
        .as_ref()
        .and_then(|m| m.phone_number_id.clone())
    else {
        tracing::warn!("webhook change without metadata.phone_number_id skipped");
        return None;
    };
    let contacts = value.contacts;
    let messages = value
        .messages
        .into_iter()
        .filter_map(|raw| match InboundMessage::parse(raw) {
            Ok(m) => {
                let name = contacts
                    .iter()
                    .find(|c| c.wa_id.as_deref() == Some(m.from.as_str()))
                    .and_then(|c| c.profile.as_ref()?.name.clone());
                Some((m, name))
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbound message without id/from skipped");
                None
            }
        })
        .collect();
    Some(ParsedChange {
        phone_number_id: number,
        statuses: value.statuses,
        messages,
    })
}

/// Handles a parsed notification. Returns only once everything accepted is durable.
pub async fn handle(state: &AppState, notification: Notification) -> Result<Summary, ApiError> {
    let Changes {
        messages: changes,
        templates,
        ignored,
    } = changes(notification);
    let mut summary = Summary {
        ignored_changes: ignored,
        ..Summary::default()
    };
    for t in &templates {
        let changed = meta_template::apply_change(&state.store, &t.waba_id, &t.update).await?;
        tracing::info!(wabaId = %t.waba_id, template = ?t.update.name, change = ?t.update.change, changed, "Meta template update");
        summary.template_updates += 1;
        let u = &t.update;
        let data = serde_json::json!({
            "wabaId": t.waba_id, "metaId": u.meta_id, "name": u.name, "language": u.language,
            "status": u.change.status, "reason": u.change.reason,
            "qualityScore": u.change.quality_score, "category": u.change.category,
        });
        let cause = data.to_string();
        for tenant in tenant::ids_by_waba(&state.store, &t.waba_id).await? {
            let e = Event::new(&tenant, EventType::MetaTemplateStatus, &cause, data.clone());
            event::emit(&state.emitter(), &tenant, vec![e]).await;
        }
    }
    for change in changes {
        let Some(tenant) = tenant::by_phone_number(
            &state.store,
            &state.tenants_by_number,
            &change.phone_number_id,
        )
        .await?
        else {
            tracing::info!(phoneNumberId = %change.phone_number_id, "webhook for an unknown number ignored");
            summary.ignored_changes += 1;
            continue;
        };
        let emitter = state.emitter();
        let wanted = event::wanted(&emitter, &tenant.id).await;
        let mut events = Vec::new();
        for status in &change.statuses {
            apply_status(state, &tenant.id, status).await?;
            summary.statuses += 1;
            if wanted.wants(EventType::MessageStatus) {
                events.push(status_event(&tenant.id, &change.phone_number_id, status));
            }
        }
        let to = Addressee {
            tenant: &tenant.id,
            number: &change.phone_number_id,
            // A disabled tenant's customers are heard (stored), not answered.
            answers: tenant.status == TenantStatus::Active,
        };
        for (message, name) in &change.messages {
            summary.messages += 1;
            let received = receive(state, &to, message, name.as_deref()).await?;
            match &received {
                Received::Duplicate => summary.duplicates += 1,
                Received::Replied(_) => summary.replies += 1,
                Received::Stored => {}
            }
            events.extend(message_events(
                &to,
                message,
                name.as_deref(),
                &received,
                &wanted,
            ));
        }
        // After everything is durable: a refused enqueue never fails the webhook.
        event::emit_to(&emitter, &tenant.id, &wanted, events).await;
    }
    Ok(summary)
}

/// `message.status` for a status Meta reported (the same id for Meta's retries of it).
fn status_event(tenant: &TenantId, number: &str, s: &payload::StatusValue) -> Event {
    let errors: Vec<serde_json::Value> = s
        .errors
        .iter()
        .map(|e| serde_json::json!({"code": e.code, "title": e.title}))
        .collect();
    Event::new(
        tenant,
        EventType::MessageStatus,
        &format!("{}|{}", s.id, s.status),
        serde_json::json!({
            "wamid": s.id, "status": s.status, "recipientId": s.recipient_id,
            "timestamp": s.timestamp, "phoneNumberId": number, "errors": errors,
        }),
    )
}

/// `message.received` for a message stored now, and `customer.opted_out` or
/// `handoff.started` when the bot's answer to it was that.
fn message_events(
    to: &Addressee<'_>,
    m: &InboundMessage,
    name: Option<&str>,
    received: &Received,
    wanted: &event::Wanted,
) -> Vec<Event> {
    if matches!(received, Received::Duplicate) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if wanted.wants(EventType::MessageReceived) {
        out.push(Event::new(
            to.tenant,
            EventType::MessageReceived,
            &m.wamid,
            serde_json::json!({
                "wamid": m.wamid, "from": m.from, "name": name, "type": m.kind, "text": m.body,
                "payloadId": m.payload_id, "timestamp": m.timestamp, "phoneNumberId": to.number,
            }),
        ));
    }
    let follow = match received {
        Received::Replied(Some(kind)) if kind == "opt_out" => Some(EventType::CustomerOptedOut),
        Received::Replied(Some(kind)) if kind == "handoff" => Some(EventType::HandoffStarted),
        _ => None,
    };
    if let Some(kind) = follow.filter(|k| wanted.wants(*k)) {
        out.push(Event::new(
            to.tenant,
            kind,
            &m.wamid,
            serde_json::json!({"waId": m.from, "wamid": m.wamid, "phoneNumberId": to.number}),
        ));
    }
    out
}

async fn apply_status(
    state: &AppState,
    tenant: &TenantId,
    s: &payload::StatusValue,
) -> Result<(), ApiError> {
    let Some(status) = Status::from_meta(&s.status) else {
        tracing::info!(tenantId = %tenant, wamid = %s.id, status = %s.status, "unknown status ignored");
        return Ok(());
    };
    let at = s
        .timestamp
        .as_deref()
        .and_then(|t| t.parse::<i64>().ok())
        .map(|secs| DateTime::from_millis(secs * 1000))
        .unwrap_or_else(DateTime::now);
    let error = s.errors.first().map(|e| {
        let code = match &e.code {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => "unknown".into(),
        };
        let meta_title = e.title.clone().or_else(|| e.message.clone());
        let meta_details = e.error_data.as_ref().and_then(|d| d.details.clone());
        // A late 131047 reads like the sender's own: the 24-hour window, in words.
        match crate::whatsapp::reason_for(&code) {
            Some(reason) => MessageError {
                code,
                title: reason.to_owned(),
                details: meta_details.or(meta_title),
            },
            None => MessageError {
                code,
                title: meta_title.unwrap_or_default(),
                details: meta_details,
            },
        }
    });
    let update = StatusUpdate {
        wamid: s.id.clone(),
        status,
        at,
        error,
    };
    let mut applied = message::apply_status(&state.store, tenant, &update).await?;
    if applied == message::store::StatusApplied::Kept {
        // Tells the sender that records this wamid to look for it (it skips the look-up
        // otherwise; without Redis it always looks). A sender that recorded it before the
        // mark was set did not look: one more try covers it.
        state
            .locks
            .remember(
                &message::store::kept_status_key(&s.id),
                "1",
                message::store::KEPT_MARK_TTL,
            )
            .await;
        if message::store::move_forward(&state.store, tenant, &update).await? {
            applied = message::store::StatusApplied::Applied;
        }
    }
    tracing::info!(tenantId = %tenant, wamid = %s.id, status = status.as_str(), applied = ?applied, "status");
    Ok(())
}

enum Received {
    Stored,
    /// Answered; the trigger's kind (`rule`, `opt_out`, `handoff`, ...).
    Replied(Option<String>),
    Duplicate,
}

/// Decisions taken on a conversation that kept moving on before giving up (Meta retries).
const MAX_DECISIONS: usize = 4;

/// Whom an inbound message is for: the tenant, the number it was written to (its reply
/// goes from there), and whether the tenant answers.
struct Addressee<'a> {
    tenant: &'a TenantId,
    number: &'a str,
    answers: bool,
}

async fn receive(
    state: &AppState,
    to: &Addressee<'_>,
    message: &InboundMessage,
    name: Option<&str>,
) -> Result<Received, ApiError> {
    let tenant = to.tenant;
    let memo = revision::memo_key(tenant, &message.from);
    let lock = format!("wa:in:{{{tenant}:{}}}:{}", message.from, message.wamid);
    let (begin, remembered) =
        idempotency::begin_with(&state.locks, &lock, state.config.idempotency_lock, &memo).await;
    let held = match begin {
        Begin::Finished => {
            tracing::info!(tenantId = %tenant, wamid = %message.wamid, "duplicate delivery skipped");
            return Ok(Received::Duplicate);
        }
        Begin::InProgress => {
            return Err(ApiError::InProgress(format!(
                "message {} is still being processed by another delivery",
                message.wamid
            )));
        }
        Begin::Owner(held) => Some(held),
        Begin::Unguarded => None,
    };
    let known = remembered.as_deref().and_then(Snapshot::from_memo);
    let guarded = held.is_some();
    let result = process(state, to, message, name, known, guarded).await;
    if let Some(held) = held {
        let remember = match &result {
            Ok((_, Some(after))) => after.to_memo().map(|value| Memo {
                key: &memo,
                value,
                rev: after.rev,
                ttl: revision::MEMO_TTL,
            }),
            _ => None,
        };
        held.end_with(&state.locks, &result, remember).await;
    }
    result.map(|(received, _)| received)
}

/// Budget on a text that triggers a reply (tenant and bot config warm): 2 MongoDB round
/// trips (the conversation's conditional write, which carries the decision; the inbound
/// and its reply in one insert) and 1 SQS send, whether the customer's conversation is
/// remembered or they write for the first time. A forgotten or stale memory costs a read
/// and one more write. Returns the conversation as it now is, to remember.
async fn process(
    state: &AppState,
    to: &Addressee<'_>,
    message: &InboundMessage,
    name: Option<&str>,
    known: Option<Snapshot>,
    guarded: bool,
) -> Result<(Received, Option<Snapshot>), ApiError> {
    let (tenant, answers) = (to.tenant, to.answers);
    failpoint::hit("webhook.before_store").await?;
    let now = DateTime::now();
    let touch = Touch {
        name,
        wrote_at: customer::wrote_at(
            message.timestamp.map(|s| DateTime::from_millis(s * 1000)),
            now,
        ),
        now,
    };
    let mut inbound = inbound_doc(tenant, message);
    inbound.phone_number_id = Some(to.number.to_owned());
    if !answers && message.is_conversational() {
        tracing::info!(tenantId = %tenant, wamid = %message.wamid, reason = "tenant_disabled", "no reply");
    }
    if !message.is_conversational() || !answers {
        revision::touch(&state.store, tenant, &message.from, &touch).await?;
        failpoint::hit("webhook.after_store").await?;
        let fresh = message::insert_inbound(&state.store, &inbound).await?;
        if fresh {
            stored(tenant, message);
        }
        let after = known.map(|k| k.touched(touch.wrote_at));
        return Ok((
            if fresh {
                Received::Stored
            } else {
                Received::Duplicate
            },
            after,
        ));
    }
    let config = bot_config(state, tenant).await?;
    let (mut reply, after) =
        decide_and_record(state, tenant, message, &touch, known, &config).await?;
    if let Some(reply) = reply.as_mut() {
        // Answered from the number the customer wrote to.
        reply.phone_number_id = Some(to.number.to_owned());
    }
    failpoint::hit("webhook.after_store").await?;
    let Some(reply) = reply else {
        let fresh = message::insert_inbound(&state.store, &inbound).await?;
        if fresh {
            stored(tenant, message);
        }
        let received = if fresh {
            Received::Stored
        } else {
            Received::Duplicate
        };
        return Ok((received, Some(after)));
    };
    let outcome = message::insert_with_reply(&state.store, &inbound, &reply).await?;
    failpoint::hit("webhook.after_reply_stored").await?;
    let received = match outcome {
        Stored::Both => {
            stored(tenant, message);
            outbox::send_job(state.outbox(), &reply, Booking::default()).await?;
            Received::Replied(reply.trigger.as_ref().map(|t| t.kind.clone()))
        }
        // An earlier delivery stored the inbound and was cut off before its reply.
        Stored::Again(Inserted::Inserted) => {
            outbox::send_job(state.outbox(), &reply, Booking::default()).await?;
            Received::Replied(reply.trigger.as_ref().map(|t| t.kind.clone()))
        }
        Stored::Again(Inserted::Duplicate(existing)) => {
            resume(state, tenant, &existing, guarded).await?;
            return Ok((Received::Duplicate, Some(after)));
        }
    };
    tracing::info!(tenantId = %tenant, wamid = %message.wamid, messageId = %reply.id, "reply queued");
    metrics::count(Metric::ReplyQueued, &[]);
    Ok((received, Some(after)))
}

fn stored(tenant: &TenantId, message: &InboundMessage) {
    tracing::info!(tenantId = %tenant, wamid = %message.wamid, kind = %message.kind, "inbound stored");
    metrics::count(Metric::InboundMessage, &[("Type", message.kind.as_str())]);
}

/// Decides the reply on the customer's conversation and records the decision with the
/// change it makes, in one conditional write: on the remembered conversation, else as a
/// first contact (the document is created with it), else on a fresh read. When the
/// conversation moved on in between, it decides again on a fresh read. A decision a
/// delivery cut off after recording it is taken as it was, never decided again on the
/// state it already moved on.
async fn decide_and_record(
    state: &AppState,
    tenant: &TenantId,
    message: &InboundMessage,
    touch: &Touch<'_>,
    known: Option<Snapshot>,
    config: &BotConfig,
) -> Result<(Option<MessageDoc>, Snapshot), ApiError> {
    let store = &state.store;
    let from = message.from.as_str();
    let mut first_contact = known.is_none();
    let mut base = known;
    for _ in 0..MAX_DECISIONS {
        let snapshot = match base.take() {
            Some(s) => s,
            None if first_contact => {
                first_contact = false;
                let (reply, update) =
                    decision(tenant, message, touch, &Conversation::default(), config);
                let after = match &update {
                    Some(u) => Conversation::default().applied(u, touch.now),
                    None => Conversation::default(),
                };
                let record = last_reply(&message.wamid, reply.as_ref())?;
                if let Some(id) =
                    revision::create(store, tenant, from, touch, &after, &record).await?
                {
                    let snapshot = Snapshot {
                        id: Some(id),
                        rev: 1,
                        conversation: after,
                        last_inbound_at: Some(touch.wrote_at),
                    };
                    return Ok((reply, snapshot));
                }
                continue;
            }
            None => {
                let (snapshot, last) = revision::read(store, tenant, from, touch).await?;
                if let Some(last) = last.filter(|l| l.wamid == message.wamid) {
                    tracing::info!(tenantId = %tenant, wamid = %message.wamid, "decision recorded by an earlier delivery");
                    let reply = last
                        .message
                        .map(mongodb::bson::from_document::<MessageDoc>)
                        .transpose()
                        .map_err(|e| ApiError::unavailable("database", e))?;
                    return Ok((reply, snapshot));
                }
                snapshot
            }
        };
        let (reply, update) = decision(tenant, message, touch, &snapshot.conversation, config);
        let record = last_reply(&message.wamid, reply.as_ref())?;
        if revision::advance(
            store,
            tenant,
            from,
            touch,
            &snapshot,
            update.as_ref(),
            &record,
        )
        .await?
        {
            return Ok((
                reply,
                snapshot.advanced(touch.wrote_at, update.as_ref(), touch.now),
            ));
        }
        tracing::info!(tenantId = %tenant, wamid = %message.wamid, rev = snapshot.rev, "conversation moved on: deciding again");
    }
    Err(ApiError::InProgress(format!(
        "the conversation of message {} kept changing; retry",
        message.wamid
    )))
}

fn last_reply(wamid: &str, reply: Option<&MessageDoc>) -> Result<LastReply, ApiError> {
    Ok(LastReply {
        wamid: wamid.to_owned(),
        message: reply
            .map(mongodb::bson::to_document)
            .transpose()
            .map_err(|e| ApiError::unavailable("database", e))?,
    })
}

/// The stored form of an inbound message, with its raw object.
fn inbound_doc(tenant: &TenantId, m: &InboundMessage) -> MessageDoc {
    let mut doc = MessageDoc::inbound(tenant, &m.wamid, &m.kind, &m.from);
    doc.body = m.body.clone();
    doc.payload_id = m.payload_id.clone();
    doc.media = m.media.clone();
    doc.raw = serde_json::from_str(m.raw.get()).ok();
    doc.wa_timestamp = m.timestamp.map(|s| DateTime::from_millis(s * 1000));
    doc
}

fn reply_key(message: &InboundMessage) -> String {
    format!("auto-reply:{}", message.wamid)
}

/// The engine's decision on `conversation`: the reply to store (with the change it makes)
/// or none, and the change.
fn decision(
    tenant: &TenantId,
    message: &InboundMessage,
    touch: &Touch<'_>,
    conversation: &Conversation,
    config: &BotConfig,
) -> (Option<MessageDoc>, Option<StateUpdate>) {
    let inbound = Inbound {
        text: message.body.as_deref().unwrap_or_default(),
        payload_id: message.payload_id.as_deref(),
        customer_name: touch.name,
        wa_id: &message.from,
    };
    match engine::decide(&inbound, conversation, config, touch.now) {
        Decision::Reply(reply) => {
            let mut doc = MessageDoc::outbound(
                tenant,
                &message.from,
                reply_key(message),
                reply.content,
                "auto_reply",
            );
            doc.template_key = reply.template_key;
            doc.in_reply_to = Some(message.wamid.clone());
            doc.trigger = Some(trigger(&reply.cause));
            doc.inbound_at = Some(touch.wrote_at);
            doc.state_update = Some(reply.state_update.clone());
            (Some(doc), Some(reply.state_update))
        }
        Decision::Quiet { why, update } => {
            tracing::info!(tenantId = %tenant, wamid = %message.wamid, reason = why.as_str(), "no reply");
            (None, update)
        }
    }
}

/// The engine's reason for a reply, as stored for analytics.
fn trigger(cause: &engine::Cause) -> Trigger {
    use engine::Cause;
    let kind = |k: &str| Trigger {
        kind: k.into(),
        template: None,
        option: None,
        rule: None,
    };
    match cause {
        Cause::Button { from, button_id } => Trigger {
            template: Some(from.to_string()),
            option: Some(button_id.clone()),
            ..kind("button")
        },
        Cause::Rule { id } => Trigger {
            rule: Some(id.clone()),
            ..kind("rule")
        },
        Cause::Handoff { rule } => Trigger {
            rule: Some(rule.clone()),
            ..kind("handoff")
        },
        Cause::Fallback => kind("fallback"),
        Cause::Captured { .. } => kind("captured"),
        Cause::Retry { .. } => kind("retry"),
        Cause::Reset => kind("reset"),
        Cause::OptOut => kind("opt_out"),
        Cause::OptIn => kind("opt_in"),
    }
}

/// Finishes a reply stored by an earlier delivery that may not have got it onto the
/// queue: one never attempted is enqueued again (the sender delivers a message once,
/// however many jobs it has). Without the lock (Redis down) the delivery that stored it
/// may still be at work: then only one whose enqueue failed, or that was stored longer ago
/// than any function runs, is enqueued here.
async fn resume(
    state: &AppState,
    tenant: &TenantId,
    existing: &MessageDoc,
    guarded: bool,
) -> Result<(), ApiError> {
    if !outbox::unfinished(existing, guarded) {
        return Ok(());
    }
    outbox::send_job(state.outbox(), existing, Booking::default()).await?;
    tracing::info!(tenantId = %tenant, messageId = %existing.id, "stored reply enqueued by a retry");
    Ok(())
}

/// The tenant's active templates and flow, compiled, through the warm cache.
pub async fn bot_config(
    state: &AppState,
    tenant: &TenantId,
) -> Result<std::sync::Arc<BotConfig>, ApiError> {
    state
        .bot_configs
        .get_or_load(tenant, load_bot_config(&state.store, tenant))
        .await
}

/// The tenant's active templates, flow and conversation settings, read (in parallel) and
/// compiled: what the webhook caches and the simulator reads fresh.
pub async fn load_bot_config(
    store: &crate::store::Store,
    tenant: &TenantId,
) -> Result<BotConfig, ApiError> {
    let (templates, flow, settings) = futures::try_join!(
        template::load_active(store, tenant),
        flow::load(store, tenant),
        tenant::bot_settings(store, tenant),
    )?;
    Ok(BotConfig::new(
        templates,
        flow.as_ref().map(|f| &f.flow),
        settings,
    ))
}
