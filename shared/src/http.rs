//! HTTP plumbing shared by every function's router: JSON bodies that fail as 400/422 with
//! the field named, the body limit (413), the not-found fallback and request logging.

use std::time::Instant;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request,
        rejection::BytesRejection,
    },
    http::{StatusCode, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::Instrument;

use crate::error::ApiError;

/// Largest body an API route accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest webhook body: Meta's own limit for one notification is 3 MB.
pub const WEBHOOK_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// A JSON body. Syntax errors are 400; a well-formed body whose fields have the wrong type
/// is 422 naming the field (path included, e.g. `buttons[1].title`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Query parameters; a query that does not deserialize (e.g. a repeated parameter) is a
/// JSON 400 like every other error, not axum's plain-text one.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters, with the same JSON 400 on failure.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

pub fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: BODY_LIMIT }
    } else {
        ApiError::bad_request(format!("could not read the request body: {e}"))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names the field itself for missing/unknown fields; keep its words.
        let field = if field == "." {
            missing_field_name(&inner).unwrap_or_else(|| "body".into())
        } else {
            field
        };
        ApiError::invalid(field, inner)
    })
}

fn missing_field_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// `GET /health`.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

/// Answer for a path no route matches. The message starts with "no route" so the route
/// agreement test can tell it from a handler's own 404 (unknown tenant, ...).
pub async fn no_route(req: Request) -> Response {
    let msg = format!("no route for {} {}", req.method(), req.uri().path());
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "Not Found", "message": msg })),
    )
        .into_response()
}

/// What every function router gets: body limit, fallback and one access-log line per
/// request. Only the matched route template is logged, never the raw path or query (the
/// webhook's GET carries `hub.verify_token` in its query).
pub fn finish(router: Router) -> Router {
    finish_with_limit(router, BODY_LIMIT)
}

/// As [`finish`], with another body limit.
pub fn finish_with_limit(router: Router, limit: usize) -> Router {
    router
        .fallback(no_route)
        .layer(middleware::from_fn(access_log))
        .layer(DefaultBodyLimit::max(limit))
}

/// API Gateway's id of the request a Lambda event carries (see `apigw`).
#[derive(Clone, Debug)]
pub struct ApiRequestId(pub String);

/// API Gateway's request id when behind it (Lambda), else a fresh one (local gateway).
fn request_id(req: &Request) -> String {
    if let Some(ApiRequestId(id)) = req.extensions().get::<ApiRequestId>() {
        return id.clone();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| mongodb::bson::oid::ObjectId::new().to_hex())
}

async fn access_log(req: Request, next: Next) -> Response {
    let span = tracing::info_span!("request", requestId = %request_id(&req));
    access_log_in(req, next).instrument(span).await
}

async fn access_log_in(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "-".into());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request");
    } else {
        tracing::info!(%method, route, status, ms, "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        n: Option<u32>,
    }

    #[test]
    fn syntax_error_is_400_and_type_error_is_422_with_field() {
        let e = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(b"[]").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(br#"{"name": 5}"#).unwrap_err();
        assert!(matches!(&e, ApiError::Unprocessable { field, .. } if field == "name"));
        let e = parse_json::<Body>(br#"{"n": 1}"#).unwrap_err();
        assert!(matches!(&e, ApiError::Unprocessable { field, .. } if field == "name"));
    }
}
