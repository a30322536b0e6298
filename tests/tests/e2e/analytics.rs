//! Analytics equals the counts of a scripted set of conversations: messages per day, the
//! delivery funnel with failures by code, taps per template option, rule hits and the time
//! to reply; another tenant's messages never count.

use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::ADMIN_TOKEN;
use mongodb::bson::doc;
use serde_json::{Value, json};
use wiremock::{
    Mock, Request, ResponseTemplate,
    matchers::{body_partial_json, method},
};

use crate::sender::{Rig, graph_error, rig};

static WAMIDS: AtomicUsize = AtomicUsize::new(0);

fn unique_wamid(_: &Request) -> ResponseTemplate {
    let n = WAMIDS.fetch_add(1, Ordering::SeqCst);
    ResponseTemplate::new(200).set_body_json(json!({"messaging_product": "whatsapp",
        "messages": [{"id": format!("wamid.A{n:06}")}]}))
}

fn text(body: &str) -> Value {
    json!({"type": "text", "text": {"body": body}})
}

fn tap(id: &str, title: &str) -> Value {
    json!({"type": "interactive", "interactive": {"type": "button_reply",
        "button_reply": {"id": id, "title": title}}})
}

async fn status(rig: &Rig, wamid: &str, status: &str, to: &str) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": rig.number},
        "statuses": [{"id": wamid, "status": status, "timestamp": "1795341700", "recipient_id": to}]}}]}]});
    let r = rig.app.webhook(&body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn analytics_equals_the_counts_of_a_scripted_conversation_set() {
    let rig = rig(None).await;
    // A menu with two buttons, a "hi" rule into it and a fallback.
    for body in [
        json!({"key": "prices", "body": "Coffee 3€"}),
        json!({"key": "hours", "body": "9 to 5"}),
        json!({"key": "sorry", "body": "Say hi"}),
        json!({"key": "menu", "body": "Menu", "kind": "interactive_button", "buttons": [
            {"title": "Prices", "nextTemplateKey": "prices"},
            {"title": "Hours", "nextTemplateKey": "hours"}]}),
    ] {
        let r = rig.api("POST", "/templates", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = rig
        .api(
            "POST",
            "/flows",
            Some(
                json!({"flows": [{"id": "greet", "match": {"type": "equals", "values": ["hi"]},
                "action": {"type": "send_template", "templateKey": "menu"}}],
                "fallbackTemplateKey": "sorry"}),
            ),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    let menu = rig.api("GET", "/templates/menu", None).await;
    let buttons = menu.body["template"]["buttons"].clone();
    let (prices, hours) = (
        buttons[0]["id"].as_str().expect("id").to_owned(),
        buttons[1]["id"].as_str().expect("id").to_owned(),
    );

    Mock::given(method("POST"))
        .and(body_partial_json(json!({"to": "34600999000"})))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(graph_error(131026, "Message undeliverable")),
        )
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(unique_wamid)
        .mount(&rig.graph)
        .await;

    // Ana: hi → menu, taps Prices. Ben: hi → menu, taps Hours. Cy: anything → fallback.
    rig.inbound("34600000001", text("hi"), 30).await;
    rig.inbound("34600000001", tap(&prices, "Prices"), 20).await;
    rig.inbound("34600000002", text("hi"), 30).await;
    rig.inbound("34600000002", tap(&hours, "Hours"), 20).await;
    rig.inbound("34600000003", text("what?"), 10).await;
    rig.app.customers_wrote(&rig.tenant, &["34600999000"]).await;
    let failed = rig
        .send(json!({"to": "34600999000", "text": "Undeliverable"}))
        .await;
    let tenant = mongodb::bson::oid::ObjectId::parse_str(&rig.tenant).expect("id");
    rig.pump_until(async |r: &Rig| {
        let out = r
            .app
            .messages(doc! {"tenantId": tenant, "direction": "OUT"})
            .await;
        out.len() == 6
            && out
                .iter()
                .all(|m| matches!(m.get_str("status"), Ok("sent") | Ok("failed")))
    })
    .await;
    assert_eq!(rig.status(&failed).await, "failed");
    // Two replies delivered, one of them read.
    let replies = rig
        .app
        .messages(doc! {"tenantId": tenant, "direction": "OUT", "status": "sent"})
        .await;
    let wamid = |i: usize| replies[i].get_str("waMessageId").expect("wamid").to_owned();
    let to = |i: usize| replies[i].get_str("customerWaId").expect("to").to_owned();
    status(&rig, &wamid(0), "delivered", &to(0)).await;
    status(&rig, &wamid(1), "delivered", &to(1)).await;
    status(&rig, &wamid(1), "read", &to(1)).await;
    // Another tenant's conversation never counts.
    let other = rig.app.register_tenant("Other").await;
    rig.app.customers_wrote(&other.id, &["34600000009"]).await;
    let r = rig
        .app
        .send(
            &other.id,
            &other.key,
            &json!({"to": "34600000009", "text": "x"}),
        )
        .await;
    assert_eq!(r.status, 202);

    // The default range: the last 7 days, by day (every day listed, empty ones too).
    let r = rig.api("GET", "/analytics", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.body["analytics"];
    assert_eq!(a["granularity"], "day");
    let series = a["series"].as_array().expect("series");
    assert_eq!(series.len(), 8, "{series:?}");
    let sum = |k: &str| series.iter().filter_map(|b| b[k].as_u64()).sum::<u64>();
    assert_eq!((sum("inbound"), sum("outbound")), (5, 6));
    assert_eq!(a["totals"]["inbound"], 5);
    assert_eq!(a["totals"]["outbound"], 6);
    assert_eq!(
        a["funnel"],
        json!({"outbound": 6, "sent": 5, "delivered": 2, "read": 1, "failed": 1,
            "failedByCode": {"131026": 1}})
    );
    // Equal counts are ordered by option id (random here): compared by title.
    let mut taps = a["taps"].as_array().expect("taps").clone();
    taps.sort_by_key(|t| t["title"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        taps,
        [
            json!({"templateKey": "menu", "option": hours, "title": "Hours", "count": 1}),
            json!({"templateKey": "menu", "option": prices, "title": "Prices", "count": 1}),
        ]
    );
    assert_eq!(a["ruleHits"], json!([{"ruleId": "greet", "count": 2}]));
    assert_eq!(a["replyTime"]["replies"], 5);
    // Each customer wrote 10–30 s before the reply left (their Meta timestamps).
    let median = a["replyTime"]["medianSeconds"].as_f64().expect("median");
    assert!((19.0..=40.0).contains(&median), "{median}");

    // The admin sees the same; a bad range is named.
    let by_admin = rig
        .app
        .get(&format!("/tenants/{}/analytics", rig.tenant), ADMIN_TOKEN)
        .await;
    assert_eq!(by_admin.body["analytics"]["totals"], a["totals"]);
    for (query, field) in [
        ("granularity=week", "granularity"),
        ("from=2020-01-01", "from"),
        ("to=tomorrow", "to"),
    ] {
        let r = rig.api("GET", &format!("/analytics?{query}"), None).await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        assert_eq!(r.body["field"], field);
    }
}
