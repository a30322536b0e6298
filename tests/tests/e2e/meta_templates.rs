//! Meta templates: synced from Graph (every page), kept current by Meta's template webhooks,
//! sent in Meta's `template` shape outside the 24-hour window, refused when not approved or
//! when the parameters do not fit; a quick reply carrying a bot button's id opens the bot.

use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::sender::{Rig, ok_body, rig};

const WABA: &str = "102290129340398";

fn graph_templates() -> (Value, Value) {
    let welcome = json!({"id": "9001", "name": "welcome", "language": "en_US", "status": "APPROVED", "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Welcome"},
            {"type": "BODY", "text": "Hi {{1}}, tap below to see what we can do."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Open menu"}]}]});
    let order = json!({"id": "9002", "name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Order {{1}} ships {{2}}."}]});
    let promo = json!({"id": "9003", "name": "promo", "language": "es", "status": "PENDING", "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Oferta"}]});
    (
        json!({"data": [welcome, order], "paging": {"cursors": {"before": "A", "after": "CURSOR2"}}}),
        json!({"data": [promo], "paging": {"cursors": {"before": "CURSOR2", "after": "B"}}}),
    )
}

#[tokio::test]
async fn synced_templates_are_sent_in_meta_shape_and_a_quick_reply_opens_the_bot() {
    let rig = rig(None).await;
    let r = rig.api("POST", "/meta-templates/sync", None).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["field"], "wabaId");
    let r = rig.set_waba(WABA).await;
    assert_eq!(r.body["tenant"]["wabaId"], WABA);

    let list_path = format!("/v20.0/{WABA}/message_templates");
    let (mut first, second) = graph_templates();
    first["paging"]["next"] = json!(format!(
        "{}{list_path}?after=CURSOR2&limit=100",
        rig.graph.uri()
    ));
    Mock::given(method("GET"))
        .and(path(list_path.as_str()))
        .and(query_param("after", "CURSOR2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(second))
        .with_priority(1)
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("GET"))
        .and(path(list_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .with_priority(2)
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.meta")))
        .mount(&rig.graph)
        .await;

    let r = rig.api("POST", "/meta-templates/sync", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["order_update", "promo", "welcome"], "both pages");
    let welcome = &r.body["templates"][2];
    assert_eq!(welcome["parameters"]["body"], 1);
    assert_eq!(welcome["parameters"]["buttons"][0]["type"], "QUICK_REPLY");
    let token_seen = rig.graph.received_requests().await.expect("recorded");
    assert!(token_seen.iter().all(
        |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {}", rig.token).as_str())
    ));

    // Meta pauses order_update: the webhook (routed by the WABA) records it.
    let paused = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1700000000, "changes": [{
        "field": "message_template_status_update", "value": {"event": "PAUSED", "message_template_id": 9002,
        "message_template_name": "order_update", "message_template_language": "en_US", "reason": "LOW_QUALITY"}}]}]});
    let r = rig.app.webhook(&paused.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["templateUpdates"], 1);
    let listed = rig.api("GET", "/meta-templates", None).await;
    assert_eq!(
        listed.body["templates"][0]["status"], "PAUSED",
        "{}",
        listed.text
    );
    assert_eq!(listed.body["templates"][0]["reason"], "LOW_QUALITY");

    let stranger = "34699000111";
    let send = |name: &str, parameters: Value| json!({"to": stranger, "name": name, "language": "en_US", "parameters": parameters});
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(send("order_update", json!({"body": ["A1", "today"]}))),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "template_not_approved");
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(send("welcome", json!({"body": ["Ana", "extra"]}))),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "parameter_count_mismatch");
    assert_eq!(r.body["field"], "parameters.body");
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(json!({"to": stranger, "name": "nope", "language": "en_US"})),
        )
        .await;
    assert_eq!(r.body["code"], "meta_template_unknown", "{}", r.text);
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(json!({"to": stranger, "name": "promo", "language": "es"})),
        )
        .await;
    assert_eq!(r.body["code"], "template_not_approved", "{}", r.text);

    // The bot's menu, opened by the quick reply's payload.
    for body in [
        json!({"key": "menu", "body": "Our menu: hours, prices"}),
        json!({"key": "start", "body": "Hello", "kind": "interactive_button",
            "buttons": [{"id": "open_menu", "title": "Open menu", "nextTemplateKey": "menu"}]}),
    ] {
        let r = rig.api("POST", "/templates", Some(body)).await;
        assert!(r.status < 300, "{}", r.text);
    }
    // The customer never wrote: only a Meta template reaches them.
    let r = rig
        .api(
            "POST",
            "/send/meta-template",
            Some(send(
                "welcome",
                json!({"body": ["Ana"], "buttons": [{"index": 0, "payload": "open_menu"}]}),
            )),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["messageId"].as_str().expect("id").to_owned();
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;
    let sent = rig.message(&id).await;
    assert_eq!(
        sent.get_str("body").expect("body"),
        "Hi Ana, tap below to see what we can do."
    );
    let bodies = posted(&rig).await;
    assert!(bodies.contains(&json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": stranger,
        "type": "template", "template": {"name": "welcome", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
            {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "open_menu"}]}]}})),
        "{bodies:?}");

    // The customer taps "Open menu": Meta sends a `button` message with the payload.
    let r = rig
        .inbound(
            stranger,
            json!({"type": "button", "button": {"payload": "open_menu", "text": "Open menu"}}),
            5,
        )
        .await;
    assert_eq!(r["replies"], 1, "{r}");
    rig.pump_until(async |r: &Rig| posted(r).await.len() == 2)
        .await;
    let bodies = posted(&rig).await;
    assert_eq!(
        bodies[1]["text"]["body"], "Our menu: hours, prices",
        "{bodies:?}"
    );
}

async fn posted(rig: &Rig) -> Vec<Value> {
    rig.graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect()
}

#[tokio::test]
async fn sync_answers_502_when_graph_fails_and_409_when_it_refuses_the_token() {
    let rig = rig(None).await;
    rig.set_waba(WABA).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(crate::sender::graph_error(
                2,
                "Service temporarily unavailable",
            )),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(crate::sender::graph_error(
                190,
                "Invalid OAuth access token",
            )),
        )
        .with_priority(2)
        .mount(&rig.graph)
        .await;
    let r = rig.api("POST", "/meta-templates/sync", None).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(
        r.text.contains("Service temporarily unavailable"),
        "{}",
        r.text
    );
    assert!(!r.text.contains(&rig.token));
    // A refused token is the tenant's to fix, not Graph's failure.
    let r = rig.api("POST", "/meta-templates/sync", None).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "access_token_invalid");
    assert!(r.text.contains("access-token"), "{}", r.text);
}

/// Meta's three template webhooks, replayed from `events/meta/`, change the stored
/// template (matched by Meta's id under the entry's WABA); an inbound document keeps its
/// file's id, type, checksum and name.
#[tokio::test]
async fn template_webhook_fixtures_update_the_stored_template() {
    let rig = rig(None).await;
    rig.set_waba(WABA).await;
    let (first, second) = graph_templates();
    let mut all = first["data"].as_array().expect("data").clone();
    all.extend(second["data"].as_array().expect("data").iter().cloned());
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": all})))
        .mount(&rig.graph)
        .await;
    assert_eq!(
        rig.api("POST", "/meta-templates/sync", None).await.status,
        200
    );

    let vars = std::collections::HashMap::from([
        ("WABA_ID", WABA.to_owned()),
        ("META_TEMPLATE_ID", "9002".to_owned()),
    ]);
    for name in [
        "template_status_update",
        "template_quality_update",
        "template_category_update",
    ] {
        let body = e2e::fixture(&format!("meta/{name}.json"), &vars);
        let body = serde_json::from_str::<Value>(&body)
            .expect("json")
            .to_string();
        let r = rig.app.webhook(&body).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(r.body["templateUpdates"], 1, "{name}: {}", r.text);
    }
    let listed = rig.api("GET", "/meta-templates", None).await;
    let order = listed.body["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["name"] == "order_update")
        .expect("order_update")
        .clone();
    assert_eq!(
        (
            &order["status"],
            &order["reason"],
            &order["qualityScore"],
            &order["category"]
        ),
        (
            &json!("PAUSED"),
            &json!("LOW_QUALITY"),
            &json!("YELLOW"),
            &json!("MARKETING")
        ),
        "{order}"
    );
    let welcome = &listed.body["templates"][2];
    assert_eq!(
        welcome["status"], "APPROVED",
        "another template is untouched"
    );

    // Meta deleted two of them: the next sync keeps only what Graph lists.
    rig.graph.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [welcome_of(&all)]})))
        .mount(&rig.graph)
        .await;
    assert_eq!(
        rig.api("POST", "/meta-templates/sync", None).await.status,
        200
    );
    let listed = rig.api("GET", "/meta-templates", None).await;
    let names: Vec<&str> = listed.body["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["welcome"], "{}", listed.text);

    let document = e2e::fixture(
        "meta/document.json",
        &std::collections::HashMap::from([
            ("PHONE_NUMBER_ID", rig.number.clone()),
            ("CUSTOMER_NAME", "Ana".to_owned()),
            ("FROM", "34600111222".to_owned()),
            ("WAMID", format!("wamid.doc{}", e2e::random_hex(6))),
            ("TEXT", "My invoice".to_owned()),
        ]),
    );
    let document = serde_json::from_str::<Value>(&document)
        .expect("json")
        .to_string();
    assert_eq!(rig.app.webhook(&document).await.status, 200);
    let log = rig.api("GET", "/messages?direction=IN", None).await;
    assert_eq!(
        log.body["messages"][0]["media"],
        json!({"id": "2345678901234567", "mimeType": "application/pdf",
            "sha256": "ADDfnsIUdZhaGVsgX7Xx8FtVnWyvPK2YBPNXjoqmUIM=", "caption": "My invoice",
            "filename": "invoice-42.pdf"}),
        "{}",
        log.text
    );
}

fn welcome_of(all: &[Value]) -> Value {
    all.iter()
        .find(|t| t["name"] == "welcome")
        .cloned()
        .expect("welcome")
}
