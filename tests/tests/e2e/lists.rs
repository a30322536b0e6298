//! List templates: Meta's limits checked at save time (the field named), sent as
//! `interactive.type: "list"` with header and footer, and a `list_reply` branches like a
//! button tap.

use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::sender::{Rig, ok_body, rig};

async fn save(rig: &Rig, body: Value) -> e2e::Reply {
    rig.api("POST", "/templates", Some(body)).await
}

fn row(i: usize) -> Value {
    json!({"title": format!("Row {i}")})
}

#[tokio::test]
async fn list_templates_keep_metas_limits_and_a_row_tap_branches() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.list")))
        .mount(&rig.graph)
        .await;
    assert!(
        save(&rig, json!({"key": "hours", "body": "9 to 5"}))
            .await
            .status
            < 300
    );

    let eleven = json!({"key": "menu", "body": "Pick", "kind": "interactive_list", "button": "Options",
        "sections": [{"title": "A", "rows": (0..6).map(row).collect::<Vec<_>>()},
                     {"title": "B", "rows": (6..11).map(row).collect::<Vec<_>>()}]});
    let r = save(&rig, eleven).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["field"], "sections[1].rows[4]", "the 11th row");
    let long = json!({"key": "menu", "body": "Pick", "kind": "interactive_list", "button": "Options",
        "sections": [{"rows": [{"title": "x".repeat(25)}]}]});
    let r = save(&rig, long).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "sections[0].rows[0].title");
    for (bad, field) in [
        (
            json!({"kind": "interactive_list", "button": "x".repeat(21), "sections": [{"rows": [row(0)]}]}),
            "button",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "sections": []}),
            "sections",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "sections": [{"rows": [row(0)]}, {"rows": [row(1)]}]}),
            "sections[0].title",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "sections": [{"rows": [{"title": "t", "description": "d".repeat(73)}]}]}),
            "sections[0].rows[0].description",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "sections": [{"rows": [{"title": "t", "nextTemplateKey": "ghost"}]}]}),
            "sections[0].rows[0].nextTemplateKey",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "header": {"type": "text", "text": "h".repeat(61)}, "sections": [{"rows": [row(0)]}]}),
            "header.text",
        ),
        (
            json!({"kind": "interactive_list", "button": "Go", "footer": "f".repeat(61), "sections": [{"rows": [row(0)]}]}),
            "footer",
        ),
        (json!({"kind": "text", "footer": "f"}), "footer"),
    ] {
        let mut body = bad.clone();
        body["key"] = json!("menu");
        body["body"] = json!("Pick");
        let r = save(&rig, body).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{bad}: {}",
            r.text
        );
    }

    let menu = json!({"key": "menu", "body": "What do you need?", "kind": "interactive_list", "button": "Options",
        "header": {"type": "text", "text": "Acme Coffee"}, "footer": "Reply any time",
        "sections": [{"title": "Shop", "rows": [
            {"id": "row_hours", "title": "Opening hours", "description": "When we are open", "nextTemplateKey": "hours", "nextState": "browsing"},
            {"title": "Prices"}]}]});
    let r = save(&rig, menu).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let generated = r.body["template"]["sections"][0]["rows"][1]["id"]
        .as_str()
        .expect("row id")
        .to_owned();
    assert!(generated.starts_with("row_"), "{generated}");
    let flow = json!({"flows": [{"id": "hi", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu"}}]});
    let r = rig.api("POST", "/flows", Some(flow)).await;
    assert!(r.status < 300, "{}", r.text);

    let customer = "34600111222";
    assert_eq!(
        rig.inbound(customer, json!({"type": "text", "text": {"body": "hi"}}), 1)
            .await["replies"],
        1
    );
    rig.pump_until(async |r: &Rig| posted(r).await.len() == 1)
        .await;
    assert_eq!(
        posted(&rig).await[0],
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": customer,
        "type": "interactive", "interactive": {"type": "list",
            "header": {"type": "text", "text": "Acme Coffee"},
            "body": {"text": "What do you need?"},
            "footer": {"text": "Reply any time"},
            "action": {"button": "Options", "sections": [{"title": "Shop", "rows": [
                {"id": "row_hours", "title": "Opening hours", "description": "When we are open"},
                {"id": generated, "title": "Prices"}]}]}}})
    );

    let tap = json!({"type": "interactive", "interactive": {"type": "list_reply",
        "list_reply": {"id": "row_hours", "title": "Opening hours", "description": "When we are open"}}});
    assert_eq!(rig.inbound(customer, tap, 1).await["replies"], 1);
    rig.pump_until(async |r: &Rig| posted(r).await.len() == 2)
        .await;
    assert_eq!(posted(&rig).await[1]["text"]["body"], "9 to 5");
    let c = rig
        .api("GET", &format!("/customers/{customer}"), None)
        .await;
    assert_eq!(c.body["customer"]["state"], "browsing", "{}", c.text);
    assert_eq!(c.body["customer"]["lastTemplateKey"], "hours");

    // A row still points at "hours": it cannot be deactivated.
    let r = rig.api("DELETE", "/templates/hours", None).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body["referencedBy"],
        json!(["template menu row \"Opening hours\""]),
        "{}",
        r.text
    );
}

async fn posted(rig: &Rig) -> Vec<Value> {
    rig.graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect()
}
