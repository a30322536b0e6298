//! `template.yaml` → routes → one axum router dispatching to the function routers, each
//! behind a Lambda-like boundary: cut off at the function's `Timeout`, a panic is a crash.

use std::{collections::BTreeMap, panic::AssertUnwindSafe, time::Duration};

use axum::{
    Json, Router,
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::MethodFilter,
};
use futures::FutureExt;
use serde_yaml::Value;
use tower::ServiceExt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The function's binary (crate) name.
    pub function: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
    #[error("template.yaml routes {method} {path} to {function}, which the gateway does not know")]
    UnknownFunction {
        method: String,
        path: String,
        function: String,
    },
    #[error("unsupported method {0}")]
    Method(String),
}

/// `Globals.Function.Timeout` when a function sets none (SAM's own default is 3 s).
const SAM_DEFAULT_TIMEOUT: u64 = 3;

/// Each function's `Timeout` (its own, else `Globals.Function.Timeout`), by binary name.
pub fn function_timeouts(yaml: &str) -> Result<BTreeMap<String, Duration>, RouteError> {
    let doc: Value = serde_yaml::from_str(yaml)?;
    let global = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Timeout"))
        .and_then(Value::as_u64)
        .unwrap_or(SAM_DEFAULT_TIMEOUT);
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| shape("no Resources"))?;
    let mut out = BTreeMap::new();
    for resource in resources.values() {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(binary) = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let secs = resource
            .get("Properties")
            .and_then(|p| p.get("Timeout"))
            .and_then(Value::as_u64)
            .unwrap_or(global);
        out.insert(binary.to_owned(), Duration::from_secs(secs));
    }
    Ok(out)
}

/// What API Gateway answers when the Lambda integration fails (crash or timeout).
fn integration_failure() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "message": "Internal Server Error" })),
    )
        .into_response()
}

/// The function behind a Lambda-like boundary: cancelled at `timeout` (the handler's
/// future is dropped mid-work, as Lambda stops a function), a panic is a crash.
pub fn lambda_boundary(router: Router, function: String, timeout: Duration) -> Router {
    let service = tower::service_fn(move |req: Request| {
        let router = router.clone();
        let function = function.clone();
        async move {
            let run = AssertUnwindSafe(router.oneshot(req)).catch_unwind();
            Ok::<_, std::convert::Infallible>(match tokio::time::timeout(timeout, run).await {
                Ok(Ok(Ok(response))) => response,
                Ok(Ok(Err(never))) => match never {},
                Ok(Err(_)) => {
                    tracing::error!(function, "function crashed (panic)");
                    integration_failure()
                }
                Err(_) => {
                    tracing::error!(
                        function,
                        timeout_ms = timeout.as_millis() as u64,
                        "function timed out"
                    );
                    integration_failure()
                }
            })
        }
    });
    Router::new().fallback_service(service)
}

fn shape(msg: impl Into<String>) -> RouteError {
    RouteError::Shape(msg.into())
}

/// Every `HttpApi` event of every `AWS::Serverless::Function`, sorted.
pub fn parse_template(yaml: &str) -> Result<Vec<Route>, RouteError> {
    let doc: Value = serde_yaml::from_str(yaml)?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| shape("no Resources"))?;
    let mut routes = Vec::new();
    for (name, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap_or("?");
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{name} has no Metadata.BuildProperties.Binary")))?;
        let Some(events) = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for (event_name, event) in events {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let field = |key: &str| {
                props
                    .and_then(|p| p.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        shape(format!(
                            "{name}.{} has no {key}",
                            event_name.as_str().unwrap_or("?")
                        ))
                    })
            };
            routes.push(Route {
                method: field("Method")?.to_ascii_uppercase(),
                path: field("Path")?,
                function: binary.to_owned(),
            });
        }
    }
    routes.sort();
    Ok(routes)
}

fn method_filter(method: &str) -> Result<MethodFilter, RouteError> {
    Ok(match method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        "HEAD" => MethodFilter::HEAD,
        "OPTIONS" => MethodFilter::OPTIONS,
        other => return Err(RouteError::Method(other.to_owned())),
    })
}

/// Mounts each route onto the owning function's router, unchanged: the function sees the
/// same path it sees behind API Gateway (SAM's `{param}` syntax is axum's too).
pub fn build(
    routes: &[Route],
    timeouts: &BTreeMap<String, Duration>,
    mut function_router: impl FnMut(&str) -> Option<Router>,
) -> Result<Router, RouteError> {
    let mut routers: BTreeMap<String, Router> = BTreeMap::new();
    let mut by_path: BTreeMap<&str, Vec<&Route>> = BTreeMap::new();
    for route in routes {
        if !routers.contains_key(&route.function) {
            let router =
                function_router(&route.function).ok_or_else(|| RouteError::UnknownFunction {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    function: route.function.clone(),
                })?;
            let timeout = timeouts
                .get(&route.function)
                .copied()
                .unwrap_or(Duration::from_secs(SAM_DEFAULT_TIMEOUT));
            routers.insert(
                route.function.clone(),
                lambda_boundary(router, route.function.clone(), timeout),
            );
        }
        by_path.entry(&route.path).or_default().push(route);
    }
    let mut app = Router::new();
    for (path, routes) in by_path {
        let mut method_router = axum::routing::MethodRouter::new();
        for route in routes {
            // Behind API Gateway the function gets a fresh request and matches the path
            // itself; clearing the gateway's extensions (matched path, path params) keeps
            // them from being doubled in the function's router.
            let target = tower::ServiceBuilder::new()
                .map_request(|mut req: axum::extract::Request| {
                    req.extensions_mut().clear();
                    req
                })
                .service(routers[&route.function].clone());
            method_router = method_router.on_service(method_filter(&route.method)?, target);
        }
        app = app.route(path, method_router);
    }
    Ok(app.fallback(shared::http::no_route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_httpapi_events_with_their_binary() {
        let yaml = r#"
Resources:
  Q: { Type: AWS::SQS::Queue }
  F:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: register } }
    Properties:
      Environment: { Variables: { X: !Ref Q } }
      Events:
        A: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: post, Path: /a } }
        S: { Type: SQS, Properties: { Queue: !GetAtt Q.Arn } }
"#;
        let routes = parse_template(yaml).expect("parses");
        assert_eq!(
            routes,
            vec![Route {
                method: "POST".into(),
                path: "/a".into(),
                function: "register".into()
            }]
        );
    }
}
