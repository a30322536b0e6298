//! The local SQS event source mapping against moto's SQS: deletes what the handler
//! acknowledged, leaves `batchItemFailures` for redelivery, and the queue's redrive policy
//! moves a message that keeps failing to the DLQ.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::Client;
use local_gateway::shim::{BoxError, Shim};

/// A send queue (with its DLQ, `max_receive` receives, 1 s visibility) holding `bodies`.
async fn queue_holding(max_receive: u32, bodies: &[&str]) -> (Client, String, String) {
    let aws = e2e::sdk_config().await;
    let sqs = Client::new(&aws);
    let (queue, dlq) = e2e::queue_with_dlq(&aws, max_receive, Some(1)).await;
    for body in bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(*body)
            .send()
            .await
            .expect("send");
    }
    (sqs, queue, dlq)
}

#[tokio::test]
async fn acked_messages_are_deleted_and_poison_goes_to_the_dlq() {
    let (sqs, queue, dlq) = queue_holding(2, &["ok-1", "poison", "ok-2"]).await;
    let ours = shared::aws::Aws::from_env().sqs();

    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let log = seen.clone();
    let handler = move |event: SqsEvent| {
        let log = log.clone();
        async move {
            let mut response = SqsBatchResponse::default();
            for record in event.records {
                assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
                assert!(
                    record
                        .event_source_arn
                        .as_deref()
                        .is_some_and(|a| a.starts_with("arn:aws:sqs:"))
                );
                assert!(record.attributes.contains_key("ApproximateReceiveCount"));
                let body = record.body.clone().unwrap_or_default();
                *log.lock().expect("lock").entry(body.clone()).or_default() += 1;
                if body == "poison" {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.message_id.clone().unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
            Ok::<_, BoxError>(response)
        }
    };

    let shim = Shim::new(ours.clone(), &queue).await.expect("shim");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        shim.poll_once(&handler).await.expect("poll");
        if e2e::queue_depth(&ours, &queue).await == 0 && e2e::queue_depth(&ours, &dlq).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.get("ok-1"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("ok-2"), Some(&1), "{seen:?}");
    assert_eq!(
        seen.get("poison"),
        Some(&2),
        "delivered maxReceiveCount times: {seen:?}"
    );
    assert_eq!(e2e::queue_depth(&ours, &queue).await, 0);
    let moved = sqs
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].body.as_deref(), Some("poison"));
}

#[tokio::test]
async fn a_failing_handler_leaves_the_whole_batch() {
    let (_, queue, _dlq) = queue_holding(5, &["a", "b"]).await;
    let ours = shared::aws::Aws::from_env().sqs();
    let shim = Shim::new(ours.clone(), &queue).await.expect("shim");
    let failing = |_e: SqsEvent| async { Err::<SqsBatchResponse, BoxError>("boom".into()) };
    let mut outcome = shim.poll_once(&failing).await.expect("poll");
    if outcome.received < 2 {
        // SQS may split a receive; collect the rest.
        let more = shim.poll_once(&failing).await.expect("poll");
        outcome.received += more.received;
        outcome.deleted += more.deleted;
    }
    assert_eq!(outcome.received, 2);
    assert_eq!(outcome.deleted, 0);
    assert_eq!(
        e2e::queue_depth(&ours, &queue).await,
        2,
        "nothing was deleted"
    );
}

/// As `make dev`'s gateway polls (a thread of its own, handing batches to the functions'
/// runtime): a batch still running at the function's timeout is aborted on the functions'
/// runtime and left whole; a handler that panics leaves its batch too.
#[tokio::test]
async fn a_batch_handed_to_the_functions_runtime_is_cut_off_there_and_left() {
    let (_, queue, _dlq) = queue_holding(5, &["slow"]).await;
    let ours = shared::aws::Aws::from_env().sqs();

    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = finished.clone();
    let slow = move |_e: SqsEvent| {
        let flag = flag.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, BoxError>(SqsBatchResponse::default())
        }
    };
    let panics = |_e: SqsEvent| async {
        if std::hint::black_box(true) {
            panic!("the handler panics");
        }
        Ok::<_, BoxError>(SqsBatchResponse::default())
    };
    let functions = tokio::runtime::Handle::current();
    let handlers: Vec<Arc<dyn local_gateway::shim::SqsHandler>> = vec![
        local_gateway::shim::on_runtime(functions.clone(), Arc::new(slow)),
        local_gateway::shim::on_runtime(functions, Arc::new(panics)),
    ];
    let url = queue.clone();
    let poller = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut shim = Shim::new(shared::aws::Aws::from_env().sqs(), &url)
                .await
                .expect("shim");
            shim.timeout = Duration::from_millis(300);
            shim.batch_size = 1;
            let mut outcomes = Vec::new();
            for handler in handlers {
                // Each handler gets the message once (a cut-off batch is visible again
                // after the queue's visibility timeout).
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let outcome = shim.poll_once(handler.as_ref()).await.expect("poll");
                    if outcome.received > 0 || Instant::now() > deadline {
                        outcomes.push(outcome);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            outcomes
        })
    });
    let outcomes = poller.await.expect("poller thread");
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        assert_eq!((outcome.received, outcome.deleted), (1, 0), "{outcomes:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !finished.load(std::sync::atomic::Ordering::SeqCst),
        "the cut-off batch was aborted on the functions' runtime, not left running"
    );
    assert_eq!(
        e2e::queue_depth(&ours, &queue).await,
        1,
        "left for redelivery"
    );
}
