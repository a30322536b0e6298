use std::collections::HashSet;

use mongodb::bson::DateTime;
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
    BotConfig::new(templates, Some(&flow), BotSettings::default())
}

/// The engine now.
fn decide(inbound: &Inbound<'_>, c: &Conversation, config: &BotConfig) -> Decision {
    super::decide(inbound, c, config, DateTime::now())
}

const NO_MATCH: Decision = Decision::Quiet {
    why: Silence::NoMatch,
    update: None,
};

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
        ..Conversation::default()
    }
}

fn replied(d: Decision) -> Reply {
    match d {
        Decision::Reply(r) => *r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn rule_sends_interactive_menu_with_rendered_name_and_state() {
    let r = replied(decide(
        &text("Hello"),
        &Conversation::default(),
        &config(true),
    ));
    assert_eq!(r.template_key, Some(key("menu")));
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
            last_template_key: Some(key("menu")),
            state: Some("menu".into()),
            capture_attempts: Some(0),
            ..StateUpdate::default()
        }
    );
}

#[test]
fn button_of_the_last_template_branches() {
    let r = replied(decide(&tap("p", "Prices"), &after("menu"), &config(true)));
    assert_eq!(r.template_key, Some(key("prices")));
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
    assert_eq!(r.template_key, Some(key("hours")));
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
        NO_MATCH
    );
}

#[test]
fn no_flow_means_no_reply() {
    let empty = BotConfig::default();
    assert_eq!(
        decide(&text("hi"), &Conversation::default(), &empty),
        NO_MATCH
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

/// The seed's guided flow: ask → validate → confirm with buttons → done.
fn guided(settings: BotSettings) -> BotConfig {
    let known: HashSet<TemplateKey> = ["ask", "confirm", "done", "menu", "fallback"]
        .iter()
        .map(|k| key(k))
        .collect();
    let t = |k: &str, spec: serde_json::Value| {
        let input: TemplateInput = serde_json::from_value(spec).expect("input");
        input.validate(&key(k), &known).expect("valid template")
    };
    let templates = vec![
        t(
            "menu",
            json!({"body": "Menu", "kind": "interactive_button",
            "buttons": [{"id": "statement", "title": "Statement", "nextTemplateKey": "ask"}]}),
        ),
        t(
            "ask",
            json!({"body": "Your account number?", "capture": {"variable": "account",
            "type": "number", "maxAttempts": 2, "nextTemplateKey": "confirm", "nextState": "confirming"}}),
        ),
        t(
            "confirm",
            json!({"body": "Send the statement for {{vars.account}}?", "kind": "interactive_button",
            "buttons": [{"id": "yes", "title": "Yes", "nextTemplateKey": "done"}]}),
        ),
        t("done", json!({"body": "On its way to {{vars.account}}."})),
        t("fallback", json!({"body": "Sorry?"})),
    ];
    let flow: FlowInput = serde_json::from_value(json!({"flows": [
        {"id": "agent", "match": {"type": "equals", "values": ["agent"]}, "action": {"type": "handoff", "templateKey": "done"}},
        {"id": "yes-in-confirming", "match": {"type": "equals", "values": ["sure"]}, "states": ["confirming"],
            "action": {"type": "send_template", "templateKey": "done"}}
    ], "fallbackTemplateKey": "fallback"}))
    .expect("flow");
    let flow = flow.validate(&known).expect("valid flow");
    BotConfig::new(templates, Some(&flow), settings)
}

fn at(k: &str) -> Conversation {
    Conversation {
        last_template_key: Some(key(k)),
        ..Conversation::default()
    }
}

#[test]
fn a_capture_keeps_a_valid_answer_and_asks_again_until_its_attempts_run_out() {
    let cfg = guided(BotSettings::default());
    let r = replied(decide(&text("12ab"), &at("ask"), &cfg));
    assert_eq!(r.template_key, None, "the built-in prompt");
    assert_eq!(
        r.content.text,
        "That doesn't look like a number. Please try again."
    );
    assert_eq!(r.state_update.capture_attempts, Some(1));
    assert_eq!(r.state_update.last_template_key, None, "still asking");
    // The second invalid answer of two allowed: the fallback.
    let tried = Conversation {
        capture_attempts: 1,
        ..at("ask")
    };
    assert_eq!(
        replied(decide(&text("nope"), &tried, &cfg)).cause,
        Cause::Fallback
    );
    let r = replied(decide(&text(" 12345678 "), &tried, &cfg));
    assert_eq!(
        r.cause,
        Cause::Captured {
            variable: "account".into()
        }
    );
    assert_eq!(r.content.text, "Send the statement for 12345678?");
    assert_eq!(
        r.state_update.vars.get("account").map(String::as_str),
        Some("12345678")
    );
    assert_eq!(r.state_update.state.as_deref(), Some("confirming"));
    assert_eq!(r.state_update.capture_attempts, Some(0));
    // A tap while a question is pending still branches as a button.
    let r = replied(decide(&tap("statement", "Statement"), &at("ask"), &cfg));
    assert_eq!(r.template_key, Some(key("ask")));
    // Later templates render the kept answer.
    let confirming = Conversation {
        vars: [("account".to_owned(), "12345678".to_owned())].into(),
        ..at("confirm")
    };
    let r = replied(decide(&tap("yes", "Yes"), &confirming, &cfg));
    assert_eq!(r.content.text, "On its way to 12345678.");
}

#[test]
fn a_rule_with_states_matches_only_in_them() {
    let cfg = guided(BotSettings::default());
    assert_eq!(
        replied(decide(&text("sure"), &Conversation::default(), &cfg)).cause,
        Cause::Fallback
    );
    let confirming = Conversation {
        state: Some("confirming".into()),
        ..Conversation::default()
    };
    assert_eq!(
        replied(decide(&text("sure"), &confirming, &cfg)).cause,
        Cause::Rule {
            id: "yes-in-confirming".into()
        }
    );
}

#[test]
fn opt_out_confirms_once_then_silence_until_opt_in() {
    let cfg = guided(BotSettings::default());
    let r = replied(decide(&text(" stop "), &Conversation::default(), &cfg));
    assert_eq!(r.cause, Cause::OptOut);
    assert_eq!(r.state_update.opted_out, Some(true));
    let out = Conversation {
        opted_out_at: Some(DateTime::now()),
        ..Conversation::default()
    };
    for again in ["STOP", "hello", "12345678"] {
        assert_eq!(
            decide(&text(again), &out, &cfg),
            Decision::Quiet {
                why: Silence::OptedOut,
                update: None
            },
            "{again}"
        );
    }
    let r = replied(decide(&text("Start"), &out, &cfg));
    assert_eq!(
        (r.cause, r.state_update.opted_out),
        (Cause::OptIn, Some(false))
    );
    assert_eq!(r.content.text, OPT_IN_CONFIRMATION);
    // A tap titled "Stop" is a button, not a keyword.
    assert_ne!(
        replied(decide(&tap("x", "Stop"), &Conversation::default(), &cfg)).cause,
        Cause::OptOut
    );
}

#[test]
fn a_handoff_silences_the_bot_until_it_ends() {
    let cfg = guided(BotSettings {
        handoff_minutes: 30,
        ..BotSettings::default()
    });
    let now = DateTime::now();
    let r = replied(super::decide(
        &text("agent"),
        &Conversation::default(),
        &cfg,
        now,
    ));
    assert_eq!(
        r.cause,
        Cause::Handoff {
            rule: "agent".into()
        }
    );
    assert_eq!(
        r.state_update.handoff_until,
        Some(DateTime::from_millis(now.timestamp_millis() + 30 * 60_000))
    );
    let handed = Conversation {
        handoff_until: r.state_update.handoff_until,
        ..Conversation::default()
    };
    assert_eq!(
        super::decide(&text("hello?"), &handed, &cfg, now),
        Decision::Quiet {
            why: Silence::Handoff,
            update: None
        }
    );
    let later = DateTime::from_millis(now.timestamp_millis() + 31 * 60_000);
    assert_eq!(
        replied(super::decide(&text("hello?"), &handed, &cfg, later)).cause,
        Cause::Fallback
    );
    // Opting out works even while a human has the conversation.
    assert_eq!(
        replied(super::decide(&text("STOP"), &handed, &cfg, now)).cause,
        Cause::OptOut
    );
}

#[test]
fn a_reset_keyword_starts_over_with_the_start_template() {
    let cfg = guided(BotSettings {
        reset_keywords: vec!["Menu".into()],
        start_template_key: Some(key("menu")),
        ..BotSettings::default()
    });
    let midway = Conversation {
        state: Some("confirming".into()),
        vars: [("account".to_owned(), "1".to_owned())].into(),
        capture_attempts: 1,
        ..at("ask")
    };
    let r = replied(decide(&text("menu"), &midway, &cfg));
    assert_eq!(r.cause, Cause::Reset);
    assert!(r.state_update.reset);
    assert_eq!(r.template_key, Some(key("menu")));
}
