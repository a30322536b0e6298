//! The sender, timed against a loopback Graph stand-in that answers 200 at once and records
//! when each request arrived, with the local stack's MongoDB, Redis and KMS (the token is
//! decrypted once, then cached as in a warm Lambda). Run: `make bench` (throw-away stack).
//!
//! 1. Throughput: batches of 10 in-process SQS events through `Sender::handle`, one after
//!    another, to distinct customers (the number paced at 1,000 msg/s).
//! 2. Pacing: jobs handed to the sender as SQS would deliver them (a batch every 10/rate s,
//!    each handled concurrently) at a number's `throughputPerSecond` of 1,000 and of 80; the
//!    rate is measured on the Graph stand-in's clock: first to last request.
//! 3. Pacing alone at 1,000 msg/s: the pacing decision and the Graph call of the sender
//!    without the database, to show what the pacer sustains when the store is not the limit.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::{Json, Router, extract::State, routing::post};
use serde_json::json;
use shared::{
    AppState,
    ids::TenantId,
    message::{self, MessageDoc},
    pacing::{self, Booking, Decision, Lane, Pacing, Timeline},
    queue::{Content, ContentKind},
    secret::Secret,
    sender::Sender,
    tenant::{self, RegisterRequest, SettingsPatch},
    whatsapp::GraphClient,
};

const BATCH: usize = 10;

fn arg(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Arrivals = Arc<Mutex<Vec<Instant>>>;

async fn graph_stand_in() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let graph = Router::new()
        .route(
            "/{version}/{number}/messages",
            post(|State(a): State<Arrivals>| async move {
                if let Ok(mut a) = a.lock() {
                    a.push(Instant::now());
                }
                Json(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.bench"}]}))
            }),
        )
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, graph).await });
    (url, arrivals)
}

/// A registered tenant sending at `rate` msg/s.
async fn tenant_at(state: &AppState, rate: u32) -> (TenantId, String) {
    let number = e2e::phone_number_id();
    let registered = tenant::register(
        &state.store,
        state.cipher().expect("kms"),
        state.config.app_env,
        &RegisterRequest {
            name: "Bench".into(),
            phone_number_id: number.clone(),
            access_token: "EAAbenchtoken".into(),
            waba_id: None,
        },
    )
    .await
    .expect("register");
    let tenant = TenantId::parse(&registered.tenant.id).expect("id");
    tenant::update_settings(
        &state.store,
        &tenant,
        &SettingsPatch {
            throughput_per_second: Some(rate),
            ..SettingsPatch::default()
        },
    )
    .await
    .expect("settings");
    (tenant, number)
}

/// Batches of SQS events for `n` stored outbound messages, each to its own customer.
async fn batches(state: &AppState, tenant: &TenantId, tag: &str, n: usize) -> Vec<SqsEvent> {
    let mut events = Vec::new();
    for b in 0..n.div_ceil(BATCH) {
        let mut event = SqsEvent::default();
        for i in 0..BATCH.min(n - b * BATCH) {
            let content = Content {
                kind: ContentKind::Text,
                text: format!("Message {b}-{i}"),
                ..Content::default()
            };
            let doc = MessageDoc::outbound(
                tenant,
                &format!("346{:08}", b * BATCH + i),
                format!("api:{tag}-{b}-{i}"),
                content,
                "api",
            );
            assert!(matches!(
                message::insert(&state.store, &doc).await.expect("insert"),
                message::Inserted::Inserted
            ));
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("sqs-{tag}-{b}-{i}"));
            record.body = Some(serde_json::to_string(&doc.job().expect("job")).expect("json"));
            event.records.push(record);
        }
        events.push(event);
    }
    events
}

fn rate_of(arrivals: &[Instant]) -> f64 {
    match (arrivals.iter().min(), arrivals.iter().max()) {
        (Some(first), Some(last)) if arrivals.len() > 1 => {
            (arrivals.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    }
}

fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut at = arrivals.to_vec();
    at.sort();
    let (mut best, mut start) = (0, 0);
    for end in 0..at.len() {
        while at[end].duration_since(at[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

async fn throughput(state: &AppState, arrivals: &Arrivals) {
    let total_batches = arg("BENCH_BATCHES", 300);
    let (tenant, _) = tenant_at(state, 1000).await;
    let mut events = batches(state, &tenant, "seq", total_batches * BATCH).await;
    let sender = Sender::new(state.clone());
    // Warm-up: credentials (KMS), connections.
    for e in events.split_off(events.len() - 1) {
        sender.handle(e).await;
    }
    arrivals.lock().expect("arrivals").clear();
    let mut batch_times: Vec<Duration> = Vec::with_capacity(events.len());
    let started = Instant::now();
    let mut failures = 0;
    let total = events.len() * BATCH;
    for event in events {
        let t = Instant::now();
        failures += sender.handle(event).await.batch_item_failures.len();
        batch_times.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    batch_times.sort();
    let pct = |p: f64| batch_times[((batch_times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "sender: {total} messages in {} batches of {BATCH}, one batch at a time: {:.0} msg/s, {failures} failures",
        batch_times.len(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "per message (its batch's duration, messages are sent concurrently): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    assert_eq!(failures, 0);
}

/// Jobs arrive as SQS would deliver them at `rate`; the sender handles each batch
/// concurrently (Lambda's concurrency).
async fn paced(state: &AppState, arrivals: &Arrivals, rate: u32, seconds: usize) {
    let n = rate as usize * seconds;
    let (tenant, _) = tenant_at(state, rate).await;
    let events = batches(state, &tenant, &format!("paced{rate}"), n).await;
    let sender = Arc::new(Sender::new(state.clone()));
    arrivals.lock().expect("arrivals").clear();
    let every = Duration::from_secs_f64(BATCH as f64 / f64::from(rate));
    let mut tick = tokio::time::interval(every);
    let mut running = Vec::new();
    for event in events {
        tick.tick().await;
        let sender = sender.clone();
        running.push(tokio::spawn(async move {
            sender.handle(event).await.batch_item_failures.len()
        }));
    }
    let mut failures = 0;
    for r in running {
        failures += r.await.unwrap_or(BATCH);
    }
    let got = arrivals.lock().expect("arrivals").clone();
    let measured = rate_of(&got);
    println!(
        "paced at throughputPerSecond {rate}: {} of {n} sent, {measured:.1} msg/s at Graph ({:+.1} % of the setting), busiest second {} sends, {failures} left for redelivery",
        got.len(),
        (measured / f64::from(rate) - 1.0) * 100.0,
        busiest_second(&got),
    );
}

/// The pacer and the Graph call alone, `workers` at a time, for `n` messages.
async fn pacer_alone(state: &AppState, graph_url: &str, arrivals: &Arrivals, rate: u32) {
    let n = rate as usize * 5;
    let workers = 64;
    let number = e2e::phone_number_id();
    let pacing = Pacing {
        throughput_per_second: rate,
        ..Pacing::default()
    };
    let graph = GraphClient::new(graph_url, "v20.0");
    let token = Secret::new("EAAbenchtoken");
    let content = Content {
        kind: ContentKind::Text,
        text: "hi".into(),
        ..Content::default()
    };
    arrivals.lock().expect("arrivals").clear();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut running = Vec::new();
    for _ in 0..workers {
        let (state, graph, token, content, number, next) = (
            state.clone(),
            graph.clone(),
            token.clone(),
            content.clone(),
            number.clone(),
            next.clone(),
        );
        running.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let to = format!("346{i:08}");
                let lane = Lane {
                    phone_number_id: &number,
                    customer: &to,
                };
                // As the sender does: wait for a slot within the horizon, else come back.
                loop {
                    let decided = pacing::admit(
                        &state.locks,
                        &lane,
                        &pacing,
                        Booking::default(),
                        Timeline::Send,
                        "",
                    )
                    .await;
                    match decided {
                        Decision::Send { at, now } => {
                            let wait = (at - now).max(0) as u64;
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                            break;
                        }
                        Decision::Number { until, now } => {
                            let wait = (until - now).max(0) as u64;
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                        }
                        _ => break,
                    }
                }
                let _ = graph.send(&number, &token, &to, &content).await;
            }
        }));
    }
    for r in running {
        let _ = r.await;
    }
    let got = arrivals.lock().expect("arrivals").clone();
    let measured = rate_of(&got);
    println!(
        "pacer + Graph client alone at {rate}: {} sent, {measured:.1} msg/s ({:+.1} % of the setting), busiest second {} sends",
        got.len(),
        (measured / f64::from(rate) - 1.0) * 100.0,
        busiest_second(&got),
    );
}

#[tokio::main]
async fn main() {
    let (graph_url, arrivals) = graph_stand_in().await;
    let aws = e2e::sdk_config().await;
    let mut config = e2e::test_config(&aws).await;
    config.whatsapp_api_base = graph_url.clone();
    let db = e2e::fresh_database().await;
    let state = AppState::new(config, &shared::aws::Aws::from_env(), db);

    throughput(&state, &arrivals).await;
    paced(&state, &arrivals, 80, arg("BENCH_PACED_SECONDS", 10)).await;
    paced(&state, &arrivals, 1000, arg("BENCH_PACED_SECONDS", 10) / 2).await;
    pacer_alone(&state, &graph_url, &arrivals, 1000).await;
    pacer_alone(&state, &graph_url, &arrivals, 80).await;
}
