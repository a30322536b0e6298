//! Sender throughput: batches of 10 in-process SQS events through `Sender::handle`, against
//! a loopback Graph stand-in that answers 200 at once, with the local stack's MongoDB and
//! KMS (the token is decrypted once, then cached as in a warm Lambda).
//! Run: `make bench` (starts a throw-away stack). Prints messages/s and latency percentiles.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::{Json, Router, routing::post};
use serde_json::json;
use shared::{
    ids::TenantId,
    message::{self, MessageDoc},
    queue::{Content, ContentKind},
    sender::Sender,
    tenant::{self, RegisterRequest},
};

const BATCH: usize = 10;

fn arg(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let batches = arg("BENCH_BATCHES", 300);
    // Graph stand-in on loopback.
    let graph = Router::new().route(
        "/{version}/{number}/messages",
        post(|| async {
            Json(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.bench"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let graph_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, graph).await });

    let aws = shared::state::aws_config().await;
    let mut config = e2e::test_config(&aws).await;
    config.whatsapp_api_base = graph_url;
    let db = e2e::fresh_database().await;
    let state = shared::AppState::new(config, &aws, db);
    let registered = tenant::register(
        &state.store,
        state.cipher().expect("kms"),
        state.config.app_env,
        &RegisterRequest {
            name: "Bench".into(),
            phone_number_id: e2e::phone_number_id(),
            access_token: "EAAbenchtoken".into(),
            waba_id: None,
        },
    )
    .await
    .expect("register");
    let tenant = TenantId::parse(&registered.tenant.id).expect("id");

    // The outbox the API would have written.
    let mut events = Vec::with_capacity(batches);
    for b in 0..batches {
        let mut event = SqsEvent::default();
        for i in 0..BATCH {
            let content = Content {
                kind: ContentKind::Text,
                text: format!("Message {b}-{i}"),
                buttons: vec![],
            };
            let doc = MessageDoc::outbound(
                &tenant,
                "34600111222",
                format!("api:bench-{b}-{i}"),
                content,
                "api",
            );
            assert!(matches!(
                message::insert(&state.store, &doc).await.expect("insert"),
                message::Inserted::Inserted
            ));
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("sqs-{b}-{i}"));
            record.body = Some(serde_json::to_string(&doc.job().expect("job")).expect("json"));
            event.records.push(record);
        }
        events.push(event);
    }

    let sender = Sender::new(state.clone());
    // Warm-up: credentials (KMS), connections.
    let warm = events.split_off(events.len() - 1);
    for e in warm {
        sender.handle(e).await;
    }

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
        "sender: {total} messages in {} batches of {BATCH}: {:.0} msg/s, {failures} failures",
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
