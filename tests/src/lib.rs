//! Test harness: each test gets the whole app (the local gateway's router, i.e. every
//! function behind the template.yaml route table) on its own port, against a fresh MongoDB
//! database on the stack that `make test` started, plus helpers to replay `events/` fixtures
//! through the Lambda entry path and to capture log output.

use std::{
    collections::HashMap,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};

use mongodb::Database;
use serde_json::Value;
use shared::{AppState, config::Config, state};

pub mod faults;

/// The Meta app id the tests' apps exchange Embedded Signup codes with.
pub const META_APP_ID: &str = "1000000001";
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with `make test`, which starts the local stack")
    })
}

pub fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// A random phone_number_id (15 digits).
pub fn phone_number_id() -> String {
    format!("1{:014}", rand::random::<u64>() % 100_000_000_000_000)
}

/// Everything one test needs.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub db: Database,
    pub aws: aws_config::SdkConfig,
}

/// The stack's settings with the test credentials and a send queue of the test's own.
pub async fn test_config(aws: &aws_config::SdkConfig) -> Config {
    let mut config = Config::from_env().expect("stack environment");
    config.admin_token = Some(shared::secret::Secret::new(ADMIN_TOKEN));
    config.app_secret = Some(shared::secret::Secret::new(APP_SECRET));
    config.verify_token = Some(shared::secret::Secret::new(VERIFY_TOKEN));
    config.send_queue_url = Some(create_queue(aws, "send").await);
    config
}

/// A fresh queue on the stack's SQS (long visibility: a test reads each job once).
pub async fn create_queue(aws: &aws_config::SdkConfig, prefix: &str) -> String {
    aws_sdk_sqs::Client::new(aws)
        .create_queue()
        .queue_name(format!("{prefix}-{}", random_hex(6)))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

/// Two apps on one fresh database: the first with its send queue pointing nowhere (every
/// enqueue fails), the second healthy, as before and after a queue outage.
pub async fn queue_outage_then_recovery() -> (TestApp, TestApp) {
    let aws = sdk_config().await;
    let good = test_config(&aws).await;
    let mut broken = good.clone();
    broken.send_queue_url = good.send_queue_url.as_ref().map(|u| format!("{u}-missing"));
    let db = fresh_database().await;
    let down = serve(
        AppState::new(broken, &shared::aws::Aws::from_env(), db.clone()),
        db.clone(),
        aws.clone(),
    )
    .await;
    let up = serve(
        AppState::new(good, &shared::aws::Aws::from_env(), db.clone()),
        db,
        aws,
    )
    .await;
    (down, up)
}

/// A queue whose redrive policy moves a message to a fresh DLQ after `max_receive`
/// receives; returns (queue url, dlq url).
pub async fn queue_with_dlq(
    aws: &aws_config::SdkConfig,
    max_receive: u32,
    visibility_secs: Option<u32>,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(aws);
    let dlq = create_queue(aws, "dlq").await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let mut create = sqs
        .create_queue()
        .queue_name(format!("send-{}", random_hex(6)))
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive}"}}"#),
        );
    if let Some(v) = visibility_secs {
        create = create.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    let queue = create.send().await.expect("queue").queue_url.expect("url");
    (queue, dlq)
}

/// Visible + in-flight messages of a queue.
pub async fn queue_depth(sqs: &shared::aws::Sqs, url: &str) -> usize {
    let attrs = sqs
        .attributes(
            url,
            &[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
        .await
        .expect("attributes");
    attrs.values().filter_map(|v| v.parse::<usize>().ok()).sum()
}

/// The AWS SDK's settings for the stack (tests create and inspect queues with it).
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::{
        Builder,
        tls::{Provider, rustls_provider::CryptoMode},
    };
    let https = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}

/// A fresh database on the stack's MongoDB.
pub async fn fresh_database() -> Database {
    let db = state::connect_database(&stack_var("MONGO_URI"))
        .await
        .expect("mongo uri");
    db.client().database(&format!("t_{}", random_hex(6)))
}

/// The database `name` on the stack's MongoDB through a client of its own that hands every
/// command it starts to `on_started` (the round-trip and index tests count them).
pub async fn monitored_database(
    name: &str,
    on_started: impl Fn(mongodb::event::command::CommandStartedEvent) + Send + Sync + 'static,
) -> Database {
    use mongodb::event::{EventHandler, command::CommandEvent};
    let mut options = mongodb::options::ClientOptions::parse(stack_var("MONGO_URI"))
        .await
        .expect("uri");
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(s) = ev {
            on_started(s);
        }
    }));
    mongodb::Client::with_options(options)
        .expect("client")
        .database(name)
}

/// Settings of the test stack with a fresh database.
pub async fn test_state() -> (AppState, Database, aws_config::SdkConfig) {
    let aws = sdk_config().await;
    let config = test_config(&aws).await;
    let db = fresh_database().await;
    (
        AppState::new(config, &shared::aws::Aws::from_env(), db.clone()),
        db,
        aws,
    )
}

pub async fn spawn_app() -> TestApp {
    let (state, db, aws) = test_state().await;
    serve(state, db, aws).await
}

/// As [`spawn_app`], with settings changed first (Graph mock URL, queues, ...).
pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let aws = sdk_config().await;
    let mut config = test_config(&aws).await;
    change(&mut config);
    let db = fresh_database().await;
    serve(
        AppState::new(config, &shared::aws::Aws::from_env(), db.clone()),
        db,
        aws,
    )
    .await
}

/// The whole app (every template.yaml route) for `state`, on its own port.
pub async fn serve(state: AppState, db: Database, aws: aws_config::SdkConfig) -> TestApp {
    serve_scaled(state, db, aws, 1.0).await
}

/// As [`serve`], with every function's timeout scaled (fault tests cut handlers off fast).
pub async fn serve_scaled(
    state: AppState,
    db: Database,
    aws: aws_config::SdkConfig,
    scale: f64,
) -> TestApp {
    capture_logs();
    let app = local_gateway::app_scaled(&state, scale).expect("route table");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    shared::tls::install();
    TestApp {
        base,
        http: reqwest::Client::new(),
        state,
        db,
        aws,
    }
}

/// A registered tenant, as a test uses it.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub key: String,
    /// The access token it was registered with (never in a response or a log).
    pub token: String,
    pub number: String,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    /// `POST /tenants/register` with this body, as admin.
    pub async fn register(&self, body: &Value) -> Reply {
        self.call(
            "POST",
            "/tenants/register",
            Some(ADMIN_TOKEN),
            Some(&body.to_string()),
        )
        .await
    }

    /// `POST /tenants/{tenant}/send` with this body and this key.
    pub async fn send(&self, tenant: &str, key: &str, body: &Value) -> Reply {
        self.call(
            "POST",
            &format!("/tenants/{tenant}/send"),
            Some(key),
            Some(&body.to_string()),
        )
        .await
    }

    /// Registers a tenant as admin (a random number and token).
    pub async fn register_tenant(&self, name: &str) -> TestTenant {
        let token = format!("EAAtest{}", random_hex(16));
        let number = phone_number_id();
        let r = self
            .register(&serde_json::json!({
                "name": name, "phoneNumberId": number, "accessToken": token,
            }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        TestTenant {
            id: r.body["tenant"]["id"].as_str().expect("id").to_owned(),
            key: r.body["apiKey"].as_str().expect("apiKey").to_owned(),
            token,
            number,
        }
    }

    /// `POST /tenants/{id}/templates` with this body, with the tenant's key.
    pub async fn create_template(&self, tenant: &TestTenant, body: &Value) -> Reply {
        self.post(
            &format!("/tenants/{}/templates", tenant.id),
            &tenant.key,
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.call("GET", path, Some(bearer), None).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(bearer), Some(&body.to_string()))
            .await
    }

    pub async fn patch(&self, path: &str, bearer: &str, body: &Value) -> Reply {
        self.call("PATCH", path, Some(bearer), Some(&body.to_string()))
            .await
    }

    /// POSTs a webhook body signed with the test app secret, as Meta does.
    pub async fn webhook(&self, body: &str) -> Reply {
        let signature = shared::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
        self.webhook_with(body, Some(&signature)).await
    }

    pub async fn webhook_with(&self, body: &str, signature: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/whatsapp/webhook", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    /// Every job now on this app's send queue (each is read once).
    pub async fn queued_jobs(&self) -> Vec<Value> {
        let url = self
            .state
            .config
            .send_queue_url
            .clone()
            .expect("send queue");
        drain_queue(&self.aws, &url).await
    }

    /// Arranges that these customers wrote to the tenant a moment ago, so their 24-hour
    /// window is open (tests about other things send free-form messages to them). The
    /// window itself is tested through the webhook.
    pub async fn customers_wrote(&self, tenant: &str, wa_ids: &[&str]) {
        let tenant = mongodb::bson::oid::ObjectId::parse_str(tenant).expect("tenant id");
        let now = mongodb::bson::DateTime::now();
        let customers = self.db.collection::<mongodb::bson::Document>("customers");
        for chunk in wa_ids.chunks(500) {
            let docs = chunk.iter().map(|w| {
                mongodb::bson::doc! {
                    "tenantId": tenant, "waId": *w, "lastInboundAt": now, "firstSeenAt": now,
                }
            });
            // Already there (e.g. twice in one test): keep going.
            let _ = customers.insert_many(docs).ordered(false).await;
        }
    }

    pub async fn messages(&self, filter: mongodb::bson::Document) -> Vec<mongodb::bson::Document> {
        use futures::TryStreamExt;
        self.db
            .collection::<mongodb::bson::Document>("messages")
            .find(filter)
            .sort(mongodb::bson::doc! { "createdAt": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect")
    }
}

/// Receives until the queue is empty; the messages stay invisible long enough not to
/// come back during the test.
pub async fn drain_queue(aws: &aws_config::SdkConfig, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        for m in got {
            out.push(serde_json::from_str(m.body.as_deref().unwrap_or("null")).expect("job json"));
        }
    }
}

/// A fixture from `events/` with `{{NAME}}` placeholders filled in.
pub fn fixture(name: &str, vars: &HashMap<&str, String>) -> String {
    let path = repo_root().join("events").join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    // Placeholders are upper-case; `{{customer_name}}` in a template body is content.
    let unfilled = regex::Regex::new(r"\{\{[A-Z][A-Z0-9_]*\}\}").expect("static regex");
    assert!(
        !unfilled.is_match(&text),
        "fixture {name} has an unfilled placeholder"
    );
    text
}

/// Runs an API Gateway v2 event through the functions' Lambda entry (`shared::apigw`)
/// around `router`, exactly as Lambda would, and returns the response event as JSON.
pub async fn invoke_lambda(router: axum::Router, event_json: &str) -> Value {
    let request = serde_json::from_str(event_json).expect("API Gateway v2 event");
    let response = shared::apigw::call(router, request).await;
    serde_json::to_value(response).expect("serialisable response")
}

/// The body of a Lambda response as JSON.
pub fn lambda_body(response: &Value) -> Value {
    let body = response["body"].as_str().unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Sink> = OnceLock::new();

/// Installs (once per process) a subscriber that records every log line at debug level,
/// ours and the libraries', as JSON, the format the functions use in Lambda.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .json()
            .with_writer(move || writer.clone())
            .try_init();
        sink
    });
}

/// Everything logged so far in this process.
pub fn logs() -> String {
    LOGS.get()
        .and_then(|s| {
            s.0.lock()
                .ok()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
        .unwrap_or_default()
}
