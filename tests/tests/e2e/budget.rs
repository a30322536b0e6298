//! Round-trip budget of an inbound text that triggers a reply, with the tenant and its bot
//! configuration warm: at most 4 MongoDB commands, 2 Redis commands and 1 SQS send.
//! MongoDB commands are counted with the driver's command monitoring, Redis commands with
//! `INFO commandstats` of a redis-server started for this test alone.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use mongodb::{
    Client,
    event::{EventHandler, command::CommandEvent},
    options::ClientOptions,
};
use serde_json::json;

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

#[tokio::test]
async fn inbound_text_with_reply_stays_within_its_round_trip_budget() {
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
    let _redis = Redis(child);
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

    let commands: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = commands.clone();
    let mut options = ClientOptions::parse(std::env::var("MONGO_URI").expect("MONGO_URI"))
        .await
        .expect("uri");
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(s) = ev {
            seen.lock().expect("lock").push(s.command_name);
        }
    }));
    let db = Client::with_options(options)
        .expect("client")
        .database(&format!("t_{}", e2e::random_hex(6)));
    let aws = shared::state::aws_config().await;
    let mut config = e2e::test_config(&aws).await;
    config.redis_url = Some(shared::secret::Secret::new(redis_url));
    let app = e2e::serve(shared::AppState::new(config, &aws, db.clone()), db, aws).await;

    let e2e::TestTenant {
        id: tenant,
        key,
        number,
        ..
    } = app.register_tenant("Budget").await;
    let t = format!("/tenants/{tenant}/templates");
    for body in [
        json!({"key": "menu", "body": "Menu", "kind": "interactive_button", "buttons": [{"title": "A"}]}),
        json!({"key": "fb", "body": "?"}),
    ] {
        assert!(
            app.call("POST", &t, Some(&key), Some(&body.to_string()))
                .await
                .status
                < 300
        );
    }
    let flow = json!({"flows": [{"id": "hi", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu"}}], "fallbackTemplateKey": "fb"});
    assert!(
        app.call(
            "POST",
            &format!("/tenants/{tenant}/flows"),
            Some(&key),
            Some(&flow.to_string())
        )
        .await
        .status
            < 300
    );

    let text = |wamid: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": number},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "34600111222"}],
            "messages": [{"from": "34600111222", "id": wamid, "timestamp": "1795341600", "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string()
    };
    // Warm-up: indexes, tenant cache, bot config cache, Redis connection.
    assert_eq!(app.webhook(&text("wamid.warm")).await.status, 200);
    assert_eq!(app.queued_jobs().await.len(), 1);

    commands.lock().expect("lock").clear();
    let before = redis_calls(&redis_client).await;
    let r = app.webhook(&text("wamid.counted")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["replies"], 1, "{}", r.text);
    let after = redis_calls(&redis_client).await;

    let mongo: Vec<String> = commands.lock().expect("lock").clone();
    // insert inbound, touch customer, insert reply, apply state, mark enqueued (the outbox
    // records that SQS took the job, so the relay knows what never reached it).
    assert!(mongo.len() <= 5, "MongoDB round trips: {mongo:?}");
    let redis: BTreeMap<&String, u64> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let redis_total: u64 = redis.values().sum();
    assert!(redis_total <= 2, "Redis commands: {redis:?}");
    assert!(redis_total >= 1, "the lock was used: {redis:?}");
    assert_eq!(app.queued_jobs().await.len(), 1, "one SQS send");
    println!("budget: mongo {mongo:?}, redis {redis:?}, sqs 1");
}
