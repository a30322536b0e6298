//! Local stand-in for what AWS provides around the functions:
//! - [`routes`]: API Gateway, serving exactly the HttpApi routes of `template.yaml`, each
//!   dispatched to the router of the function that owns it;
//! - [`shim`]: the SQS event source mapping, feeding the send queue to the sender handler.

pub mod routes;
pub mod shim;

use axum::Router;
use shared::AppState;

/// The route table, compiled in so the binary cannot serve a different one.
pub const TEMPLATE_YAML: &str = include_str!("../../../template.yaml");

/// The router of each HTTP function, by its binary name (`BuildProperties.Binary`).
pub fn function_router(binary: &str, state: &AppState) -> Option<Router> {
    match binary {
        "register" => Some(register::router(state.clone())),
        "templates" => Some(templates::router(state.clone())),
        "flows" => Some(flows::router(state.clone())),
        "webhook" => Some(webhook::router(state.clone())),
        "send" => Some(send::router(state.clone())),
        "admin" => Some(admin::router()),
        _ => None,
    }
}

/// One router serving every route of `template.yaml`, each function cut off at its
/// `Timeout`.
pub fn app(state: &AppState) -> Result<Router, routes::RouteError> {
    app_scaled(state, 1.0)
}

/// As [`app`], with every function timeout multiplied by `scale` (tests use short ones).
pub fn app_scaled(state: &AppState, scale: f64) -> Result<Router, routes::RouteError> {
    let table = routes::parse_template(TEMPLATE_YAML)?;
    let timeouts = timeouts(scale)?;
    routes::build(&table, &timeouts, |binary| function_router(binary, state))
}

/// Each function's timeout from `template.yaml`, scaled.
pub fn timeouts(
    scale: f64,
) -> Result<std::collections::BTreeMap<String, std::time::Duration>, routes::RouteError> {
    Ok(routes::function_timeouts(TEMPLATE_YAML)?
        .into_iter()
        .map(|(f, t)| (f, t.mul_f64(scale)))
        .collect())
}

/// One scheduled invocation of the relay, Lambda-like: cut off at its timeout, a panic
/// ends that invocation only.
pub async fn invoke_relay(state: &AppState, timeout: std::time::Duration) {
    use futures::FutureExt;
    let run = std::panic::AssertUnwindSafe(relay::run(state)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => e.log(),
        Ok(Err(_)) => tracing::error!("relay crashed (panic)"),
        Err(_) => tracing::error!("relay timed out"),
    }
}

/// The EventBridge schedule, locally: runs the relay every `interval` until `shutdown`.
pub async fn run_relay(
    state: AppState,
    interval: std::time::Duration,
    timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => invoke_relay(&state, timeout).await,
        }
    }
}
