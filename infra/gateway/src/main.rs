//! `make dev`: every HTTP function behind one local port.

use std::net::SocketAddr;

use shared::{AppState, config::load_dotenv, state::BoxError, telemetry};

// As each function in Lambda (one event at a time): a single-threaded runtime, so the load
// bench's CPU per message is what the functions spend, not worker threads waking each other.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    load_dotenv(std::path::Path::new(".env"));
    telemetry::init();
    let state = AppState::from_env().await?;
    let app = local_gateway::app(&state)?;
    let timeouts = local_gateway::timeouts(1.0)?;
    let timeout_of = |f: &str| {
        timeouts
            .get(f)
            .copied()
            .unwrap_or(std::time::Duration::from_secs(30))
    };
    // The relay's EventBridge schedule, locally.
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = (!state.config.relay_interval.is_zero()).then(|| {
        tokio::spawn(local_gateway::run_relay(
            state.clone(),
            state.config.relay_interval,
            timeout_of("relay"),
            async {
                let _ = relay_stopped.await;
            },
        ))
    });
    // The SQS event source mappings, locally: the send queue feeds the sender function, the
    // events queue the forwarder.
    let (stop_shim, shim_stopped) = tokio::sync::oneshot::channel::<()>();
    let shim = match &state.config.send_queue_url {
        Some(url) => Some(
            feed(
                url,
                timeout_of("sender"),
                8,
                std::sync::Arc::new(sender::handler(state.clone())),
                shim_stopped,
            )
            .await?,
        ),
        None => {
            tracing::warn!("SEND_QUEUE_URL is not set: queued messages are not delivered");
            None
        }
    };
    let (stop_events, events_stopped) = tokio::sync::oneshot::channel::<()>();
    let events = match &state.config.events_queue_url {
        Some(url) => Some(
            feed(
                url,
                timeout_of("forwarder"),
                // Events are few: two pollers, so an idle queue costs little CPU here.
                2,
                std::sync::Arc::new(forwarder::handler(state.clone())),
                events_stopped,
            )
            .await?,
        ),
        None => None,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], state.config.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, "local gateway ready");
    println!("ready: {url}  (health: {url}/health, webhook: {url}/whatsapp/webhook)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    let _ = stop_shim.send(());
    let _ = stop_events.send(());
    let _ = stop_relay.send(());
    if let Some(task) = events {
        let _ = task.await;
    }
    if let Some(task) = relay {
        let _ = task.await;
    }
    if let Some(task) = shim {
        let _ = task.await;
    }
    Ok(())
}

/// Polls `url` with `pollers` pollers into `handler` (each batch cut off at `timeout`) until
/// `stop`. The pollers run on a thread of their own ([`local_gateway::shim::POLLER_THREAD`],
/// with an SQS client of their own) and hand each batch to the functions' runtime: in AWS
/// the event source mapping's receives and deletes are not the function's CPU, and the load
/// bench (src/bin/load.rs) reports the two apart.
async fn feed(
    url: &str,
    timeout: std::time::Duration,
    pollers: usize,
    handler: std::sync::Arc<dyn local_gateway::shim::SqsHandler>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>, BoxError> {
    let on_functions = local_gateway::shim::on_runtime(tokio::runtime::Handle::current(), handler);
    let (ready, started) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let url = url.to_owned();
    std::thread::Builder::new()
        .name(local_gateway::shim::POLLER_THREAD.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let sqs = shared::aws::Aws::from_env().sqs();
                let mut shim = match local_gateway::shim::Shim::new(sqs, url).await {
                    Ok(shim) => shim,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                shim.timeout = timeout;
                shim.concurrency = pollers;
                let _ = ready.send(Ok(()));
                shim.run(on_functions, async {
                    let _ = stop.await;
                })
                .await;
            });
            let _ = done.send(());
        })?;
    started
        .await
        .map_err(|_| "the queue poller thread ended")??;
    Ok(tokio::spawn(async move {
        let _ = finished.await;
    }))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
