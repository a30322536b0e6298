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

/// One router serving every route of `template.yaml`.
pub fn app(state: &AppState) -> Result<Router, routes::RouteError> {
    let table = routes::parse_template(TEMPLATE_YAML)?;
    routes::build(&table, |binary| function_router(binary, state))
}
