//! Several numbers per tenant: added and removed by the admin (never another tenant's,
//! never the last), each routed by the webhook and answered from the number written to,
//! `from` picking the number an API send goes from, and tenants from before numbers.

use e2e::{ADMIN_TOKEN, TestApp};
use mongodb::bson::{Document, doc, oid::ObjectId};
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::sender::{Rig, ok_body, rig};

async fn add(rig: &Rig, tenant: &str, body: Value) -> e2e::Reply {
    rig.app
        .post(&format!("/tenants/{tenant}/numbers"), ADMIN_TOKEN, &body)
        .await
}

fn ids(tenant: &Value) -> Vec<String> {
    tenant["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .filter_map(|n| n["phoneNumberId"].as_str().map(str::to_owned))
        .collect()
}

/// A fallback template: the bot answers every text.
pub(crate) async fn answer_everything(app: &TestApp, tenant: &str, key: &str) {
    let r = app
        .post(
            &format!("/tenants/{tenant}/templates"),
            key,
            &json!({"key": "hello", "body": "Hello!"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{tenant}/flows"),
            key,
            &json!({"flows": [], "fallbackTemplateKey": "hello"}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
}

/// A customer's "hi" to `number`, as Meta posts it.
pub(crate) async fn hi(rig: &Rig, number: &str, from: &str) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.in{}", e2e::random_hex(8)),
            "timestamp": (mongodb::bson::DateTime::now().timestamp_millis() / 1000).to_string(),
            "type": "text", "text": {"body": "hi"}}]}}]}]});
    let r = rig.app.webhook(&body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["replies"], 1, "{}", r.text);
}

#[tokio::test]
async fn a_tenant_routes_answers_and_sends_on_each_of_its_numbers() {
    let rig = rig(None).await;
    let second = e2e::phone_number_id();
    let r = add(
        &rig,
        &rig.tenant,
        json!({"phoneNumberId": second, "displayPhoneNumber": "+1 555 010 2000"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(ids(&r.body["tenant"]), [rig.number.clone(), second.clone()]);
    assert_eq!(
        r.body["tenant"]["numbers"][1]["displayPhoneNumber"],
        "+1 555 010 2000"
    );
    assert_eq!(r.body["tenant"]["phoneNumberId"], rig.number.as_str());

    // Never twice, never another tenant's, and named when malformed.
    assert_eq!(
        add(&rig, &rig.tenant, json!({"phoneNumberId": second}))
            .await
            .status,
        409
    );
    let other = rig.app.register_tenant("Other").await;
    assert_eq!(
        add(&rig, &other.id, json!({"phoneNumberId": second}))
            .await
            .status,
        409
    );
    assert_eq!(
        add(&rig, &other.id, json!({"phoneNumberId": rig.number}))
            .await
            .status,
        409
    );
    let bad = add(&rig, &rig.tenant, json!({"phoneNumberId": "12ab"})).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["field"], "phoneNumberId");
    let by_key = rig
        .app
        .post(
            &format!("/tenants/{}/numbers", rig.tenant),
            &rig.key,
            &json!({"phoneNumberId": e2e::phone_number_id()}),
        )
        .await;
    assert_eq!(by_key.status, 403);

    // The bot answers from the number written to.
    let t = format!("/tenants/{}", rig.tenant);
    answer_everything(&rig.app, &rig.tenant, &rig.key).await;
    Mock::given(method("POST"))
        .and(path(format!("/v20.0/{second}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.second")))
        .expect(2)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.first")))
        .expect(2)
        .mount(&rig.graph)
        .await;
    hi(&rig, &second, "34600111222").await;
    hi(&rig, &rig.number, "34600111333").await;

    // `from` picks the number; left out, the first; not the tenant's, a 422 naming it.
    let from_second = rig
        .send(json!({"to": "34600111222", "text": "From the second", "from": second}))
        .await;
    let from_first = rig
        .send(json!({"to": "34600111222", "text": "From the first"}))
        .await;
    let foreign = rig
        .app
        .send(
            &rig.tenant,
            &rig.key,
            &json!({"to": "34600111222", "text": "x", "from": other.number}),
        )
        .await;
    assert_eq!(foreign.status, 422, "{}", foreign.text);
    assert_eq!(foreign.body["field"], "from");
    let (a, b) = (from_second.clone(), from_first.clone());
    rig.pump_until(async |r: &Rig| r.status(&a).await == "sent" && r.status(&b).await == "sent")
        .await;
    let tenant = ObjectId::parse_str(&rig.tenant).expect("id");
    let out = rig
        .app
        .messages(doc! {"tenantId": tenant, "direction": "OUT", "status": "sent"})
        .await;
    assert_eq!(out.len(), 4, "{out:?}");
    let inbound = rig
        .app
        .messages(doc! {"tenantId": tenant, "direction": "IN", "customerWaId": "34600111222"})
        .await;
    assert_eq!(inbound[0].get_str("phoneNumberId"), Ok(second.as_str()));
    let listed = rig.api("GET", "/messages?to=34600111222", None).await;
    assert!(listed.text.contains(&second), "{}", listed.text);

    // The first removed: the second is where sends without `from` go; the last stays.
    let gone = rig
        .app
        .call(
            "DELETE",
            &format!("{t}/numbers/{}", rig.number),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.body["tenant"]["phoneNumberId"], second.as_str());
    assert_eq!(ids(&gone.body["tenant"]), std::slice::from_ref(&second));
    let last = rig
        .app
        .call(
            "DELETE",
            &format!("{t}/numbers/{second}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(last.status, 409, "{}", last.text);
    // The removed number is no longer routed to this tenant, and another may take it.
    assert_eq!(
        add(&rig, &other.id, json!({"phoneNumberId": rig.number}))
            .await
            .status,
        201
    );
}

/// A tenant stored before several numbers (only `phoneNumberId`) is routed and shown with
/// its one number, and can get a second.
#[tokio::test]
async fn a_tenant_from_before_numbers_keeps_working() {
    let rig = rig(None).await;
    let tenants = rig.app.db.collection::<Document>("tenants");
    let id = ObjectId::parse_str(&rig.tenant).expect("id");
    tenants
        .update_one(doc! {"_id": id}, doc! {"$unset": {"numbers": ""}})
        .await
        .expect("as before");
    let shown = rig.api("GET", "", None).await;
    assert_eq!(
        ids(&shown.body["tenant"]),
        std::slice::from_ref(&rig.number)
    );
    answer_everything(&rig.app, &rig.tenant, &rig.key).await;
    rig.app.state.tenants_by_number.invalidate(&rig.number);
    hi(&rig, &rig.number, "34600111222").await;
    let second = e2e::phone_number_id();
    let r = add(&rig, &rig.tenant, json!({"phoneNumberId": second})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(ids(&r.body["tenant"]), [rig.number.clone(), second]);
}
