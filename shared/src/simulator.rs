//! The simulator: what the bot would answer, with no side effect at all. It runs the same
//! engine as the webhook on the tenant's saved templates, flow and settings, against a
//! conversation given in the request; nothing is stored, queued or sent.

use std::collections::BTreeMap;

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    customer::{Conversation, StateUpdate},
    engine::{self, Cause, Decision, Inbound},
    error::ApiError,
    ids::{StateName, TemplateKey, TenantId},
    queue::Content,
    store::Store,
};

pub const TEXT_MAX: usize = 4096;

/// `POST /tenants/{tenantId}/simulate` body: what the customer sends (text, or a tap on a
/// button or list row by its id) and where the conversation stands.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulateRequest {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub payload_id: Option<String>,
    #[serde(default)]
    pub conversation: Option<ConversationInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationInput {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub last_template_key: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub capture_attempts: Option<u32>,
    #[serde(default)]
    pub opted_out: Option<bool>,
    #[serde(default)]
    pub handoff: Option<bool>,
}

/// The decision, as the simulator shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    /// The message the bot would send, or `null`.
    pub reply: Option<SimulatedReply>,
    /// Why there is no reply (`opted_out`, `handoff`, `no_match`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// How the conversation would change (times as RFC 3339).
    pub changes: Option<Value>,
    /// The conversation afterwards: post it back with the next message to go on.
    pub conversation: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedReply {
    pub template_key: Option<TemplateKey>,
    pub content: Content,
    pub cause: Value,
}

fn cause_view(c: &Cause) -> Value {
    match c {
        Cause::Button { from, button_id } => {
            json!({ "type": "button", "from": from, "buttonId": button_id })
        }
        Cause::Rule { id } => json!({ "type": "rule", "ruleId": id }),
        Cause::Fallback => json!({ "type": "fallback" }),
        Cause::Captured { variable } => json!({ "type": "captured", "variable": variable }),
        Cause::Retry { variable, attempt } => {
            json!({ "type": "retry", "variable": variable, "attempt": attempt })
        }
        Cause::Reset => json!({ "type": "reset" }),
        Cause::OptOut => json!({ "type": "opt_out" }),
        Cause::OptIn => json!({ "type": "opt_in" }),
        Cause::Handoff { rule } => json!({ "type": "handoff", "ruleId": rule }),
    }
}

impl SimulateRequest {
    fn conversation(&self, now: DateTime) -> Result<Conversation, ApiError> {
        let Some(c) = &self.conversation else {
            return Ok(Conversation::default());
        };
        let last_template_key = match c.last_template_key.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(TemplateKey::parse("conversation.lastTemplateKey", k)?),
            None => None,
        };
        let state = match c.state.as_deref() {
            Some(s) => StateName::parse("conversation.state", s)?.map(|s| s.as_str().to_owned()),
            None => None,
        };
        Ok(Conversation {
            state,
            last_template_key,
            vars: c.vars.clone(),
            capture_attempts: c.capture_attempts.unwrap_or(0),
            handoff_until: c
                .handoff
                .unwrap_or(false)
                .then(|| DateTime::from_millis(now.timestamp_millis() + 60_000)),
            opted_out_at: c.opted_out.unwrap_or(false).then_some(now),
        })
    }
}

/// A state change as JSON, with its time as RFC 3339 (not BSON's extended JSON).
fn changes_view(u: &StateUpdate) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    if let (Some(obj), Some(until)) = (v.as_object_mut(), u.handoff_until) {
        obj.insert(
            "handoffUntil".into(),
            Value::String(crate::ids::rfc3339(until)),
        );
    }
    v
}

/// The conversation after `update`, in the request's shape.
fn after(c: &Conversation, update: Option<&StateUpdate>, now: DateTime) -> Value {
    let c = match update {
        Some(u) => c.applied(u, now),
        None => c.clone(),
    };
    json!({
        "state": c.state,
        "lastTemplateKey": c.last_template_key,
        "vars": c.vars,
        "captureAttempts": c.capture_attempts,
        "optedOut": c.opted_out_at.is_some(),
        "handoff": c.handoff_until.is_some_and(|h| h > now),
    })
}

/// Loads the tenant's saved configuration (not the webhook's cache: an admin trying a
/// template just saved sees it) and decides. Reads only.
pub async fn simulate(
    store: &Store,
    tenant: &TenantId,
    req: &SimulateRequest,
) -> Result<Simulation, ApiError> {
    let text = req.text.as_deref().unwrap_or_default();
    if text.chars().count() > TEXT_MAX {
        return Err(ApiError::invalid(
            "text",
            format!("must be at most {TEXT_MAX} characters"),
        ));
    }
    let payload_id = req.payload_id.as_deref().filter(|p| !p.is_empty());
    if text.trim().is_empty() && payload_id.is_none() {
        return Err(ApiError::invalid("text", "give text or payloadId"));
    }
    let now = DateTime::now();
    let conversation = req.conversation(now)?;
    let config = crate::webhook::load_bot_config(store, tenant).await?;
    // A tap's title is what WhatsApp shows as its text: the button's or row's own.
    let title = payload_id
        .and_then(|id| {
            config.templates.values().find_map(|t| {
                t.buttons
                    .iter()
                    .find(|b| b.id.as_str() == id)
                    .map(|b| b.title.as_str().to_owned())
                    .or_else(|| {
                        t.list
                            .iter()
                            .flat_map(|l| l.rows())
                            .find(|r| r.id == id)
                            .map(|r| r.title.clone())
                    })
            })
        })
        .unwrap_or_else(|| text.to_owned());
    let inbound = Inbound {
        text: if payload_id.is_some() { &title } else { text },
        payload_id,
        customer_name: Some("Test customer"),
        wa_id: "15550000000",
    };
    Ok(
        match engine::decide(&inbound, &conversation, &config, now) {
            Decision::Reply(r) => Simulation {
                conversation: after(&conversation, Some(&r.state_update), now),
                reply: Some(SimulatedReply {
                    template_key: r.template_key,
                    content: r.content,
                    cause: cause_view(&r.cause),
                }),
                reason: None,
                changes: Some(changes_view(&r.state_update)),
            },
            Decision::Quiet { why, update } => Simulation {
                conversation: after(&conversation, update.as_ref(), now),
                reply: None,
                reason: Some(why.as_str()),
                changes: update.as_ref().map(changes_view),
            },
        },
    )
}
