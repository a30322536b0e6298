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
    /// SIMD multi-substring search (Teddy, x86-64 and arm64): candidates are found 16–32
    /// bytes at a time, where the automaton steps byte by byte from every frequent first
    /// letter. Only for a few short values (see `PACKED_VALUES`).
    packed: Option<aho_corasick::packed::Searcher>,
    /// Any values, on any CPU: one overlapping pass, whose cost does not grow with the
    /// number of matches.
    automaton: AhoCorasick,
}

/// The packed search's cost grows with the matches it verifies and reports (each compared
/// against every value), the automaton's does not. So it is used for at most this many
/// values of at most `PACKED_VALUE_LEN` bytes (a tenant's keywords), and a text with more
/// than `PACKED_MATCHES` matches (repetitive input, crafted or not) is scanned again by the
/// automaton. A message crafted against the search (4,096 characters that every value
/// starts to match everywhere) then costs about 60 µs (criterion, `engine/decide: 32
/// contains values`), where all of `decide` on the bench's 2.6 KB message takes 3–4 µs.
const PACKED_VALUES: usize = 32;
const PACKED_VALUE_LEN: usize = 24;
const PACKED_MATCHES: usize = 32;

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
        // A DFA: built once per configuration, the fastest overlapping scan.
        let automaton = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(&values)
            .or_else(|_| AhoCorasick::new(&values))
            .ok()?;
        // An empty value (saved values are never empty) would match everywhere: the
        // automaton reports it, the packed search would not.
        let packed = (values.len() <= PACKED_VALUES
            && values
                .iter()
                .all(|v| !v.is_empty() && v.len() <= PACKED_VALUE_LEN))
        .then(|| aho_corasick::packed::Searcher::new(&values))
        .flatten();
        Some(Self {
            values,
            rule,
            packed,
            automaton,
        })
    }

    /// Which of `rules` rules one of whose values is in `folded`.
    fn hits(&self, folded: &str, rules: usize) -> Vec<bool> {
        let mut hit = vec![false; rules];
        if let Some(searcher) = &self.packed
            && self.packed_hits(searcher, folded.as_bytes(), &mut hit)
        {
            return hit;
        }
        for m in self.automaton.find_overlapping_iter(folded) {
            hit[self.rule[m.pattern().as_usize()]] = true;
        }
        hit
    }

    /// Marks the rules of the values in `text`; false if it gave up after `PACKED_MATCHES`.
    fn packed_hits(
        &self,
        searcher: &aho_corasick::packed::Searcher,
        text: &[u8],
        hit: &mut [bool],
    ) -> bool {
        // The searcher reports one value per position and skips what that match covers:
        // so the search goes on from the next byte, and every value that starts where a
        // match does is checked there.
        let mut at = 0;
        for _ in 0..PACKED_MATCHES {
            let Some(m) = searcher.find_in(text, aho_corasick::Span::from(at..text.len())) else {
                return true;
            };
            let here = &text[m.start()..];
            for (v, value) in self.values.iter().enumerate() {
                if !hit[self.rule[v]] && here.starts_with(value.as_bytes()) {
                    hit[self.rule[v]] = true;
                }
            }
            at = m.start() + 1;
        }
        false
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
