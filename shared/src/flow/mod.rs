//! Flow rules: which template answers which inbound text. One flow document per tenant:
//! ordered rules (first match wins) and an optional fallback template.
//!
//! Two input shapes are accepted and normalised to the first:
//! `{flows:[{id, match:{type, values}, action:{type:"send_template", templateKey, setState?}}],
//! fallbackTemplateKey?}` and the legacy `{rules:[{when:{type, value}, action:{replyTemplateKey,
//! setState?}}], fallbackTemplateKey}`.

mod matcher;
mod store;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub(crate) use matcher::fold;
pub use matcher::{CompiledFlow, MatchText, first_match};
pub use store::{FlowDoc, FlowView, get, load, references, save};

use crate::{
    error::ApiError,
    ids::{StateName, TemplateKey},
};

pub const MAX_RULES: usize = 200;
pub const MAX_VALUES: usize = 50;
pub const VALUE_MAX: usize = 1000;
pub const RULE_ID_MAX: usize = 64;
/// Compiled-size cap per rule: `regex` is linear-time, this bounds its memory too.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    Contains,
    Equals,
    StartsWith,
    Regex,
}

impl MatchType {
    fn parse(field: &str, s: &str) -> Result<Self, ApiError> {
        match s {
            "contains" => Ok(Self::Contains),
            "equals" | "exact" => Ok(Self::Equals),
            "starts_with" | "startsWith" => Ok(Self::StartsWith),
            "regex" => Ok(Self::Regex),
            other => Err(ApiError::invalid(
                field,
                format!("must be contains, equals, starts_with or regex, not {other:?}"),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    #[serde(rename = "type")]
    pub kind: MatchType,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Reply with `templateKey`.
    SendTemplate,
    /// Hand the conversation to a human (the bot pauses), after `templateKey` if given.
    Handoff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleAction {
    #[serde(rename = "type")]
    pub kind: RuleKind,
    /// Required for `send_template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_key: Option<TemplateKey>,
    #[serde(default)]
    pub set_state: Option<StateName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: RuleMatch,
    pub action: RuleAction,
    /// The conversation states the rule applies in; empty: any state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<StateName>,
}

/// A validated flow, in the normalised shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    pub flows: Vec<Rule>,
    #[serde(default)]
    pub fallback_template_key: Option<TemplateKey>,
}

/// `POST /flows` body, either shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowInput {
    #[serde(default)]
    pub flows: Option<Vec<RuleInput>>,
    #[serde(default)]
    pub rules: Option<Vec<LegacyRuleInput>>,
    #[serde(default)]
    pub fallback_template_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "match")]
    pub matcher: MatchInput,
    pub action: ActionInput,
    #[serde(default)]
    pub states: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyRuleInput {
    #[serde(default)]
    pub id: Option<String>,
    pub when: MatchInput,
    pub action: ActionInput,
}

#[derive(Debug, Deserialize)]
pub struct MatchInput {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionInput {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub template_key: Option<String>,
    #[serde(default)]
    pub reply_template_key: Option<String>,
    #[serde(default)]
    pub set_state: Option<String>,
}

/// One rule of either shape, with the field names of the shape it came in, so a 422 names
/// what the caller actually sent.
struct Source<'a> {
    path: String,
    match_name: &'static str,
    id: Option<&'a str>,
    matcher: &'a MatchInput,
    action: &'a ActionInput,
    states: Option<&'a [String]>,
}

impl FlowInput {
    fn sources(&self) -> Result<Vec<Source<'_>>, ApiError> {
        match (&self.flows, &self.rules) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "flows",
                "give either flows or the legacy rules, not both",
            )),
            (Some(flows), None) => Ok(flows
                .iter()
                .enumerate()
                .map(|(i, r)| Source {
                    path: format!("flows[{i}]"),
                    match_name: "match",
                    id: r.id.as_deref(),
                    matcher: &r.matcher,
                    action: &r.action,
                    states: r.states.as_deref(),
                })
                .collect()),
            (None, Some(rules)) => Ok(rules
                .iter()
                .enumerate()
                .map(|(i, r)| Source {
                    path: format!("rules[{i}]"),
                    match_name: "when",
                    id: r.id.as_deref(),
                    matcher: &r.when,
                    action: &r.action,
                    states: None,
                })
                .collect()),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn list_name(&self) -> &'static str {
        if self.rules.is_some() {
            "rules"
        } else {
            "flows"
        }
    }

    fn kind_of(src: &Source<'_>) -> Result<RuleKind, ApiError> {
        match src.action.kind.as_deref() {
            None | Some("send_template") => Ok(RuleKind::SendTemplate),
            Some("handoff") => Ok(RuleKind::Handoff),
            Some(t) => Err(ApiError::invalid(
                format!("{}.action.type", src.path),
                format!("must be send_template or handoff, not {t:?}"),
            )),
        }
    }

    /// The action's template key (required to send one, optional before a handoff).
    fn template_key_of<'a>(src: &Source<'a>) -> Result<Option<(String, &'a str)>, ApiError> {
        let a = src.action;
        match (a.template_key.as_deref(), a.reply_template_key.as_deref()) {
            (Some(k), _) if !k.is_empty() => {
                Ok(Some((format!("{}.action.templateKey", src.path), k)))
            }
            (_, Some(k)) if !k.is_empty() => {
                Ok(Some((format!("{}.action.replyTemplateKey", src.path), k)))
            }
            _ if Self::kind_of(src)? == RuleKind::Handoff => Ok(None),
            _ => Err(ApiError::invalid(
                format!("{}.action.templateKey", src.path),
                "is required",
            )),
        }
    }

    /// Every template key the flow names, for the caller to look up.
    pub fn template_keys(&self) -> Result<Vec<TemplateKey>, ApiError> {
        let mut keys = Vec::new();
        for src in self.sources()? {
            if let Some((field, k)) = Self::template_key_of(&src)? {
                keys.push(TemplateKey::parse(&field, k)?);
            }
        }
        if let Some(k) = self
            .fallback_template_key
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            keys.push(TemplateKey::parse("fallbackTemplateKey", k)?);
        }
        Ok(keys)
    }

    /// Validates and normalises. `existing`: this tenant's active keys among
    /// [`Self::template_keys`].
    pub fn validate(&self, existing: &HashSet<TemplateKey>) -> Result<Flow, ApiError> {
        let sources = self.sources()?;
        if sources.len() > MAX_RULES {
            return Err(ApiError::invalid(
                format!("{}[{MAX_RULES}]", self.list_name()),
                format!("at most {MAX_RULES} rules are allowed"),
            ));
        }
        let known = |field: String, k: &str| -> Result<TemplateKey, ApiError> {
            let key = TemplateKey::parse(&field, k)?;
            if existing.contains(&key) {
                Ok(key)
            } else {
                Err(ApiError::invalid(
                    field,
                    format!("template {key} does not exist (or is inactive) for this tenant"),
                ))
            }
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(sources.len());
        for (i, src) in sources.iter().enumerate() {
            let id = match src.id.map(str::trim) {
                None | Some("") => format!("rule_{}", i + 1),
                Some(id) if id.chars().count() > RULE_ID_MAX => {
                    return Err(ApiError::invalid(
                        format!("{}.id", src.path),
                        format!("must be at most {RULE_ID_MAX} characters"),
                    ));
                }
                Some(id) => id.to_owned(),
            };
            if rules.iter().any(|r| r.id == id) {
                return Err(ApiError::invalid(
                    format!("{}.id", src.path),
                    format!("duplicates another rule's id {id:?}"),
                ));
            }
            let m = format!("{}.{}", src.path, src.match_name);
            let kind = MatchType::parse(&format!("{m}.type"), &src.matcher.kind)?;
            let (values, values_field): (Vec<&str>, String) =
                match (&src.matcher.values, &src.matcher.value) {
                    (Some(v), _) => (
                        v.iter().map(String::as_str).collect(),
                        format!("{m}.values"),
                    ),
                    (None, Some(v)) => (vec![v.as_str()], format!("{m}.value")),
                    (None, None) => (Vec::new(), format!("{m}.values")),
                };
            if values.is_empty() {
                return Err(ApiError::invalid(values_field, "needs at least one value"));
            }
            if values.len() > MAX_VALUES {
                return Err(ApiError::invalid(
                    format!("{values_field}[{MAX_VALUES}]"),
                    format!("at most {MAX_VALUES} values per rule"),
                ));
            }
            for (j, v) in values.iter().enumerate() {
                let field = if src.matcher.values.is_some() {
                    format!("{values_field}[{j}]")
                } else {
                    values_field.clone()
                };
                if v.trim().is_empty() {
                    return Err(ApiError::invalid(field, "must not be empty"));
                }
                if v.chars().count() > VALUE_MAX {
                    return Err(ApiError::invalid(
                        field,
                        format!("must be at most {VALUE_MAX} characters"),
                    ));
                }
                if kind == MatchType::Regex {
                    matcher::compile_regex(v)
                        .map_err(|e| ApiError::invalid(field, format!("invalid regex: {e}")))?;
                }
            }
            let action_kind = Self::kind_of(src)?;
            let template_key = match Self::template_key_of(src)? {
                Some((field, k)) => Some(known(field, k)?),
                None => None,
            };
            let set_state = match src.action.set_state.as_deref() {
                Some(s) => StateName::parse(&format!("{}.action.setState", src.path), s)?,
                None => None,
            };
            let mut states: Vec<StateName> = Vec::new();
            for (j, st) in src.states.unwrap_or_default().iter().enumerate() {
                let field = format!("{}.states[{j}]", src.path);
                match StateName::parse(&field, st)? {
                    Some(st) if !states.contains(&st) => states.push(st),
                    Some(_) => {}
                    None => return Err(ApiError::invalid(field, "must not be empty")),
                }
            }
            rules.push(Rule {
                states,
                id,
                matcher: RuleMatch {
                    kind,
                    values: values.into_iter().map(str::to_owned).collect(),
                },
                action: RuleAction {
                    kind: action_kind,
                    template_key,
                    set_state,
                },
            });
        }
        let fallback_template_key = match self.fallback_template_key.as_deref() {
            None | Some("") => None,
            Some(k) => Some(known("fallbackTemplateKey".into(), k)?),
        };
        Ok(Flow {
            flows: rules,
            fallback_template_key,
        })
    }
}

#[cfg(test)]
mod tests;
