//! `forwarder` function: the events queue's consumer (SQS event source, batch item
//! failures): each job is one event POSTed, signed, to one tenant's subscription.

use aws_lambda_events::event::sqs::SqsEvent;
use shared::{AppState, forwarder::Forwarder, queue::BatchFuture};

/// The handler the Lambda runtime (and the local queue shim) invokes with a batch.
pub fn handler(
    state: AppState,
) -> impl Fn(SqsEvent) -> BatchFuture + Clone + Send + Sync + 'static {
    shared::queue::lambda_handler(Forwarder::new(state))
}
