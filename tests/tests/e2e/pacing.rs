//! Meta's limits, kept: the number's throughput and the customer's pair rate (timed on the
//! Graph mock's own clock), error codes that act (130429 slows the number, 190 holds the
//! tenant's messages until `PUT access-token`), and one tenant's backlog never delaying
//! another's message. The sender runs as in AWS: the event source mapping with its pollers
//! feeding the real handler, against moto's SQS, Redis and the database.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use e2e::{ADMIN_TOKEN, TestApp, spawn_with};
use futures::StreamExt;
use local_gateway::shim::Shim;
use mongodb::bson::doc;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path_regex},
};

/// One request that reached the Graph mock.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    number: String,
    text: String,
    bearer: String,
    status: u16,
}

type Answer = dyn Fn(usize, &Call) -> (u16, ResponseTemplate) + Send + Sync;

/// A Graph mock that timestamps every request on arrival and answers through `answer`
/// (given how many requests came before).
#[derive(Clone)]
struct Graph {
    calls: Arc<Mutex<Vec<Call>>>,
    answer: Arc<Mutex<Arc<Answer>>>,
}

fn ok() -> (u16, ResponseTemplate) {
    let body = json!({
        "messaging_product": "whatsapp",
        "messages": [{"id": format!("wamid.P{}", e2e::random_hex(10))}],
    });
    (200, ResponseTemplate::new(200).set_body_json(body))
}

fn graph_error(status: u16, code: i64) -> (u16, ResponseTemplate) {
    let body = json!({"error": {
        "message": format!("error {code}"), "type": "OAuthException", "code": code,
        "fbtrace_id": "A1"}});
    (status, ResponseTemplate::new(status).set_body_json(body))
}

impl wiremock::Respond for Graph {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut call = Call {
            at: Instant::now(),
            number: request
                .url
                .path()
                .split('/')
                .nth(2)
                .unwrap_or_default()
                .to_owned(),
            text: body["text"]["body"].as_str().unwrap_or_default().to_owned(),
            bearer: request
                .headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_owned(),
            status: 0,
        };
        let answer = self.answer.lock().expect("answer").clone();
        let mut calls = self.calls.lock().expect("calls");
        let (status, response) = answer(calls.len(), &call);
        call.status = status;
        calls.push(call);
        response
    }
}

impl Graph {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    fn ok_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.status == 200)
            .collect()
    }

    fn answer(&self, f: impl Fn(usize, &Call) -> (u16, ResponseTemplate) + Send + Sync + 'static) {
        *self.answer.lock().expect("answer") = Arc::new(f);
    }
}

struct Rig {
    app: TestApp,
    graph: Graph,
    dlq: String,
    _server: MockServer,
    _sender: tokio::task::JoinHandle<()>,
}

struct Tenant {
    id: String,
    key: String,
    number: String,
}

/// The app with a sender running (five pollers, production redrive policy).
async fn rig() -> Rig {
    let server = MockServer::start().await;
    let graph = Graph {
        calls: Arc::default(),
        answer: Arc::new(Mutex::new(Arc::new(|_, _| ok()))),
    };
    Mock::given(method("POST"))
        .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
        .respond_with(graph.clone())
        .mount(&server)
        .await;
    let aws = e2e::sdk_config().await;
    let (queue, dlq) = e2e::queue_with_dlq(&aws, 5, None).await;
    let base = server.uri();
    let (q, d) = (queue.clone(), dlq.clone());
    let app = spawn_with(move |c| {
        c.whatsapp_api_base = base;
        c.send_queue_url = Some(q);
        c.send_dlq_url = Some(d);
        c.send_retry_base = Duration::ZERO;
    })
    .await;
    let shim = Shim::new(shared::aws::Aws::from_env().sqs(), &queue)
        .await
        .expect("shim");
    let handler = Arc::new(sender::handler(app.state.clone()));
    let sender = tokio::spawn(shim.run(handler, std::future::pending()));
    Rig {
        app,
        graph,
        dlq,
        _server: server,
        _sender: sender,
    }
}

impl Rig {
    async fn tenant(&self, token: &str) -> Tenant {
        let number = e2e::phone_number_id();
        let r = self
            .app
            .register(&json!({"name": "Shop", "phoneNumberId": number, "accessToken": token}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        Tenant {
            id: r.body["tenant"]["id"].as_str().expect("id").to_owned(),
            key: r.body["apiKey"].as_str().expect("key").to_owned(),
            number,
        }
    }

    async fn settings(&self, t: &Tenant, body: Value) -> Value {
        let r = self
            .app
            .call(
                "PATCH",
                &format!("/tenants/{}", t.id),
                Some(ADMIN_TOKEN),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["tenant"].clone()
    }

    async fn send(&self, t: &Tenant, to: &str, text: &str) -> String {
        self.app.customers_wrote(&t.id, &[to]).await;
        self.send_open(t, to, text).await
    }

    /// A send to a customer whose window is open already.
    async fn send_open(&self, t: &Tenant, to: &str, text: &str) -> String {
        let r = self
            .app
            .send(&t.id, &t.key, &json!({"to": to, "text": text}))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        r.body["messageId"].as_str().expect("id").to_owned()
    }

    /// `n` sends to distinct customers, `at_once` in flight.
    async fn broadcast(&self, t: &Tenant, n: usize, at_once: usize) {
        let customers: Vec<String> = (0..n).map(|i| format!("3460{:07}", i)).collect();
        let refs: Vec<&str> = customers.iter().map(String::as_str).collect();
        self.app.customers_wrote(&t.id, &refs).await;
        futures::stream::iter(0..n)
            .map(|i| async move {
                self.send_open(t, &format!("3460{:07}", i), &format!("b{i}"))
                    .await
            })
            .buffer_unordered(at_once)
            .collect::<Vec<_>>()
            .await;
    }

    /// Waits until `done` holds for the Graph mock's calls (or `limit` passes).
    async fn until(&self, limit: Duration, done: impl Fn(&[Call]) -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done(&self.graph.calls()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "not reached in {limit:?}: {} calls, {} ok",
            self.graph.calls().len(),
            self.graph.ok_calls().len()
        );
    }

    async fn statuses(&self, t: &Tenant) -> HashMap<String, usize> {
        let oid = mongodb::bson::oid::ObjectId::parse_str(&t.id).expect("id");
        let mut counts = HashMap::new();
        for m in self
            .app
            .messages(doc! {"tenantId": oid, "direction": "OUT"})
            .await
        {
            *counts
                .entry(m.get_str("status").expect("status").to_owned())
                .or_insert(0) += 1;
        }
        counts
    }

    async fn dlq_depth(&self) -> usize {
        e2e::queue_depth(&self.app.state.sqs, &self.dlq).await
    }
}

/// The most calls in any one-second window.
fn busiest_second(calls: &[Call]) -> usize {
    let mut at: Vec<Instant> = calls.iter().map(|c| c.at).collect();
    at.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end].duration_since(at[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

fn each_once(calls: &[Call], n: usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for c in calls {
        *seen.entry(c.text.as_str()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), n, "every message delivered");
    assert!(
        seen.values().all(|&k| k == 1),
        "no message delivered twice: {:?}",
        seen.iter().filter(|(_, k)| **k > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_never_sends_faster_than_its_throughput() {
    let rig = rig().await;
    let t = rig.tenant(&format!("EAApace{}", e2e::random_hex(6))).await;
    let tenant = rig.settings(&t, json!({"throughputPerSecond": 20})).await;
    assert_eq!(tenant["settings"]["throughputPerSecond"], 20);
    rig.broadcast(&t, 300, 16).await;
    rig.until(Duration::from_secs(60), |c| c.len() >= 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = rig.graph.calls();
    each_once(&calls, 300);
    let busiest = busiest_second(&calls);
    let mut at: Vec<Instant> = calls.iter().map(|c| c.at).collect();
    at.sort();
    let gaps: Vec<u128> = at
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_millis())
        .collect();
    assert!(
        busiest <= 21,
        "at most 20 (+1) sends in any second, saw {busiest}: gaps {gaps:?}"
    );
    let first = calls.iter().map(|c| c.at).min().expect("calls");
    let last = calls.iter().map(|c| c.at).max().expect("calls");
    // 300 at 20/s: one every 50 ms.
    assert!(
        last.duration_since(first) >= Duration::from_millis(14_000),
        "{:?}",
        last.duration_since(first)
    );
    assert!(calls.iter().all(|c| c.number == t.number));
    assert_eq!(rig.statuses(&t).await.get("sent"), Some(&300));
    assert_eq!(rig.dlq_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_gets_a_burst_then_one_message_per_interval_in_order() {
    let rig = rig().await;
    let t = rig.tenant(&format!("EAApair{}", e2e::random_hex(6))).await;
    rig.settings(
        &t,
        json!({"customerBurst": 2, "customerIntervalSeconds": 2}),
    )
    .await;
    for i in 1..=5 {
        rig.send(&t, "34600111222", &format!("m{i}")).await;
    }
    rig.until(Duration::from_secs(30), |c| c.len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = rig.graph.calls();
    each_once(&calls, 5);
    let texts: Vec<&str> = calls.iter().map(|c| c.text.as_str()).collect();
    let timeline: Vec<(String, u128)> = calls
        .iter()
        .map(|c| (c.text.clone(), c.at.duration_since(calls[0].at).as_millis()))
        .collect();
    assert_eq!(
        texts,
        ["m1", "m2", "m3", "m4", "m5"],
        "in order: {timeline:?}"
    );
    let since = |i: usize| calls[i].at.duration_since(calls[0].at);
    assert!(
        since(1) < Duration::from_millis(500),
        "the burst goes at once"
    );
    // m1 itself left a little after its slot (the queue, the claim), so m3..m5 are measured
    // from it with that slack, and from each other exactly.
    for (i, at_least) in [(2, 2000), (3, 4000), (4, 6000)] {
        assert!(
            since(i) >= Duration::from_millis(at_least - 500),
            "message {} after {:?}",
            i + 1,
            since(i)
        );
    }
    for i in 3..5 {
        let gap = calls[i].at.duration_since(calls[i - 1].at);
        assert!(
            gap >= Duration::from_millis(1900),
            "gap before m{}: {gap:?}",
            i + 1
        );
    }
    assert_eq!(rig.statuses(&t).await.get("sent"), Some(&5));
}

/// A job that reaches the sender late (its batch slow to claim) still goes before the
/// customer's later messages, which wait for it instead of taking their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_job_still_goes_before_the_customers_later_messages() {
    // The first batch (m1's, or m1's and m2's together) claims a second late.
    order_kept_when_held_up("sender.before_claim").await;
}

/// A send held up between its slot and its Graph call (a slow token, a busy process) leaves
/// late and takes a new slot, still before the customer's later messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_leaves_its_slot_late_still_goes_first() {
    order_kept_when_held_up("sender.before_graph").await;
}

/// m1, m2, m3 to one customer with the first to reach `failpoint` held up for a second:
/// they reach Graph in that order, each at least the customer gap after the one before.
async fn order_kept_when_held_up(failpoint: &str) {
    let rig = rig().await;
    let t = rig
        .tenant(&format!("test-token-order-{}", e2e::random_hex(6)))
        .await;
    rig.settings(&t, json!({"customerBurst": 5})).await;
    rig.app.customers_wrote(&t.id, &["34600111333"]).await;
    fail::cfg(failpoint, "1*return(slow)").expect("failpoint");
    rig.send_open(&t, "34600111333", "m1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    rig.send_open(&t, "34600111333", "m2").await;
    rig.send_open(&t, "34600111333", "m3").await;
    rig.until(Duration::from_secs(30), |c| c.len() >= 3).await;
    fail::cfg(failpoint, "off").expect("failpoint");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = rig.graph.calls();
    each_once(&calls, 3);
    let timeline: Vec<(String, u128)> = calls
        .iter()
        .map(|c| (c.text.clone(), c.at.duration_since(calls[0].at).as_millis()))
        .collect();
    let texts: Vec<&str> = calls.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["m1", "m2", "m3"], "in order: {timeline:?}");
    for i in 1..3 {
        let gap = calls[i].at.duration_since(calls[i - 1].at);
        assert!(
            gap >= Duration::from_millis(100),
            "m{} only {gap:?} after m{i}: {timeline:?}",
            i + 1
        );
    }
    assert_eq!(rig.statuses(&t).await.get("sent"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_number_slows_down_and_still_delivers_everything_once() {
    let rig = rig().await;
    let t = rig
        .tenant(&format!("EAAthrottle{}", e2e::random_hex(6)))
        .await;
    rig.graph.answer(|n, _| {
        if n < 5 {
            graph_error(400, 130429)
        } else {
            ok()
        }
    });
    rig.broadcast(&t, 20, 4).await;
    rig.until(Duration::from_secs(60), |c| {
        c.iter().filter(|c| c.status == 200).count() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = rig.graph.calls();
    let refused: Vec<&Call> = calls.iter().filter(|c| c.status == 400).collect();
    assert_eq!(refused.len(), 5);
    each_once(&rig.graph.ok_calls(), 20);
    // After 130429 nothing more leaves the number for a second.
    let first_refusal = refused[0].at;
    let next_ok = calls
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| c.at)
        .min()
        .expect("ok");
    assert!(
        next_ok.duration_since(first_refusal) >= Duration::from_millis(900),
        "{:?}",
        next_ok.duration_since(first_refusal)
    );
    assert_eq!(rig.statuses(&t).await.get("sent"), Some(&20));
    assert_eq!(
        rig.dlq_depth().await,
        0,
        "throttling never moves a job to the DLQ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_holds_messages_until_it_is_replaced() {
    let rig = rig().await;
    let old = format!("EAAold{}", e2e::random_hex(6));
    let new = format!("EAAnew{}", e2e::random_hex(6));
    let t = rig.tenant(&old).await;
    let (o, n2) = (old.clone(), new.clone());
    rig.graph.answer(move |_, call| {
        if call.bearer == o {
            graph_error(401, 190)
        } else if call.bearer == n2 {
            ok()
        } else {
            graph_error(400, 100)
        }
    });
    for i in 0..3 {
        rig.send(&t, &format!("3461000000{i}"), &format!("h{i}"))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.statuses(&t).await.get("held") != Some(&3) {
        assert!(Instant::now() < deadline, "{:?}", rig.statuses(&t).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = rig
        .app
        .call("GET", &format!("/tenants/{}", t.id), Some(&t.key), None)
        .await;
    let status = &shown.body["tenant"]["tokenStatus"];
    assert_eq!(status["status"], "invalid", "{status}");
    assert_eq!(status["lastError"]["code"], "190");
    assert!(status["since"].is_string());
    let held = rig
        .app
        .call(
            "GET",
            &format!("/tenants/{}/messages?status=held", t.id),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(held.body["messages"].as_array().map(Vec::len), Some(3));

    // Known invalid: a new message is held without another refused call.
    let refused_before = rig.graph.calls().len();
    rig.send(&t, "346100000003", "h3").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.statuses(&t).await.get("held") != Some(&4) {
        assert!(Instant::now() < deadline, "{:?}", rig.statuses(&t).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rig.graph.calls().len(), refused_before);
    assert_eq!(rig.dlq_depth().await, 0, "held, not dead");

    let r = rig
        .app
        .call(
            "PUT",
            &format!("/tenants/{}/access-token", t.id),
            Some(ADMIN_TOKEN),
            Some(&json!({"accessToken": new}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["released"], 4);
    assert_eq!(r.body["tenant"]["tokenStatus"]["status"], "valid");
    assert!(!r.text.contains(&new) && !r.text.contains(&old));
    rig.until(Duration::from_secs(20), |c| {
        c.iter().filter(|c| c.status == 200).count() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let delivered = rig.graph.ok_calls();
    each_once(&delivered, 4);
    assert!(delivered.iter().all(|c| c.bearer == new));
    assert_eq!(rig.statuses(&t).await.get("sent"), Some(&4));
    assert!(!e2e::logs().contains(&new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_replacement_is_admin_only_and_validated() {
    let rig = rig().await;
    let t = rig.tenant(&format!("EAAv{}", e2e::random_hex(6))).await;
    let path = format!("/tenants/{}/access-token", t.id);
    let body = json!({"accessToken": "EAAother"}).to_string();
    let r = rig.app.call("PUT", &path, Some(&t.key), Some(&body)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = rig
        .app
        .call(
            "PUT",
            &path,
            Some(ADMIN_TOKEN),
            Some(r#"{"accessToken": ""}"#),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("accessToken"), "{}", r.text);
    let r = rig
        .app
        .call(
            "PUT",
            "/tenants/65f000000000000000000000/access-token",
            Some(ADMIN_TOKEN),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 404);
    let settings = format!("/tenants/{}", t.id);
    for (body, field) in [
        (json!({"throughputPerSecond": 0}), "throughputPerSecond"),
        (json!({"throughputPerSecond": 1001}), "throughputPerSecond"),
        (
            json!({"throughputPerSecond": "fast"}),
            "throughputPerSecond",
        ),
        (json!({"customerBurst": 0}), "customerBurst"),
        (
            json!({"customerIntervalSeconds": -1}),
            "customerIntervalSeconds",
        ),
        (json!({"throughput": 5}), "throughput"),
    ] {
        let r = rig
            .app
            .call(
                "PATCH",
                &settings,
                Some(ADMIN_TOKEN),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.text.contains(field), "{body}: {}", r.text);
    }
    let r = rig
        .app
        .call(
            "PATCH",
            &settings,
            Some(&t.key),
            Some(r#"{"throughputPerSecond": 5}"#),
        )
        .await;
    assert_eq!(r.status, 403);
    let shown = rig.app.call("GET", &settings, Some(&t.key), None).await;
    assert_eq!(shown.body["tenant"]["settings"]["throughputPerSecond"], 80);
    assert_eq!(shown.body["tenant"]["tokenStatus"]["status"], "valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_backlog_never_holds_up_another_tenants_message() {
    let rig = rig().await;
    let a = rig.tenant(&format!("EAAa{}", e2e::random_hex(6))).await;
    let b = rig.tenant(&format!("EAAb{}", e2e::random_hex(6))).await;
    // Accepted far faster than A's number may send them: a backlog of ~2,000 builds up
    // (a slow rate, so the local stand-ins keep up with A's sends while the test runs).
    rig.settings(&a, json!({"throughputPerSecond": 2})).await;
    rig.broadcast(&a, 2000, 16).await;
    let queued_at = Instant::now();
    let b_id = rig.send(&b, "34699999999", "for B").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rig.graph.calls().iter().any(|c| c.text == "for B") {
        if Instant::now() > deadline {
            let oid = mongodb::bson::oid::ObjectId::parse_str(&b_id).expect("id");
            let m = rig.app.messages(doc! {"_id": oid}).await;
            panic!("B's message not sent in 10 s: {m:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let reached = rig
        .graph
        .calls()
        .into_iter()
        .find(|c| c.text == "for B")
        .expect("B")
        .at;
    let waited = reached.duration_since(queued_at);
    let a_sent = rig
        .graph
        .calls()
        .iter()
        .filter(|c| c.number == a.number)
        .count();
    assert!(
        waited <= Duration::from_secs(2),
        "B's message waited {waited:?} behind A's backlog ({a_sent} of A's 2000 sent)"
    );
    assert!(
        a_sent <= 2000 - 500,
        "A's backlog was still there: {a_sent} of 2000 sent"
    );
}
