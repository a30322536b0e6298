//! The send API: validation, idempotency (409 with the original id, exactly one 202 under
//! concurrency), outbox before queue, 503 + re-enqueue on a queue failure, the message log.

use e2e::{ADMIN_TOKEN, TestApp, spawn_app, spawn_with};
use mongodb::bson::doc;
use serde_json::{Value, json};

async fn send(app: &TestApp, tenant: &str, key: &str, body: Value) -> e2e::Reply {
    app.send(tenant, key, &body).await
}

async fn send_template(app: &TestApp, tenant: &str, key: &str, body: Value) -> e2e::Reply {
    app.call(
        "POST",
        &format!("/tenants/{tenant}/send/template"),
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_text_send_is_stored_then_queued_and_listed() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    app.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let r = send(&app, &tenant, &key, json!({"to": "+34 600111222".replace(' ', ""), "text": "Your order shipped", "idempotency_key": "order-42"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["idempotency_key"], "order-42");
    let id = r.body["messageId"].as_str().expect("id").to_owned();

    let jobs = app.queued_jobs().await;
    assert_eq!(
        jobs,
        vec![
            json!({"tenantId": tenant, "messageId": id, "to": "34600111222",
        "content": {"kind": "text", "text": "Your order shipped"}, "idempotencyKey": "api:order-42"})
        ]
    );
    let stored = app.messages(doc! {}).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].get_str("status").expect("status"), "queued");
    assert_eq!(
        stored[0].get_str("customerWaId").expect("to"),
        "34600111222"
    );

    let generated = send(
        &app,
        &tenant,
        &key,
        json!({"to": "34600111223", "text": "No key"}),
    )
    .await;
    assert_eq!(generated.status, 202);
    assert!(
        generated.body["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("gen_"))
    );

    let log = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/messages"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let msgs = log.body["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["id"], id.as_str(), "newest first");
    assert_eq!(msgs[1]["status"], "queued");
    assert_eq!(msgs[1]["direction"], "OUT");
    assert_eq!(msgs[1]["attempts"], 0);
    assert_eq!(msgs[1]["idempotencyKey"], "order-42");
    let filtered = app
        .call(
            "GET",
            &format!(
                "/tenants/{tenant}/messages?to=%2B34600111223&direction=out&status=queued&limit=1"
            ),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(filtered.status, 200, "{}", filtered.text);
    assert_eq!(filtered.body["messages"].as_array().map(Vec::len), Some(1));
    let next = filtered.body["nextBefore"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let page = app
        .call(
            "GET",
            &format!(
                "/tenants/{tenant}/messages?before={}",
                next.replace('+', "%2B")
            ),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        page.body["messages"].as_array().map(Vec::len),
        Some(1),
        "{}",
        page.text
    );
    for (q, field) in [
        ("status=lost", "status"),
        ("direction=up", "direction"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("before=yesterday", "before"),
        ("to=12", "to"),
    ] {
        let r = app
            .call(
                "GET",
                &format!("/tenants/{tenant}/messages?{q}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(r.status, 422, "{q}");
        assert_eq!(r.body["field"], field);
    }
}

#[tokio::test]
async fn invalid_sends_are_refused_and_nothing_is_queued() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    app.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let e2e::TestTenant { key: other_key, .. } = app.register_tenant("Other").await;
    for (body, field) in [
        (json!({"to": "123", "text": "x"}), "to"),
        (json!({"to": "+34 600 111 222", "text": "x"}), "to"),
        (json!({"to": "34600111222", "text": ""}), "text"),
        (
            json!({"to": "34600111222", "text": "x".repeat(4097)}),
            "text",
        ),
        (json!({"to": "34600111222"}), "text"),
        (
            json!({"to": "34600111222", "text": "x", "idempotency_key": "has space"}),
            "idempotency_key",
        ),
        (json!({"to": 34600111222_u64, "text": "x"}), "to"),
    ] {
        let r = send(&app, &tenant, &key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    let r = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/send"),
            Some(&key),
            Some("{\"to\":"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = send(
        &app,
        &tenant,
        &other_key,
        json!({"to": "34600111222", "text": "x"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        &app,
        &tenant,
        "nope",
        json!({"to": "34600111222", "text": "x"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        send(
            &app,
            &tenant,
            &key,
            json!({"to": "34600111222", "text": "x".repeat(4096)})
        )
        .await
        .status,
        202
    );
    assert_eq!(app.queued_jobs().await.len(), 1, "only the valid one");
}

#[tokio::test]
async fn a_reused_key_is_409_with_the_original_message() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    app.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let body = json!({"to": "34600111222", "text": "OTP 1234", "idempotency_key": "otp-1"});
    let first = send(&app, &tenant, &key, body.clone()).await;
    assert_eq!(first.status, 202);
    let again = send(&app, &tenant, &key, body.clone()).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(
        again.body,
        json!({"error": "Conflict", "message": "Request with the given idempotency_key already processed", "messageId": first.body["messageId"]})
    );
    // Keys are per tenant.
    let e2e::TestTenant {
        id: other,
        key: other_key,
        ..
    } = app.register_tenant("Other").await;
    app.customers_wrote(&other, &["34600111222", "34600111223"])
        .await;
    assert_eq!(send(&app, &other, &other_key, body).await.status, 202);
    assert_eq!(app.queued_jobs().await.len(), 2);
}

#[tokio::test]
async fn ten_concurrent_identical_sends_make_one_message() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    app.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let body = json!({"to": "34600111222", "text": "Once", "idempotency_key": "burst"});
    let replies =
        futures::future::join_all((0..10).map(|_| send(&app, &tenant, &key, body.clone()))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [202, 409, 409, 409, 409, 409, 409, 409, 409, 409],
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(app.messages(doc! {}).await.len(), 1);
    assert_eq!(app.queued_jobs().await.len(), 1);
}

#[tokio::test]
async fn a_queue_failure_is_503_and_the_same_key_re_enqueues() {
    let (down, up) = e2e::queue_outage_then_recovery().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = down.register_tenant("Shop").await;
    down.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let body = json!({"to": "34600111222", "text": "Important", "idempotency_key": "k1"});
    let r = send(&down, &tenant, &key, body.clone()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    let stored = down.messages(doc! {}).await;
    assert_eq!(stored.len(), 1, "stored before enqueueing");
    assert!(!stored[0].get_bool("enqueued").expect("flag"));

    let r = send(&up, &tenant, &key, body.clone()).await;
    assert_eq!(
        r.status, 202,
        "the retry is accepted, not a 409: {}",
        r.text
    );
    assert_eq!(
        r.body["messageId"],
        stored[0].get_object_id("_id").expect("id").to_hex()
    );
    assert_eq!(up.queued_jobs().await.len(), 1);
    assert_eq!(
        send(&up, &tenant, &key, body).await.status,
        409,
        "now it is done"
    );
}

#[tokio::test]
async fn template_sends_render_variables_and_keep_buttons() {
    let app = spawn_with(|_| {}).await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    app.customers_wrote(&tenant, &["34600111222", "34600111223"])
        .await;
    let t = format!("/tenants/{tenant}/templates");
    for body in [
        json!({"key": "shipped", "body": "Hi {{name}}, order {{order_id}} ships {{when}}."}),
        json!({"key": "details", "body": "Details for you"}),
        json!({"key": "survey", "body": "Rate us, {{name}}", "kind": "interactive_button", "buttons": [
            {"id": "good", "title": "Good", "nextTemplateKey": "details"}, {"id": "bad", "title": "Bad"}]}),
        json!({"key": "old", "body": "Old", "isActive": false}),
    ] {
        assert_eq!(
            app.call("POST", &t, Some(&key), Some(&body.to_string()))
                .await
                .status,
            201
        );
    }
    let r = send_template(&app, &tenant, &key, json!({"to": "34600111222", "templateKey": "shipped", "variables": {"name": "Ana", "order_id": 42, "when": "today"}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = app.queued_jobs().await.remove(0);
    assert_eq!(
        job["content"],
        json!({"kind": "text", "text": "Hi Ana, order 42 ships today."})
    );

    let r = send_template(
        &app,
        &tenant,
        &key,
        json!({"to": "34600111222", "templateKey": "shipped", "variables": {"name": "Ana"}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["field"], "variables");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("order_id") && m.contains("when") && !m.contains("name"))
    );
    let r = send_template(&app, &tenant, &key, json!({"to": "34600111222", "templateKey": "shipped", "variables": {"name": {"x": 1}, "order_id": 1, "when": "x"}})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        send_template(
            &app,
            &tenant,
            &key,
            json!({"to": "34600111222", "templateKey": "missing"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        send_template(
            &app,
            &tenant,
            &key,
            json!({"to": "34600111222", "templateKey": "old"})
        )
        .await
        .status,
        404
    );

    // Interactive templates stay interactive, and a tap on them branches.
    let r = send_template(&app, &tenant, &key, json!({"to": "34600111222", "templateKey": "survey", "variables": {"name": "Ana"}, "idempotency_key": "survey-1"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = app.queued_jobs().await.remove(0);
    assert_eq!(
        job["content"],
        json!({"kind": "interactive_button", "text": "Rate us, Ana", "buttons": [{"id": "good", "title": "Good"}, {"id": "bad", "title": "Bad"}]})
    );
    let tenant_id = mongodb::bson::oid::ObjectId::parse_str(&tenant).expect("id");
    let customer = app
        .db
        .collection::<mongodb::bson::Document>("customers")
        .find_one(doc! {"tenantId": tenant_id, "waId": "34600111222"})
        .await
        .expect("find")
        .expect("customer");
    assert_eq!(customer.get_str("lastTemplateKey").expect("last"), "survey");

    let number: String = {
        let t = app
            .call(
                "GET",
                &format!("/tenants/{tenant}"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        t.body["tenant"]["phoneNumberId"]
            .as_str()
            .expect("number")
            .to_owned()
    };
    let tap = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": number},
        "messages": [{"from": "34600111222", "id": "wamid.tap1", "timestamp": "1795341600", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "good", "title": "Good"}}}]}}]}]});
    let r = app.webhook(&tap.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.queued_jobs().await[0]["content"]["text"],
        "Details for you"
    );
}
