//! The pure matcher: inbound text + flow → first matching rule. Case-insensitive
//! (Unicode), on the trimmed text. Regexes use the `regex` crate (linear time, so no ReDoS)
//! with a compiled-size cap; one `RegexSet` per rule.

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::{Flow, MatchType, REGEX_SIZE_LIMIT, Rule};
use crate::ids::TemplateKey;

pub(super) fn compile_regex(pattern: &str) -> Result<RegexSet, regex::Error> {
    compile_set(&[pattern])
}

/// Any of `patterns`, as one regex (each kept in its own group, so they combine exactly as
/// a set's patterns do).
fn compile_any(patterns: &[String]) -> Result<Regex, regex::Error> {
    let alternation = patterns
        .iter()
        .map(|p| format!("(?:{p})"))
        .collect::<Vec<_>>()
        .join("|");
    RegexBuilder::new(&alternation)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT * patterns.len().max(1))
        .dfa_size_limit(REGEX_SIZE_LIMIT * 4)
        .build()
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
    /// The rule's values as one alternation: one search, with the literal prefilter the
    /// `regex` crate draws from them (a long message is skipped through at memchr speed).
    Regex(Regex),
    /// A stored regex that no longer compiles never matches (it was validated on save).
    Never,
}

/// A flow ready to match: values lower-cased and regexes compiled once. A long message is
/// scanned once for every `contains` value of every rule (one automaton), not once per
/// value.
pub struct CompiledFlow {
    rules: Vec<(Rule, Matcher)>,
    /// The `contains` values of every rule; pattern `i` belongs to rule `contains_rule[i]`.
    contains: Option<AhoCorasick>,
    contains_rule: Vec<usize>,
    pub fallback_template_key: Option<TemplateKey>,
}

/// An inbound text as the matchers read it: trimmed for regexes, also lower-cased for the
/// literal kinds and the engine's keywords (folded once per message, however many rules).
pub struct MatchText<'a> {
    trimmed: &'a str,
    folded: String,
}

impl<'a> MatchText<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            trimmed: text.trim(),
            folded: fold(text),
        }
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// Lower-cased and trimmed; ASCII text (most messages) without the Unicode tables.
pub(crate) fn fold(s: &str) -> String {
    let s = s.trim();
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

impl CompiledFlow {
    pub fn new(flow: &Flow) -> Self {
        let rules: Vec<(Rule, Matcher)> = flow
            .flows
            .iter()
            .map(|rule| {
                let values = &rule.matcher.values;
                let folded = || values.iter().map(|v| fold(v)).collect();
                let matcher = match rule.matcher.kind {
                    MatchType::Contains => Matcher::Contains(folded()),
                    MatchType::Equals => Matcher::Equals(folded()),
                    MatchType::StartsWith => Matcher::StartsWith(folded()),
                    MatchType::Regex => compile_any(values).map_or(Matcher::Never, Matcher::Regex),
                };
                (rule.clone(), matcher)
            })
            .collect();
        let mut needles: Vec<&str> = Vec::new();
        let mut contains_rule = Vec::new();
        for (i, (_, matcher)) in rules.iter().enumerate() {
            if let Matcher::Contains(vs) = matcher {
                for v in vs {
                    needles.push(v);
                    contains_rule.push(i);
                }
            }
        }
        // A DFA: built once per configuration, the fastest overlapping scan.
        let contains = (!needles.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&needles)
                    .or_else(|_| AhoCorasick::new(&needles))
                    .ok()
            })
            .flatten();
        Self {
            contains,
            contains_rule,
            rules,
            fallback_template_key: flow.fallback_template_key.clone(),
        }
    }

    /// Which rules one of whose `contains` values is in `folded`.
    fn contains_hits(&self, folded: &str) -> Option<Vec<bool>> {
        let ac = self.contains.as_ref()?;
        let mut hit = vec![false; self.rules.len()];
        for m in ac.find_overlapping_iter(folded) {
            if let Some(&rule) = self.contains_rule.get(m.pattern().as_usize()) {
                hit[rule] = true;
            }
        }
        Some(hit)
    }
}

/// The first rule, in order, that applies in `state` (a rule with `states` only in those)
/// and whose match accepts `text`. The `contains` scan is made once, when the first rule
/// that needs it is reached.
pub fn first_match<'a>(
    flow: &'a CompiledFlow,
    text: &MatchText<'_>,
    state: Option<&str>,
) -> Option<&'a Rule> {
    let mut contains: Option<Option<Vec<bool>>> = None;
    for (i, (rule, m)) in flow.rules.iter().enumerate() {
        let applies = rule.states.is_empty()
            || state.is_some_and(|s| rule.states.iter().any(|x| x.as_str() == s));
        if !applies {
            continue;
        }
        let matched = match m {
            Matcher::Contains(vs) => {
                match contains.get_or_insert_with(|| flow.contains_hits(&text.folded)) {
                    Some(hits) => hits[i],
                    None => vs.iter().any(|v| text.folded.contains(v.as_str())),
                }
            }
            Matcher::Equals(vs) => vs.contains(&text.folded),
            Matcher::StartsWith(vs) => vs.iter().any(|v| text.folded.starts_with(v.as_str())),
            Matcher::Regex(re) => re.is_match(text.trimmed),
            Matcher::Never => false,
        };
        if matched {
            return Some(rule);
        }
    }
    None
}
