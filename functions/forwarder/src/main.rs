use lambda_runtime::{LambdaEvent, service_fn};

// One event at a time per Lambda instance: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    let handle = forwarder::handler(state);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| handle(event.payload),
    ))
    .await
}
