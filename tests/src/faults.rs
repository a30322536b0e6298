//! A Lambda-faithful rig for fault tests: the whole app behind the gateway with every
//! function timeout scaled down, a Graph mock counting deliveries, the queue feeding the
//! sender through the local event source mapping (cut off at the sender's scaled timeout)
//! and the relay, plus the two clients that retry: Meta and an API caller.

use std::time::{Duration, Instant};

use local_gateway::shim::{Shim, SqsHandler};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::TestApp;

/// Function timeouts are template.yaml's times this: webhook/send 1 s, sender/relay 3 s.
pub const SCALE: f64 = 0.1;

pub struct FaultRig {
    pub app: TestApp,
    pub graph: MockServer,
    pub tenant: String,
    pub key: String,
    pub number: String,
    shim: Shim,
    handler: Box<dyn SqsHandler>,
    relay_timeout: Duration,
}

/// Graph answers every send with a fresh wamid.
struct Wamids;

impl wiremock::Respond for Wamids {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let wamid = format!("wamid.G{}", crate::random_hex(10));
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "34600111222", "wa_id": "34600111222"}],
            "messages": [{"id": wamid}],
        }))
    }
}

impl FaultRig {
    pub async fn new() -> Self {
        let graph = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
            .respond_with(Wamids)
            .mount(&graph)
            .await;
        let aws = crate::sdk_config().await;
        let (queue, dlq) = crate::queue_with_dlq(&aws, 5, Some(2)).await;
        let mut config = crate::test_config(&aws).await;
        config.whatsapp_api_base = graph.uri();
        config.send_queue_url = Some(queue.clone());
        config.send_dlq_url = Some(dlq);
        // Below the scaled HTTP timeout (1 s), as the defaults are below 10 s.
        config.idempotency_lock = Duration::from_millis(800);
        // Above the scaled sender timeout (3 s), as the default is above 30 s.
        config.send_lease = Duration::from_millis(3500);
        config.send_retry_base = Duration::ZERO;
        config.relay_grace = Duration::from_secs(2);
        let db = crate::fresh_database().await;
        let state = shared::AppState::new(config, &shared::aws::Aws::from_env(), db.clone());
        let app = crate::serve_scaled(state, db, aws.clone(), SCALE).await;
        let number = crate::phone_number_id();
        let r = app
            .register(&json!({"name": "Shop", "phoneNumberId": number, "accessToken": format!("EAAfault{}", crate::random_hex(8))}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let handler: Box<dyn SqsHandler> = Box::new(sender::handler(app.state.clone()));
        let timeouts = local_gateway::timeouts(SCALE).expect("timeouts");
        let mut shim = Shim::new(shared::aws::Aws::from_env().sqs(), &queue)
            .await
            .expect("shim");
        shim.wait_seconds = 0;
        shim.timeout = timeouts["sender"];
        let tenant = r.body["tenant"]["id"].as_str().expect("id").to_owned();
        let key = r.body["apiKey"].as_str().expect("key").to_owned();
        app.customers_wrote(&tenant, &["34600111222"]).await;
        let rig = Self {
            app,
            graph,
            tenant,
            key,
            number,
            shim,
            handler,
            relay_timeout: timeouts["relay"],
        };
        rig.bot().await;
        rig
    }

    /// A new sender process (a cold start): nothing the old one kept in memory.
    pub fn restart_sender(&mut self) {
        self.handler = Box::new(sender::handler(self.app.state.clone()));
    }

    /// "hi" → a menu with one button.
    async fn bot(&self) {
        let t = format!("/tenants/{}/templates", self.tenant);
        for body in [
            json!({"key": "menu", "body": "Hi! Pick one", "kind": "interactive_button", "buttons": [{"title": "Hours"}]}),
            json!({"key": "fb", "body": "Sorry?"}),
        ] {
            let r = self
                .app
                .call("POST", &t, Some(&self.key), Some(&body.to_string()))
                .await;
            assert!(r.status < 300, "{}", r.text);
        }
        let flow = json!({"flows": [{"id": "hi", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu", "setState": "menu"}}], "fallbackTemplateKey": "fb"});
        let r = self
            .app
            .call(
                "POST",
                &format!("/tenants/{}/flows", self.tenant),
                Some(&self.key),
                Some(&flow.to_string()),
            )
            .await;
        assert!(r.status < 300, "{}", r.text);
    }

    /// A signed "hi" from one customer with this wamid, as Meta posts it.
    pub fn inbound(&self, wamid: &str) -> String {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": self.number},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "34600111222"}],
            "messages": [{"from": "34600111222", "id": wamid, "timestamp": "1795341600", "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string()
    }

    /// Meta: posts until the answer is 200, retrying every few hundred ms (Meta waits
    /// longer; the schedule does not matter, only that it retries every non-200).
    pub async fn meta_delivers(&self, body: &str) -> Vec<u16> {
        let mut answers = Vec::new();
        for _ in 0..60 {
            let r = self.app.webhook(body).await;
            answers.push(r.status);
            if r.status == 200 {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the webhook never answered 200: {answers:?}");
    }

    pub async fn send(&self, body: &Value) -> crate::Reply {
        self.app.send(&self.tenant, &self.key, body).await
    }

    /// An API client: retries with the same idempotency key until 202 or 409.
    pub async fn client_sends(&self, body: &Value) -> Vec<u16> {
        let mut answers = Vec::new();
        for _ in 0..60 {
            let r = self.send(body).await;
            answers.push(r.status);
            if r.status == 202 || r.status == 409 {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the send was never accepted: {answers:?}");
    }

    /// One cycle of what AWS runs on its own: the event source mapping and the relay.
    pub async fn tick(&self) {
        let _ = self.shim.poll_once(self.handler.as_ref()).await;
        local_gateway::invoke_relay(&self.app.state, self.relay_timeout).await;
    }

    /// Runs [`Self::tick`] until every outbound message is sent (or 40 s pass), then a
    /// little longer so a second delivery would show.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            self.tick().await;
            let out = self.app.messages(doc! {"direction": "OUT"}).await;
            if !out.is_empty() && out.iter().all(|m| m.get_str("status") == Ok("sent")) {
                let until = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < until {
                    self.tick().await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let out = self.app.messages(doc! {"direction": "OUT"}).await;
        panic!("outbound messages never all sent: {out:?}");
    }

    /// Jobs on the send queue (visible or not).
    pub async fn queued(&self) -> usize {
        let url = self.app.state.config.send_queue_url.clone().expect("queue");
        crate::queue_depth(&self.app.state.sqs, &url).await
    }

    /// Requests that reached Graph.
    pub async fn deliveries(&self) -> usize {
        self.graph.received_requests().await.map_or(0, |r| r.len())
    }

    pub async fn out(&self) -> Vec<Document> {
        self.app.messages(doc! {"direction": "OUT"}).await
    }

    pub async fn inbound_count(&self) -> usize {
        self.app.messages(doc! {"direction": "IN"}).await.len()
    }
}
