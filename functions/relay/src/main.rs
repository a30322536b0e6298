use lambda_runtime::{LambdaEvent, service_fn};

// One event at a time per Lambda instance: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            match relay::run(state).await {
                Ok(r) => Ok(serde_json::json!({
                    "unenqueued": r.unenqueued, "lost": r.lost, "failed": r.failed,
                })),
                Err(e) => {
                    e.log();
                    Err(lambda_runtime::Error::from(e.to_string()))
                }
            }
        },
    ))
    .await
}
