//! The sender against a Graph mock (wiremock) and moto's SQS, driven through the local
//! event source mapping: exact Cloud API payloads, classified retries with the queue's
//! redrive to the DLQ, redrive back, idempotency under redelivery, statuses afterwards.

use std::time::{Duration, Instant};

use e2e::{TestApp, spawn_with};
use local_gateway::shim::{Shim, SqsHandler};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path},
};

pub(crate) struct Rig {
    pub(crate) app: TestApp,
    pub(crate) graph: MockServer,
    pub(crate) tenant: String,
    pub(crate) key: String,
    pub(crate) token: String,
    pub(crate) number: String,
    shim: Shim,
    handler: Box<dyn SqsHandler>,
}

pub(crate) fn ok_body(wamid: &str) -> Value {
    json!({"messaging_product": "whatsapp", "contacts": [{"input": "34600111222", "wa_id": "34600111222"}], "messages": [{"id": wamid}]})
}

pub(crate) fn graph_error(code: i64, title: &str) -> Value {
    json!({"error": {"message": title, "type": "OAuthException", "code": code, "error_data": {"messaging_product": "whatsapp", "details": title}, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
}

/// A queue with the production redrive policy (DLQ after 5 receives) feeding a sender
/// whose retry backoff is zero, so retries happen within the test.
pub(crate) async fn rig(access_token: Option<&str>) -> Rig {
    rig_with(access_token, None).await
}

async fn rig_with(access_token: Option<&str>, redis_url: Option<&str>) -> Rig {
    let graph = MockServer::start().await;
    let aws = e2e::sdk_config().await;
    let sqs = shared::aws::Aws::from_env().sqs();
    let (queue, dlq) = e2e::queue_with_dlq(&aws, 5, None).await;
    let base = graph.uri();
    let (q, d) = (queue.clone(), dlq.clone());
    let redis = redis_url.map(shared::secret::Secret::new);
    let app = spawn_with(move |c| {
        if redis.is_some() {
            c.redis_url = redis;
        }
        c.whatsapp_api_base = base;
        c.send_queue_url = Some(q);
        c.send_dlq_url = Some(d);
        c.send_retry_base = Duration::ZERO;
        c.meta_app_id = Some(e2e::META_APP_ID.into());
    })
    .await;
    let number = e2e::phone_number_id();
    let token =
        access_token.map_or_else(|| format!("EAAsender{}", e2e::random_hex(8)), str::to_owned);
    let r = app
        .register(&json!({"name": "Shop", "phoneNumberId": number, "accessToken": token}))
        .await;
    assert_eq!(r.status, 201);
    let tenant = r.body["tenant"]["id"].as_str().expect("id").to_owned();
    app.customers_wrote(&tenant, &["34600111222"]).await;
    let handler = sender::handler(app.state.clone());
    let mut shim = Shim::new(sqs, &queue).await.expect("shim");
    shim.wait_seconds = 0;
    Rig {
        tenant,
        key: r.body["apiKey"].as_str().expect("key").to_owned(),
        app,
        graph,
        token,
        number,
        shim,
        handler: Box::new(handler),
    }
}

impl Rig {
    pub(crate) async fn send(&self, body: Value) -> String {
        let r = self.app.send(&self.tenant, &self.key, &body).await;
        assert_eq!(r.status, 202, "{}", r.text);
        r.body["messageId"].as_str().expect("id").to_owned()
    }

    /// A call to one of this tenant's routes (`path` after `/tenants/{id}`) with its key.
    pub(crate) async fn api(&self, verb: &str, path: &str, body: Option<Value>) -> e2e::Reply {
        let body = body.map(|b| b.to_string());
        self.app
            .call(
                verb,
                &format!("/tenants/{}{path}", self.tenant),
                Some(&self.key),
                body.as_deref(),
            )
            .await
    }

    /// Sets the tenant's WhatsApp Business Account (admin `PATCH`).
    pub(crate) async fn set_waba(&self, waba: &str) -> e2e::Reply {
        let r = self
            .app
            .patch(
                &format!("/tenants/{}", self.tenant),
                e2e::ADMIN_TOKEN,
                &json!({"wabaId": waba}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// Meta delivers `message` (one inbound message object) from `from`, written `age_secs`
    /// ago; asserts the webhook took it.
    pub(crate) async fn inbound(&self, from: &str, message: Value, age_secs: i64) -> Value {
        let mut message = message;
        message["from"] = json!(from);
        message["id"] = json!(format!("wamid.in{}", e2e::random_hex(8)));
        let at = mongodb::bson::DateTime::now().timestamp_millis() / 1000 - age_secs;
        message["timestamp"] = json!(at.to_string());
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.number},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [message]}}]}]});
        let r = self.app.webhook(&body.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub(crate) fn graph_path(&self) -> String {
        format!("/v20.0/{}/messages", self.number)
    }

    /// Runs the event source mapping until `done` holds (or 30 s pass).
    pub(crate) async fn pump_until(&self, done: impl AsyncFn(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            self.shim
                .poll_once(self.handler.as_ref())
                .await
                .expect("poll");
            if done(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let docs = self.app.messages(doc! {"direction": "OUT"}).await;
        panic!("condition not reached in 30 s: {docs:?}");
    }

    pub(crate) async fn message(&self, id: &str) -> Document {
        let oid = mongodb::bson::oid::ObjectId::parse_str(id).expect("id");
        self.app.messages(doc! {"_id": oid}).await.remove(0)
    }

    async fn attempts(&self, id: &str) -> i32 {
        self.message(id)
            .await
            .get_i32("attempts")
            .expect("attempts")
    }

    pub(crate) async fn status(&self, id: &str) -> String {
        self.message(id)
            .await
            .get_str("status")
            .expect("status")
            .to_owned()
    }

    async fn depth(&self, url: &str) -> usize {
        e2e::queue_depth(&self.app.state.sqs, url).await
    }
}

#[tokio::test]
async fn payloads_are_exactly_what_the_cloud_api_expects() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .and(header(
            "authorization",
            format!("Bearer {}", rig.token).as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(ok_body("wamid.HBgLMzQ2MDAxMTEyMjIVAgARGBI")),
        )
        .expect(2)
        .mount(&rig.graph)
        .await;
    let text = rig
        .send(json!({"to": "+34600111222", "text": "Your order shipped"}))
        .await;
    let t = format!("/tenants/{}/templates", rig.tenant);
    rig.app
        .call(
            "POST",
            &t,
            Some(&rig.key),
            Some(
                &json!({"key": "menu", "body": "Pick", "kind": "interactive_button",
        "buttons": [{"id": "a", "title": "Track order"}, {"id": "b", "title": "Talk to us"}]})
                .to_string(),
            ),
        )
        .await;
    let r = rig
        .app
        .call(
            "POST",
            &format!("/tenants/{}/send/template", rig.tenant),
            Some(&rig.key),
            Some(&json!({"to": "34600111222", "templateKey": "menu"}).to_string()),
        )
        .await;
    let menu = r.body["messageId"].as_str().expect("id").to_owned();
    rig.pump_until(async |r: &Rig| {
        r.status(&text).await == "sent" && r.status(&menu).await == "sent"
    })
    .await;

    let bodies: Vec<Value> = rig
        .graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert!(bodies.contains(&json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
        "type": "text", "text": {"preview_url": false, "body": "Your order shipped"}})), "{bodies:?}");
    assert!(bodies.contains(&json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
        "type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "Track order"}}, {"type": "reply", "reply": {"id": "b", "title": "Talk to us"}}]}}})), "{bodies:?}");
    let m = rig.message(&text).await;
    assert_eq!(
        m.get_str("waMessageId").expect("wamid"),
        "wamid.HBgLMzQ2MDAxMTEyMjIVAgARGBI"
    );
    assert_eq!(m.get_i32("attempts").expect("attempts"), 1);
    assert!(
        !e2e::logs().contains(&rig.token),
        "the access token never reaches a log line"
    );
}

#[tokio::test]
async fn transient_errors_are_retried_until_delivered_once() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.third")))
        .with_priority(2)
        .expect(1)
        .mount(&rig.graph)
        .await;
    let id = rig
        .send(json!({"to": "34600111222", "text": "Hello"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;
    let m = rig.message(&id).await;
    assert_eq!(m.get_i32("attempts").expect("attempts"), 3);
    assert_eq!(
        rig.graph.received_requests().await.expect("recorded").len(),
        3
    );
    let log = rig
        .app
        .call(
            "GET",
            &format!("/tenants/{}/messages", rig.tenant),
            Some(&rig.key),
            None,
        )
        .await;
    assert_eq!(log.body["messages"][0]["status"], "sent");
    assert_eq!(log.body["messages"][0]["attempts"], 3);
}

#[tokio::test]
async fn pair_rate_limits_are_retried_and_undeliverable_fails_at_once() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(graph_error(131056, "Pair rate limit hit")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.ok")))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(graph_error(131026, "Message undeliverable")),
        )
        .with_priority(3)
        .mount(&rig.graph)
        .await;
    let retried = rig
        .send(json!({"to": "34600111222", "text": "First"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&retried).await == "sent")
        .await;
    assert_eq!(rig.attempts(&retried).await, 2);

    let failing = rig
        .send(json!({"to": "34600111222", "text": "Second"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&failing).await == "failed")
        .await;
    let m = rig.message(&failing).await;
    assert_eq!(
        m.get_i32("attempts").expect("attempts"),
        1,
        "permanent: no retry"
    );
    let error = m.get_document("lastError").expect("error");
    assert_eq!(error.get_str("code").expect("code"), "131026");
    assert_eq!(
        error.get_str("title").expect("title"),
        "Message undeliverable"
    );
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    assert_eq!(rig.depth(&queue).await, 0, "acknowledged");
    assert_eq!(
        rig.graph.received_requests().await.expect("recorded").len(),
        3
    );
}

#[tokio::test]
async fn always_failing_sends_land_in_the_dlq_and_redrive_delivers_once() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&rig.graph)
        .await;
    let id = rig
        .send(json!({"to": "34600111222", "text": "Will it arrive?"}))
        .await;
    let dlq = rig.app.state.config.send_dlq_url.clone().expect("dlq");
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    rig.pump_until(async |r: &Rig| r.depth(&dlq).await == 1)
        .await;
    assert_eq!(rig.depth(&queue).await, 0);
    let m = rig.message(&id).await;
    assert_eq!(
        m.get_i32("attempts").expect("attempts"),
        5,
        "one attempt per receive"
    );
    assert_eq!(m.get_str("status").expect("status"), "queued");
    assert_eq!(
        m.get_document("lastError")
            .expect("error")
            .get_str("code")
            .expect("code"),
        "http_500"
    );
    let listed = shared::queue::dead_letters(&rig.app.state.sqs, &dlq, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].body.contains(&id));

    rig.graph.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.finally")))
        .expect(1)
        .mount(&rig.graph)
        .await;
    let moved = shared::queue::redrive(&rig.app.state.sqs, &dlq, &queue)
        .await
        .expect("redrive");
    assert_eq!(moved, 1);
    assert_eq!(rig.depth(&dlq).await, 0);
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;
    assert_eq!(
        rig.message(&id)
            .await
            .get_str("waMessageId")
            .expect("wamid"),
        "wamid.finally"
    );
}

#[tokio::test]
async fn a_redelivered_job_never_sends_twice_and_statuses_follow() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.once")))
        .expect(1)
        .mount(&rig.graph)
        .await;
    let id = rig
        .send(json!({"to": "34600111222", "text": "Once only"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;
    // SQS delivers at least once: the same job again (and a concurrent duplicate).
    let job = json!({"tenantId": rig.tenant, "messageId": id, "to": "34600111222", "content": {"kind": "text", "text": "Once only"}, "idempotencyKey": "x"});
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    for _ in 0..2 {
        rig.app
            .state
            .sqs
            .send(
                &queue,
                &shared::aws::sqs::Outgoing {
                    message_body: job.to_string(),
                    ..Default::default()
                },
            )
            .await
            .expect("send");
    }
    rig.pump_until(async |r: &Rig| r.depth(&queue).await == 0)
        .await;
    assert_eq!(
        rig.graph.received_requests().await.expect("recorded").len(),
        1
    );

    // Meta's statuses for the wamid the mock returned move it forward.
    for s in ["delivered", "read", "delivered"] {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": rig.number},
            "statuses": [{"id": "wamid.once", "status": s, "timestamp": "1795341600", "recipient_id": "34600111222"}]}}]}]});
        assert_eq!(rig.app.webhook(&body.to_string()).await.status, 200);
    }
    assert_eq!(rig.status(&id).await, "read");
    let log = rig
        .app
        .call(
            "GET",
            &format!("/tenants/{}/messages?status=read", rig.tenant),
            Some(&rig.key),
            None,
        )
        .await;
    assert_eq!(log.body["messages"][0]["id"], id.as_str());
    assert!(log.body["messages"][0]["statusAt"]["read"].is_string());
}

#[tokio::test]
async fn mock_tokens_simulate_delivery_without_http() {
    let rig = rig(Some("mock_local_token")).await;
    let id = rig
        .send(json!({"to": "34600111222", "text": "Local"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent")
        .await;
    assert!(
        rig.message(&id)
            .await
            .get_str("waMessageId")
            .expect("wamid")
            .starts_with("wamid.mock_")
    );
    assert!(
        rig.graph
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
}

#[tokio::test]
async fn leases_fall_back_to_the_database_when_redis_is_down() {
    let rig = rig_with(None, Some("redis://127.0.0.1:1")).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.noredis")))
        .with_priority(2)
        .expect(2)
        .mount(&rig.graph)
        .await;
    let id = rig
        .send(json!({"to": "34600111222", "text": "Still once"}))
        .await;
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    let job = json!({"tenantId": rig.tenant, "messageId": id, "to": "34600111222", "content": {"kind": "text", "text": "Still once"}, "idempotencyKey": "x"});
    // The job three more times at once: one 500 then one send, never a second send.
    for _ in 0..3 {
        rig.app
            .state
            .sqs
            .send(
                &queue,
                &shared::aws::sqs::Outgoing {
                    message_body: job.to_string(),
                    ..Default::default()
                },
            )
            .await
            .expect("send");
    }
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent" && r.depth(&queue).await == 0)
        .await;
    assert_eq!(rig.attempts(&id).await, 2);
    let second = rig
        .send(json!({"to": "34600111222", "text": "Another"}))
        .await;
    rig.pump_until(async |r: &Rig| r.status(&second).await == "sent")
        .await;
    assert_eq!(
        rig.graph.received_requests().await.expect("recorded").len(),
        3
    );
}

#[tokio::test]
async fn ten_concurrent_identical_sends_deliver_one_message() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.single")))
        .mount(&rig.graph)
        .await;
    let body = json!({"to": "34600111222", "text": "Exactly once", "idempotency_key": "burst-1"})
        .to_string();
    let path = format!("/tenants/{}/send", rig.tenant);
    let replies = futures::future::join_all(
        (0..10).map(|_| rig.app.call("POST", &path, Some(&rig.key), Some(&body))),
    )
    .await;
    let accepted: Vec<&str> = replies
        .iter()
        .filter(|r| r.status == 202)
        .filter_map(|r| r.body["messageId"].as_str())
        .collect();
    assert_eq!(
        accepted.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(replies.iter().filter(|r| r.status == 409).count(), 9);
    let id = accepted[0].to_owned();
    let queue = rig.app.state.config.send_queue_url.clone().expect("queue");
    rig.pump_until(async |r: &Rig| r.status(&id).await == "sent" && r.depth(&queue).await == 0)
        .await;
    assert_eq!(
        rig.graph.received_requests().await.expect("recorded").len(),
        1,
        "delivered once"
    );
}
