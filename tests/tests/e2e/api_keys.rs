//! Labelled API keys (created, listed, deleted → refused at once) and a tenant's status
//! (disabled: its keys 403, sends 409 `tenant_disabled`, customers heard but not answered,
//! queued messages held; active again: released and delivered).

use std::{collections::HashMap, time::Duration};

use e2e::{ADMIN_TOKEN, TestApp, TestTenant, fixture, random_hex, spawn_app};
use mongodb::bson::{Document, doc, oid::ObjectId};
use serde_json::{Value, json};

fn keys_path(t: &TestTenant) -> String {
    format!("/tenants/{}/api-keys", t.id)
}

async fn create_key(app: &TestApp, t: &TestTenant, label: &str) -> (String, Value) {
    let r = app
        .post(&keys_path(t), ADMIN_TOKEN, &json!({ "label": label }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["apiKey"].as_str().expect("apiKey").to_owned();
    (secret, r.body["key"].clone())
}

async fn delete_key(app: &TestApp, t: &TestTenant, id: &str) -> e2e::Reply {
    app.call(
        "DELETE",
        &format!("{}/{id}", keys_path(t)),
        Some(ADMIN_TOKEN),
        None,
    )
    .await
}

async fn status(app: &TestApp, t: &TestTenant, to: &str) -> Value {
    let r = app
        .patch(
            &format!("/tenants/{}", t.id),
            ADMIN_TOKEN,
            &json!({ "status": to }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn keys_are_labelled_shown_once_listed_and_refused_at_once_when_deleted() {
    let app = spawn_app().await;
    let t = app.register_tenant("Keys").await;
    let (crm, view) = create_key(&app, &t, "CRM").await;
    assert!(crm.starts_with("wak_"));
    assert_eq!(view["label"], "CRM");
    assert!(crm.starts_with(view["prefix"].as_str().expect("prefix")));
    assert_eq!(view["prefix"].as_str().map(str::len), Some(12));

    // Both keys work; the list shows labels and prefixes, never a key or a hash.
    let own = app.get(&format!("/tenants/{}", t.id), &crm).await;
    assert_eq!(own.status, 200, "{}", own.text);
    let listed = app.get(&keys_path(&t), &t.key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let keys = listed.body["apiKeys"].as_array().expect("apiKeys").clone();
    let labels: Vec<&str> = keys.iter().filter_map(|k| k["label"].as_str()).collect();
    assert_eq!(labels, ["Registration key", "CRM"]);
    assert!(!listed.text.contains(&crm) && !listed.text.contains(&t.key));
    assert!(!listed.text.contains("hash"));
    let crm_listed = &keys[1];
    assert!(crm_listed["lastUsedAt"].is_string(), "{crm_listed}");
    assert!(crm_listed["createdAt"].is_string());

    // Only the admin manages keys.
    let by_tenant = app
        .post(&keys_path(&t), &t.key, &json!({"label": "x"}))
        .await;
    assert_eq!(by_tenant.status, 403, "{}", by_tenant.text);
    let other = app.register_tenant("Other").await;
    let foreign = app.get(&keys_path(&t), &other.key).await;
    assert_eq!(foreign.status, 403);

    let id = view["id"].as_str().expect("id");
    let deleted = delete_key(&app, &t, id).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    // Accepted a moment ago (cached), refused now.
    let refused = app.get(&format!("/tenants/{}", t.id), &crm).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let still = app.get(&format!("/tenants/{}", t.id), &t.key).await;
    assert_eq!(still.status, 200);
    let again = delete_key(&app, &t, id).await;
    assert_eq!(again.status, 404, "{}", again.text);
    let left = app.get(&keys_path(&t), ADMIN_TOKEN).await;
    assert_eq!(left.body["apiKeys"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn key_requests_name_the_invalid_field() {
    let app = spawn_app().await;
    let t = app.register_tenant("Bad").await;
    for (body, field) in [
        (json!({}), "label"),
        (json!({"label": ""}), "label"),
        (json!({"label": "k".repeat(61)}), "label"),
    ] {
        let r = app.post(&keys_path(&t), ADMIN_TOKEN, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field);
    }
    let r = delete_key(&app, &t, "not-an-id").await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .patch(
            &format!("/tenants/{}", t.id),
            ADMIN_TOKEN,
            &json!({"status": "paused"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["field"], "status");
    // At most 20 keys (the registration key and 19 more).
    for i in 0..19 {
        create_key(&app, &t, &format!("k{i}")).await;
    }
    let full = app
        .post(&keys_path(&t), ADMIN_TOKEN, &json!({"label": "one more"}))
        .await;
    assert_eq!(full.status, 409, "{}", full.text);
}

/// A tenant registered before labelled keys (its key as `apiKeyHash`) keeps working: the
/// key moves into `apiKeys` on first use and can then be listed and deleted.
#[tokio::test]
async fn a_registration_key_from_before_labelled_keys_keeps_working() {
    let app = spawn_app().await;
    let t = app.register_tenant("Legacy").await;
    let tenants = app.db.collection::<Document>("tenants");
    let oid = ObjectId::parse_str(&t.id).expect("id");
    let hash = shared::api_key::hash_key(&t.key);
    tenants
        .update_one(
            doc! {"_id": oid},
            doc! {"$set": {"apiKeyHash": &hash}, "$unset": {"apiKeys": ""}},
        )
        .await
        .expect("as before");
    let r = app.get(&format!("/tenants/{}", t.id), &t.key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = tenants
        .find_one(doc! {"_id": oid})
        .await
        .expect("find")
        .expect("tenant");
    assert!(!stored.contains_key("apiKeyHash"));
    let listed = app.get(&keys_path(&t), ADMIN_TOKEN).await;
    assert_eq!(listed.body["apiKeys"][0]["label"], "Registration key");
    assert!(listed.body["apiKeys"][0]["lastUsedAt"].is_string());
    // A second tenant registers (the old unique index on apiKeyHash is gone).
    app.register_tenant("After").await;
}

fn inbound(number: &str, from: &str, text: &str) -> String {
    let mut v: HashMap<&str, String> = HashMap::new();
    v.insert("PHONE_NUMBER_ID", number.to_owned());
    v.insert("WAMID", format!("wamid.HBgL{}", random_hex(12)));
    v.insert("CUSTOMER_NAME", "Ana".into());
    v.insert("FROM", from.to_owned());
    v.insert("TEXT", text.to_owned());
    let text = fixture("meta/text.json", &v);
    serde_json::from_str::<Value>(&text)
        .expect("fixture")
        .to_string()
}

#[tokio::test]
async fn a_disabled_tenant_is_refused_heard_not_answered_and_holds_its_queue() {
    let app = spawn_app().await;
    let t = app.register_tenant("Paused").await;
    let r = app
        .create_template(&t, &json!({"key": "hello", "body": "Hello!"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{}/flows", t.id),
            &t.key,
            &json!({"flows": [], "fallbackTemplateKey": "hello"}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    app.customers_wrote(&t.id, &["34600123456"]).await;
    // Accepted while active: queued.
    let queued = app
        .send(
            &t.id,
            &t.key,
            &json!({"to": "34600123456", "text": "before"}),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let jobs = app.queued_jobs().await;
    assert_eq!(jobs.len(), 1);

    let body = status(&app, &t, "disabled").await;
    assert_eq!(body["tenant"]["status"], "disabled");
    let by_key = app
        .send(&t.id, &t.key, &json!({"to": "34600123456", "text": "no"}))
        .await;
    assert_eq!(by_key.status, 403, "{}", by_key.text);
    assert_eq!(by_key.body["code"], "tenant_disabled");
    let listed = app.get(&keys_path(&t), &t.key).await;
    assert_eq!(listed.status, 403);
    let by_admin = app
        .send(
            &t.id,
            ADMIN_TOKEN,
            &json!({"to": "34600123456", "text": "no"}),
        )
        .await;
    assert_eq!(by_admin.status, 409, "{}", by_admin.text);
    assert_eq!(by_admin.body["code"], "tenant_disabled");

    // The customer is heard, not answered.
    let r = app.webhook(&inbound(&t.number, "34600123456", "hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = ObjectId::parse_str(&t.id).expect("id");
    let inbound_stored = app
        .messages(doc! {"tenantId": oid, "direction": "IN"})
        .await;
    assert_eq!(inbound_stored.len(), 1);
    assert!(app.queued_jobs().await.is_empty(), "no reply queued");

    // The sender holds what was queued before.
    let sender = shared::sender::Sender::new(app.state.clone());
    let event = json!({"Records": [{
        "messageId": "m1", "body": jobs[0].to_string(), "attributes": {},
        "messageAttributes": {},
    }]});
    let failures = sender
        .handle(serde_json::from_value(event).expect("event"))
        .await;
    assert!(failures.batch_item_failures.is_empty());
    let held = app
        .messages(doc! {"tenantId": oid, "direction": "OUT"})
        .await;
    assert_eq!(held[0].get_str("status"), Ok("held"), "{:?}", held[0]);
    assert_eq!(
        held[0]
            .get_document("lastError")
            .and_then(|e| e.get_str("code")),
        Ok("tenant_disabled")
    );

    // Active again: the key works, the held message goes back on the queue, and the
    // next customer message is answered.
    let body = status(&app, &t, "active").await;
    assert_eq!(body["released"], 1);
    let released = app.queued_jobs().await;
    assert_eq!(released.len(), 1, "{released:?}");
    let ok = app.get(&keys_path(&t), &t.key).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let r = app.webhook(&inbound(&t.number, "34600123456", "hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.queued_jobs().await.len(), 1, "answered again");
}
