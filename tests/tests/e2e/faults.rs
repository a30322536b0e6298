//! The ways an accepted message could be lost or sent twice, one test each: a delivery cut
//! off mid-work, a stored reply that never reached the queue, a number registered after its
//! first webhook, a status that overtakes the send, the sender's edge cases, the local
//! gateway's timeouts, and the smaller holes (3 MB webhooks, mock tokens in production).

use std::time::{Duration, Instant};

use e2e::faults::FaultRig;
use mongodb::bson::doc;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path_regex},
};

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(std::env::var("REDIS_URL").expect("REDIS_URL"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// What a function cut off at its timeout leaves behind: its lock, still `processing`.
async fn leave_lock(key: &str, ttl: Duration) {
    let mut conn = redis().await;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("processing")
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query_async(&mut conn)
        .await
        .expect("set");
}

#[tokio::test]
async fn a_delivery_cut_off_mid_work_is_retried_not_acknowledged() {
    let rig = FaultRig::new().await;
    let wamid = format!("wamid.cut{}", e2e::random_hex(6));
    leave_lock(
        // The lock of a customer's message carries the customer's hash tag.
        &format!("wa:in:{{{}:34600111222}}:{wamid}", rig.tenant),
        rig.app.state.config.idempotency_lock,
    )
    .await;
    let body = rig.inbound(&wamid);
    let r = rig.app.webhook(&body).await;
    assert_eq!(
        r.status, 503,
        "never 'duplicate' without durable proof: {}",
        r.text
    );
    assert_eq!(rig.inbound_count().await, 0);
    // Meta retries; the lock has expired by then (it never outlives the function).
    rig.meta_delivers(&body).await;
    rig.settle().await;
    assert_eq!(rig.inbound_count().await, 1);
    assert_eq!(rig.deliveries().await, 1);

    // The send API: no message exists for the key, so not 409 but 503 to retry.
    leave_lock(
        &format!("wa:send:{{{}:34600111222}}:otp-9", rig.tenant),
        rig.app.state.config.idempotency_lock,
    )
    .await;
    let send = json!({"to": "34600111222", "text": "Code 9", "idempotency_key": "otp-9"});
    let r = rig.send(&send).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"], "Service Unavailable");
    assert_eq!(rig.client_sends(&send).await.last(), Some(&202));
    rig.settle().await;
    assert_eq!(rig.deliveries().await, 2);
}

#[tokio::test]
async fn a_stored_reply_that_never_reached_the_queue_is_completed_by_the_retry() {
    let scenario = fail::FailScenario::setup();
    let rig = FaultRig::new().await;
    fail::cfg("outbox.before_enqueue", "1*panic(process died)").expect("cfg");
    let body = rig.inbound(&format!("wamid.stuck{}", e2e::random_hex(6)));
    assert_eq!(
        rig.app.webhook(&body).await.status,
        500,
        "the function crashed"
    );
    let out = rig.out().await;
    assert_eq!(out.len(), 1, "the reply is stored");
    assert_eq!(out[0].get_i32("attempts"), Ok(0), "and never attempted");
    assert_eq!(rig.queued().await, 0, "nothing reached the queue");
    // Meta's retry comes at once (well within any grace period): it enqueues the reply.
    tokio::time::sleep(rig.app.state.config.idempotency_lock).await;
    assert_eq!(rig.app.webhook(&body).await.status, 200);
    assert_eq!(rig.out().await[0].get_bool("enqueued"), Ok(true));
    rig.settle().await;
    assert_eq!(rig.deliveries().await, 1);

    // The send API: the same key after a crash completes the stored message (202).
    fail::cfg("outbox.before_enqueue", "1*panic(process died)").expect("cfg");
    let send = json!({"to": "34600111222", "text": "Receipt", "idempotency_key": "r-1"});
    assert_eq!(rig.send(&send).await.status, 500);
    tokio::time::sleep(rig.app.state.config.idempotency_lock).await;
    let r = rig.send(&send).await;
    assert_eq!(r.status, 202, "{}", r.text);
    rig.settle().await;
    assert_eq!(rig.deliveries().await, 2);
    assert_eq!(rig.send(&send).await.status, 409);
    scenario.teardown();
}

#[tokio::test]
async fn a_number_registered_after_its_first_webhook_is_routed_at_once() {
    let app = e2e::spawn_app().await;
    let number = e2e::phone_number_id();
    let post = |wamid: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": number},
            "messages": [{"from": "34600111222", "id": wamid, "timestamp": "1795341600", "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string()
    };
    let r = app.webhook(&post("wamid.early")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["messages"], 0, "unknown number: {}", r.text);
    let reg = json!({"name": "Late", "phoneNumberId": number, "accessToken": "EAAlate"});
    let r = app.register(&reg).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.webhook(&post("wamid.next")).await;
    assert_eq!(r.body["messages"], 1, "{}", r.text);
    assert_eq!(app.messages(doc! {"direction": "IN"}).await.len(), 1);
    // Another process (the register function) registering it is seen within the cache TTL.
    assert!(shared::state::TENANT_CACHE_TTL <= Duration::from_secs(5));
}

#[tokio::test]
async fn a_status_that_overtakes_the_send_is_kept_and_applied() {
    let rig = FaultRig::new().await;
    let wamid = format!("wamid.fast{}", e2e::random_hex(6));
    Mock::given(method("POST"))
        .and(path_regex(r"/messages$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"messaging_product": "whatsapp", "messages": [{"id": wamid}]}),
            ),
        )
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    let r = rig
        .send(&json!({"to": "34600111222", "text": "Hello", "idempotency_key": "fast"}))
        .await;
    assert_eq!(r.status, 202);
    // Meta reports `delivered` before the sender has recorded the wamid.
    let status = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": rig.number},
        "statuses": [{"id": wamid, "status": "delivered", "timestamp": "1795341700", "recipient_id": "34600111222"}]}}]}]})
    .to_string();
    assert_eq!(rig.app.webhook(&status).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        rig.tick().await;
        let out = rig.out().await;
        if out[0].get_str("status") == Ok("delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "status never applied: {out:?}");
    }
    assert_eq!(rig.deliveries().await, 1);
    let kept = rig
        .app
        .db
        .collection::<mongodb::bson::Document>("pendingStatuses")
        .count_documents(doc! {})
        .await
        .expect("count");
    assert_eq!(kept, 0, "applied statuses are not kept");
}

#[tokio::test]
async fn the_same_message_twice_in_one_batch_is_sent_once_at_once() {
    let rig = FaultRig::new().await;
    let r = rig
        .send(&json!({"to": "34600111222", "text": "Twice?", "idempotency_key": "dup"}))
        .await;
    assert_eq!(r.status, 202);
    let out = rig.out().await;
    let message: shared::message::MessageDoc =
        mongodb::bson::from_document(out[0].clone()).expect("message");
    rig.app
        .state
        .queue()
        .expect("queue")
        .send(&message.job().expect("job"))
        .await
        .expect("second job");
    rig.tick().await;
    assert_eq!(
        rig.out().await[0].get_str("status"),
        Ok("sent"),
        "not deferred"
    );
    rig.settle().await;
    assert_eq!(rig.deliveries().await, 1);
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    assert_eq!(e2e::queue_depth(&rig.app.state.sqs, &queue).await, 0);
}

#[tokio::test]
async fn a_send_graph_accepted_but_not_recorded_is_never_sent_again() {
    let scenario = fail::FailScenario::setup();
    let rig = FaultRig::new().await;
    // Every write of the outcome fails for a while: Graph has the message, we do not know.
    fail::cfg("sender.before_record", "3*return(error)").expect("cfg");
    let r = rig
        .send(&json!({"to": "34600111222", "text": "Once", "idempotency_key": "rec"}))
        .await;
    assert_eq!(r.status, 202);
    rig.settle().await;
    assert_eq!(
        rig.deliveries().await,
        1,
        "the redelivery recorded, not resent"
    );
    scenario.teardown();
}

#[tokio::test]
async fn a_sender_restarted_after_an_unrecorded_send_records_it_from_redis() {
    let scenario = fail::FailScenario::setup();
    let mut rig = FaultRig::new().await;
    fail::cfg("sender.before_record", "3*return(error)").expect("cfg");
    let r = rig
        .send(&json!({"to": "34600111222", "text": "Once", "idempotency_key": "cold"}))
        .await;
    assert_eq!(r.status, 202);
    rig.tick().await;
    assert_eq!(rig.deliveries().await, 1);
    assert_eq!(
        rig.out().await[0].get_str("status"),
        Ok("sending"),
        "not recorded"
    );
    // The process that knew the wamid is gone (Lambda replaced it).
    rig.restart_sender();
    rig.settle().await;
    assert_eq!(rig.deliveries().await, 1, "recorded from Redis, not resent");
    scenario.teardown();
}

#[tokio::test]
async fn the_local_gateway_cuts_a_handler_off_at_its_timeout() {
    let scenario = fail::FailScenario::setup();
    let rig = FaultRig::new().await;
    fail::cfg("webhook.before_store", "return(hang)").expect("cfg");
    let started = Instant::now();
    let r = rig.app.webhook(&rig.inbound("wamid.hang")).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body, json!({"message": "Internal Server Error"}));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    scenario.teardown();

    // Timeouts come from template.yaml; locks and leases fit inside them.
    let t = local_gateway::timeouts(1.0).expect("timeouts");
    assert_eq!(t["webhook"], Duration::from_secs(10));
    assert_eq!(t["sender"], Duration::from_secs(30));
    assert_eq!(t["relay"], Duration::from_secs(30));
    let defaults = shared::config::Config::from_lookup(|k| {
        (k == "MONGO_URI").then(|| "mongodb://x/db".to_owned())
    })
    .expect("defaults");
    assert!(defaults.idempotency_lock < t["webhook"] && defaults.idempotency_lock < t["send"]);
    assert!(defaults.send_lease > t["sender"]);
}

#[tokio::test]
async fn a_2_5_mb_webhook_batch_is_accepted() {
    let rig = FaultRig::new().await;
    let wamid = format!("wamid.big{}", e2e::random_hex(6));
    let mut body: serde_json::Value = serde_json::from_str(&rig.inbound(&wamid)).expect("json");
    // Other changes of the same batch (e.g. account updates) fill it to 2.5 MB.
    let filler = "x".repeat(1024);
    let changes = body["entry"][0]["changes"].as_array_mut().expect("changes");
    for i in 0..2500 {
        changes.push(
            json!({"field": "account_update", "value": {"event": format!("e{i}"), "note": filler}}),
        );
    }
    let text = body.to_string();
    assert!(text.len() > 2_500_000, "{}", text.len());
    let r = rig.app.webhook(&text).await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
    assert_eq!(r.body["messages"], 1);
}

#[tokio::test]
async fn mock_tokens_are_refused_outside_development() {
    let app = e2e::spawn_with(|c| c.app_env = shared::config::AppEnv::Production).await;
    let reg = json!({"name": "Prod", "phoneNumberId": e2e::phone_number_id(), "accessToken": "mock_token"});
    let r = app.register(&reg).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["field"], "accessToken");
}

#[test]
fn trace_logging_never_reaches_the_runtime_or_http_clients() {
    for target in ["hyper", "reqwest", "hyper_util"] {
        assert!(
            shared::telemetry::QUIET.contains(&format!("{target}=info")),
            "{target}"
        );
    }
}
