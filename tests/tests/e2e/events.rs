//! Signed event forwarding through its own queue: a receiver answering 500 twice then 200
//! gets the event three times with the same id and a valid signature, and each attempt is
//! listed; another tenant's receiver never sees it; opt-outs and hand-offs are events too.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::{TestApp, TestTenant, spawn_with};
use local_gateway::shim::{Shim, SqsHandler};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

struct Rig {
    app: TestApp,
    receivers: MockServer,
    shim: Shim,
    handler: Box<dyn SqsHandler>,
}

async fn rig() -> Rig {
    let aws = e2e::sdk_config().await;
    let (queue, _dlq) = e2e::queue_with_dlq(&aws, 10, None).await;
    let q = queue.clone();
    let app = spawn_with(move |c| {
        c.events_queue_url = Some(q);
        c.send_retry_base = Duration::ZERO;
    })
    .await;
    let mut shim = Shim::new(shared::aws::Aws::from_env().sqs(), &queue)
        .await
        .expect("shim");
    shim.wait_seconds = 0;
    Rig {
        handler: Box::new(forwarder::handler(app.state.clone())),
        app,
        receivers: MockServer::start().await,
        shim,
    }
}

impl Rig {
    async fn subscribe(&self, t: &TestTenant, path: &str, events: &[&str]) -> (String, String) {
        let r = self
            .app
            .post(
                &format!("/tenants/{}/event-subscriptions", t.id),
                &t.key,
                &json!({"url": format!("{}{path}", self.receivers.uri()), "events": events}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let secret = r.body["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with("whsec_"));
        (
            r.body["subscription"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            secret,
        )
    }

    /// Runs the forwarder until `done` holds for the receivers' requests (or 30 s pass).
    async fn pump_until(&self, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            self.shim
                .poll_once(self.handler.as_ref())
                .await
                .expect("poll");
            let got = self.receivers.received_requests().await.unwrap_or_default();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("receivers not reached in 30 s");
    }
}

/// A customer's text to the tenant's number, as Meta posts it.
async fn says(app: &TestApp, t: &TestTenant, from: &str, text: &str) -> String {
    let wamid = format!("wamid.ev{}", e2e::random_hex(8));
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": t.number},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": "1795341600", "type": "text", "text": {"body": text}}]}}]}]});
    let r = app.webhook(&body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    wamid
}

fn body_of(r: &Request) -> Value {
    serde_json::from_slice(&r.body).expect("json")
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_with_the_same_id_and_signature_and_no_one_else_does()
 {
    let rig = rig().await;
    let (a, b) = (
        rig.app.register_tenant("A").await,
        rig.app.register_tenant("B").await,
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    Mock::given(method("POST"))
        .and(path("/a"))
        .respond_with(move |_: &Request| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(if n < 2 { 500 } else { 200 })
        })
        .mount(&rig.receivers)
        .await;
    Mock::given(method("POST"))
        .and(path("/b"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&rig.receivers)
        .await;
    let (sub_a, secret_a) = rig.subscribe(&a, "/a", &["message.received"]).await;
    rig.subscribe(
        &b,
        "/b",
        &["message.received", "customer.opted_out", "handoff.started"],
    )
    .await;

    let wamid = says(&rig.app, &a, "34600111222", "hello A").await;
    let got = rig
        .pump_until(|r| r.iter().filter(|r| r.url.path() == "/a").count() >= 3)
        .await;
    let to_a: Vec<&Request> = got.iter().filter(|r| r.url.path() == "/a").collect();
    assert_eq!(to_a.len(), 3, "500, 500, then 200: no more");
    let first = body_of(to_a[0]);
    assert_eq!(first["type"], "message.received");
    assert_eq!(first["tenantId"], a.id.as_str());
    assert_eq!(first["data"]["wamid"], wamid.as_str());
    assert_eq!(first["data"]["text"], "hello A");
    assert!(
        first["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    for r in &to_a {
        assert_eq!(body_of(r)["id"], first["id"], "the same id on every try");
        let header = r
            .headers
            .get("x-signature-256")
            .and_then(|v| v.to_str().ok())
            .expect("signature");
        assert_eq!(
            header,
            shared::forwarder::signature(secret_a.as_bytes(), &r.body),
            "signed with A's secret"
        );
    }
    assert!(
        got.iter().all(|r| r.url.path() != "/b"),
        "B's receiver never sees A's event"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.shim
        .poll_once(rig.handler.as_ref())
        .await
        .expect("poll");
    let after = rig.receivers.received_requests().await.unwrap_or_default();
    assert_eq!(after.iter().filter(|r| r.url.path() == "/a").count(), 3);

    // Every attempt is listed, newest first; A's key cannot read B's.
    let d = rig
        .app
        .get(
            &format!("/tenants/{}/event-subscriptions/{sub_a}/deliveries", a.id),
            &a.key,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let statuses: Vec<u64> = d.body["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|x| x["status"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 500, 500]);
    let foreign = rig
        .app
        .get(
            &format!("/tenants/{}/event-subscriptions/{sub_a}/deliveries", b.id),
            &b.key,
        )
        .await;
    assert_eq!(
        foreign.status, 404,
        "a subscription is looked up with its tenant"
    );

    // B: an opt-out and an API hand-off are events too.
    let stop = says(&rig.app, &b, "34600333444", "STOP").await;
    let r = rig
        .app
        .post(
            &format!("/tenants/{}/customers/34600333444/handoff", b.id),
            &b.key,
            &json!({"minutes": 30}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = rig
        .pump_until(|r| r.iter().filter(|r| r.url.path() == "/b").count() >= 3)
        .await;
    let mut kinds: Vec<String> = got
        .iter()
        .filter(|r| r.url.path() == "/b")
        .map(|r| body_of(r)["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["customer.opted_out", "handoff.started", "message.received"]
    );
    let opted = got
        .iter()
        .map(body_of)
        .find(|e| e["type"] == "customer.opted_out")
        .expect("opted out");
    assert_eq!(opted["data"]["wamid"], stop.as_str());
    assert_eq!(opted["tenantId"], b.id.as_str());
}

#[tokio::test]
async fn subscriptions_are_checked_listed_without_their_secret_and_deleted() {
    let rig = rig().await;
    let t = rig.app.register_tenant("Subs").await;
    let path = format!("/tenants/{}/event-subscriptions", t.id);
    for (body, field) in [
        (
            json!({"url": "ftp://x.example", "events": ["message.status"]}),
            "url",
        ),
        (json!({"url": "https://x.example", "events": []}), "events"),
        (
            json!({"url": "https://x.example", "events": ["message.status", "nope"]}),
            "events[1]",
        ),
    ] {
        let r = rig.app.post(&path, &t.key, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field);
    }
    let (id, secret) = rig.subscribe(&t, "/t", &["message.status"]).await;
    let listed = rig.app.get(&path, &t.key).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["subscriptions"][0]["id"], id.as_str());
    assert_eq!(
        listed.body["subscriptions"][0]["events"],
        json!(["message.status"])
    );
    assert!(!listed.text.contains(&secret), "the secret is shown once");
    let stored = format!(
        "{:?}",
        rig.app
            .db
            .collection::<mongodb::bson::Document>("eventSubscriptions")
            .find_one(mongodb::bson::doc! {})
            .await
            .expect("find")
    );
    assert!(!stored.contains(&secret), "stored encrypted");
    let gone = rig
        .app
        .call("DELETE", &format!("{path}/{id}"), Some(&t.key), None)
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    let listed = rig.app.get(&path, &t.key).await;
    assert_eq!(listed.body["subscriptions"], json!([]));
}
