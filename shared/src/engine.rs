//! The conversation engine: a pure function from (inbound, conversation, tenant config,
//! now) to a decision. No I/O, so it is unit-tested and benchmarked on its own; the webhook
//! loads its inputs and persists its output, and the simulator shows it without either.

use std::collections::{BTreeMap, HashMap};

use mongodb::bson::DateTime;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{
    customer::{Conversation, StateUpdate},
    error::ApiError,
    flow::{CompiledFlow, Flow, MatchText, RuleKind, first_match, fold},
    queue::{Content, ContentKind},
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

pub const KEYWORDS_MAX: usize = 20;
pub const KEYWORD_MAX: usize = 30;
pub use crate::customer::{HANDOFF_MINUTES_DEFAULT, HANDOFF_MINUTES_MAX};

pub const OPT_OUT_CONFIRMATION: &str =
    "You will not receive more messages from us. Reply START to subscribe again.";
pub const OPT_IN_CONFIRMATION: &str = "Welcome back! You will receive our messages again.";

fn default_opt_out() -> Vec<String> {
    ["STOP", "UNSUBSCRIBE", "BAJA", "PARAR", "ARRET"]
        .map(String::from)
        .to_vec()
}

fn default_opt_in() -> Vec<String> {
    vec!["START".into()]
}

fn default_handoff() -> u32 {
    HANDOFF_MINUTES_DEFAULT
}

/// A tenant's conversation settings (`PATCH /tenants/{tenantId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotSettings {
    /// Typed alone, these start over: state and variables cleared, the start template sent.
    #[serde(default)]
    pub reset_keywords: Vec<String>,
    #[serde(default)]
    pub start_template_key: Option<TemplateKey>,
    #[serde(default = "default_opt_out")]
    pub opt_out_keywords: Vec<String>,
    #[serde(default = "default_opt_in")]
    pub opt_in_keywords: Vec<String>,
    /// How long a flow's `handoff` action pauses the bot.
    #[serde(default = "default_handoff")]
    pub handoff_minutes: u32,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            reset_keywords: Vec::new(),
            start_template_key: None,
            opt_out_keywords: default_opt_out(),
            opt_in_keywords: default_opt_in(),
            handoff_minutes: HANDOFF_MINUTES_DEFAULT,
        }
    }
}

/// A keyword list as given: trimmed, 1–30 characters each, at most 20, no duplicates.
pub fn parse_keywords(field: &str, words: &[String]) -> Result<Vec<String>, ApiError> {
    if words.len() > KEYWORDS_MAX {
        return Err(ApiError::invalid(
            format!("{field}[{KEYWORDS_MAX}]"),
            format!("at most {KEYWORDS_MAX} keywords"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim();
        match w.chars().count() {
            0 => {
                return Err(ApiError::invalid(
                    format!("{field}[{i}]"),
                    "must not be empty",
                ));
            }
            n if n > KEYWORD_MAX => {
                return Err(ApiError::invalid(
                    format!("{field}[{i}]"),
                    format!("must be at most {KEYWORD_MAX} characters"),
                ));
            }
            _ => {}
        }
        if !out.iter().any(|o| fold(o) == fold(w)) {
            out.push(w.to_owned());
        }
    }
    Ok(out)
}

/// A tenant's active templates, flow and settings, compiled once per cache fill.
#[derive(Default)]
pub struct BotConfig {
    pub templates: HashMap<TemplateKey, Template>,
    pub flow: Option<CompiledFlow>,
    pub settings: BotSettings,
    /// Keywords folded (trimmed, lower-case), for matching.
    reset: Vec<String>,
    opt_out: Vec<String>,
    opt_in: Vec<String>,
    /// Each regex capture's pattern, compiled once.
    patterns: HashMap<TemplateKey, Regex>,
}

impl BotConfig {
    pub fn new(templates: Vec<Template>, flow: Option<&Flow>, settings: BotSettings) -> Self {
        let templates: HashMap<TemplateKey, Template> = templates
            .into_iter()
            .filter(|t| t.is_active)
            .map(|t| (t.key.clone(), t))
            .collect();
        let patterns = templates
            .values()
            .filter_map(|t| {
                let p = t.capture.as_ref()?.pattern.as_deref()?;
                Some((t.key.clone(), crate::template::capture::compile(p).ok()?))
            })
            .collect();
        let folded = |v: &[String]| v.iter().map(|w| fold(w)).collect();
        Self {
            reset: folded(&settings.reset_keywords),
            opt_out: folded(&settings.opt_out_keywords),
            opt_in: folded(&settings.opt_in_keywords),
            templates,
            flow: flow.map(CompiledFlow::new),
            patterns,
            settings,
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
    /// A valid answer to a capture, kept in `variable`.
    Captured {
        variable: String,
    },
    /// An answer that did not fit: asked again (`attempt` of the capture's maximum).
    Retry {
        variable: String,
        attempt: u32,
    },
    Reset,
    OptOut,
    OptIn,
    /// A flow rule handed the conversation to a human.
    Handoff {
        rule: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The template sent; `None` for a built-in message (a retry prompt, a confirmation).
    pub template_key: Option<TemplateKey>,
    pub content: Content,
    pub state_update: StateUpdate,
    pub cause: Cause,
}

/// Why the engine stays silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// The customer opted out (until they opt in).
    OptedOut,
    /// A human has the conversation.
    Handoff,
    /// Nothing matched and there is no fallback.
    NoMatch,
}

impl Silence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::Handoff => "handoff",
            Self::NoMatch => "no_match",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(Box<Reply>),
    /// No reply; the conversation may still change (a handoff without a message).
    Quiet {
        why: Silence,
        update: Option<StateUpdate>,
    },
}

impl Decision {
    fn reply(r: Reply) -> Self {
        Self::Reply(Box::new(r))
    }

    fn quiet(why: Silence) -> Self {
        Self::Quiet { why, update: None }
    }
}

/// In order:
/// 1. an opted-out customer gets nothing, unless they opt in (`optInKeywords`);
///    an opt-out keyword opts out, with one confirmation;
/// 2. while a human has the conversation (`handoffUntil`), nothing;
/// 3. a reset keyword starts over with the start template;
/// 4. a tapped button or list row of the last template sent → its `nextTemplateKey`
///    (`nextState`); an id found on exactly one other active template counts too;
/// 5. free text after a template with `capture`: a valid answer is kept and the bot goes
///    on; an invalid one is asked again, up to `maxAttempts`, then the fallback;
/// 6. the flow's first rule that applies in the current state and matches;
/// 7. the fallback template; else nothing.
pub fn decide(
    inbound: &Inbound<'_>,
    conversation: &Conversation,
    config: &BotConfig,
    now: DateTime,
) -> Decision {
    let typed = inbound.payload_id.is_none();
    let text = MatchText::new(inbound.text);
    let is = |words: &[String]| typed && words.iter().any(|w| w == text.folded());
    let vars = &conversation.vars;
    if conversation.opted_out_at.is_some() {
        if !is(&config.opt_in) {
            return Decision::quiet(Silence::OptedOut);
        }
        let mut update = StateUpdate {
            opted_out: Some(false),
            ..StateUpdate::default()
        };
        return Decision::reply(match start(config) {
            Some(t) => {
                update.last_template_key = Some(t.key.clone());
                reply(inbound, vars, t, update, Cause::OptIn)
            }
            None => built_in(OPT_IN_CONFIRMATION, update, Cause::OptIn),
        });
    }
    if is(&config.opt_out) {
        let update = StateUpdate {
            opted_out: Some(true),
            ..StateUpdate::default()
        };
        return Decision::reply(built_in(OPT_OUT_CONFIRMATION, update, Cause::OptOut));
    }
    if conversation.handoff_until.is_some_and(|u| u > now) {
        return Decision::quiet(Silence::Handoff);
    }
    if is(&config.reset) {
        let update = StateUpdate {
            reset: true,
            capture_attempts: Some(0),
            ..StateUpdate::default()
        };
        return match start(config) {
            Some(t) => {
                let update = StateUpdate {
                    last_template_key: Some(t.key.clone()),
                    ..update
                };
                Decision::reply(reply(inbound, &BTreeMap::new(), t, update, Cause::Reset))
            }
            None => Decision::Quiet {
                why: Silence::NoMatch,
                update: Some(update),
            },
        };
    }
    if let Some(r) = by_button(inbound, conversation, config) {
        return Decision::reply(r);
    }
    if typed && let Some(d) = by_capture(inbound, conversation, config) {
        return d;
    }
    if let Some(flow) = &config.flow
        && let Some(rule) = first_match(flow, &text, conversation.state.as_deref())
    {
        let state = rule
            .action
            .set_state
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let template = rule
            .action
            .template_key
            .as_ref()
            .and_then(|k| config.templates.get(k));
        match rule.action.kind {
            RuleKind::SendTemplate => {
                if let Some(t) = template {
                    let update = StateUpdate {
                        last_template_key: Some(t.key.clone()),
                        state,
                        capture_attempts: Some(0),
                        ..StateUpdate::default()
                    };
                    let cause = Cause::Rule {
                        id: rule.id.clone(),
                    };
                    return Decision::reply(reply(inbound, vars, t, update, cause));
                }
            }
            RuleKind::Handoff => {
                let minutes = i64::from(config.settings.handoff_minutes);
                let update = StateUpdate {
                    handoff_until: Some(DateTime::from_millis(
                        now.timestamp_millis() + minutes * 60_000,
                    )),
                    state,
                    last_template_key: template.map(|t| t.key.clone()),
                    ..StateUpdate::default()
                };
                let cause = Cause::Handoff {
                    rule: rule.id.clone(),
                };
                return match template {
                    Some(t) => Decision::reply(reply(inbound, vars, t, update, cause)),
                    None => Decision::Quiet {
                        why: Silence::Handoff,
                        update: Some(update),
                    },
                };
            }
        }
    }
    match fallback(config) {
        Some(t) => {
            let update = StateUpdate {
                last_template_key: Some(t.key.clone()),
                capture_attempts: Some(0),
                ..StateUpdate::default()
            };
            Decision::reply(reply(inbound, vars, t, update, Cause::Fallback))
        }
        None => Decision::quiet(Silence::NoMatch),
    }
}

fn start(config: &BotConfig) -> Option<&Template> {
    config
        .settings
        .start_template_key
        .as_ref()
        .and_then(|k| config.templates.get(k))
}

fn fallback(config: &BotConfig) -> Option<&Template> {
    config
        .flow
        .as_ref()?
        .fallback_template_key
        .as_ref()
        .and_then(|k| config.templates.get(k))
}

/// The answer to the last template's capture, if it has one.
fn by_capture(
    inbound: &Inbound<'_>,
    conversation: &Conversation,
    config: &BotConfig,
) -> Option<Decision> {
    let asked = config
        .templates
        .get(conversation.last_template_key.as_ref()?)?;
    let capture = asked.capture.as_ref()?;
    match capture.check(inbound.text, config.patterns.get(&asked.key)) {
        Some(value) => {
            let mut vars = conversation.vars.clone();
            vars.insert(capture.variable.clone(), value.clone());
            let next = config.templates.get(&capture.next_template_key)?;
            let update = StateUpdate {
                last_template_key: Some(next.key.clone()),
                state: capture.next_state.as_ref().map(|s| s.as_str().to_owned()),
                vars: BTreeMap::from([(capture.variable.clone(), value)]),
                capture_attempts: Some(0),
                ..StateUpdate::default()
            };
            let cause = Cause::Captured {
                variable: capture.variable.clone(),
            };
            Some(Decision::reply(reply(inbound, &vars, next, update, cause)))
        }
        None => {
            let attempt = conversation.capture_attempts.saturating_add(1);
            if attempt >= capture.max_attempts {
                // Out of attempts: the rules, then the fallback, answer it like any text
                // (and whatever they send becomes the last template).
                return None;
            }
            let update = StateUpdate {
                capture_attempts: Some(attempt),
                ..StateUpdate::default()
            };
            let cause = Cause::Retry {
                variable: capture.variable.clone(),
                attempt,
            };
            let retry = capture
                .retry_template_key
                .as_ref()
                .and_then(|k| config.templates.get(k));
            Some(Decision::reply(match retry {
                Some(t) => {
                    let mut r = reply(inbound, &conversation.vars, t, update, cause);
                    // The question stays pending: the retry is not the template asked.
                    r.state_update.last_template_key = None;
                    r
                }
                None => built_in(
                    &format!(
                        "That doesn't look like {}. Please try again.",
                        capture.kind.hint()
                    ),
                    update,
                    cause,
                ),
            }))
        }
    }
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
    let update = StateUpdate {
        last_template_key: Some(next.key.clone()),
        state: state.map(|s| s.as_str().to_owned()),
        capture_attempts: Some(0),
        ..StateUpdate::default()
    };
    Some(reply(
        inbound,
        &conversation.vars,
        next,
        update,
        Cause::Button {
            from: from.key.clone(),
            button_id: payload.to_owned(),
        },
    ))
}

/// Variables an auto-reply can fill: `customer_name` (WhatsApp profile), `wa_id` and the
/// conversation's `vars.<name>`. Anything else renders empty: there is no caller to report
/// a missing value to.
pub fn auto_reply_variable(
    inbound: &Inbound<'_>,
    vars: &BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    match name {
        "customer_name" | "name" => inbound.customer_name.map(str::to_owned),
        "wa_id" | "phone" => Some(inbound.wa_id.to_owned()),
        _ => vars.get(name.strip_prefix("vars.")?).cloned(),
    }
}

fn reply(
    inbound: &Inbound<'_>,
    vars: &BTreeMap<String, String>,
    t: &Template,
    state_update: StateUpdate,
    cause: Cause,
) -> Reply {
    Reply {
        template_key: Some(t.key.clone()),
        content: t.render(|name| auto_reply_variable(inbound, vars, name)),
        state_update,
        cause,
    }
}

fn built_in(text: &str, state_update: StateUpdate, cause: Cause) -> Reply {
    Reply {
        template_key: None,
        content: Content {
            kind: ContentKind::Text,
            text: text.to_owned(),
            ..Content::default()
        },
        state_update,
        cause,
    }
}

#[cfg(test)]
mod tests;
