use std::collections::HashSet;

use serde_json::json;

use super::*;

fn keys(ks: &[&str]) -> HashSet<TemplateKey> {
    ks.iter()
        .map(|k| TemplateKey::parse("k", k).expect("key"))
        .collect()
}

fn parse(v: serde_json::Value) -> FlowInput {
    serde_json::from_value(v).expect("shape")
}

fn field(r: Result<Flow, ApiError>) -> String {
    match r {
        Err(ApiError::Unprocessable { field, .. }) => field,
        other => panic!("expected 422, got {other:?}"),
    }
}

fn flow_of(rules: serde_json::Value) -> CompiledFlow {
    let f = parse(json!({"flows": rules}))
        .validate(&keys(&["t1", "t2", "t3"]))
        .expect("valid");
    CompiledFlow::new(&f)
}

fn matched(flow: &CompiledFlow, text: &str) -> Option<String> {
    first_match(flow, &MatchText::new(text), None).map(|r| r.id.clone())
}

fn rule(id: &str, kind: &str, values: &[&str], t: &str) -> serde_json::Value {
    json!({"id": id, "match": {"type": kind, "values": values}, "action": {"type": "send_template", "templateKey": t}})
}

#[test]
fn both_shapes_normalise_to_the_same_flow() {
    let known = keys(&["menu", "bye", "fb"]);
    let new = parse(json!({
        "flows": [{"id": "rule_1", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu", "setState": "menu"}},
                  {"id": "rule_2", "match": {"type": "contains", "values": ["bye"]}, "action": {"type": "send_template", "templateKey": "bye"}}],
        "fallbackTemplateKey": "fb"
    }))
    .validate(&known)
    .expect("new shape");
    let legacy = parse(json!({
        "rules": [{"when": {"type": "equals", "value": "hi"}, "action": {"replyTemplateKey": "menu", "setState": "menu"}},
                  {"when": {"type": "contains", "value": "bye"}, "action": {"replyTemplateKey": "bye"}}],
        "fallbackTemplateKey": "fb"
    }))
    .validate(&known)
    .expect("legacy shape");
    assert_eq!(new, legacy);
    assert_eq!(
        serde_json::to_value(&legacy).expect("json")["flows"][0]["action"]["type"],
        "send_template"
    );
}

#[test]
fn invalid_parts_are_named_in_the_callers_shape() {
    let known = keys(&["t1"]);
    let bad_regex = parse(json!({"flows": [rule("r", "regex", &["ok", "(unclosed"], "t1")]}));
    assert_eq!(
        field(bad_regex.validate(&known)),
        "flows[0].match.values[1]"
    );
    let huge =
        parse(json!({"flows": [rule("r", "regex", &["\\w{1000}\\w{1000}\\w{1000}"], "t1")]}));
    assert_eq!(field(huge.validate(&known)), "flows[0].match.values[0]");
    let unknown = parse(json!({"flows": [rule("r", "equals", &["x"], "nope")]}));
    assert_eq!(
        field(unknown.validate(&known)),
        "flows[0].action.templateKey"
    );
    let legacy_unknown = parse(
        json!({"rules": [{"when": {"type": "equals", "value": "x"}, "action": {"replyTemplateKey": "nope"}}]}),
    );
    assert_eq!(
        field(legacy_unknown.validate(&known)),
        "rules[0].action.replyTemplateKey"
    );
    let fallback = parse(json!({"flows": [], "fallbackTemplateKey": "nope"}));
    assert_eq!(field(fallback.validate(&known)), "fallbackTemplateKey");
    let dup = parse(
        json!({"flows": [rule("a", "equals", &["x"], "t1"), rule("a", "equals", &["y"], "t1")]}),
    );
    assert_eq!(field(dup.validate(&known)), "flows[1].id");
    let kind = parse(json!({"flows": [rule("a", "fuzzy", &["x"], "t1")]}));
    assert_eq!(field(kind.validate(&known)), "flows[0].match.type");
    let empty = parse(json!({"flows": [rule("a", "equals", &[], "t1")]}));
    assert_eq!(field(empty.validate(&known)), "flows[0].match.values");
    let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        field(parse(json!({"flows": [rule("a", "equals", &many, "t1")]})).validate(&known)),
        "flows[0].match.values[50]"
    );
    let rules: Vec<_> = (0..201)
        .map(|i| rule(&format!("r{i}"), "equals", &["x"], "t1"))
        .collect();
    assert_eq!(
        field(parse(json!({"flows": rules})).validate(&known)),
        "flows[200]"
    );
}

#[test]
fn each_match_type_is_case_insensitive() {
    let f = flow_of(json!([
        rule("eq", "equals", &["HELLO"], "t1"),
        rule("sw", "starts_with", &["order"], "t2"),
        rule("ct", "contains", &["price"], "t3"),
        rule("re", "regex", &[r"^\d{4}$"], "t1"),
    ]));
    assert_eq!(matched(&f, "  hello "), Some("eq".into()));
    assert_eq!(matched(&f, "hello there"), None);
    assert_eq!(matched(&f, "ORDER 123"), Some("sw".into()));
    assert_eq!(matched(&f, "my order"), None);
    assert_eq!(matched(&f, "What's the PRICE?"), Some("ct".into()));
    assert_eq!(matched(&f, "1234"), Some("re".into()));
    assert_eq!(matched(&f, "12345"), None);
}

#[test]
fn unicode_case_folding() {
    let f = flow_of(json!([
        rule("fr", "equals", &["ÉCOLE"], "t1"),
        rule("gr", "contains", &["ΣΟΦΙΑ"], "t2"),
        rule("re", "regex", &["^straße$"], "t3")
    ]));
    assert_eq!(matched(&f, "école"), Some("fr".into()));
    assert_eq!(matched(&f, "η σοφια"), Some("gr".into()));
    assert_eq!(
        matched(&f, "STRASSE"),
        None,
        "full case folding is not applied, as documented"
    );
    assert_eq!(matched(&f, "STRAẞE"), Some("re".into()));
}

#[test]
fn ascii_and_other_text_meet_the_same_values_whatever_their_case() {
    let f = flow_of(json!([
        rule("accent", "equals", &["Crème"], "t1"),
        rule("kelvin", "starts_with", &["\u{212A}m"], "t2"),
        rule("ct", "contains", &["Price", "ÉCLAIR"], "t3"),
    ]));
    // A value with a letter outside ASCII never meets ASCII text...
    assert_eq!(matched(&f, "creme"), None);
    assert_eq!(matched(&f, "CRÈME"), Some("accent".into()));
    // ...unless it folds to ASCII (the Kelvin sign is a `k`).
    assert_eq!(matched(&f, "KM 12"), Some("kelvin".into()));
    assert_eq!(matched(&f, "the PRICE"), Some("ct".into()));
    assert_eq!(matched(&f, "un éclair, PRICE?"), Some("ct".into()));
    assert_eq!(matched(&f, "deux ÉCLAIRS"), Some("ct".into()));
    assert_eq!(matched(&f, "eclair"), None);
}

#[test]
fn first_match_wins_in_order() {
    let f = flow_of(json!([
        rule("first", "contains", &["pizza"], "t1"),
        rule("second", "contains", &["pizza", "order"], "t2")
    ]));
    assert_eq!(matched(&f, "order pizza"), Some("first".into()));
    assert_eq!(matched(&f, "order"), Some("second".into()));
    assert_eq!(matched(&f, "nothing"), None);
}

#[test]
fn regex_is_linear_time_on_evil_patterns() {
    // Catastrophic for backtracking engines; linear here.
    let f = flow_of(json!([rule("evil", "regex", &["^(a+)+$"], "t1")]));
    let text = format!("{}!", "a".repeat(50_000));
    assert_eq!(matched(&f, &text), None);
}

#[test]
fn contains_finds_values_that_overlap_or_share_a_start() {
    // Values that start where another does ("price"/"prices"), sit inside another
    // ("rice"), or overlap it ("esto"): each must still be seen, on short texts and on
    // texts long enough for the SIMD search.
    let f = flow_of(json!([
        rule("long", "contains", &["prices"], "t1"),
        rule("inner", "contains", &["rice"], "t2"),
        rule("overlap", "contains", &["esto"], "t3"),
        rule("short", "contains", &["price"], "t1"),
    ]));
    let padding = "lorem ipsum dolor sit amet ".repeat(8);
    for pad in ["", padding.as_str()] {
        assert_eq!(matched(&f, &format!("{pad}price")), Some("inner".into()));
        assert_eq!(matched(&f, &format!("{pad}pricesto")), Some("long".into()));
        assert_eq!(
            matched(&f, &format!("{pad}pric esto")),
            Some("overlap".into())
        );
        assert_eq!(matched(&f, &format!("{pad}pric")), None);
    }
}

#[test]
fn contains_agrees_with_a_substring_search_on_every_text() {
    // Against the definition (the first rule one of whose values is a substring of the
    // lower-cased text), over texts of a small alphabet, where values overlap constantly.
    let values: [&[&str]; 5] = [&["abca"], &["bc", "cab"], &["aa"], &["c a"], &["b"]];
    let f = flow_of(json!(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| rule(&format!("r{i}"), "contains", v, "t1"))
            .collect::<Vec<_>>()
    ));
    let mut seed = 0x2545_f491_u32;
    for n in 0..600 {
        let len = n % 120;
        let text: String = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                ['a', 'B', 'c', ' '][(seed % 4) as usize]
            })
            .collect();
        let folded = text.trim().to_lowercase();
        let expected = values
            .iter()
            .position(|vs| vs.iter().any(|v| folded.contains(v)))
            .map(|i| format!("r{i}"));
        assert_eq!(matched(&f, &text), expected, "{text:?}");
    }
}

#[test]
fn contains_rules_outside_their_state_are_passed_over() {
    let f = parse(json!({"flows": [
        {"id": "browsing", "match": {"type": "contains", "values": ["order"]}, "states": ["browsing"],
         "action": {"type": "send_template", "templateKey": "t1"}},
        rule("any", "contains", &["order now"], "t2"),
    ]}))
    .validate(&keys(&["t1", "t2"]))
    .expect("valid");
    let f = CompiledFlow::new(&f);
    let text = MatchText::new("I want to ORDER NOW, please, as quickly as possible");
    let id = |state| first_match(&f, &text, state).map(|r| r.id.as_str());
    assert_eq!(id(Some("browsing")), Some("browsing"));
    assert_eq!(id(Some("paying")), Some("any"));
    assert_eq!(id(None), Some("any"));
}

#[test]
fn contains_sees_a_value_after_many_matches_and_long_values() {
    // Past the packed search's match budget the automaton scans the text again: the value
    // at the very end of a repetitive message still counts.
    let f = flow_of(json!([
        rule("end", "contains", &["zzq"], "t1"),
        rule("repeated", "contains", &["ab"], "t3"),
    ]));
    let repetitive = "ab".repeat(2_000);
    assert_eq!(matched(&f, &format!("{repetitive}zzq")), Some("end".into()));
    assert_eq!(matched(&f, &repetitive), Some("repeated".into()));
    // A value too long for the packed search is found by the automaton alone.
    let f = flow_of(json!([
        rule(
            "long",
            "contains",
            &["please call me back tomorrow morning"],
            "t2"
        ),
        rule("repeated", "contains", &["ab"], "t3"),
    ]));
    assert_eq!(
        matched(
            &f,
            &format!("{repetitive} Please call me back TOMORROW morning")
        ),
        Some("long".into())
    );
}
