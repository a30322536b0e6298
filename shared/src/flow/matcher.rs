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
/// scanned once for every `contains` value of every rule, not once per value.
pub struct CompiledFlow {
    rules: Vec<(Rule, Matcher)>,
    contains: Option<Contains>,
    pub fallback_template_key: Option<TemplateKey>,
}

/// Every `contains` value of every rule: value `i` is `values[i]`, of rule `rule[i]`.
struct Contains {
    values: Vec<String>,
    rule: Vec<usize>,
    scan: Scan,
}

enum Scan {
    /// SIMD multi-substring search (Teddy: x86-64 and arm64, up to a few dozen values):
    /// candidates are found 16–32 bytes at a time, where an automaton steps byte by byte
    /// from every frequent first letter.
    Packed(aho_corasick::packed::Searcher),
    /// Any number of values, on any CPU: one overlapping pass of an automaton.
    Automaton(AhoCorasick),
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
        let mut values = Vec::new();
        let mut rule = Vec::new();
        for (i, (_, matcher)) in rules.iter().enumerate() {
            if let Matcher::Contains(vs) = matcher {
                for v in vs {
                    values.push(v.clone());
                    rule.push(i);
                }
            }
        }
        let contains = Contains::new(values, rule);
        Self {
            contains,
            rules,
            fallback_template_key: flow.fallback_template_key.clone(),
        }
    }
}

impl Contains {
    fn new(values: Vec<String>, rule: Vec<usize>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        // An empty value (saved values are never empty) would match everywhere: the
        // automaton's overlapping pass reports it, the packed searcher would not.
        let packed = values
            .iter()
            .all(|v| !v.is_empty())
            .then(|| aho_corasick::packed::Searcher::new(&values))
            .flatten();
        let scan = match packed {
            Some(searcher) => Scan::Packed(searcher),
            // A DFA: built once per configuration, the fastest overlapping scan.
            None => Scan::Automaton(
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&values)
                    .or_else(|_| AhoCorasick::new(&values))
                    .ok()?,
            ),
        };
        Some(Self { values, rule, scan })
    }

    /// Which of `rules` rules one of whose values is in `folded`.
    fn hits(&self, folded: &str, rules: usize) -> Vec<bool> {
        let mut hit = vec![false; rules];
        match &self.scan {
            Scan::Automaton(ac) => {
                for m in ac.find_overlapping_iter(folded) {
                    hit[self.rule[m.pattern().as_usize()]] = true;
                }
            }
            Scan::Packed(searcher) => {
                // The searcher reports one value per position, and skips what that match
                // covers: so the search goes on from the next byte, and every value that
                // starts where a match does is checked there.
                let text = folded.as_bytes();
                let mut at = 0;
                while let Some(m) = searcher.find_in(text, aho_corasick::Span::from(at..text.len()))
                {
                    let here = &text[m.start()..];
                    for (v, value) in self.values.iter().enumerate() {
                        if here.starts_with(value.as_bytes()) {
                            hit[self.rule[v]] = true;
                        }
                    }
                    at = m.start() + 1;
                }
            }
        }
        hit
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
                let hits = || {
                    flow.contains
                        .as_ref()
                        .map(|c| c.hits(&text.folded, flow.rules.len()))
                };
                match contains.get_or_insert_with(hits) {
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
