//! The conversation engine: a pure function from (inbound, conversation, tenant config) to
//! a decision. No I/O, so it is unit-tested and benchmarked on its own; the webhook loads
//! its inputs and persists its output.

use std::collections::HashMap;

use crate::{
    customer::{Conversation, StateUpdate},
    flow::{CompiledFlow, Flow, first_match},
    queue::Content,
    template::{Choice, Template, TemplateKey},
};

/// What the customer sent, as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// Text, or the tapped button's title.
    pub text: &'a str,
    /// The tapped button's id (button_reply, list_reply, legacy button payload).
    pub payload_id: Option<&'a str>,
    pub customer_name: Option<&'a str>,
    pub wa_id: &'a str,
}

/// A tenant's active templates and flow, compiled once per cache fill.
#[derive(Default)]
pub struct BotConfig {
    pub templates: HashMap<TemplateKey, Template>,
    pub flow: Option<CompiledFlow>,
}

impl BotConfig {
    pub fn new(templates: Vec<Template>, flow: Option<&Flow>) -> Self {
        Self {
            templates: templates
                .into_iter()
                .filter(|t| t.is_active)
                .map(|t| (t.key.clone(), t))
                .collect(),
            flow: flow.map(CompiledFlow::new),
        }
    }
}

/// Why the engine replied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Button {
        from: TemplateKey,
        button_id: String,
    },
    Rule {
        id: String,
    },
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub template_key: TemplateKey,
    pub content: Content,
    pub state_update: StateUpdate,
    pub cause: Cause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(Box<Reply>),
    NoReply,
}

/// 1. a tapped button of the last template sent → its `nextTemplateKey` (`nextState`);
///    a tapped id found on exactly one other active template (an older menu) counts too;
/// 2. else the flow's first matching rule (`setState`);
/// 3. else the fallback template; else no reply.
pub fn decide(inbound: &Inbound<'_>, conversation: &Conversation, config: &BotConfig) -> Decision {
    if let Some(reply) = by_button(inbound, conversation, config) {
        return Decision::Reply(Box::new(reply));
    }
    if let Some(flow) = &config.flow {
        if let Some(rule) = first_match(flow, inbound.text)
            && let Some(t) = config.templates.get(&rule.action.template_key)
        {
            let state = rule
                .action
                .set_state
                .as_ref()
                .map(|s| s.as_str().to_owned());
            return Decision::Reply(Box::new(reply(
                inbound,
                t,
                state,
                Cause::Rule {
                    id: rule.id.clone(),
                },
            )));
        }
        if let Some(t) = flow
            .fallback_template_key
            .as_ref()
            .and_then(|k| config.templates.get(k))
        {
            return Decision::Reply(Box::new(reply(inbound, t, None, Cause::Fallback)));
        }
    }
    Decision::NoReply
}

fn tapped<'t>(t: &'t Template, payload: &str) -> Option<Choice<'t>> {
    t.choices().find(|(id, _, _)| *id == payload)
}

fn by_button(
    inbound: &Inbound<'_>,
    conversation: &Conversation,
    config: &BotConfig,
) -> Option<Reply> {
    let payload = inbound.payload_id?;
    let last = conversation
        .last_template_key
        .as_ref()
        .and_then(|k| config.templates.get(k));
    let tapped = |t| tapped(t, payload);
    let (from, (_, next, state)) = match last.and_then(|t| tapped(t).map(|c| (t, c))) {
        Some(found) => found,
        None => {
            // A tap on an older menu still in the chat (or on a Meta template's quick
            // reply carrying a bot button's id): accept an id that is unambiguous.
            let mut owners = config
                .templates
                .values()
                .filter_map(|t| tapped(t).map(|c| (t, c)));
            let first = owners.next()?;
            if owners.next().is_some() {
                return None;
            }
            first
        }
    };
    let next = config.templates.get(next?)?;
    let state = state.map(|s| s.as_str().to_owned());
    Some(reply(
        inbound,
        next,
        state,
        Cause::Button {
            from: from.key.clone(),
            button_id: payload.to_owned(),
        },
    ))
}

/// Variables an auto-reply can fill: `customer_name` (WhatsApp profile) and `wa_id`.
/// Anything else renders empty: there is no caller to report a missing value to.
pub fn auto_reply_variable(inbound: &Inbound<'_>, name: &str) -> Option<String> {
    match name {
        "customer_name" | "name" => inbound.customer_name.map(str::to_owned),
        "wa_id" | "phone" => Some(inbound.wa_id.to_owned()),
        _ => None,
    }
}

fn reply(inbound: &Inbound<'_>, t: &Template, state: Option<String>, cause: Cause) -> Reply {
    Reply {
        template_key: t.key.clone(),
        content: t.render(|name| auto_reply_variable(inbound, name)),
        state_update: StateUpdate {
            last_template_key: t.key.clone(),
            state,
        },
        cause,
    }
}

#[cfg(test)]
mod tests;
