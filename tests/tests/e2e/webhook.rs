//! The webhook end to end: signature, tenant routing, storage, the engine's branching,
//! exactly-once replies on the send queue, statuses, and the Lambda entry path.

use std::collections::HashMap;

use e2e::{
    APP_SECRET, TestApp, VERIFY_TOKEN, fixture, invoke_lambda, lambda_body, random_hex, spawn_app,
};
use mongodb::bson::doc;
use serde_json::{Value, json};

struct Bot {
    tenant: String,
    number: String,
}

impl Bot {
    /// A customer message from `events/meta/<fixture>.json` to this bot's number, with a
    /// fresh wamid, signed and posted.
    async fn say(
        &self,
        app: &TestApp,
        fixture: &str,
        pairs: &[(&'static str, &str)],
    ) -> e2e::Reply {
        let id = wamid();
        let mut v = vars(&[("PHONE_NUMBER_ID", &self.number), ("WAMID", &id)]);
        v.extend(pairs.iter().map(|(k, val)| (*k, val.to_string())));
        app.webhook(&meta(fixture, &v)).await
    }
}

fn vars(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
    let mut v: HashMap<&'static str, String> =
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
    v.entry("CUSTOMER_NAME").or_insert_with(|| "Ana".into());
    v.entry("FROM").or_insert_with(|| "34600111222".into());
    v.entry("TIMESTAMP").or_insert_with(|| "1795341600".into());
    v.entry("TEXT").or_insert_with(|| "hi".into());
    v.entry("PAYLOAD_ID").or_insert_with(|| "none".into());
    v.entry("OUT_WAMID").or_insert_with(|| "wamid.out".into());
    v
}

/// A Meta payload from `events/meta/`, compacted (the signature covers the exact bytes).
fn meta(name: &str, v: &HashMap<&'static str, String>) -> String {
    let text = fixture(&format!("meta/{name}.json"), v);
    serde_json::from_str::<Value>(&text)
        .expect("fixture json")
        .to_string()
}

fn wamid() -> String {
    format!("wamid.HBgL{}", random_hex(12))
}

async fn api(app: &TestApp, key: &str, method: &str, path: &str, body: Value) -> Value {
    let r = app
        .call(method, path, Some(key), Some(&body.to_string()))
        .await;
    assert!(r.status < 300, "{method} {path}: {}", r.text);
    r.body
}

/// menu (3 buttons: Prices → prices, Hours → hours, Other → nothing), rules hi/hello →
/// menu, "price" → prices, fallback.
async fn bot(app: &TestApp, name: &str) -> Bot {
    let e2e::TestTenant {
        id: tenant,
        key,
        number,
        ..
    } = app.register_tenant(name).await;
    let t = format!("/tenants/{tenant}/templates");
    api(
        app,
        &key,
        "POST",
        &t,
        json!({"key": "prices", "body": format!("{name}: coffee 3€")}),
    )
    .await;
    api(
        app,
        &key,
        "POST",
        &t,
        json!({"key": "hours", "body": "Open 9-17, {{customer_name}}"}),
    )
    .await;
    api(
        app,
        &key,
        "POST",
        &t,
        json!({"key": "fallback", "body": format!("{name}: sorry?")}),
    )
    .await;
    api(app, &key, "POST", &t, json!({"key": "menu", "body": "Hi {{customer_name}}, pick one", "kind": "interactive_button", "buttons": [
        {"id": "b_prices", "title": "Prices", "nextTemplateKey": "prices", "nextState": "browsing"},
        {"id": "b_hours", "title": "Hours", "nextTemplateKey": "hours"},
        {"id": "b_other", "title": "Other"}]})).await;
    api(app, &key, "POST", &format!("/tenants/{tenant}/flows"), json!({
        "flows": [
            {"id": "greet", "match": {"type": "equals", "values": ["hi", "hello"]}, "action": {"type": "send_template", "templateKey": "menu", "setState": "menu"}},
            {"id": "price", "match": {"type": "contains", "values": ["price"]}, "action": {"type": "send_template", "templateKey": "prices"}}],
        "fallbackTemplateKey": "fallback"})).await;
    Bot { tenant, number }
}

/// What the sender records after Graph accepted the message.
async fn sent(
    app: &TestApp,
    m: &shared::message::MessageDoc,
    wamid: &str,
) -> Result<(), shared::ApiError> {
    let finish = shared::delivery::Finish {
        id: m.id,
        tenant_id: m.tenant_id,
        attempt: shared::delivery::Attempt::Sent {
            wamid: wamid.to_owned(),
        },
    };
    shared::delivery::finish_batch(&app.state.store, &[finish]).await
}

async fn customer(app: &TestApp, tenant: &str, wa_id: &str) -> mongodb::bson::Document {
    let id = mongodb::bson::oid::ObjectId::parse_str(tenant).expect("id");
    app.db
        .collection::<mongodb::bson::Document>("customers")
        .find_one(doc! {"tenantId": id, "waId": wa_id})
        .await
        .expect("find")
        .expect("customer stored")
}

#[tokio::test]
async fn subscription_challenge() {
    let app = spawn_app().await;
    let url = |q: &str| format!("{}/whatsapp/webhook?{q}", app.base);
    let ok = app
        .http
        .get(url(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token",
        "",
    ] {
        let r = app.http.get(url(q)).send().await.expect("get");
        assert_eq!(r.status(), 403, "{q}");
    }
}

#[tokio::test]
async fn signatures_are_checked_before_anything_is_stored() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    let body = meta(
        "text",
        &vars(&[("PHONE_NUMBER_ID", &b.number), ("WAMID", &wamid())]),
    );
    let r = app.webhook_with(&body, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let wrong = shared::webhook::signature::sign(b"not-the-secret", body.as_bytes());
    assert_eq!(app.webhook_with(&body, Some(&wrong)).await.status, 401);
    let tampered = body.replace("\"hi\"", "\"ho\"");
    let sig = shared::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
    assert_eq!(app.webhook_with(&tampered, Some(&sig)).await.status, 401);
    assert_eq!(
        app.webhook_with(&body, Some("sha256=nothex")).await.status,
        401
    );
    assert!(app.messages(doc! {}).await.is_empty(), "nothing stored");
    assert!(app.queued_jobs().await.is_empty());

    let r = app
        .webhook("{\"object\": \"whatsapp_business_account\", \"entry\": [")
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app.webhook("{\"hello\": \"world\"}").await;
    assert_eq!(r.status, 200, "unknown shapes are acknowledged: {}", r.text);
    let r = app
        .webhook("{\"object\": \"whatsapp_business_account\", \"entry\": \"not a list\"}")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(3 * 1024 * 1024 + 10));
    let r = app.webhook(&big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    let logs = e2e::logs();
    assert!(logs.contains("webhook refused"));
    assert!(!logs.contains(APP_SECRET));
}

#[tokio::test]
async fn branching_conversation_from_rule_to_button_to_fallback() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    let from = "34600111222";
    let first = wamid();

    let r = app
        .webhook(&meta(
            "text",
            &vars(&[
                ("PHONE_NUMBER_ID", &b.number),
                ("WAMID", &first),
                ("TEXT", "Hello"),
            ]),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let jobs = app.queued_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(job["tenantId"], b.tenant.as_str());
    assert_eq!(job["to"], from);
    assert_eq!(job["idempotencyKey"], format!("auto-reply:{first}"));
    assert_eq!(
        job["content"],
        json!({"kind": "interactive_button", "text": "Hi Ana, pick one", "buttons": [
        {"id": "b_prices", "title": "Prices"}, {"id": "b_hours", "title": "Hours"}, {"id": "b_other", "title": "Other"}]})
    );
    let stored = app.messages(doc! {"direction": "OUT"}).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].get_object_id("_id").expect("id").to_hex(),
        job["messageId"].as_str().expect("messageId")
    );
    assert_eq!(stored[0].get_str("status").expect("status"), "queued");
    let c = customer(&app, &b.tenant, from).await;
    assert_eq!(c.get_str("lastTemplateKey").expect("last"), "menu");
    assert_eq!(c.get_str("state").expect("state"), "menu");
    assert_eq!(c.get_str("name").expect("name"), "Ana");
    let inbound = app.messages(doc! {"direction": "IN"}).await;
    assert_eq!(inbound[0].get_str("body").expect("body"), "Hello");
    assert_eq!(inbound[0].get_str("waMessageId").expect("wamid"), first);
    assert_eq!(inbound[0].get_str("customerWaId").expect("from"), from);

    // Tap "Prices" on the menu: its next template, its nextState.
    let tap = wamid();
    let r = app
        .webhook(&meta(
            "button_reply",
            &vars(&[
                ("PHONE_NUMBER_ID", &b.number),
                ("WAMID", &tap),
                ("PAYLOAD_ID", "b_prices"),
                ("TEXT", "Prices"),
            ]),
        ))
        .await;
    assert_eq!(r.status, 200);
    let jobs = app.queued_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0]["content"],
        json!({"kind": "text", "text": "Shop: coffee 3€"})
    );
    let c = customer(&app, &b.tenant, from).await;
    assert_eq!(
        (c.get_str("lastTemplateKey").ok(), c.get_str("state").ok()),
        (Some("prices"), Some("browsing"))
    );
    let tapped = app.messages(doc! {"waMessageId": &tap}).await;
    assert_eq!(tapped[0].get_str("type").expect("type"), "button_reply");
    assert_eq!(tapped[0].get_str("payloadId").expect("payload"), "b_prices");
    assert_eq!(tapped[0].get_str("body").expect("body"), "Prices");

    // A button with no next template: its title goes through the rules, then fallback.
    let r = b
        .say(
            &app,
            "button_reply",
            &[("PAYLOAD_ID", "b_other"), ("TEXT", "Other")],
        )
        .await;
    assert_eq!(r.status, 200);
    let jobs = app.queued_jobs().await;
    assert_eq!(jobs[0]["content"]["text"], "Shop: sorry?");
    // An unknown payload whose title matches a rule takes that rule.
    let r = b
        .say(
            &app,
            "button_legacy",
            &[("PAYLOAD_ID", "nope"), ("TEXT", "price list")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.queued_jobs().await[0]["content"]["text"],
        "Shop: coffee 3€"
    );
    // Back to the menu, then a list reply with a menu button's id branches like a tap.
    b.say(&app, "text", &[("TEXT", "hi")]).await;
    app.queued_jobs().await;
    let r = b
        .say(
            &app,
            "list_reply",
            &[("PAYLOAD_ID", "b_hours"), ("TEXT", "Hours")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.queued_jobs().await[0]["content"]["text"],
        "Open 9-17, Ana"
    );
}

#[tokio::test]
async fn every_inbound_type_is_stored_and_only_conversational_ones_get_replies() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    let cases = [
        ("text", "text", true),
        ("button_reply", "button_reply", true),
        ("list_reply", "list_reply", true),
        ("button_legacy", "button", true),
        ("image", "image", true),
        ("reaction", "reaction", false),
    ];
    for (fixture_name, kind, replies) in cases {
        let id = wamid();
        let r = app
            .webhook(&meta(
                fixture_name,
                &vars(&[
                    ("PHONE_NUMBER_ID", &b.number),
                    ("WAMID", &id),
                    ("TEXT", "zzz"),
                ]),
            ))
            .await;
        assert_eq!(r.status, 200, "{fixture_name}: {}", r.text);
        let stored = app
            .messages(doc! {"waMessageId": &id, "direction": "IN"})
            .await;
        assert_eq!(stored.len(), 1, "{fixture_name}");
        assert_eq!(stored[0].get_str("type").expect("type"), kind);
        assert!(stored[0].get_document("raw").is_ok(), "raw object kept");
        let jobs = app.queued_jobs().await;
        assert_eq!(jobs.len(), usize::from(replies), "{fixture_name}: {jobs:?}");
    }
    let reaction = app.messages(doc! {"type": "reaction"}).await;
    assert_eq!(
        reaction[0]
            .get_document("raw")
            .expect("raw")
            .get_document("reaction")
            .expect("r")
            .get_str("emoji")
            .expect("emoji"),
        "👍"
    );
}

#[tokio::test]
async fn five_concurrent_deliveries_make_one_message_and_one_reply() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    let id = wamid();
    let body = meta(
        "text",
        &vars(&[("PHONE_NUMBER_ID", &b.number), ("WAMID", &id)]),
    );
    let replies = futures::future::join_all((0..5).map(|_| app.webhook(&body))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(app.messages(doc! {"direction": "IN"}).await.len(), 1);
    assert_eq!(app.messages(doc! {"direction": "OUT"}).await.len(), 1);
    assert_eq!(app.queued_jobs().await.len(), 1);
    // Meta retrying later changes nothing either.
    assert_eq!(app.webhook(&body).await.status, 200);
    assert!(app.queued_jobs().await.is_empty());
}

#[tokio::test]
async fn exactly_once_holds_with_redis_down() {
    let aws = e2e::sdk_config().await;
    let mut config = e2e::test_config(&aws).await;
    // Nothing listens on port 1: every Redis call fails at once.
    config.redis_url = Some(shared::secret::Secret::new("redis://127.0.0.1:1"));
    let db = e2e::fresh_database().await;
    let app = e2e::serve(
        shared::AppState::new(config, &shared::aws::Aws::from_env(), db.clone()),
        db,
        aws,
    )
    .await;
    let b = bot(&app, "Shop").await;
    let id = wamid();
    let body = meta(
        "text",
        &vars(&[("PHONE_NUMBER_ID", &b.number), ("WAMID", &id)]),
    );
    let replies = futures::future::join_all((0..5).map(|_| app.webhook(&body))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(app.messages(doc! {"direction": "IN"}).await.len(), 1);
    assert_eq!(app.messages(doc! {"direction": "OUT"}).await.len(), 1);
    assert_eq!(app.queued_jobs().await.len(), 1);
    assert!(e2e::logs().contains("redis unavailable"));
}

#[tokio::test]
async fn a_failed_enqueue_is_a_5xx_and_the_retry_completes_it_once() {
    let (down, up) = e2e::queue_outage_then_recovery().await;
    let b = bot(&down, "Shop").await;
    let id = wamid();
    let body = meta(
        "text",
        &vars(&[("PHONE_NUMBER_ID", &b.number), ("WAMID", &id)]),
    );
    let r = down.webhook(&body).await;
    assert_eq!(r.status, 503, "Meta must retry: {}", r.text);
    let out = down.messages(doc! {"direction": "OUT"}).await;
    assert_eq!(out.len(), 1, "the reply is stored");
    assert!(!out[0].get_bool("enqueued").expect("flag"));

    // Meta retries against a healthy queue: the stored reply is enqueued, not re-decided.
    let r = up.webhook(&body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let jobs = up.queued_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0]["messageId"],
        out[0].get_object_id("_id").expect("id").to_hex()
    );
    let out = up.messages(doc! {"direction": "OUT"}).await;
    assert_eq!(out.len(), 1);
    assert!(out[0].get_bool("enqueued").expect("flag"));
    assert_eq!(up.webhook(&body).await.status, 200);
    assert!(up.queued_jobs().await.is_empty(), "no second job");
}

#[tokio::test]
async fn statuses_only_move_forward_even_without_messages() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    b.say(&app, "text", &[]).await;
    let job = app.queued_jobs().await.remove(0);
    // What the sender records after Graph accepts the message.
    let out_wamid = wamid();
    let tenant = shared::ids::TenantId::parse(&b.tenant).expect("id");
    let stored = shared::message::find_by_key(
        &app.state.store,
        &tenant,
        job["idempotencyKey"].as_str().expect("key"),
    )
    .await
    .expect("find")
    .expect("stored");
    sent(&app, &stored, &out_wamid).await.expect("sent");
    let status_of = || async {
        let m = app.messages(doc! {"waMessageId": &out_wamid}).await;
        m[0].get_str("status").expect("status").to_owned()
    };
    let v = |ts: &str| {
        vars(&[
            ("PHONE_NUMBER_ID", &b.number),
            ("OUT_WAMID", &out_wamid),
            ("TIMESTAMP", ts),
        ])
    };
    for (name, ts, expect) in [
        ("status_read", "1795341700", "read"),
        ("status_delivered", "1795341650", "read"),
        ("status_sent", "1795341610", "read"),
        ("status_failed", "1795341800", "read"),
    ] {
        let r = app.webhook(&meta(name, &v(ts))).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(status_of().await, expect, "after {name}");
    }

    // Another message: delivered (statuses only, no contacts) then failed is ignored after delivered.
    b.say(&app, "text", &[]).await;
    let job = app.queued_jobs().await.remove(0);
    let second = shared::message::find_by_key(
        &app.state.store,
        &tenant,
        job["idempotencyKey"].as_str().expect("key"),
    )
    .await
    .expect("find")
    .expect("stored");
    let second_wamid = wamid();
    sent(&app, &second, &second_wamid).await.expect("sent");
    let r = app
        .webhook(&meta(
            "status_failed",
            &vars(&[("PHONE_NUMBER_ID", &b.number), ("OUT_WAMID", &second_wamid)]),
        ))
        .await;
    assert_eq!(r.status, 200);
    let failed = app.messages(doc! {"waMessageId": &second_wamid}).await;
    assert_eq!(failed[0].get_str("status").expect("status"), "failed");
    let error = failed[0].get_document("lastError").expect("error recorded");
    assert_eq!(error.get_str("code").expect("code"), "131026");
    assert_eq!(
        error.get_str("title").expect("title"),
        "Message undeliverable"
    );
    assert_eq!(
        error.get_str("details").expect("details"),
        "Message Undeliverable."
    );
    let r = app
        .webhook(&meta(
            "statuses_only",
            &vars(&[("PHONE_NUMBER_ID", &b.number), ("OUT_WAMID", &second_wamid)]),
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["statuses"], 2);
    let still = app.messages(doc! {"waMessageId": &second_wamid}).await;
    assert_eq!(
        still[0].get_str("status").expect("status"),
        "failed",
        "terminal"
    );
    // Statuses for messages this backend never sent are ignored.
    let r = app
        .webhook(&meta(
            "status_read",
            &vars(&[
                ("PHONE_NUMBER_ID", &b.number),
                ("OUT_WAMID", "wamid.unknown"),
            ]),
        ))
        .await;
    assert_eq!(r.status, 200);
}

/// Meta reports 131047 (the 24-hour window) late, in a `failed` status: the message reads
/// like the sender's own refusal, with Meta's words kept as the details.
#[tokio::test]
async fn a_late_window_failure_reads_as_the_24_hour_window() {
    let app = spawn_app().await;
    let b = bot(&app, "Window").await;
    b.say(&app, "text", &[]).await;
    let job = app.queued_jobs().await.remove(0);
    let tenant = shared::ids::TenantId::parse(&b.tenant).expect("id");
    let stored = shared::message::find_by_key(
        &app.state.store,
        &tenant,
        job["idempotencyKey"].as_str().expect("key"),
    )
    .await
    .expect("find")
    .expect("stored");
    let out_wamid = wamid();
    sent(&app, &stored, &out_wamid).await.expect("sent");
    let r = app
        .webhook(&meta(
            "status_failed_window",
            &vars(&[
                ("PHONE_NUMBER_ID", &b.number),
                ("OUT_WAMID", &out_wamid),
                ("TIMESTAMP", "1795341800"),
            ]),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = app.messages(doc! {"waMessageId": &out_wamid}).await;
    assert_eq!(m[0].get_str("status").expect("status"), "failed");
    let error = m[0].get_document("lastError").expect("error");
    assert_eq!(error.get_str("code").expect("code"), "131047");
    assert!(
        error
            .get_str("title")
            .expect("title")
            .starts_with("Outside the 24-hour customer service window"),
        "{error}"
    );
    assert!(
        error
            .get_str("details")
            .expect("details")
            .contains("more than 24 hours"),
        "{error}"
    );
}

#[tokio::test]
async fn each_number_routes_to_its_own_tenant_and_flow() {
    let app = spawn_app().await;
    let a = bot(&app, "Alpha").await;
    let b = bot(&app, "Beta").await;
    let (wa, wb) = (wamid(), wamid());
    let r = app
        .webhook(&meta(
            "two_tenants",
            &vars(&[
                ("PHONE_NUMBER_ID", &a.number),
                ("PHONE_NUMBER_ID_B", &b.number),
                ("WAMID", &wa),
                ("WAMID_B", &wb),
                ("TEXT", "what is the price?"),
            ]),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["replies"], 2);
    let mut jobs = app.queued_jobs().await;
    jobs.sort_by_key(|j| j["content"]["text"].as_str().map(str::to_owned));
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (
            jobs[0]["tenantId"].as_str(),
            jobs[0]["content"]["text"].as_str()
        ),
        (Some(a.tenant.as_str()), Some("Alpha: coffee 3€"))
    );
    assert_eq!(
        (
            jobs[1]["tenantId"].as_str(),
            jobs[1]["content"]["text"].as_str()
        ),
        (Some(b.tenant.as_str()), Some("Beta: coffee 3€"))
    );
    let in_a = app.messages(doc! {"waMessageId": &wa}).await;
    assert_eq!(
        in_a[0].get_object_id("tenantId").expect("t").to_hex(),
        a.tenant
    );

    // An unknown number is acknowledged and stores nothing.
    let before = app.messages(doc! {}).await.len();
    let r = app
        .webhook(&meta("unknown_number", &vars(&[("WAMID", &wamid())])))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.messages(doc! {}).await.len(), before);
    assert!(app.queued_jobs().await.is_empty());
}

#[tokio::test]
async fn unsigned_webhooks_only_in_development() {
    let aws = e2e::sdk_config().await;
    for (env, expected) in [
        (shared::config::AppEnv::Development, 200),
        (shared::config::AppEnv::Production, 503),
    ] {
        let mut config = e2e::test_config(&aws).await;
        config.app_secret = None;
        config.app_env = env;
        let db = e2e::fresh_database().await;
        let app = e2e::serve(
            shared::AppState::new(config, &shared::aws::Aws::from_env(), db.clone()),
            db,
            aws.clone(),
        )
        .await;
        let r = app
            .webhook_with(
                "{\"object\": \"whatsapp_business_account\", \"entry\": []}",
                None,
            )
            .await;
        assert_eq!(r.status, expected, "{env:?}: {}", r.text);
    }
}

#[tokio::test]
async fn meta_fixtures_replay_through_the_lambda_entry_path() {
    let app = spawn_app().await;
    let b = bot(&app, "Shop").await;
    let router = || webhook::router(app.state.clone());
    let wrap = |fixture_name: &str, body: &str, signature: &str| {
        let escaped = serde_json::to_string(body).expect("string");
        let v = HashMap::from([
            ("BODY", escaped[1..escaped.len() - 1].to_owned()),
            ("SIGNATURE", signature.to_owned()),
        ]);
        fixture(&format!("webhook/{fixture_name}.json"), &v)
    };
    let verify = invoke_lambda(
        router(),
        &fixture(
            "webhook/verify.json",
            &HashMap::from([("VERIFY_TOKEN", VERIFY_TOKEN.to_owned())]),
        ),
    )
    .await;
    assert_eq!(verify["statusCode"], 200, "{verify}");
    assert_eq!(verify["body"], "1158201444");

    for name in [
        "text",
        "button_reply",
        "list_reply",
        "button_legacy",
        "image",
        "reaction",
        "status_sent",
        "status_delivered",
        "status_read",
        "status_failed",
        "statuses_only",
        "unknown_number",
    ] {
        let body = meta(
            name,
            &vars(&[("PHONE_NUMBER_ID", &b.number), ("WAMID", &wamid())]),
        );
        let sig = shared::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
        let out = invoke_lambda(router(), &wrap("post-signed", &body, &sig)).await;
        assert_eq!(out["statusCode"], 200, "{name}: {out}");
        assert_eq!(lambda_body(&out)["ok"], true);
        let unsigned = invoke_lambda(router(), &wrap("post-unsigned", &body, "")).await;
        assert_eq!(unsigned["statusCode"], 401, "{name}");
        let bad = invoke_lambda(
            router(),
            &wrap(
                "post-signed",
                &body,
                "sha256=0000000000000000000000000000000000000000000000000000000000000000",
            ),
        )
        .await;
        assert_eq!(bad["statusCode"], 401, "{name}");
    }
    let two = meta(
        "two_tenants",
        &vars(&[
            ("PHONE_NUMBER_ID", &b.number),
            ("PHONE_NUMBER_ID_B", "55555"),
            ("WAMID", &wamid()),
            ("WAMID_B", &wamid()),
        ]),
    );
    let sig = shared::webhook::signature::sign(APP_SECRET.as_bytes(), two.as_bytes());
    let out = invoke_lambda(router(), &wrap("post-signed", &two, &sig)).await;
    assert_eq!(out["statusCode"], 200);
    // text, button_reply, list_reply, legacy button, image, the two-tenant text: six
    // conversational inbound messages, each answered once; the reaction is stored only.
    assert_eq!(app.messages(doc! {"direction": "IN"}).await.len(), 7);
    assert_eq!(app.queued_jobs().await.len(), 6);
}
