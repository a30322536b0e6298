//! `sender` function: the send queue's consumer (SQS event source, batch item failures).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::{AppState, sender::Sender};

/// The handler the Lambda runtime (and the local queue shim) invokes with a batch.
pub fn handler(
    state: AppState,
) -> impl Fn(
    SqsEvent,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<SqsBatchResponse, shared::state::BoxError>> + Send>,
> + Clone
+ Send
+ Sync
+ 'static {
    let sender = Arc::new(Sender::new(state));
    move |event| {
        let sender = sender.clone();
        Box::pin(async move { Ok(sender.handle(event).await) })
    }
}
