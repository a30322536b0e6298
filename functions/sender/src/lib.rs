//! `sender` function: the send queue's consumer (SQS event source, batch item failures).

use aws_lambda_events::event::sqs::SqsEvent;
use shared::{AppState, queue::BatchFuture, sender::Sender};

/// The handler the Lambda runtime (and the local queue shim) invokes with a batch.
pub fn handler(
    state: AppState,
) -> impl Fn(SqsEvent) -> BatchFuture + Clone + Send + Sync + 'static {
    shared::queue::lambda_handler(Sender::new(state))
}
