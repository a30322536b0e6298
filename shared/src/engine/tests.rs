use std::collections::HashSet;

use serde_json::json;

use super::*;
use crate::{flow::FlowInput, queue::ContentKind, template::TemplateInput};

fn key(k: &str) -> TemplateKey {
    TemplateKey::parse("k", k).expect("key")
}

/// A template as an admin would save it: no ids, no dates.
fn tpl(k: &str, spec: serde_json::Value) -> Template {
    let input: TemplateInput = serde_json::from_value(spec).expect("input");
    let known: HashSet<TemplateKey> = ["menu", "prices", "hours", "fallback", "sub"]
        .iter()
        .map(|k| key(k))
        .collect();
    input.validate(&key(k), &known).expect("valid template")
}

fn config(with_fallback: bool) -> BotConfig {
    let templates = vec![
        tpl(
            "menu",
            json!({"body": "Hi {{customer_name}}! Pick one", "kind": "interactive_button", "buttons": [
            {"id": "p", "title": "Prices", "nextTemplateKey": "prices", "nextState": "browsing"},
            {"id": "h", "title": "Hours", "nextTemplateKey": "hours"},
            {"id": "dangling", "title": "Nothing"}]}),
        ),
        tpl("prices", json!({"body": "Coffee 3€ ({{unknown}})"})),
        tpl("hours", json!({"body": "9-17 for {{wa_id}}"})),
        tpl("fallback", json!({"body": "Sorry?"})),
    ];
    let mut flow = json!({"flows": [
        {"id": "greet", "match": {"type": "equals", "values": ["hi", "hello"]}, "action": {"type": "send_template", "templateKey": "menu", "setState": "menu"}},
        {"id": "price", "match": {"type": "contains", "values": ["price"]}, "action": {"type": "send_template", "templateKey": "prices"}}
    ]});
    if with_fallback {
        flow["fallbackTemplateKey"] = json!("fallback");
    }
    let input: FlowInput = serde_json::from_value(flow).expect("flow");
    let known: HashSet<TemplateKey> = ["menu", "prices", "hours", "fallback"]
        .iter()
        .map(|k| key(k))
        .collect();
    let flow = input.validate(&known).expect("valid flow");
    BotConfig::new(templates, Some(&flow))
}

fn text(t: &str) -> Inbound<'_> {
    Inbound {
        text: t,
        payload_id: None,
        customer_name: Some("Ana"),
        wa_id: "34600111222",
    }
}

fn tap<'a>(id: &'a str, title: &'a str) -> Inbound<'a> {
    Inbound {
        text: title,
        payload_id: Some(id),
        customer_name: Some("Ana"),
        wa_id: "34600111222",
    }
}

fn after(k: &str) -> Conversation {
    Conversation {
        state: Some("menu".into()),
        last_template_key: Some(key(k)),
    }
}

fn replied(d: Decision) -> Reply {
    match d {
        Decision::Reply(r) => *r,
        Decision::NoReply => panic!("expected a reply"),
    }
}

#[test]
fn rule_sends_interactive_menu_with_rendered_name_and_state() {
    let r = replied(decide(
        &text("Hello"),
        &Conversation::default(),
        &config(true),
    ));
    assert_eq!(r.template_key, key("menu"));
    assert_eq!(r.cause, Cause::Rule { id: "greet".into() });
    assert_eq!(r.content.kind, ContentKind::InteractiveButton);
    assert_eq!(r.content.text, "Hi Ana! Pick one");
    assert_eq!(
        r.content
            .buttons
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>(),
        ["p", "h", "dangling"]
    );
    assert_eq!(
        r.state_update,
        StateUpdate {
            last_template_key: key("menu"),
            state: Some("menu".into())
        }
    );
}

#[test]
fn button_of_the_last_template_branches() {
    let r = replied(decide(&tap("p", "Prices"), &after("menu"), &config(true)));
    assert_eq!(r.template_key, key("prices"));
    assert_eq!(
        r.cause,
        Cause::Button {
            from: key("menu"),
            button_id: "p".into()
        }
    );
    assert_eq!(
        r.content.text, "Coffee 3€ ()",
        "unknown variables render empty"
    );
    assert_eq!(r.state_update.state.as_deref(), Some("browsing"));
    let r = replied(decide(&tap("h", "Hours"), &after("menu"), &config(true)));
    assert_eq!(r.content.text, "9-17 for 34600111222");
    assert_eq!(r.state_update.state, None, "no nextState keeps the state");
}

#[test]
fn a_tap_on_an_older_menu_still_branches() {
    let r = replied(decide(&tap("h", "Hours"), &after("prices"), &config(true)));
    assert_eq!(r.template_key, key("hours"));
}

#[test]
fn unmapped_payload_falls_to_rules_then_fallback() {
    // Button without nextTemplateKey: its title goes through the rules.
    let r = replied(decide(
        &tap("dangling", "hello"),
        &after("menu"),
        &config(true),
    ));
    assert_eq!(r.cause, Cause::Rule { id: "greet".into() });
    let r = replied(decide(
        &tap("unknown-id", "Something"),
        &after("menu"),
        &config(true),
    ));
    assert_eq!(r.cause, Cause::Fallback);
    assert_eq!(r.state_update.state, None);
    assert_eq!(
        decide(
            &tap("unknown-id", "Something"),
            &after("menu"),
            &config(false)
        ),
        Decision::NoReply
    );
}

#[test]
fn no_flow_means_no_reply() {
    let empty = BotConfig::default();
    assert_eq!(
        decide(&text("hi"), &Conversation::default(), &empty),
        Decision::NoReply
    );
}

#[test]
fn inactive_or_missing_targets_are_skipped() {
    let mut cfg = config(true);
    cfg.templates.remove(&key("menu"));
    let r = replied(decide(&text("hi"), &Conversation::default(), &cfg));
    assert_eq!(
        r.cause,
        Cause::Fallback,
        "a rule whose template vanished falls through"
    );
}
