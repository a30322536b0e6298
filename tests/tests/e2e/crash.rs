//! Crash anywhere: every failpoint on the path of a message × every fault (an error, a
//! panic, a hang past the function's timeout), then the clients behave as in production
//! (Meta retries every non-200, an API caller retries with the same idempotency key) and
//! AWS runs what it runs (the queue feeds the sender, the relay runs on its schedule).
//! Each case asserts: one stored inbound per wamid, one Graph delivery per reply or
//! accepted send, every message `sent`, nothing left unenqueued.
//!
//! Each case is its own test (own process under nextest; `FailScenario` serialises them
//! otherwise), so a failure names its failpoint and fault.

use e2e::faults::FaultRig;
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Path {
    /// Meta posts an inbound "hi"; the bot replies with its menu.
    Webhook,
    /// A client sends a text with an idempotency key.
    Send,
    /// A client sends, but every enqueue of that request fails: only the relay gets the
    /// message to the queue.
    Relay,
}

const FAULTS: [(&str, &str); 3] = [
    ("error", "1*return(error)"),
    ("panic", "1*panic(injected crash)"),
    ("hang", "1*return(hang)"),
];

async fn case(path: Path, failpoint: &str, fault: &str) {
    let scenario = fail::FailScenario::setup();
    let rig = FaultRig::new().await;
    let action = FAULTS
        .iter()
        .find(|(name, _)| *name == fault)
        .map(|(_, a)| *a)
        .expect("fault");
    fail::cfg(failpoint, action).expect("failpoint action");
    match path {
        Path::Webhook => {
            let wamid = format!("wamid.crash{}", e2e::random_hex(8));
            let body = rig.inbound(&wamid);
            rig.meta_delivers(&body).await;
            rig.settle().await;
            // Meta may deliver once more after all that: nothing changes.
            assert_eq!(rig.app.webhook(&body).await.status, 200);
            rig.settle().await;
            assert_eq!(rig.inbound_count().await, 1, "one stored inbound");
        }
        Path::Send => {
            let body = json!({"to": "34600111222", "text": "Your code is 1234", "idempotency_key": "otp-1"});
            let answers = rig.client_sends(&body).await;
            assert!(
                answers.last() == Some(&202) || answers.contains(&500) || answers.contains(&503),
                "{answers:?}"
            );
            rig.settle().await;
            assert_eq!(rig.send(&body).await.status, 409, "the key is used");
        }
        Path::Relay => {
            fail::cfg("outbox.before_enqueue", "return(error)").expect("action");
            let body = json!({"to": "34600111222", "text": "Your order shipped", "idempotency_key": "ship-1"});
            let r = rig.send(&body).await;
            assert_eq!(r.status, 503, "{}", r.text);
            // The caller gives up; the relay alone must deliver it.
            fail::cfg("outbox.before_enqueue", "off").expect("action");
            fail::cfg(failpoint, action).expect("failpoint action");
            rig.settle().await;
        }
    }
    assert_eq!(rig.deliveries().await, 1, "exactly one Graph delivery");
    let out = rig.out().await;
    assert_eq!(out.len(), 1, "one outbound message: {out:?}");
    assert_eq!(out[0].get_str("status"), Ok("sent"), "{out:?}");
    assert_eq!(out[0].get_bool("enqueued"), Ok(true), "{out:?}");
    scenario.teardown();
}

macro_rules! matrix {
    ($($name:ident: $path:expr, $point:literal;)*) => {
        /// Every case of the matrix, for the count printed by `make test`.
        pub const CASES: &[(&str, &str)] = &[$(($point, stringify!($path))),*];
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn error() { case($path, $point, "error").await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn panic() { case($path, $point, "panic").await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn hang() { case($path, $point, "hang").await }
            }
        )*
    };
}

matrix! {
    webhook_before_store: Path::Webhook, "webhook.before_store";
    webhook_after_store: Path::Webhook, "webhook.after_store";
    webhook_after_reply_stored: Path::Webhook, "webhook.after_reply_stored";
    webhook_before_enqueue: Path::Webhook, "outbox.before_enqueue";
    webhook_after_enqueue: Path::Webhook, "outbox.after_enqueue";
    send_before_store: Path::Send, "send.before_store";
    send_after_store: Path::Send, "send.after_store";
    send_before_enqueue: Path::Send, "outbox.before_enqueue";
    send_after_enqueue: Path::Send, "outbox.after_enqueue";
    sender_before_claim: Path::Send, "sender.before_claim";
    sender_before_graph: Path::Send, "sender.before_graph";
    sender_before_record: Path::Send, "sender.before_record";
    sender_after_record: Path::Send, "sender.after_record";
    relay_before_enqueue: Path::Relay, "relay.before_enqueue";
}

#[test]
fn matrix_size() {
    println!(
        "crash matrix: {} failpoints × {} faults = {} cases",
        CASES.len(),
        FAULTS.len(),
        CASES.len() * FAULTS.len()
    );
    assert_eq!(CASES.len(), 14);
}
