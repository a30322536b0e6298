//! Round-trip budgets, with the tenant, its bot configuration and its token warm:
//! - an inbound text that triggers a reply: 2 MongoDB commands and at most 2 Redis commands
//!   on the webhook, whether the customer's conversation is remembered or they write for the
//!   first time, and 1 SQS send;
//! - end to end, webhook and sender (the sender's per-batch commands divided by the batch):
//!   at most 3 MongoDB commands per answered message, and per API send.
//!
//! Every one of those commands, and a status from Meta, finds its documents by the primary
//! key or an index, never by scanning a collection (SecantusDB, the local database, uses a
//! compound index only for equalities on its leading fields and one range after them: a
//! filter with one more field scans every document, 30 ms at 1,800 customers).
//!
//! MongoDB commands are counted with the driver's command monitoring (every command of the
//! process's client), Redis commands with `INFO commandstats` of a redis-server started for
//! this test alone.

use std::{
    collections::{BTreeMap, HashMap},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use local_gateway::shim::Shim;
use mongodb::{
    Client,
    bson::{Bson, Document, doc},
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path_regex},
};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn redis_calls(client: &redis::Client) -> BTreeMap<String, u64> {
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("info");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config" | "client" | "hello"))
        .collect()
}

/// One process's app, with its own Redis and a log of every MongoDB command it sends.
struct Counted {
    app: e2e::TestApp,
    _redis: Redis,
    redis: redis::Client,
    commands: Arc<Mutex<Vec<DbCommand>>>,
    shim: Shim,
    handler: Box<dyn local_gateway::shim::SqsHandler>,
    tenant: e2e::TestTenant,
    _graph: MockServer,
    /// The same database through a client that is not counted, for the test's own reads.
    check: mongodb::Database,
}

/// One MongoDB command: its name, its collection and the filters it selects documents by.
#[derive(Debug, Clone)]
struct DbCommand {
    name: String,
    collection: String,
    filters: Vec<Document>,
}

impl DbCommand {
    fn of(name: String, body: &Document) -> Self {
        let collection = body.get_str(&name).unwrap_or_default().to_owned();
        let statements = |field: &str| -> Vec<Document> {
            body.get_array(field)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_document()?.get_document("q").ok().cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let filters = match name.as_str() {
            "update" => statements("updates"),
            "delete" => statements("deletes"),
            "findAndModify" => body
                .get_document("query")
                .ok()
                .cloned()
                .into_iter()
                .collect(),
            "find" => body
                .get_document("filter")
                .ok()
                .cloned()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        Self {
            name,
            collection,
            filters,
        }
    }
}

/// What one counted step cost.
#[derive(Debug)]
struct Cost {
    commands: Vec<DbCommand>,
    redis: BTreeMap<String, u64>,
}

impl Cost {
    /// MongoDB commands as (name, collection), in the order they were sent.
    fn mongo(&self) -> Vec<(String, String)> {
        self.commands
            .iter()
            .map(|c| (c.name.clone(), c.collection.clone()))
            .collect()
    }

    /// Redis round trips: `INFO commandstats` also counts the commands a script runs, so a
    /// script's `GET` and `SET` are its own, not round trips, as long as every round trip
    /// of the path is a script.
    fn redis_round_trips(&self) -> u64 {
        let scripts = self.redis.get("evalsha").copied().unwrap_or(0);
        let inside = self.redis.get("get").copied().unwrap_or(0)
            + self.redis.get("set").copied().unwrap_or(0);
        assert!(
            self.redis
                .keys()
                .all(|k| matches!(k.as_str(), "evalsha" | "get" | "set")),
            "only the idempotency scripts run: {:?}",
            self.redis
        );
        // BEGIN runs SET and GET, FINISH runs SET, GET and SET: at most 3 each.
        assert!(inside <= 3 * scripts, "{:?}", self.redis);
        scripts
    }
}

impl Counted {
    async fn new() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (make test installs it)");
        let redis_process = Redis(child);
        let redis_url = format!("redis://127.0.0.1:{port}");
        let redis_client = redis::Client::open(redis_url.as_str()).expect("url");
        for _ in 0..50 {
            if redis_client
                .get_multiplexed_async_connection()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let graph = MockServer::start().await;
        let sent = std::sync::atomic::AtomicU64::new(0);
        Mock::given(method("POST"))
            .and(path_regex(r"/messages$"))
            .respond_with(move |_: &wiremock::Request| {
                let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ResponseTemplate::new(200).set_body_json(json!({
                    "messaging_product": "whatsapp",
                    "messages": [{"id": format!("wamid.budget{n}")}],
                }))
            })
            .mount(&graph)
            .await;

        let commands: Arc<Mutex<Vec<DbCommand>>> = Arc::default();
        let seen = commands.clone();
        let name = format!("t_{}", e2e::random_hex(6));
        let db = e2e::monitored_database(&name, move |s| {
            let command = DbCommand::of(s.command_name, &s.command);
            seen.lock().expect("lock").push(command);
        })
        .await;
        let check = Client::with_uri_str(std::env::var("MONGO_URI").expect("MONGO_URI"))
            .await
            .expect("client")
            .database(&name);
        let aws = e2e::sdk_config().await;
        let mut config = e2e::test_config(&aws).await;
        config.redis_url = Some(shared::secret::Secret::new(redis_url));
        config.whatsapp_api_base = graph.uri();
        let queue = config.send_queue_url.clone().expect("queue");
        let app = e2e::serve(
            shared::AppState::new(config, &shared::aws::Aws::from_env(), db.clone()),
            db,
            aws.clone(),
        )
        .await;
        let tenant = app.register_tenant("Budget").await;
        let t = format!("/tenants/{}/templates", tenant.id);
        for body in [
            json!({"key": "menu", "body": "Menu", "kind": "interactive_button", "buttons": [{"title": "A"}]}),
            json!({"key": "fb", "body": "?"}),
        ] {
            let r = app.post(&t, &tenant.key, &body).await;
            assert!(r.status < 300, "{}", r.text);
        }
        let flow = json!({"flows": [{"id": "hi", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu"}}], "fallbackTemplateKey": "fb"});
        let r = app
            .post(&format!("/tenants/{}/flows", tenant.id), &tenant.key, &flow)
            .await;
        assert!(r.status < 300, "{}", r.text);
        let handler = sender::handler(app.state.clone());
        let mut shim = Shim::new(shared::aws::Aws::from_env().sqs(), &queue)
            .await
            .expect("shim");
        shim.wait_seconds = 0;
        Self {
            app,
            _redis: redis_process,
            redis: redis_client,
            commands,
            shim,
            handler: Box::new(handler),
            tenant,
            _graph: graph,
            check,
        }
    }

    fn text(&self, from: &str, wamid: &str) -> String {
        let now = mongodb::bson::DateTime::now().timestamp_millis() / 1000;
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": self.tenant.number},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": now.to_string(), "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string()
    }

    /// The cost of `step`, in commands.
    async fn cost<F: std::future::Future<Output = ()>>(&self, step: F) -> Cost {
        self.commands.lock().expect("lock").clear();
        let before = redis_calls(&self.redis).await;
        step.await;
        let after = redis_calls(&self.redis).await;
        let commands = self.commands.lock().expect("lock").clone();
        let redis = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        Cost { commands, redis }
    }

    /// The commands of `cost` that scan their collection: each filter is explained as a
    /// `find` on the same collection. A filter on `_id` is a primary-key lookup: SecantusDB
    /// answers `update`, `delete` and `find` by `_id` without a scan (~0.6 ms whether a
    /// collection holds 500 or 5,000 documents, though its `explain` reports a COLLSCAN for
    /// them), and MongoDB every command. Its `findAndModify` scans whatever the filter (11 ms
    /// per 1,000 documents): the sender's claim of a one-message batch is one anyway, as on
    /// MongoDB it reads and leases the message by `_id` in one round trip.
    async fn scans(&self, cost: &Cost) -> Vec<String> {
        let mut scans = Vec::new();
        for command in &cost.commands {
            for filter in &command.filters {
                if filter.contains_key("_id") {
                    continue;
                }
                let explained = self
                    .check
                    .run_command(doc! {
                        "explain": { "find": &command.collection, "filter": filter.clone() },
                        "verbosity": "queryPlanner",
                    })
                    .await
                    .expect("explain");
                let plan = explained
                    .get_document("queryPlanner")
                    .and_then(|p| p.get_document("winningPlan"))
                    .cloned()
                    .unwrap_or_default();
                if stages(&plan).iter().any(|s| s == "COLLSCAN") {
                    scans.push(format!("{} {}: {filter}", command.name, command.collection));
                }
            }
        }
        scans
    }

    async fn inbound(&self, from: &str, wamid: &str) {
        let r = self.app.webhook(&self.text(from, wamid)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["replies"], 1, "{}", r.text);
    }

    /// Runs the sender over what is queued, one batch per receive, until `n` more messages
    /// are sent.
    async fn deliver(&self, n: usize) -> usize {
        let sent = || async {
            self.check
                .collection::<mongodb::bson::Document>("messages")
                .count_documents(mongodb::bson::doc! {"direction": "OUT", "status": "sent"})
                .await
                .expect("count") as usize
        };
        let target = sent().await + n;
        let mut batches = 0;
        while sent().await < target {
            batches += 1;
            assert!(batches < 50, "the sender did not send {n} messages");
            self.shim
                .poll_once(self.handler.as_ref())
                .await
                .expect("poll");
        }
        batches
    }
}

/// The stages of a query plan, outermost first.
fn stages(plan: &Document) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(plan);
    while let Some(stage) = next {
        if let Ok(name) = stage.get_str("stage") {
            out.push(name.to_owned());
        }
        next = match stage.get("inputStage") {
            Some(Bson::Document(d)) => Some(d),
            _ => None,
        };
    }
    out
}

fn customer(i: usize) -> String {
    format!("3460011{i:04}")
}

#[tokio::test]
async fn an_answered_message_stays_within_its_round_trip_budget() {
    let c = Counted::new().await;
    // Warm-up: indexes, tenant and bot config caches, token, Redis scripts; ten customers
    // who wrote before, so their conversations are remembered.
    for i in 0..10 {
        c.inbound(&customer(i), &format!("wamid.warm{i}")).await;
    }
    c.deliver(10).await;

    let webhook = c.cost(c.inbound(&customer(0), "wamid.remembered")).await;
    assert_eq!(
        webhook.mongo(),
        [
            ("update".to_owned(), "customers".to_owned()),
            ("insert".to_owned(), "messages".to_owned())
        ],
        "MongoDB commands of a remembered conversation's reply"
    );
    assert_eq!(webhook.redis_round_trips(), 2, "Redis: {:?}", webhook.redis);
    assert_eq!(c.app.queued_jobs().await.len(), 1, "one SQS send");

    let first = c.cost(c.inbound(&customer(99), "wamid.first")).await;
    assert_eq!(
        first.mongo(),
        [
            ("insert".to_owned(), "customers".to_owned()),
            ("insert".to_owned(), "messages".to_owned())
        ],
        "MongoDB commands of a first contact's reply"
    );
    assert_eq!(first.redis_round_trips(), 2, "Redis: {:?}", first.redis);
    assert_eq!(c.app.queued_jobs().await.len(), 1, "one SQS send");
    println!("budget: webhook {webhook:?}; first contact {first:?}");
    for (step, cost) in [("remembered", &webhook), ("first contact", &first)] {
        assert_eq!(c.scans(cost).await, Vec::<String>::new(), "{step}: scans");
    }

    // End to end, one message and a batch of one (a quiet queue): the sender claims and
    // reads it in one command and records it in one.
    let single = c
        .cost(async {
            c.inbound(&customer(0), "wamid.single").await;
            assert_eq!(c.deliver(1).await, 1, "one batch");
        })
        .await;
    let names: Vec<(&str, &str)> = single
        .commands
        .iter()
        .map(|c| (c.name.as_str(), c.collection.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("update", "customers"),
            ("insert", "messages"),
            ("findAndModify", "messages"),
            ("update", "messages")
        ],
        "one answered message, webhook and a batch of one"
    );
    assert_eq!(c.scans(&single).await, Vec::<String>::new(), "scans");

    // Meta's `delivered` for that reply (events/meta/status_delivered.json): Meta sends
    // three statuses for every message, so they too find their message through an index.
    let reply = c
        .check
        .collection::<Document>("messages")
        .find_one(doc! { "inReplyTo": "wamid.single" })
        .await
        .expect("find")
        .expect("the reply");
    let vars = HashMap::from([
        ("PHONE_NUMBER_ID", c.tenant.number.clone()),
        (
            "OUT_WAMID",
            reply.get_str("waMessageId").expect("wamid").to_owned(),
        ),
        (
            "TIMESTAMP",
            (mongodb::bson::DateTime::now().timestamp_millis() / 1000).to_string(),
        ),
        ("FROM", customer(0)),
    ]);
    let body = e2e::fixture("meta/status_delivered.json", &vars);
    let status = c
        .cost(async {
            let r = c.app.webhook(&body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["statuses"], 1, "{}", r.text);
        })
        .await;
    println!("budget: a status {status:?}");
    assert_eq!(
        c.scans(&status).await,
        Vec::<String>::new(),
        "status: scans"
    );

    // End to end: ten answered messages, then the sender's batch.
    let end_to_end = c
        .cost(async {
            for i in 0..10 {
                c.inbound(&customer(i), &format!("wamid.counted{i}")).await;
            }
            c.deliver(10).await;
        })
        .await;
    let per_message = end_to_end.mongo().len() as f64 / 10.0;
    println!(
        "budget: end to end, {per_message} MongoDB commands per answered message: {:?}; Redis {:?}",
        end_to_end.mongo(),
        end_to_end.redis
    );
    assert!(
        per_message <= 3.0,
        "MongoDB commands per answered message, webhook and sender: {:?}",
        end_to_end.mongo()
    );
    assert_eq!(c.scans(&end_to_end).await, Vec::<String>::new(), "scans");

    // API sends to the same customers (their windows are open), then the sender's batch.
    let api = c
        .cost(async {
            for i in 0..10 {
                let r = c
                    .app
                    .send(
                        &c.tenant.id,
                        &c.tenant.key,
                        &json!({"to": customer(i), "text": "Your order shipped"}),
                    )
                    .await;
                assert_eq!(r.status, 202, "{}", r.text);
            }
            c.deliver(10).await;
        })
        .await;
    let per_send = api.mongo().len() as f64 / 10.0;
    println!(
        "budget: API send, {per_send} MongoDB commands per message: {:?}; Redis {:?}",
        api.mongo(),
        api.redis
    );
    assert!(
        per_send <= 3.0,
        "MongoDB commands per API send, API and sender: {:?}",
        api.mongo()
    );
    assert_eq!(c.scans(&api).await, Vec::<String>::new(), "API send: scans");
}
