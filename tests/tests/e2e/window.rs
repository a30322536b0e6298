//! The 24-hour customer service window: free-form sends only to customers who wrote in the
//! last 24 hours (by Meta's timestamp of their message), the customers API that shows it,
//! and 131047 read as the window wherever Meta reports it.

use mongodb::bson::doc;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::sender::{Rig, graph_error, ok_body, rig};

async fn customer(rig: &Rig, wa_id: &str) -> e2e::Reply {
    rig.api("GET", &format!("/customers/{wa_id}"), None).await
}

#[tokio::test]
async fn a_send_needs_the_customer_to_have_written_in_the_last_24_hours() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.window")))
        .expect(1)
        .mount(&rig.graph)
        .await;
    let never = "34611000001";
    let send = json!({"to": never, "text": "Hello", "idempotency_key": "w-1"});
    let r = rig.app.send(&rig.tenant, &rig.key, &send).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "outside_customer_service_window");
    assert_eq!(r.body["field"], "to");
    assert!(r.text.contains("meta-template"), "{}", r.text);
    let tpl = json!({"to": never, "templateKey": "any"});
    let r = rig.api("POST", "/send/template", Some(tpl)).await;
    assert_eq!(
        r.status, 404,
        "an unknown template is named first: {}",
        r.text
    );
    assert!(rig.app.messages(doc! {"direction": "OUT"}).await.is_empty());
    assert!(rig.app.queued_jobs().await.is_empty(), "nothing queued");
    assert_eq!(customer(&rig, never).await.status, 404);

    // A message written 25 hours ago (delivered late by Meta) does not open the window.
    rig.inbound(
        never,
        json!({"type": "text", "text": {"body": "old"}}),
        25 * 3600,
    )
    .await;
    let c = customer(&rig, never).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["customer"]["windowOpen"], false);
    assert_eq!(c.body["customer"]["name"], "Ana");
    let r = rig.app.send(&rig.tenant, &rig.key, &send).await;
    assert_eq!(
        r.body["code"], "outside_customer_service_window",
        "{}",
        r.text
    );
    assert!(r.text.contains("last wrote at"), "{}", r.text);

    // The customer writes now: the window is open for 24 hours from their message.
    rig.inbound(never, json!({"type": "text", "text": {"body": "hi"}}), 60)
        .await;
    let c = customer(&rig, never).await.body["customer"].clone();
    assert_eq!(c["windowOpen"], true, "{c}");
    let last = chrono_ms(c["lastInboundAt"].as_str().expect("lastInboundAt"));
    let until = chrono_ms(c["windowOpenUntil"].as_str().expect("windowOpenUntil"));
    assert_eq!(until - last, 24 * 3600 * 1000);
    let now = mongodb::bson::DateTime::now().timestamp_millis();
    assert!((now - last - 60_000).abs() < 5_000, "Meta's timestamp: {c}");

    // An older message delivered after that never moves the window back.
    rig.inbound(
        never,
        json!({"type": "text", "text": {"body": "late"}}),
        30 * 3600,
    )
    .await;
    let again = customer(&rig, never).await.body["customer"].clone();
    assert_eq!(again["lastInboundAt"], c["lastInboundAt"]);

    let id = rig.send(send.clone()).await;
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;

    let list = rig.api("GET", "/customers?limit=1", None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["customers"][0]["waId"], never, "newest first");
    let cursor = list.body["nextCursor"].as_str().expect("a next page");
    let next = rig
        .api("GET", &format!("/customers?limit=1&cursor={cursor}"), None)
        .await;
    assert_eq!(
        next.body["customers"][0]["waId"], "34600111222",
        "{}",
        next.text
    );
    for bad in ["limit=0", "limit=201", "cursor=nope", "colour=red"] {
        let r = rig.api("GET", &format!("/customers?{bad}"), None).await;
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.text);
    }
}

#[tokio::test]
async fn a_window_refusal_from_graph_is_permanent_and_readable() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(
            131047,
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        )))
        .expect(1)
        .mount(&rig.graph)
        .await;
    let id = rig.send(json!({"to": "34600111222", "text": "Late"})).await;
    rig.pump_until(async |r: &Rig| r.status(&id).await == "failed")
        .await;
    let m = rig.message(&id).await;
    let error = m.get_document("lastError").expect("lastError");
    assert_eq!(error.get_str("code").expect("code"), "131047");
    assert!(
        error.get_str("title").expect("title").contains("24-hour"),
        "{error:?}"
    );
    assert_eq!(m.get_i32("attempts").expect("attempts"), 1, "never retried");
}

fn chrono_ms(rfc3339: &str) -> i64 {
    mongodb::bson::DateTime::parse_rfc3339_str(rfc3339)
        .expect("rfc3339")
        .timestamp_millis()
}
