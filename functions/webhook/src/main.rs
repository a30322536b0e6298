// One event at a time per Lambda instance: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    shared::apigw::run(webhook::router(state)).await
}
