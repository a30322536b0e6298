use axum::{
    Json, Router,
    extract::Request,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::{Value, json};

use super::*;

fn event(method: &str, path: &str, extra: Value) -> ApiGatewayV2httpRequest {
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "requestId": "req-123",
            "stage": "$default",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"}
        },
        "isBase64Encoded": false
    });
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            e.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(e).expect("an HTTP API event")
}

fn router() -> Router {
    Router::new()
        .route(
            "/echo",
            post(|headers: HeaderMap, request: Request| async move {
                let id = request
                    .extensions()
                    .get::<ApiRequestId>()
                    .map(|r| r.0.clone());
                let query = request.uri().query().map(str::to_owned);
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                Json(json!({
                    "query": query,
                    "requestId": id,
                    "cookie": headers.get("cookie").and_then(|v| v.to_str().ok()),
                    "body": String::from_utf8_lossy(&body),
                }))
            }),
        )
        .route(
            "/bytes",
            get(|| async {
                (
                    [("content-type", "application/octet-stream")],
                    vec![0xff_u8, 0x00, 0xfe],
                )
            }),
        )
        .route(
            "/cookies",
            get(|| async {
                let mut h = HeaderMap::new();
                h.append("set-cookie", HeaderValue::from_static("a=1; Secure"));
                h.append("set-cookie", HeaderValue::from_static("b=2"));
                h.append("vary", HeaderValue::from_static("origin"));
                h.append("vary", HeaderValue::from_static("accept"));
                (StatusCode::NO_CONTENT, h).into_response()
            }),
        )
}

fn text(response: &ApiGatewayV2httpResponse) -> Value {
    match &response.body {
        Some(EventBody::Text(s)) => serde_json::from_str(s).expect("JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_arrives_with_its_query_cookies_body_and_request_id() {
    let e = event(
        "POST",
        "/echo",
        json!({"rawQueryString": "a=1&b=%20x", "cookies": ["s=1", "t=2"], "body": "{\"hi\":true}"}),
    );
    let response = call(router(), e).await;
    assert_eq!(response.status_code, 200);
    assert!(!response.is_base64_encoded);
    assert_eq!(
        text(&response),
        json!({"query": "a=1&b=%20x", "requestId": "req-123", "cookie": "s=1; t=2", "body": "{\"hi\":true}"})
    );
}

#[tokio::test]
async fn a_base64_body_is_decoded_and_a_bad_one_is_a_400_naming_it() {
    let ok = event(
        "POST",
        "/echo",
        json!({"body": "aGVsbG8=", "isBase64Encoded": true}),
    );
    assert_eq!(text(&call(router(), ok).await)["body"], "hello");
    let bad = event(
        "POST",
        "/echo",
        json!({"body": "not base64!", "isBase64Encoded": true}),
    );
    let response = call(router(), bad).await;
    assert_eq!(response.status_code, 400);
    assert_eq!(text(&response)["message"], "body: not valid base64");
}

#[tokio::test]
async fn a_path_that_is_no_uri_is_a_400_not_a_panic() {
    let response = call(router(), event("GET", "/a b", json!({}))).await;
    assert_eq!(response.status_code, 400);
    assert_eq!(
        text(&response)["message"],
        "rawPath: not a valid request path"
    );
}

#[tokio::test]
async fn unknown_routes_answer_as_the_router_does() {
    let response = call(router(), event("GET", "/nope", json!({}))).await;
    assert_eq!(response.status_code, 404);
}

#[tokio::test]
async fn binary_bodies_go_base64_and_set_cookie_goes_to_cookies() {
    let bytes = call(router(), event("GET", "/bytes", json!({}))).await;
    assert!(bytes.is_base64_encoded);
    assert!(matches!(&bytes.body, Some(EventBody::Binary(b)) if b == &[0xff, 0x00, 0xfe]));
    let serialized = serde_json::to_value(&bytes).expect("serialisable");
    assert_eq!(serialized["body"], "/wD+");

    let cookies = call(router(), event("GET", "/cookies", json!({}))).await;
    assert_eq!(cookies.status_code, 204);
    assert!(cookies.body.is_none());
    assert_eq!(cookies.cookies, vec!["a=1; Secure", "b=2"]);
    assert!(cookies.headers.get("set-cookie").is_none());
    assert_eq!(cookies.headers["vary"], "origin, accept");
}

#[test]
fn text_content_types_are_those_api_gateway_carries_as_text() {
    for t in [
        "application/json",
        "application/json; charset=utf-8",
        "text/html",
        "application/problem+json",
        "application/yaml",
    ] {
        assert!(is_text(t), "{t}");
    }
    for t in ["application/octet-stream", "image/png", "application/pdf"] {
        assert!(!is_text(t), "{t}");
    }
}
