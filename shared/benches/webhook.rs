//! The webhook's CPU path for one ~3 KB Meta notification: verify the signature, parse,
//! decide the reply. Run: `cargo bench -p shared --bench webhook`.

use std::{collections::HashSet, hint::black_box};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mongodb::bson::DateTime;
use serde_json::{Value, json};
use shared::{
    customer::Conversation,
    engine::{BotConfig, BotSettings, Decision, Inbound, decide},
    flow::FlowInput,
    template::{Template, TemplateInput, TemplateKey},
    webhook::{changes, parse, signature},
};

const SECRET: &[u8] = b"bench-app-secret";

fn payload() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/meta/text-3kb.json");
    let text = std::fs::read_to_string(path).expect("fixture");
    let text = text
        .replace("{{PHONE_NUMBER_ID}}", "106540352242922")
        .replace(
            "{{WAMID}}",
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
        )
        .replace("{{FROM}}", "16505551234")
        .replace("{{CUSTOMER_NAME}}", "Sheena Nelson");
    serde_json::from_str::<Value>(&text)
        .expect("json")
        .to_string()
        .into_bytes()
}

fn template(key: &str, spec: Value) -> Template {
    let input: TemplateInput = serde_json::from_value(spec).expect("template");
    let k = TemplateKey::parse("key", key).expect("key");
    let known: HashSet<TemplateKey> = [
        "menu",
        "prices",
        "delivery",
        "fallback",
        "ask_account",
        "confirm",
    ]
    .iter()
    .map(|k| TemplateKey::parse("k", k).expect("key"))
    .collect();
    input.validate(&k, &known).expect("valid")
}

/// A realistic tenant: 4 templates, 20 rules of every type, the match near the end.
fn config() -> BotConfig {
    let templates = vec![
        template(
            "menu",
            json!({"body": "Hi {{customer_name}}!", "kind": "interactive_button", "buttons": [
            {"title": "Prices", "nextTemplateKey": "prices"}, {"title": "Delivery", "nextTemplateKey": "delivery"}]}),
        ),
        template(
            "prices",
            json!({"body": "Latte 3.20, large 3.90. Oat milk +0.40, {{customer_name}}."}),
        ),
        template("delivery", json!({"body": "We deliver from 8:00."})),
        template("fallback", json!({"body": "Sorry, {{customer_name}}?"})),
    ];
    let mut rules: Vec<Value> = (0..18)
        .map(|i| {
            let kind = ["equals", "starts_with", "contains", "regex"][i % 4];
            json!({"id": format!("r{i}"), "match": {"type": kind,
            "values": [format!("keyword{i}"), format!("other{i}")]}, "action": {"type": "send_template", "templateKey": "menu"}})
        })
        .collect();
    rules.push(json!({"id": "deliver", "match": {"type": "regex", "values": [r"\bdeliver(y|ies)?\b.*\bbefore\b"]}, "action": {"type": "send_template", "templateKey": "delivery"}}));
    rules.push(json!({"id": "price", "match": {"type": "contains", "values": ["price"]}, "action": {"type": "send_template", "templateKey": "prices"}}));
    let flow: FlowInput =
        serde_json::from_value(json!({"flows": rules, "fallbackTemplateKey": "fallback"}))
            .expect("flow");
    let known: HashSet<TemplateKey> = ["menu", "prices", "delivery", "fallback"]
        .iter()
        .map(|k| TemplateKey::parse("k", k).expect("key"))
        .collect();
    BotConfig::new(
        templates,
        Some(&flow.validate(&known).expect("valid flow")),
        BotSettings::default(),
    )
}

/// The seed's guided flow inside a 200-rule flow: the customer is answering the capture
/// of `ask_account` (the rules come after it and are never reached by a valid answer; an
/// invalid one is asked again).
fn guided() -> (BotConfig, Conversation) {
    let t = |key: &str, spec: Value| template(key, spec);
    let templates = vec![
        t(
            "ask_account",
            json!({"body": "Your account number?", "capture": {"variable": "account",
            "type": "regex", "pattern": "[0-9]{8}", "nextTemplateKey": "confirm", "nextState": "confirming"}}),
        ),
        t(
            "confirm",
            json!({"body": "Send the statement for {{vars.account}}?", "kind": "interactive_button",
            "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}),
        ),
        t("fallback", json!({"body": "Sorry?"})),
    ];
    let rules: Vec<Value> = (0..200)
        .map(|i| {
            let kind = ["equals", "starts_with", "contains", "regex"][i % 4];
            json!({"id": format!("r{i}"), "match": {"type": kind, "values": [format!("keyword{i}")]},
                "action": {"type": "send_template", "templateKey": "fallback"}, "states": ["browsing"]})
        })
        .collect();
    let flow: FlowInput =
        serde_json::from_value(json!({"flows": rules, "fallbackTemplateKey": "fallback"}))
            .expect("flow");
    let known: HashSet<TemplateKey> = ["ask_account", "confirm", "fallback"]
        .iter()
        .map(|k| TemplateKey::parse("k", k).expect("key"))
        .collect();
    let config = BotConfig::new(
        templates,
        Some(&flow.validate(&known).expect("valid flow")),
        BotSettings::default(),
    );
    let conversation = Conversation {
        last_template_key: Some(TemplateKey::parse("k", "ask_account").expect("key")),
        state: Some("asking".into()),
        ..Conversation::default()
    };
    (config, conversation)
}

/// A flow built against the `contains` search: 32 values of 24 letters that agree with a
/// message of one repeated letter until their last, and one that matches it everywhere.
fn repetitive() -> BotConfig {
    let templates = vec![template(
        "delivery",
        json!({"body": "We deliver from 8:00."}),
    )];
    let mut rules: Vec<Value> = (0..31u8)
        .map(|i| {
            let value = format!("{}{}", "a".repeat(23), char::from(b'b' + i % 20));
            json!({"id": format!("r{i}"), "match": {"type": "contains", "values": [value]},
                "action": {"type": "send_template", "templateKey": "delivery"}})
        })
        .collect();
    rules.push(
        json!({"id": "aa", "match": {"type": "contains", "values": ["aa"]},
        "action": {"type": "send_template", "templateKey": "delivery"}}),
    );
    let flow: FlowInput = serde_json::from_value(json!({"flows": rules})).expect("flow");
    let known: HashSet<TemplateKey> = [TemplateKey::parse("k", "delivery").expect("key")]
        .into_iter()
        .collect();
    BotConfig::new(
        templates,
        Some(&flow.validate(&known).expect("valid flow")),
        BotSettings::default(),
    )
}

fn pipeline(body: &[u8], sig: &str, config: &BotConfig, conversation: &Conversation) -> usize {
    signature::verify(SECRET, body, Some(sig)).expect("signed");
    let notification = parse(body).expect("json").expect("known shape");
    let parsed = changes(notification).messages;
    let mut replies = 0;
    for change in &parsed {
        for (m, name) in &change.messages {
            let inbound = Inbound {
                text: m.body.as_deref().unwrap_or_default(),
                payload_id: m.payload_id.as_deref(),
                customer_name: name.as_deref(),
                wa_id: &m.from,
            };
            if let Decision::Reply(r) = decide(&inbound, conversation, config, DateTime::now()) {
                replies += r.content.text.len();
            }
        }
    }
    replies
}

fn bench(c: &mut Criterion) {
    let body = payload();
    let sig = signature::sign(SECRET, &body);
    let config = config();
    let conversation = Conversation::default();
    assert!(
        pipeline(&body, &sig, &config, &conversation) > 0,
        "the payload gets a reply"
    );
    let mut group = c.benchmark_group("webhook");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(format!("verify+parse+decide {} B", body.len()), |b| {
        b.iter(|| pipeline(black_box(&body), black_box(&sig), &config, &conversation))
    });
    group.bench_function("verify only", |b| {
        b.iter(|| signature::verify(SECRET, black_box(&body), Some(&sig)))
    });
    group.bench_function("parse only", |b| {
        b.iter(|| {
            let n = parse(black_box(&body)).expect("json").expect("known shape");
            changes(n).messages.len()
        })
    });
    let parsed = changes(parse(&body).expect("json").expect("known shape")).messages;
    let (m, name) = &parsed[0].messages[0];
    let inbound = Inbound {
        text: m.body.as_deref().unwrap_or_default(),
        payload_id: m.payload_id.as_deref(),
        customer_name: name.as_deref(),
        wa_id: &m.from,
    };
    let now = DateTime::now();
    group.bench_function("decide only", |b| {
        b.iter(|| decide(black_box(&inbound), &conversation, &config, now))
    });
    group.finish();

    let (guided, asking) = guided();
    let now = DateTime::now();
    let answer = |text: &'static str| Inbound {
        text,
        payload_id: None,
        customer_name: Some("Ana"),
        wa_id: "34600111222",
    };
    let valid = answer("12345678");
    let invalid = answer("12ab");
    assert!(
        matches!(decide(&valid, &asking, &guided, now), Decision::Reply(r) if r.content.text == "Send the statement for 12345678?")
    );
    let mut group = c.benchmark_group("engine");
    group.bench_function("decide: 200 rules, capture answered", |b| {
        b.iter(|| decide(black_box(&valid), &asking, &guided, now))
    });
    group.bench_function("decide: 200 rules, capture retried", |b| {
        b.iter(|| decide(black_box(&invalid), &asking, &guided, now))
    });
    let other = answer("keyword199");
    let browsing = Conversation {
        state: Some("browsing".into()),
        ..Conversation::default()
    };
    group.bench_function("decide: 200 rules, last rule matches", |b| {
        b.iter(|| decide(black_box(&other), &browsing, &guided, now))
    });
    // The worst a message can do to the `contains` search: 4,096 characters that every
    // value starts to match at every position.
    let crafted = repetitive();
    let text = "a".repeat(4096);
    let flood = Inbound {
        text: &text,
        ..answer("")
    };
    assert!(matches!(
        decide(&flood, &browsing, &crafted, now),
        Decision::Reply(_)
    ));
    group.bench_function(
        "decide: 32 contains values, 4,096 repeated characters",
        |b| b.iter(|| decide(black_box(&flood), &browsing, &crafted, now)),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
