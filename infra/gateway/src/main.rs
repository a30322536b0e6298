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
                &state,
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
                &state,
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
/// `stop`.
async fn feed(
    state: &AppState,
    url: &str,
    timeout: std::time::Duration,
    pollers: usize,
    handler: std::sync::Arc<dyn local_gateway::shim::SqsHandler>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>, BoxError> {
    let mut shim = local_gateway::shim::Shim::new(state.sqs.clone(), url.to_owned()).await?;
    shim.timeout = timeout;
    shim.concurrency = pollers;
    Ok(tokio::spawn(shim.run(handler, async {
        let _ = stop.await;
    })))
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
