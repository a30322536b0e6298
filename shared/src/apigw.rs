//! The HTTP functions' Lambda entry: an API Gateway HTTP API event (payload format 2.0, the
//! only kind template.yaml routes to them) in as an axum request, the router's response out
//! as the event's response.
//!
//! Ours rather than lambda_http's adapter, which re-encodes every text body through a
//! decoder for each legacy character set (about 150 KB of tables in every binary) although
//! every body here is UTF-8; and an event it cannot turn into a request is a 400 here, not a
//! panic that takes the instance down.

use std::convert::Infallible;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as EventBody;
use axum::{Router, body::Body, response::IntoResponse};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use tower::ServiceExt;

use crate::{error::ApiError, http::ApiRequestId};

/// Serves `router` to the Lambda Runtime API, one event at a time.
pub async fn run(router: Router) -> Result<(), crate::lambda::Error> {
    crate::lambda::run(move |event: ApiGatewayV2httpRequest| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(call(router, event).await) }
    })
    .await
}

/// One event through `router`.
pub async fn call(router: Router, event: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let response = match request(event) {
        Ok(request) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(e) => e.into_response(),
    };
    response_event(response).await
}

fn request(event: ApiGatewayV2httpRequest) -> Result<Request<Body>, ApiError> {
    let path = event
        .raw_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let uri = match event.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let body = match event.body {
        None => Body::empty(),
        Some(b) if event.is_base64_encoded => Body::from(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| ApiError::bad_request("body: not valid base64"))?,
        ),
        Some(b) => Body::from(b),
    };
    let mut request = Request::builder()
        .method(event.request_context.http.method)
        .uri(uri)
        .body(body)
        .map_err(|_| ApiError::bad_request("rawPath: not a valid request path"))?;
    let mut headers = event.headers;
    // Payload 2.0 moves the request's cookies out of the headers.
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty())
        && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
    *request.headers_mut() = headers;
    if let Some(id) = event.request_context.request_id {
        request.extensions_mut().insert(ApiRequestId(id));
    }
    Ok(request)
}

async fn response_event(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "the response body could not be read");
            let mut failed = ApiGatewayV2httpResponse::default();
            failed.status_code = 500;
            return failed;
        }
    };
    let mut event = ApiGatewayV2httpResponse::default();
    event.status_code = parts.status.as_u16().into();
    let text = !parts.headers.contains_key(header::CONTENT_ENCODING)
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_text);
    (event.body, event.is_base64_encoded) = if bytes.is_empty() {
        (None, false)
    } else if text {
        match String::from_utf8(bytes.into()) {
            Ok(s) => (Some(EventBody::Text(s)), false),
            // Not UTF-8 after all: the bytes go as they are.
            Err(e) => (Some(EventBody::Binary(e.into_bytes())), true),
        }
    } else {
        (Some(EventBody::Binary(bytes.into())), true)
    };
    (event.headers, event.cookies) = headers_and_cookies(parts.headers);
    event
}

/// Payload 2.0 takes `Set-Cookie` as `cookies` and one value per header name (a repeated
/// header is joined with commas, as HTTP allows).
fn headers_and_cookies(mut headers: HeaderMap) -> (HeaderMap, Vec<String>) {
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    headers.remove(header::SET_COOKIE);
    // The usual response repeats no header: it goes as it is.
    if headers.len() == headers.keys_len() {
        return (headers, cookies);
    }
    let mut joined = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(&values.join(&b", "[..])) {
            joined.insert(name.clone(), value);
        }
    }
    (joined, cookies)
}

/// Content types whose bodies API Gateway carries as text (as lambda_http decides).
fn is_text(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || [
            "application/json",
            "application/javascript",
            "application/xml",
            "application/yaml",
        ]
        .contains(&essence.as_str())
        || ["+json", "+xml", "+yaml"]
            .iter()
            .any(|s| essence.ends_with(s))
}

#[cfg(test)]
mod tests;
