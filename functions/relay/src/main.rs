// One event at a time per Lambda instance: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    let state = &state;
    // The schedule's event says nothing the relay needs.
    shared::lambda::run(move |_: serde::de::IgnoredAny| async move {
        match relay::run(state).await {
            Ok(r) => Ok(serde_json::json!({
                "unenqueued": r.unenqueued, "lost": r.lost, "failed": r.failed,
            })),
            Err(e) => {
                e.log();
                Err(e)
            }
        }
    })
    .await
}
