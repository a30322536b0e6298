//! The pure matcher: inbound text + flow → first matching rule. Case-insensitive
//! (Unicode), on the trimmed text. Regexes use the `regex` crate (linear time, so no ReDoS)
//! with a compiled-size cap; one `RegexSet` per rule.

use regex::{RegexSet, RegexSetBuilder};

use super::{Flow, MatchType, REGEX_SIZE_LIMIT, Rule};
use crate::ids::TemplateKey;

pub(super) fn compile_regex(pattern: &str) -> Result<RegexSet, regex::Error> {
    compile_set(&[pattern])
}

fn compile_set<S: AsRef<str>>(patterns: &[S]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT * 4)
        .build()
}

enum Matcher {
    Contains(Vec<String>),
    Equals(Vec<String>),
    StartsWith(Vec<String>),
    Regex(RegexSet),
    /// A stored regex that no longer compiles never matches (it was validated on save).
    Never,
}

/// A flow ready to match: values lower-cased and regexes compiled once.
pub struct CompiledFlow {
    rules: Vec<(Rule, Matcher)>,
    pub fallback_template_key: Option<TemplateKey>,
}

/// Lower-cased and trimmed; ASCII text (most messages) without the Unicode tables.
fn fold(s: &str) -> String {
    let s = s.trim();
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

impl CompiledFlow {
    pub fn new(flow: &Flow) -> Self {
        let rules = flow
            .flows
            .iter()
            .map(|rule| {
                let values = &rule.matcher.values;
                let folded = || values.iter().map(|v| fold(v)).collect();
                let matcher = match rule.matcher.kind {
                    MatchType::Contains => Matcher::Contains(folded()),
                    MatchType::Equals => Matcher::Equals(folded()),
                    MatchType::StartsWith => Matcher::StartsWith(folded()),
                    MatchType::Regex => compile_set(values).map_or(Matcher::Never, Matcher::Regex),
                };
                (rule.clone(), matcher)
            })
            .collect();
        Self {
            rules,
            fallback_template_key: flow.fallback_template_key.clone(),
        }
    }
}

/// The first rule, in order, that applies in `state` (a rule with `states` only in those)
/// and whose match accepts `text`.
pub fn first_match<'a>(
    flow: &'a CompiledFlow,
    text: &str,
    state: Option<&str>,
) -> Option<&'a Rule> {
    let folded = fold(text);
    let trimmed = text.trim();
    flow.rules
        .iter()
        .filter(|(rule, _)| {
            rule.states.is_empty()
                || state.is_some_and(|s| rule.states.iter().any(|x| x.as_str() == s))
        })
        .find(|(_, m)| match m {
            Matcher::Contains(vs) => vs.iter().any(|v| folded.contains(v.as_str())),
            Matcher::Equals(vs) => vs.contains(&folded),
            Matcher::StartsWith(vs) => vs.iter().any(|v| folded.starts_with(v.as_str())),
            Matcher::Regex(set) => set.is_match(trimmed),
            Matcher::Never => false,
        })
        .map(|(rule, _)| rule)
}
