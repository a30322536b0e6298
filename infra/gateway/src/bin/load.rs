//! `make bench`'s HTTP load (infra/bench.sh drives it): signed webhook posts against a
//! running local gateway, measured from outside the process the way a load balancer and
//! the database's own counters would see them.
//!
//!   load graph --port P                      Graph API stand-in: 200 to every send, GET /count
//!   load setup --base URL --admin-token T --phone-number-id N --graph URL
//!                                            registers the bench tenant, its bot; prints its id
//!   load header                              the table's header
//!   load run --base URL --app-secret S --phone-number-id N --concurrency C --requests R
//!            --customers K --graph URL --gateway-pid PID --mongo-uri URI --redis-url URL
//!            --label TEXT                    one run: one table row
//!   load floor --base URL --gateway-pid PID --queue-url URL --phone-number-id N --graph URL
//!                                            the CPU one round trip of each kind costs
//!
//! A run's per-message figures are totals between two snapshots divided by R, the second
//! snapshot taken once every reply reached the Graph stand-in and the gateway went quiet,
//! so the sender's work for those replies is in them.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{Method, Uri},
    routing::get,
};
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Value, json};
use shared::state::BoxError;

/// How long the queue may take to deliver a run's replies after the last webhook answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// The gateway counts as done with a run once neither its CPU time nor the database
/// counters moved for this long.
const QUIET: Duration = Duration::from_millis(300);
/// Beyond this the run is reported anyway (with a warning): a heartbeat or a relay pass
/// can keep the counters moving, and that should not hang the bench.
const QUIET_TIMEOUT: Duration = Duration::from_secs(15);
/// Error bodies printed after a run; the rest are only counted.
const ERROR_SAMPLES: usize = 3;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        return Err("usage: load graph|setup|header|run|floor [--name value ...]".into());
    };
    let args = Args::parse(rest)?;
    match command.as_str() {
        "graph" => graph(args.num("port")?).await,
        "setup" => setup(&args).await,
        "header" => {
            header();
            Ok(())
        }
        "run" => run(&args).await,
        "floor" => floor(&args),
        other => {
            Err(format!("unknown command {other:?}: use graph, setup, header, run or floor").into())
        }
    }
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse(argv: &[String]) -> Result<Self, BoxError> {
        let mut out = HashMap::new();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --name value, got {arg:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            out.insert(name.to_owned(), value.clone());
        }
        Ok(Self(out))
    }

    fn get(&self, name: &str) -> Result<&str, BoxError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn num<T: FromStr>(&self, name: &str) -> Result<T, BoxError> {
        let raw = self.get(name)?;
        raw.parse()
            .map_err(|_| format!("--{name} must be a number, got {raw:?}").into())
    }
}

fn http_client(pool: usize) -> Result<reqwest::Client, BoxError> {
    shared::tls::install();
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(pool.max(1))
        .timeout(Duration::from_secs(30))
        .build()?)
}

// ---- Graph stand-in --------------------------------------------------------------------

/// Answers every send at once, so the bench measures the gateway and not a remote API.
/// The counter is shared by the wamids it hands out and `GET /count`, which is how a run
/// knows its replies were all delivered.
async fn graph(port: u16) -> Result<(), BoxError> {
    let sent = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/count",
            get(|State(sent): State<Arc<AtomicU64>>| async move {
                sent.load(Ordering::Relaxed).to_string()
            }),
        )
        .fallback(graph_any)
        .with_state(sent);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn graph_any(
    State(sent): State<Arc<AtomicU64>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Json<Value> {
    if method != Method::POST || !uri.path().ends_with("/messages") {
        return Json(json!({}));
    }
    let n = sent.fetch_add(1, Ordering::Relaxed);
    let to = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["to"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.bench{n}")}],
    }))
}

async fn graph_count(http: &reqwest::Client, graph: &str) -> Result<u64, BoxError> {
    let text = http
        .get(format!("{}/count", graph.trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.trim()
        .parse()
        .map_err(|_| format!("the Graph stand-in's /count answered {text:?}").into())
}

// ---- setup -----------------------------------------------------------------------------

/// The bot of the e2e round-trip budget test (tests/tests/e2e/budget.rs): "hi" gets an
/// interactive menu, anything else a text fallback, so every message is answered once.
async fn setup(args: &Args) -> Result<(), BoxError> {
    let base = args.get("base")?.trim_end_matches('/').to_owned();
    let admin = args.get("admin-token")?;
    let number = args.get("phone-number-id")?;
    let graph = args.get("graph")?;
    let http = http_client(1)?;
    // The stand-in must be up before a reply could be sent to it.
    graph_count(&http, graph).await?;

    // Not a `mock_` token: those never reach Graph, and the bench wants the real send path.
    let registered = call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/tenants/register"),
        admin,
        &json!({"name": "Load Bench", "phoneNumberId": number, "accessToken": "bench_token_not_mock"}),
    )
    .await?;
    let tenant = registered["tenant"]["id"]
        .as_str()
        .ok_or_else(|| format!("registration answered no tenant.id: {registered}"))?
        .to_owned();
    let key = registered["apiKey"]
        .as_str()
        .ok_or_else(|| format!("registration answered no apiKey: {registered}"))?
        .to_owned();

    // Pacing would otherwise be what the table measures. The number's default of 80 msg/s
    // caps every run at 80 replies per second, so it goes to Meta's maximum (1,000). A
    // customer's burst (45, then one per 6 s) is never reached with the bench's
    // defaults (each customer writes a handful of times in all), but a larger
    // BENCH_REQUESTS would reach it; an interval of 0 leaves only the fixed 200 ms
    // between two messages to one customer (pacing::CUSTOMER_GAP), and with 1,000
    // customers taking turns a customer writes again only 1,000 requests later. Set
    // before anything is sent, so no process has the defaults cached.
    call(
        &http,
        reqwest::Method::PATCH,
        &format!("{base}/tenants/{tenant}"),
        admin,
        &json!({"throughputPerSecond": 1000, "customerIntervalSeconds": 0}),
    )
    .await?;

    let templates = format!("{base}/tenants/{tenant}/templates");
    for body in [
        json!({"key": "menu", "body": "Menu", "kind": "interactive_button", "buttons": [{"title": "A"}]}),
        json!({"key": "fb", "body": "?"}),
    ] {
        call(&http, reqwest::Method::POST, &templates, &key, &body).await?;
    }
    let flow = json!({
        "flows": [{"id": "hi", "match": {"type": "equals", "values": ["hi"]},
                   "action": {"type": "send_template", "templateKey": "menu"}}],
        "fallbackTemplateKey": "fb",
    });
    call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/tenants/{tenant}/flows"),
        &key,
        &flow,
    )
    .await?;
    println!("{tenant}");
    Ok(())
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    bearer: &str,
    body: &Value,
) -> Result<Value, BoxError> {
    let response = http
        .request(method.clone(), url)
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("{method} {url} answered {status}: {text}").into());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ---- run -------------------------------------------------------------------------------

fn header() {
    println!(
        "| concurrency | req/s | p50 ms | p99 ms | CPU ms/msg | functions CPU ms/msg | MongoDB cmds/msg | Redis cmds/msg | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

/// What a run sends: everything a sending task needs, shared.
struct Load {
    url: String,
    app_secret: String,
    number: String,
    label: String,
    requests: usize,
    customers: usize,
}

impl Load {
    /// A Meta "messages" notification: one "hi" from one of the `customers`, each request
    /// with its own wamid so none is a duplicate.
    fn body(&self, i: usize, now: u64) -> String {
        let from = format!("346{:08}", i % self.customers);
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": self.number},
            "contacts": [{"profile": {"name": "Bench"}, "wa_id": from}],
            "messages": [{"from": from, "id": format!("wamid.load.{}.{i}", self.label),
                          "timestamp": now.to_string(), "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string()
    }
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    samples: Vec<String>,
    /// Replies the webhook reported queuing (`replies` of each 200): what Graph should see.
    replies: u64,
}

async fn send_all(
    http: reqwest::Client,
    load: Arc<Load>,
    next: Arc<AtomicUsize>,
) -> Result<Outcome, BoxError> {
    let mut out = Outcome::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= load.requests {
            return Ok(out);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let body = load.body(i, now);
        let signature =
            shared::webhook::signature::sign(load.app_secret.as_bytes(), body.as_bytes());
        let started = Instant::now();
        let result = http
            .post(&load.url)
            .header(shared::webhook::signature::HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let answer = match result {
            Ok(response) => {
                let status = response.status();
                response
                    .text()
                    .await
                    .map(|text| (status, text))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        out.latencies.push(started.elapsed());
        match answer {
            Ok((status, text)) if status == reqwest::StatusCode::OK => {
                out.replies += serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["replies"].as_u64())
                    .unwrap_or(0);
            }
            Ok((status, text)) => {
                out.errors += 1;
                if out.samples.len() < ERROR_SAMPLES {
                    out.samples.push(format!("HTTP {status}: {text}"));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.samples.len() < ERROR_SAMPLES {
                    out.samples.push(e);
                }
            }
        }
    }
}

/// The counters a run is measured with, read from outside the gateway.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    /// Which snapshot of this run it is: every snapshot is one `serverStatus` and one
    /// `INFO`, which the counters see too (see [`Monitor::own_commands`]).
    seq: u64,
    cpu_ticks: u64,
    /// Of those, the queue pollers' threads (the event source mapping's part, AWS's own).
    poller_ticks: u64,
    mongo: u64,
    redis: u64,
}

struct Monitor {
    pid: u32,
    admin: mongodb::Database,
    redis: redis::aio::MultiplexedConnection,
    taken: u64,
}

impl Monitor {
    async fn connect(pid: u32, mongo_uri: &str, redis_url: &str) -> Result<Self, BoxError> {
        let mongo = mongodb::Client::with_uri_str(mongo_uri).await?;
        let redis = redis::Client::open(redis_url)?
            .get_multiplexed_async_connection()
            .await?;
        Ok(Self {
            pid,
            admin: mongo.database("admin"),
            redis,
            taken: 0,
        })
    }

    async fn snapshot(&mut self) -> Result<Snapshot, BoxError> {
        self.taken += 1;
        let cpu_ticks = cpu_ticks(self.pid)?;
        let poller_ticks = poller_ticks(self.pid)?;
        let status = self.admin.run_command(doc! {"serverStatus": 1}).await?;
        let mongo = opcounters(&status)?;
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.redis)
            .await?;
        // Commands a Lua script runs count here as well as the EVALSHA itself, so this is
        // Redis's work, not round trips (tests/tests/e2e/budget.rs counts those).
        let redis: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("INFO stats has no total_commands_processed")?;
        Ok(Snapshot {
            seq: self.taken,
            cpu_ticks,
            poller_ticks,
            mongo,
            redis,
        })
    }

    /// The bench's own commands between two snapshots, the same for both servers:
    /// `serverStatus` is in the opcounters of its own reply (so every snapshot after
    /// `before` counts, `after` included), while Redis counts a command once it has run
    /// (so every `INFO` from `before` on counts, `after`'s not). The drivers' connection
    /// handshakes happen before `before` (the connection is made and used first); the
    /// MongoDB driver's heartbeat `hello`s (one per 10 s per monitored connection, this
    /// tool's and the gateway's) are not subtracted: a few over a run, against thousands
    /// of commands.
    fn own_commands(before: &Snapshot, after: &Snapshot) -> u64 {
        after.seq - before.seq
    }
}

/// Sum of the `serverStatus` opcounters: with SecantusDB every dispatched command lands in
/// exactly one of these buckets (anything not CRUD in `command`), so this is the number of
/// commands the server ran.
fn opcounters(status: &Document) -> Result<u64, BoxError> {
    let counters = status
        .get_document("opcounters")
        .map_err(|_| "serverStatus has no opcounters")?;
    let mut sum = 0u64;
    for bucket in ["insert", "query", "update", "delete", "getmore", "command"] {
        sum += match counters.get(bucket) {
            Some(Bson::Int32(v)) => u64::try_from(*v).unwrap_or(0),
            Some(Bson::Int64(v)) => u64::try_from(*v).unwrap_or(0),
            Some(Bson::Double(v)) => *v as u64,
            _ => return Err(format!("serverStatus.opcounters.{bucket} is missing").into()),
        };
    }
    Ok(sum)
}

/// The process's user + system CPU time, in clock ticks, all threads together
/// (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: u32) -> Result<u64, BoxError> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// The CPU time of the gateway's queue-poller threads (`local_gateway::shim::POLLER_THREAD`),
/// in clock ticks: the part of [`cpu_ticks`] that is Lambda's event source mapping in AWS.
fn poller_ticks(pid: u32) -> Result<u64, BoxError> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("/proc/{pid}/task: {e} (is the gateway still running?)"))?;
    let mut ticks = 0;
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == local_gateway::shim::POLLER_THREAD {
            // A thread that ended between the listing and this read has no ticks left.
            ticks += stat_ticks(&dir.join("stat").to_string_lossy()).unwrap_or(0);
        }
    }
    Ok(ticks)
}

/// utime + stime of a /proc `stat` file.
fn stat_ticks(path: &str) -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e} (is the gateway still running?)"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields from
    // the last ')', where field 3 starts.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, BoxError> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{path} has no field {n}").into())
    };
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second for /proc's CPU times: `getconf CLK_TCK`, or 100 (what Linux
/// reports on every common architecture) when getconf is missing.
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn run(args: &Args) -> Result<(), BoxError> {
    let concurrency: usize = args.num("concurrency")?;
    let requests: usize = args.num("requests")?;
    let customers: usize = args.num("customers")?;
    if concurrency == 0 || requests == 0 || customers == 0 {
        return Err("--concurrency, --requests and --customers must be at least 1".into());
    }
    let graph = args.get("graph")?.to_owned();
    let load = Arc::new(Load {
        url: format!(
            "{}/whatsapp/webhook",
            args.get("base")?.trim_end_matches('/')
        ),
        app_secret: args.get("app-secret")?.to_owned(),
        number: args.get("phone-number-id")?.to_owned(),
        label: args.get("label")?.to_owned(),
        requests,
        customers,
    });
    let http = http_client(concurrency)?;
    let mut monitor = Monitor::connect(
        args.num("gateway-pid")?,
        args.get("mongo-uri")?,
        args.get("redis-url")?,
    )
    .await?;
    // The first snapshot opens the monitoring connections; only the second one counts.
    monitor.snapshot().await?;
    let graph_before = graph_count(&http, &graph).await?;
    let before = monitor.snapshot().await?;

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(send_all(http.clone(), load.clone(), next.clone())))
        .collect();
    let mut outcome = Outcome::default();
    for task in tasks {
        let part = task.await??;
        outcome.latencies.extend(part.latencies);
        outcome.errors += part.errors;
        outcome.replies += part.replies;
        for s in part.samples {
            if outcome.samples.len() < ERROR_SAMPLES {
                outcome.samples.push(s);
            }
        }
    }
    let sending = started.elapsed();

    // Drained: every reply the webhook queued has reached Graph.
    let target = graph_before + outcome.replies;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let seen = graph_count(&http, &graph).await?;
        if seen >= target {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "run {}: {} of {} replies reached Graph within {} s",
                load.label,
                seen.saturating_sub(graph_before),
                outcome.replies,
                DRAIN_TIMEOUT.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The sender stores each send's outcome after Graph answered: wait for that too, until
    // the gateway's CPU time and the servers' counters (less this tool's own reads) stand
    // still.
    let quiet_deadline = Instant::now() + QUIET_TIMEOUT;
    let mut last = monitor.snapshot().await?;
    let after = loop {
        tokio::time::sleep(QUIET).await;
        let now = monitor.snapshot().await?;
        let own = Monitor::own_commands(&last, &now);
        let quiet = now.cpu_ticks == last.cpu_ticks
            && now.mongo == last.mongo + own
            && now.redis == last.redis + own;
        if quiet {
            break now;
        }
        if Instant::now() > quiet_deadline {
            eprintln!(
                "run {}: the gateway did not go quiet within {} s; measured as is",
                load.label,
                QUIET_TIMEOUT.as_secs()
            );
            break now;
        }
        last = now;
    };

    let n = requests as f64;
    let own = Monitor::own_commands(&before, &after);
    let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64;
    let cpu_ms = ticks * 1000.0 / ticks_per_second() / n;
    let pollers = after.poller_ticks.saturating_sub(before.poller_ticks) as f64;
    let functions_ms = (ticks - pollers).max(0.0) * 1000.0 / ticks_per_second() / n;
    let mongo = after.mongo.saturating_sub(before.mongo + own) as f64 / n;
    let redis = after.redis.saturating_sub(before.redis + own) as f64 / n;
    outcome.latencies.sort_unstable();
    println!(
        "| {concurrency} | {:.1} | {:.2} | {:.2} | {cpu_ms:.2} | {functions_ms:.2} | {mongo:.2} | {redis:.2} | {} |",
        n / sending.as_secs_f64(),
        percentile_ms(&outcome.latencies, 0.50),
        percentile_ms(&outcome.latencies, 0.99),
        outcome.errors,
    );
    if outcome.errors > 0 {
        eprintln!(
            "run {}: {} of {requests} webhook posts failed; the first:",
            load.label, outcome.errors
        );
        for s in &outcome.samples {
            eprintln!("  {s}");
        }
    }
    Ok(())
}

// ---- floor -----------------------------------------------------------------------------

/// Round trips timed per kind, after as many untimed ones (connections, scripts, caches).
const FLOOR_ROUNDS: u32 = 2_000;

/// The CPU time of one round trip of each kind, in microseconds.
struct Floor {
    request_in: f64,
    mongo_update: f64,
    mongo_find: f64,
    redis_script: f64,
    redis_mget: f64,
    sqs_send: f64,
    /// The same signed `SendMessage` to the Graph stand-in: the client's cost when the
    /// server at the other end is not moto.
    sqs_send_control: f64,
    graph_send: f64,
}

impl Floor {
    fn rows(&self) -> [(&'static str, f64); 8] {
        [
            (
                "request in (gateway, keep-alive GET /health)",
                self.request_in,
            ),
            ("MongoDB update by _id", self.mongo_update),
            ("MongoDB find by _id", self.mongo_find),
            ("Redis EVALSHA", self.redis_script),
            ("Redis MGET", self.redis_mget),
            ("SQS SendMessage (moto)", self.sqs_send),
            (
                "the same SendMessage to the Graph stand-in (Rust)",
                self.sqs_send_control,
            ),
            ("Graph send (POST)", self.graph_send),
        ]
    }

    /// An answered message's round trips, the budget's path (tests/tests/e2e/budget.rs,
    /// docs/architecture.md): the webhook's request, lock and memo scripts, conversation
    /// write and insert, queue send (costing `sqs_send`); the sender's pacing script and
    /// Graph call per message, its claim (`update` + `find`), write and kept-status read per
    /// batch of `batch`. (webhook, sender) in microseconds.
    fn path(&self, sqs_send: f64, batch: f64) -> (f64, f64) {
        let webhook =
            self.request_in + 2.0 * self.redis_script + 2.0 * self.mongo_update + sqs_send;
        let per_batch = 2.0 * self.mongo_update + self.mongo_find + self.redis_mget;
        let sender = self.redis_script + self.graph_send + per_batch / batch;
        (webhook, sender)
    }
}

/// What one round trip of each kind an answered message makes costs in CPU, before any of
/// the message's own work: the functions' clients (built as `AppState::from_env` builds
/// them) on a single-threaded runtime of their own thread, timed by that thread's CPU
/// clock; the inbound request by the gateway's main thread's. Then the sum over an answered
/// message's round trips, to compare with the runs' functions CPU per message.
fn floor(args: &Args) -> Result<(), BoxError> {
    let base = args.get("base")?.to_owned();
    let gateway: u32 = args.num("gateway-pid")?;
    let queue = args.get("queue-url")?.to_owned();
    let number = args.get("phone-number-id")?.to_owned();
    let graph = args.get("graph")?.to_owned();
    let floor = std::thread::spawn(move || -> Result<Floor, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(measure_floor(&base, gateway, &queue, &number, &graph))
            .map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the floor thread panicked")??;
    println!("| round trip | CPU µs |");
    println!("|---|---:|");
    for (kind, micros) in floor.rows() {
        println!("| {kind} | {micros:.1} |");
    }
    println!();
    // Batches of 2: about what the C8 run's hold.
    for (what, sqs) in [
        ("moto", floor.sqs_send),
        ("a Rust server", floor.sqs_send_control),
    ] {
        let (webhook, sender) = floor.path(sqs, 2.0);
        println!(
            "An answered message's round trips alone, the queue send to {what}: webhook {:.3} ms + sender {:.3} ms = {:.3} ms",
            webhook / 1000.0,
            sender / 1000.0,
            (webhook + sender) / 1000.0
        );
    }
    Ok(())
}

async fn measure_floor(
    base: &str,
    gateway: u32,
    queue: &str,
    number: &str,
    graph: &str,
) -> Result<Floor, BoxError> {
    // As `AppState::from_env`, with Graph calls to the stand-in.
    let aws = shared::aws::Aws::from_env();
    let config = shared::config::Config::from_lookup(|k| match k {
        "WHATSAPP_API_BASE" => Some(graph.to_owned()),
        other => std::env::var(other).ok(),
    })?;
    let db = shared::state::connect_database(config.mongo_uri.expose()).await?;
    let state = shared::AppState::new(config, &aws, db);
    let http = http_client(1)?;
    let health = format!("{base}/health");
    let gateway_clock = format!("/proc/{gateway}/task/{gateway}/schedstat");
    let request_in = per_round_trip(
        || cpu_ns(&gateway_clock),
        |_| async {
            http.get(&health)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok(())
        },
    )
    .await?;
    let own = || cpu_ns("/proc/thread-self/schedstat");
    let docs = state.store.collection::<Document>("floor").await?;
    let mongo_update = per_round_trip(own, |_| async {
        docs.update_one(doc! {"_id": 1}, doc! {"$inc": {"n": 1}})
            .upsert(true)
            .await?;
        Ok(())
    })
    .await?;
    let mongo_find = per_round_trip(own, |_| async {
        docs.find_one(doc! {"_id": 1})
            .await?
            .ok_or("the floor document is missing")?;
        Ok(())
    })
    .await?;
    let script = redis::Script::new("return redis.call('INCR', KEYS[1])");
    let redis_script = per_round_trip(own, |_| async {
        state
            .locks
            .invoke::<i64>(&script.key("wa:floor"))
            .await
            .ok_or("Redis did not answer")?;
        Ok(())
    })
    .await?;
    let keys = ["wa:floor".to_owned()];
    let redis_mget = per_round_trip(own, |_| async {
        state
            .locks
            .recall(&keys)
            .await
            .ok_or("Redis did not answer")?;
        Ok(())
    })
    .await?;
    // The Graph stand-in answers anything but a send with `{}`.
    let stand_in = shared::aws::Aws::from_lookup(|k| match k {
        "AWS_ENDPOINT_URL" => Some(graph.to_owned()),
        other => std::env::var(other).ok(),
    })
    .sqs();
    let mut sends = [0.0; 2];
    for (micros, sqs) in sends.iter_mut().zip([&state.sqs, &stand_in]) {
        *micros = per_round_trip(own, |i| {
            let message = shared::aws::sqs::Outgoing {
                message_body: format!("{{\"floor\":{i}}}"),
                ..Default::default()
            };
            async move {
                sqs.send(queue, &message).await?;
                Ok(())
            }
        })
        .await?;
    }
    let [sqs_send, sqs_send_control] = sends;
    let token = shared::secret::Secret::new("floor-token");
    let content = shared::queue::Content {
        text: "hi".into(),
        ..Default::default()
    };
    let graph_send = per_round_trip(own, |_| async {
        state
            .graph
            .send(number, &token, "34600000000", &content)
            .await
            .map_err(|e| format!("Graph: {}", e.title))?;
        Ok(())
    })
    .await?;
    Ok(Floor {
        request_in,
        mongo_update,
        mongo_find,
        redis_script,
        redis_mget,
        sqs_send,
        sqs_send_control,
        graph_send,
    })
}

/// Mean CPU time of one `op`, in microseconds, by `clock` (nanoseconds).
async fn per_round_trip<F, Fut>(
    clock: impl Fn() -> Result<u64, BoxError>,
    mut op: F,
) -> Result<f64, BoxError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    for i in 0..FLOOR_ROUNDS {
        op(i).await?;
    }
    let start = clock()?;
    for i in 0..FLOOR_ROUNDS {
        op(i).await?;
    }
    let spent = clock()?.saturating_sub(start);
    Ok(spent as f64 / f64::from(FLOOR_ROUNDS) / 1000.0)
}

/// A thread's time on the CPU, in nanoseconds (the first field of its `schedstat`).
fn cpu_ns(path: &str) -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unexpected {path}").into())
}
