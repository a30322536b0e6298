//! The SQS event source mapping, locally: long-poll the queue, hand each batch to the
//! handler as an `SqsEvent`, delete what succeeded, leave `batchItemFailures` (or the whole
//! batch when the handler errors) to reappear after the visibility timeout. The queue's own
//! redrive policy then moves poison messages to the DLQ, as in AWS.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::FutureExt;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::aws::{Sqs, sqs};

pub use shared::state::BoxError;
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<SqsBatchResponse, BoxError>> + Send>>;

/// The name of the threads `make dev`'s gateway polls its queues on (see its `feed`).
pub const POLLER_THREAD: &str = "sqs-poller";

/// `handler`, run on `runtime` (the functions') whichever runtime polls: a batch cut off at
/// its timeout is aborted there, as Lambda ends an invocation; a panic fails the batch.
pub fn on_runtime(
    runtime: tokio::runtime::Handle,
    handler: Arc<dyn SqsHandler>,
) -> Arc<dyn SqsHandler> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    Arc::new(move |event: SqsEvent| {
        let task = runtime.spawn(handler.call(event));
        let abort = AbortOnDrop(task.abort_handle());
        async move {
            let result = task.await;
            drop(abort);
            match result {
                Ok(response) => response,
                Err(e) if e.is_panic() => Err("the handler crashed (panic)".into()),
                Err(e) => Err(e.into()),
            }
        }
    })
}

/// What Lambda would invoke with the batch.
pub trait SqsHandler: Send + Sync + 'static {
    fn call(&self, event: SqsEvent) -> HandlerFuture;
}

impl<F, Fut> SqsHandler for F
where
    F: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, BoxError>> + Send + 'static,
{
    fn call(&self, event: SqsEvent) -> HandlerFuture {
        Box::pin(self(event))
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub deleted: usize,
    pub left: usize,
}

/// How long an idle poller sleeps between receives when not long-polling: doubling from
/// this up to [`IDLE_MAX`] while the queue stays empty (below pacing's early margin, so a
/// delayed job is still received before its slot).
pub const IDLE: Duration = Duration::from_millis(50);
pub const IDLE_MAX: Duration = Duration::from_millis(400);
/// An invocation running longer than this hands receiving over to another poller (see
/// [`Shim::run`]); a bot reply's batch is done well within it.
pub const HANDOFF: Duration = Duration::from_millis(50);

pub struct Shim {
    sqs: Sqs,
    queue_url: String,
    queue_arn: String,
    region: String,
    /// Lambda's `BatchSize` (SQS allows at most 10 per receive).
    pub batch_size: i32,
    /// Long-poll wait. 0 by default: moto's long poll re-checks a queue only when a message
    /// is added or after a whole second, so a delayed job (pacing) would arrive up to a
    /// second late; instead an idle poller sleeps [`IDLE`] between receives. (SQS itself
    /// answers a long poll as soon as a delayed message is due.)
    pub wait_seconds: i32,
    /// Batches in flight at once, as Lambda's event source mapping scales up on a busy
    /// queue. A batch waits in-process for its pacing slots (up to about a second), so a
    /// number at 80 msg/s keeps about ten batches busy.
    pub concurrency: usize,
    /// The handler function's `Timeout`: a batch still running then is cut off and left
    /// whole for redelivery, as Lambda does.
    pub timeout: Duration,
}

impl Shim {
    pub async fn new(sqs: Sqs, queue_url: impl Into<String>) -> Result<Self, BoxError> {
        let queue_url = queue_url.into();
        let queue_arn = sqs
            .attributes(&queue_url, &["QueueArn"])
            .await?
            .remove("QueueArn")
            .unwrap_or_default();
        let region = queue_arn
            .split(':')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_owned();
        Ok(Self {
            sqs,
            queue_url,
            queue_arn,
            region,
            batch_size: 10,
            wait_seconds: 0,
            concurrency: 8,
            timeout: Duration::from_secs(30),
        })
    }

    /// One receive → invoke → delete cycle.
    pub async fn poll_once(&self, handler: &dyn SqsHandler) -> Result<PollOutcome, BoxError> {
        let messages = self.receive().await?;
        self.invoke(messages, handler).await
    }

    async fn receive(&self) -> Result<Vec<sqs::Message>, BoxError> {
        Ok(self
            .sqs
            .receive(
                &self.queue_url,
                sqs::Receive {
                    max: self.batch_size,
                    wait_seconds: self.wait_seconds,
                    visibility_timeout: None,
                },
            )
            .await?)
    }

    /// Invokes the handler with a received batch and deletes what succeeded.
    async fn invoke(
        &self,
        messages: Vec<sqs::Message>,
        handler: &dyn SqsHandler,
    ) -> Result<PollOutcome, BoxError> {
        if messages.is_empty() {
            return Ok(PollOutcome::default());
        }
        let mut handles = Vec::with_capacity(messages.len());
        let mut records = Vec::with_capacity(messages.len());
        for m in messages {
            handles.push((
                m.message_id.clone().unwrap_or_default(),
                m.receipt_handle.clone(),
            ));
            records.push(self.record(m));
        }
        let total = records.len();
        let mut event = SqsEvent::default();
        event.records = records;
        let run = std::panic::AssertUnwindSafe(handler.call(event)).catch_unwind();
        let result = match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the handler crashed (panic)".into()),
            Err(_) => Err(format!("the handler timed out after {:?}", self.timeout).into()),
        };
        let failed: Vec<String> = match result {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "sqs handler failed: the whole batch will be redelivered");
                return Ok(PollOutcome {
                    received: total,
                    deleted: 0,
                    left: total,
                });
            }
        };
        let done: Vec<&str> = handles
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .filter_map(|(_, receipt)| receipt.as_deref())
            .collect();
        let deleted = done.len();
        if !done.is_empty() {
            self.sqs.delete_batch(&self.queue_url, &done).await?;
        }
        Ok(PollOutcome {
            received: total,
            deleted,
            left: total - deleted,
        })
    }

    fn record(&self, m: sqs::Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.attributes = m.attributes;
        record.message_attributes = m
            .message_attributes
            .into_iter()
            .map(|(k, v)| {
                let mut a = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
                a.data_type = Some(v.data_type);
                a.string_value = v.string_value;
                (k, a)
            })
            .collect();
        record.message_id = m.message_id;
        record.receipt_handle = m.receipt_handle;
        record.body = m.body;
        record.md5_of_body = m.md5_of_body;
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }

    /// Polls until `shutdown` resolves with up to `concurrency` pollers, as Lambda's event
    /// source mapping scales its pollers with a queue's backlog: a poller that receives a
    /// full batch (a backlog), or whose invocation runs past [`HANDOFF`] (a batch waiting
    /// for pacing slots), wakes a parked one, so someone keeps receiving while it works; a
    /// poller that receives nothing while another is also receiving parks. An idle queue
    /// costs one poller's receives, a trickle about one receive per batch. Errors (queue unreachable) back
    /// off and retry.
    pub async fn run(self, handler: Arc<dyn SqsHandler>, shutdown: impl Future<Output = ()>) {
        let wake = tokio::sync::Notify::new();
        // Pollers receiving (not invoking, not parked).
        let receiving = std::sync::atomic::AtomicUsize::new(0);
        let shim = &self;
        let poller = |first: bool| {
            let (wake, receiving, handler) = (&wake, &receiving, &handler);
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                if !first {
                    wake.notified().await;
                }
                receiving.fetch_add(1, SeqCst);
                let mut idle = IDLE;
                loop {
                    match shim.receive().await {
                        Ok(messages) if !messages.is_empty() => {
                            receiving.fetch_sub(1, SeqCst);
                            let full = messages.len() >= shim.batch_size.max(1) as usize;
                            if full {
                                wake.notify_one();
                            }
                            let invoke = shim.invoke(messages, handler.as_ref());
                            tokio::pin!(invoke);
                            let done = tokio::select! {
                                done = &mut invoke => done,
                                _ = tokio::time::sleep(HANDOFF), if !full => {
                                    wake.notify_one();
                                    invoke.await
                                }
                            };
                            if let Err(e) = done {
                                tracing::warn!(error = %e, "queue shim: delete failed");
                            }
                            receiving.fetch_add(1, SeqCst);
                            idle = IDLE;
                        }
                        Ok(_) if receiving.load(SeqCst) > 1 => {
                            receiving.fetch_sub(1, SeqCst);
                            wake.notified().await;
                            receiving.fetch_add(1, SeqCst);
                            idle = IDLE;
                        }
                        Ok(_) if shim.wait_seconds == 0 => {
                            // Backs off: moto scans the whole queue per receive.
                            tokio::time::sleep(idle).await;
                            idle = (idle * 2).min(IDLE_MAX);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "queue shim: receive failed, retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }
        };
        let pollers =
            futures::future::join_all((0..self.concurrency.max(1)).map(|i| poller(i == 0)));
        tokio::select! {
            _ = shutdown => {}
            _ = pollers => {}
        }
    }
}
