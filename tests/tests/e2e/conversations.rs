//! Conversations that do real work, through the webhook and the Graph mock: the seed's
//! guided flow (a captured account number), state-aware rules, human handoff, opt-out and
//! the side-effect-free simulator.

use mongodb::bson::doc;
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::sender::{Rig, ok_body, rig};

/// The seed's guided flow: menu → Statement → account number → confirm → done.
async fn guided(rig: &Rig) {
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.out")))
        .mount(&rig.graph)
        .await;
    for body in [
        json!({"key": "done", "body": "The statement for {{vars.account}} is on its way."}),
        json!({"key": "confirm", "body": "Send the statement for {{vars.account}}?", "kind": "interactive_button",
            "buttons": [{"id": "yes", "title": "Yes", "nextTemplateKey": "done"}, {"id": "no", "title": "No"}]}),
        json!({"key": "ask", "body": "Your account number?", "capture": {"variable": "account", "type": "regex",
            "pattern": "[0-9]{8}", "nextTemplateKey": "confirm", "nextState": "confirming"}}),
        json!({"key": "menu", "body": "How can we help?", "kind": "interactive_button",
            "buttons": [{"id": "statement", "title": "Statement", "nextTemplateKey": "ask", "nextState": "awaiting_account"}]}),
        json!({"key": "agent", "body": "A colleague will take over."}),
        json!({"key": "fallback", "body": "Sorry, I did not get that."}),
    ] {
        let r = rig.api("POST", "/templates", Some(body)).await;
        assert!(r.status < 300, "{}", r.text);
    }
    let flow = json!({"flows": [
        {"id": "hi", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu"}},
        {"id": "agent", "match": {"type": "contains", "values": ["agent"]}, "action": {"type": "handoff", "templateKey": "agent"}},
        {"id": "sure", "match": {"type": "equals", "values": ["sure"]}, "states": ["confirming"],
            "action": {"type": "send_template", "templateKey": "done"}}
    ], "fallbackTemplateKey": "fallback"});
    let r = rig.api("POST", "/flows", Some(flow)).await;
    assert!(r.status < 300, "{}", r.text);
}

fn said(text: &str) -> Value {
    json!({"type": "text", "text": {"body": text}})
}

fn tapped(id: &str, title: &str) -> Value {
    json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}})
}

/// The texts that reached Graph, in order.
async fn sent_texts(rig: &Rig) -> Vec<String> {
    rig.graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|b| {
            b["text"]["body"]
                .as_str()
                .or(b["interactive"]["body"]["text"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn until_sent(rig: &Rig, n: usize) -> Vec<String> {
    rig.pump_until(async |r: &Rig| sent_texts(r).await.len() >= n)
        .await;
    sent_texts(rig).await
}

#[tokio::test]
async fn the_guided_flow_captures_the_account_and_confirms_it() {
    let rig = rig(None).await;
    guided(&rig).await;
    let ana = "34611222333";
    let steps: [(Value, &str); 5] = [
        (said("hi"), "How can we help?"),
        (tapped("statement", "Statement"), "Your account number?"),
        (
            said("12ab"),
            "That doesn't look like an answer in the expected format. Please try again.",
        ),
        (said("12345678"), "Send the statement for 12345678?"),
        (
            tapped("yes", "Yes"),
            "The statement for 12345678 is on its way.",
        ),
    ];
    for (i, (message, expected)) in steps.into_iter().enumerate() {
        let r = rig.inbound(ana, message, 1).await;
        assert_eq!(r["replies"], 1, "step {i}: {r}");
        let texts = until_sent(&rig, i + 1).await;
        assert_eq!(texts[i], expected, "step {i}: {texts:?}");
    }
    let c = rig.api("GET", &format!("/customers/{ana}"), None).await;
    assert_eq!(
        c.body["customer"]["vars"],
        json!({"account": "12345678"}),
        "{}",
        c.text
    );
    assert_eq!(c.body["customer"]["lastTemplateKey"], "done");
}

#[tokio::test]
async fn a_rule_with_states_fires_only_in_them() {
    let rig = rig(None).await;
    guided(&rig).await;
    let bo = "34611222444";
    rig.inbound(bo, said("sure"), 1).await;
    assert_eq!(until_sent(&rig, 1).await[0], "Sorry, I did not get that.");
    // Into "confirming" through the capture, then the same word matches the rule.
    rig.inbound(bo, said("hi"), 1).await;
    rig.inbound(bo, tapped("statement", "Statement"), 1).await;
    rig.inbound(bo, said("87654321"), 1).await;
    let c = rig.api("GET", &format!("/customers/{bo}"), None).await;
    assert_eq!(c.body["customer"]["state"], "confirming", "{}", c.text);
    rig.inbound(bo, said("sure"), 1).await;
    let texts = until_sent(&rig, 5).await;
    assert_eq!(
        texts[4], "The statement for 87654321 is on its way.",
        "{texts:?}"
    );
}

#[tokio::test]
async fn a_handed_off_conversation_gets_no_auto_reply_but_api_sends_and_resumes() {
    let rig = rig(None).await;
    guided(&rig).await;
    let cy = "34611222555";
    rig.inbound(cy, said("hi"), 1).await;
    let r = rig
        .api(
            "POST",
            &format!("/customers/{cy}/handoff"),
            Some(json!({"minutes": 30})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["customer"]["handoffUntil"].is_string(), "{}", r.text);
    assert_eq!(
        rig.api("POST", "/customers/34600000000/handoff", None)
            .await
            .status,
        404
    );
    let bad = rig
        .api(
            "POST",
            &format!("/customers/{cy}/handoff"),
            Some(json!({"minutes": 0})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (422, Some("minutes")),
        "{}",
        bad.text
    );

    let r = rig.inbound(cy, said("hello? anyone?"), 1).await;
    assert_eq!(
        (r["messages"].as_i64(), r["replies"].as_i64()),
        (Some(1), Some(0)),
        "stored, not answered: {r}"
    );
    let human = rig
        .send(json!({"to": cy, "text": "Hi, this is Marta from support."}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&human).await == "sent")
        .await;

    // The period ends (as if 30 minutes had passed): the bot answers by itself again.
    let tenant = mongodb::bson::oid::ObjectId::parse_str(&rig.tenant).expect("id");
    rig.app
        .db
        .collection::<mongodb::bson::Document>("customers")
        .update_one(
            doc! {"tenantId": tenant, "waId": cy},
            // Like every write to a conversation, it moves the revision on (a remembered
            // copy is then read again).
            doc! {"$set": {"handoffUntil": mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 1000)}, "$inc": {"rev": 1}},
        )
        .await
        .expect("update");
    assert_eq!(rig.inbound(cy, said("hi"), 1).await["replies"], 1);

    // A rule hands over too, after its message; DELETE gives it back at once.
    assert_eq!(
        rig.inbound(cy, said("I want an agent"), 1).await["replies"],
        1
    );
    assert_eq!(rig.inbound(cy, said("hi"), 1).await["replies"], 0);
    let r = rig
        .api("DELETE", &format!("/customers/{cy}/handoff"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["customer"]["handoffUntil"].is_null(), "{}", r.text);
    assert_eq!(rig.inbound(cy, said("hi"), 1).await["replies"], 1);
    let texts = until_sent(&rig, 5).await;
    assert!(
        texts.contains(&"A colleague will take over.".to_owned()),
        "{texts:?}"
    );
}

#[tokio::test]
async fn stop_gets_one_confirmation_then_nothing_until_start() {
    let rig = rig(None).await;
    guided(&rig).await;
    let di = "34611222666";
    assert_eq!(rig.inbound(di, said("STOP"), 1).await["replies"], 1);
    assert_eq!(
        until_sent(&rig, 1).await,
        ["You will not receive more messages from us. Reply START to subscribe again."]
    );
    assert_eq!(
        rig.inbound(di, said("stop"), 1).await["replies"],
        0,
        "one confirmation"
    );
    assert_eq!(rig.inbound(di, said("hi"), 1).await["replies"], 0);
    let r = rig
        .app
        .send(&rig.tenant, &rig.key, &json!({"to": di, "text": "Sale!"}))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("customer_opted_out")),
        "{}",
        r.text
    );
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(json!({"to": di, "name": "x", "language": "en"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let c = rig.api("GET", &format!("/customers/{di}"), None).await;
    assert!(c.body["customer"]["optedOutAt"].is_string(), "{}", c.text);
    assert_eq!(rig.inbound(di, said("START"), 1).await["replies"], 1);
    assert_eq!(
        until_sent(&rig, 2).await[1],
        "Welcome back! You will receive our messages again."
    );
    assert_eq!(rig.inbound(di, said("hi"), 1).await["replies"], 1);
    assert_eq!(until_sent(&rig, 3).await[2], "How can we help?");
    let r = rig
        .app
        .send(
            &rig.tenant,
            &rig.key,
            &json!({"to": di, "text": "Welcome back"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(until_sent(&rig, 4).await[3], "Welcome back");
}

#[tokio::test]
async fn the_simulator_answers_like_the_webhook_and_changes_nothing() {
    let rig = rig(None).await;
    guided(&rig).await;
    let counts = async |rig: &Rig| {
        let db = &rig.app.db;
        (
            db.collection::<mongodb::bson::Document>("messages")
                .count_documents(doc! {})
                .await
                .expect("count"),
            db.collection::<mongodb::bson::Document>("customers")
                .count_documents(doc! {})
                .await
                .expect("count"),
            e2e::queue_depth(
                &rig.app.state.sqs,
                rig.app
                    .state
                    .config
                    .send_queue_url
                    .as_deref()
                    .expect("queue"),
            )
            .await,
        )
    };
    let before = counts(&rig).await;
    let r = rig
        .api("POST", "/simulate", Some(json!({"text": "hi"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reply"]["templateKey"], "menu");
    assert_eq!(
        r.body["reply"]["cause"],
        json!({"type": "rule", "ruleId": "hi"})
    );
    let mut conversation = r.body["conversation"].clone();
    for (message, expected) in [
        (json!({"payloadId": "statement"}), "Your account number?"),
        (
            json!({"text": "12ab"}),
            "That doesn't look like an answer in the expected format. Please try again.",
        ),
        (
            json!({"text": "12345678"}),
            "Send the statement for 12345678?",
        ),
    ] {
        let mut body = message.clone();
        body["conversation"] = conversation.clone();
        let r = rig.api("POST", "/simulate", Some(body)).await;
        assert_eq!(
            r.body["reply"]["content"]["text"], expected,
            "{message}: {}",
            r.text
        );
        conversation = r.body["conversation"].clone();
    }
    assert_eq!(conversation["vars"], json!({"account": "12345678"}));
    assert_eq!(conversation["state"], "confirming");
    let r = rig
        .api(
            "POST",
            "/simulate",
            Some(json!({"text": "sure", "conversation": conversation})),
        )
        .await;
    assert_eq!(r.body["reply"]["templateKey"], "done", "{}", r.text);
    let r = rig
        .api(
            "POST",
            "/simulate",
            Some(json!({"text": "hi", "conversation": {"optedOut": true}})),
        )
        .await;
    assert_eq!(
        (r.body["reply"].clone(), r.body["reason"].clone()),
        (Value::Null, json!("opted_out")),
        "{}",
        r.text
    );
    let r = rig
        .api("POST", "/simulate", Some(json!({"text": "agent"})))
        .await;
    assert_eq!(r.body["reply"]["cause"]["type"], "handoff", "{}", r.text);
    assert_eq!(r.body["conversation"]["handoff"], true);
    let until = r.body["changes"]["handoffUntil"].as_str().expect("a time");
    assert!(
        mongodb::bson::DateTime::parse_rfc3339_str(until).is_ok(),
        "{until}"
    );
    for (bad, field) in [
        (json!({}), "text"),
        (
            json!({"text": "x", "conversation": {"lastTemplateKey": "bad key!"}}),
            "conversation.lastTemplateKey",
        ),
    ] {
        let r = rig.api("POST", "/simulate", Some(bad.clone())).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{bad}: {}",
            r.text
        );
    }
    assert_eq!(counts(&rig).await, before, "no message, customer or job");
    assert!(
        rig.graph
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn bot_settings_are_patched_and_checked() {
    let rig = rig(None).await;
    guided(&rig).await;
    let patch = |body: Value| {
        let rig = &rig;
        async move {
            rig.app
                .call(
                    "PATCH",
                    &format!("/tenants/{}", rig.tenant),
                    Some(e2e::ADMIN_TOKEN),
                    Some(&body.to_string()),
                )
                .await
        }
    };
    let r = patch(json!({"resetKeywords": ["menu", "Menu", "start over"], "startTemplateKey": "menu", "handoffMinutes": 60})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["tenant"]["bot"]["resetKeywords"],
        json!(["menu", "start over"])
    );
    assert_eq!(
        r.body["tenant"]["bot"]["optOutKeywords"][0], "STOP",
        "defaults kept"
    );
    for (bad, field) in [
        (json!({"startTemplateKey": "ghost"}), "startTemplateKey"),
        (json!({"handoffMinutes": 0}), "handoffMinutes"),
        (json!({"optInKeywords": ["stop"]}), "optInKeywords"),
        (json!({"resetKeywords": [""]}), "resetKeywords[0]"),
    ] {
        let r = patch(bad.clone()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{bad}: {}",
            r.text
        );
    }
    let r = rig.api( "POST", "/simulate", Some(json!({"text": "MENU", "conversation": {"state": "confirming", "vars": {"account": "1"}}}))).await;
    assert_eq!(r.body["reply"]["cause"]["type"], "reset", "{}", r.text);
    assert_eq!(r.body["conversation"]["vars"], json!({}));
    assert_eq!(r.body["conversation"]["state"], Value::Null);
}

/// `events/meta/stop.json`, replayed signed through the webhook: one confirmation, and the
/// customer is opted out.
#[tokio::test]
async fn the_stop_fixture_opts_the_customer_out() {
    let rig = rig(None).await;
    guided(&rig).await;
    let body = e2e::fixture(
        "meta/stop.json",
        &std::collections::HashMap::from([
            ("PHONE_NUMBER_ID", rig.number.clone()),
            ("CUSTOMER_NAME", "Eva".to_owned()),
            ("FROM", "34611222777".to_owned()),
            ("WAMID", format!("wamid.stop{}", e2e::random_hex(6))),
        ]),
    );
    let body = serde_json::from_str::<Value>(&body)
        .expect("json")
        .to_string();
    let r = rig.app.webhook(&body).await;
    assert_eq!(r.body["replies"], 1, "{}", r.text);
    let c = rig.api("GET", "/customers/34611222777", None).await;
    assert!(c.body["customer"]["optedOutAt"].is_string(), "{}", c.text);
}
