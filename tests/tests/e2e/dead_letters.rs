//! A tenant's dead letters through the API: listed with their last error (never another
//! tenant's), redriven by id and all at once, each delivered once.

use e2e::ADMIN_TOKEN;
use mongodb::bson::doc;
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::sender::{Rig, ok_body, rig};

async fn dead(rig: &Rig, key: &str, tenant: &str) -> Vec<Value> {
    let r = rig
        .app
        .get(&format!("/tenants/{tenant}/dead-letters"), key)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["deadLetters"]
        .as_array()
        .expect("deadLetters")
        .clone()
}

fn ids(letters: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = letters
        .iter()
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn dead_letters_are_listed_per_tenant_and_redriven_each_once() {
    let rig = rig(None).await;
    // A second tenant on the same queues, with its own failing message.
    let other = rig.app.register_tenant("Other shop").await;
    rig.app.customers_wrote(&other.id, &["34600999888"]).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&rig.graph)
        .await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        sent.push(rig.send(json!({"to": "34600111222", "text": text})).await);
    }
    let foreign = rig
        .app
        .send(
            &other.id,
            &other.key,
            &json!({"to": "34600999888", "text": "not yours"}),
        )
        .await;
    assert_eq!(foreign.status, 202, "{}", foreign.text);
    let foreign_id = foreign.body["messageId"].as_str().expect("id").to_owned();
    let dlq = rig.app.state.config.send_dlq_url.clone().expect("dlq");
    rig.pump_until(async |r: &Rig| e2e::queue_depth(&r.app.state.sqs, &dlq).await == 4)
        .await;

    let listed = dead(&rig, &rig.key, &rig.tenant).await;
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(ids(&listed), expected, "{listed:?}");
    for l in &listed {
        assert_eq!(l["lastError"]["code"], "http_500", "{l}");
        assert_eq!(l["attempts"], 5);
        assert_eq!(l["deadJobs"], 1);
    }
    assert_eq!(
        ids(&dead(&rig, ADMIN_TOKEN, &other.id).await),
        std::slice::from_ref(&foreign_id)
    );
    // Looking moved nothing.
    assert_eq!(e2e::queue_depth(&rig.app.state.sqs, &dlq).await, 4);

    rig.graph.reset().await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.again")))
        .expect(3)
        .mount(&rig.graph)
        .await;
    let bad = rig
        .api(
            "POST",
            "/dead-letters/redrive",
            Some(json!({"messageIds": ["nope"]})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.body["field"], "messageIds[0]");

    // One by id, then the rest; the other tenant's stays in the DLQ.
    let one = rig
        .api(
            "POST",
            "/dead-letters/redrive",
            Some(json!({"messageIds": [sent[0]]})),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["messageIds"], json!([sent[0]]));
    let first = sent[0].clone();
    rig.pump_until(async |r: &Rig| r.status(&first).await == "sent")
        .await;
    assert_eq!(ids(&dead(&rig, &rig.key, &rig.tenant).await).len(), 2);
    let rest = rig
        .api("POST", "/dead-letters/redrive", Some(json!({})))
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(rest.body["redriven"], 2);
    let (second, third) = (sent[1].clone(), sent[2].clone());
    rig.pump_until(async |r: &Rig| {
        r.status(&second).await == "sent" && r.status(&third).await == "sent"
    })
    .await;
    assert!(dead(&rig, &rig.key, &rig.tenant).await.is_empty());
    assert_eq!(ids(&dead(&rig, ADMIN_TOKEN, &other.id).await), [foreign_id]);
    // A redrive with nothing left moves nothing, and nothing was sent twice (the mock
    // expects exactly 3 calls when it is dropped).
    let none = rig
        .api("POST", "/dead-letters/redrive", Some(json!({})))
        .await;
    assert_eq!(none.body["redriven"], 0);
    let tenant = mongodb::bson::oid::ObjectId::parse_str(&rig.tenant).expect("id");
    let out = rig
        .app
        .messages(doc! {"tenantId": tenant, "direction": "OUT", "status": "sent"})
        .await;
    assert_eq!(out.len(), 3);
}
