//! `make dev`: every HTTP function behind one local port.

use std::net::SocketAddr;

use shared::{AppState, config::load_dotenv, state::BoxError, telemetry};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    load_dotenv(std::path::Path::new(".env"));
    telemetry::init();
    let state = AppState::from_env().await?;
    let app = local_gateway::app(&state)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], state.config.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, "local gateway ready");
    println!("ready: {url}  (health: {url}/health, webhook: {url}/whatsapp/webhook)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
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
