//! The client against a stand-in Runtime API on a local port: events in, the posts it
//! receives are what Lambda would record for each invocation.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{RuntimeApi, serve};

#[derive(Default)]
struct Api {
    events: Mutex<VecDeque<(&'static str, String)>>,
    posts: Mutex<Vec<Post>>,
    close_each_connection: bool,
}

#[derive(Debug)]
struct Post {
    request_id: String,
    outcome: String,
    error_type: Option<String>,
    body: Value,
}

async fn next(State(api): State<Arc<Api>>) -> Response {
    let Some((id, body)) = api.events.lock().unwrap().pop_front() else {
        // No events left: the client's `run` ends with an error, which ends the test.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = ([("lambda-runtime-aws-request-id", id)], body).into_response();
    if api.close_each_connection {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn outcome(
    State(api): State<Arc<Api>>,
    Path((request_id, outcome)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    api.posts.lock().unwrap().push(Post {
        request_id,
        outcome,
        error_type: headers
            .get("lambda-runtime-function-error-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: serde_json::from_str(&body).unwrap(),
    });
    StatusCode::ACCEPTED
}

/// Serves the stand-in under `base` (empty as in Lambda, a prefix as under `cargo lambda
/// watch`); the endpoint as `AWS_LAMBDA_RUNTIME_API` gives it.
async fn start(api: Arc<Api>, base: &str) -> String {
    let routes = base.trim_end_matches('/');
    let app = Router::new()
        .route(
            &format!("{routes}/2018-06-01/runtime/invocation/next"),
            get(next),
        )
        .route(
            &format!("{routes}/2018-06-01/runtime/invocation/{{id}}/{{outcome}}"),
            post(outcome),
        )
        .with_state(api);
    format!("{}{base}", listen(app).await)
}

/// `app` on a free local port: its `host:port`.
async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[derive(Deserialize)]
struct Order {
    n: i64,
}

#[derive(Serialize)]
struct Doubled {
    twice: i64,
}

async fn double(order: Order) -> Result<Doubled, String> {
    if order.n < 0 {
        return Err(format!("{} is negative", order.n));
    }
    Ok(Doubled { twice: order.n * 2 })
}

async fn served(close_each_connection: bool, events: &[(&'static str, Value)]) -> Vec<Post> {
    served_under("", close_each_connection, events).await
}

async fn served_under(
    base: &str,
    close_each_connection: bool,
    events: &[(&'static str, Value)],
) -> Vec<Post> {
    let api = Arc::new(Api {
        events: Mutex::new(events.iter().map(|(id, e)| (*id, e.to_string())).collect()),
        close_each_connection,
        ..Api::default()
    });
    let endpoint = start(api.clone(), base).await;
    let ended = serve(RuntimeApi::new(&endpoint), double).await;
    assert!(
        ended.unwrap_err().to_string().contains("500"),
        "the client stops when the API fails"
    );
    std::mem::take(&mut *api.posts.lock().unwrap())
}

#[tokio::test]
async fn each_event_is_answered_with_its_response_or_its_error() {
    let posts = served(
        false,
        &[
            ("a", json!({"n": 21})),
            ("b", json!({"n": "hunter2-not-to-be-echoed"})),
            ("c", json!({"n": -1})),
            ("d", json!({"n": 0})),
        ],
    )
    .await;
    assert_eq!(posts.len(), 4, "{posts:?}");
    assert_eq!(
        (posts[0].request_id.as_str(), posts[0].outcome.as_str()),
        ("a", "response")
    );
    assert_eq!(posts[0].body, json!({"twice": 42}));
    assert_eq!(posts[0].error_type, None);

    assert_eq!(
        (posts[1].request_id.as_str(), posts[1].outcome.as_str()),
        ("b", "error")
    );
    assert_eq!(
        posts[1].error_type.as_deref(),
        Some("Runtime.UnmarshalError")
    );
    assert_eq!(posts[1].body["errorType"], "Runtime.UnmarshalError");
    let message = posts[1].body["errorMessage"].as_str().unwrap();
    assert!(message.contains("line 1"), "{message}");
    assert!(!message.contains("hunter2"), "no event value: {message}");

    assert_eq!(
        (posts[2].request_id.as_str(), posts[2].outcome.as_str()),
        ("c", "error")
    );
    assert_eq!(posts[2].error_type.as_deref(), Some("Unhandled"));
    assert_eq!(
        posts[2].body,
        json!({"errorType": "Unhandled", "errorMessage": "-1 is negative"})
    );

    assert_eq!(posts[3].body, json!({"twice": 0}), "a failure ends no loop");
}

#[tokio::test]
async fn a_connection_the_api_closes_is_opened_again() {
    let events: Vec<_> = ["e1", "e2", "e3"]
        .into_iter()
        .zip(1..)
        .map(|(id, n)| (id, json!({ "n": n })))
        .collect();
    let posts = served(true, &events).await;
    let answered: Vec<_> = posts
        .iter()
        .map(|p| (p.request_id.as_str(), p.body["twice"].as_i64()))
        .collect();
    assert_eq!(
        answered,
        [("e1", Some(2)), ("e2", Some(4)), ("e3", Some(6))]
    );
}

#[tokio::test]
async fn an_endpoint_with_a_path_is_served_under_it() {
    // `cargo lambda watch` serves every function's Runtime API on one port, each under a
    // path of its own, and says so in AWS_LAMBDA_RUNTIME_API (with or without a scheme).
    for base in ["/.rt/register", "/.rt/register/"] {
        let posts = served_under(base, false, &[("p1", json!({"n": 4}))]).await;
        assert_eq!(posts.len(), 1, "{base}");
        assert_eq!(posts[0].body, json!({"twice": 8}));
    }
    let api = RuntimeApi::new("http://127.0.0.1:9001/.rt/f/");
    assert_eq!(
        (api.authority.as_str(), api.base.as_str()),
        ("127.0.0.1:9001", "/.rt/f")
    );
    let api = RuntimeApi::new("127.0.0.1:9001");
    assert_eq!(
        (api.authority.as_str(), api.base.as_str()),
        ("127.0.0.1:9001", "")
    );
}

#[tokio::test]
async fn an_event_without_a_request_id_stops_the_client() {
    let app = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(|| async { "{}" }),
    );
    let endpoint = listen(app).await;
    let ended = serve(RuntimeApi::new(&endpoint), double).await;
    assert!(ended.unwrap_err().to_string().contains("request id"));
}

#[tokio::test]
async fn outside_lambda_the_client_says_what_is_missing() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return;
    }
    let ended = super::run(double).await;
    assert!(
        ended
            .unwrap_err()
            .to_string()
            .contains("AWS_LAMBDA_RUNTIME_API")
    );
}
