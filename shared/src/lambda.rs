//! The Lambda Runtime API client every function's `main` ends in: take the next event, hand
//! it to the function, post what it returned; one event at a time, as Lambda sends them.
//!
//! Ours rather than the `lambda_runtime` crate: the same three calls on the hyper client
//! already linked (one kept-alive connection to the local API endpoint), without a tower
//! stack and a second pooled HTTP client in every binary (about 0.2 MB each).
//!
//! Left out on purpose: response streaming and SnapStart hooks (no function uses them), and
//! `_X_AMZN_TRACE_ID` (nothing here sends X-Ray segments; setting the variable per event
//! would be an unsound `set_var` beside the runtime's threads).

use std::{fmt::Display, future::Future};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

/// What `run` stops on (it only stops when the Runtime API cannot be used).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";

/// A function's handler: its event in, its answer (JSON) or its error out.
pub trait Handler<E> {
    type Output: Serialize;
    type Error: Display;
    fn call(&mut self, event: E) -> impl Future<Output = Result<Self::Output, Self::Error>>;
}

impl<E, R, X, F, Fut> Handler<E> for F
where
    R: Serialize,
    X: Display,
    F: FnMut(E) -> Fut,
    Fut: Future<Output = Result<R, X>>,
{
    type Output = R;
    type Error = X;
    fn call(&mut self, event: E) -> impl Future<Output = Result<R, X>> {
        self(event)
    }
}

/// Serves `handler` to the Runtime API at `AWS_LAMBDA_RUNTIME_API` until that API fails.
/// A handler's `Err` is posted as the invocation's error (Lambda then retries or fails the
/// event as its source decides); so is an event that is not the JSON `E` expects.
pub async fn run<E: DeserializeOwned>(handler: impl Handler<E>) -> Result<(), Error> {
    let endpoint = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set: run this binary inside Lambda or `cargo lambda watch`")?;
    serve(RuntimeApi::new(&endpoint), handler).await
}

async fn serve<E: DeserializeOwned>(
    mut api: RuntimeApi,
    mut handler: impl Handler<E>,
) -> Result<(), Error> {
    loop {
        let (request_id, event) = api.next().await?;
        let span = tracing::info_span!("invocation", requestId = %request_id);
        let outcome = async {
            let event = serde_json::from_slice::<E>(&event).map_err(|e| {
                // Line and column only: serde's message can quote the event's values.
                let message = format!(
                    "the event is not the JSON this function takes ({:?} at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                );
                tracing::error!("{message}");
                Failure::new("Runtime.UnmarshalError", message)
            })?;
            let output = handler
                .call(event)
                .await
                .map_err(|e| Failure::new("Unhandled", e.to_string()))?;
            serde_json::to_vec(&output)
                .map_err(|e| Failure::new("Runtime.SerializationError", e.to_string()))
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Ok(body) => api.respond(&request_id, body).instrument(span).await?,
            Err(failure) => api.fail(&request_id, failure).instrument(span).await?,
        }
    }
}

/// An invocation's error as the Runtime API takes it.
#[derive(Serialize)]
struct Failure {
    #[serde(rename = "errorType")]
    kind: &'static str,
    #[serde(rename = "errorMessage")]
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: String) -> Self {
        Self { kind, message }
    }
}

/// One connection to the Runtime API's endpoint, opened again when the endpoint closes it.
struct RuntimeApi {
    /// `host:port`.
    authority: String,
    /// What the API's paths are under: empty in Lambda (`AWS_LAMBDA_RUNTIME_API` is
    /// `host:port`), a prefix under emulators that serve several functions on one port
    /// (`cargo lambda watch`: `host:port/.rt/<function>` or the like).
    base: String,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl RuntimeApi {
    fn new(endpoint: &str) -> Self {
        let endpoint = endpoint.strip_prefix("http://").unwrap_or(endpoint);
        let (authority, base) = match endpoint.find('/') {
            Some(slash) => endpoint.split_at(slash),
            None => (endpoint, ""),
        };
        Self {
            authority: authority.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            connection: None,
        }
    }

    /// The next event's request id and body. Waits as long as Lambda does not send one:
    /// the instance is frozen meanwhile, so no timeout applies.
    async fn next(&mut self) -> Result<(String, Bytes), Error> {
        let next = format!("{}{NEXT}", self.base);
        let (status, headers, body) = self.call(Method::GET, next, &[], None).await?;
        if status != StatusCode::OK {
            return Err(format!("the Runtime API answered {status} for the next event").into());
        }
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| !id.is_empty())
            .ok_or("the Runtime API's next event has no request id")?;
        Ok((request_id.to_owned(), body))
    }

    async fn respond(&mut self, request_id: &str, body: Vec<u8>) -> Result<(), Error> {
        let path = format!(
            "{}/2018-06-01/runtime/invocation/{request_id}/response",
            self.base
        );
        self.post(path, &[], body).await
    }

    async fn fail(&mut self, request_id: &str, failure: Failure) -> Result<(), Error> {
        let path = format!(
            "{}/2018-06-01/runtime/invocation/{request_id}/error",
            self.base
        );
        let body = serde_json::to_vec(&failure)?;
        self.post(path, &[(ERROR_TYPE, failure.kind)], body).await
    }

    /// Posts an invocation's outcome. The API refusing it (a response over Lambda's size
    /// limit, an invocation it has already timed out) fails that invocation, not the
    /// instance: the next event is still taken.
    async fn post(
        &mut self,
        path: String,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(), Error> {
        let (status, _, answer) = self
            .call(Method::POST, path, headers, Some(body.into()))
            .await?;
        if !status.is_success() {
            tracing::error!(
                %status,
                answer = %String::from_utf8_lossy(&answer),
                "the Runtime API refused the invocation's outcome"
            );
        }
        Ok(())
    }

    async fn call(
        &mut self,
        method: Method,
        path: String,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), Error> {
        // A kept-alive connection the endpoint has since closed fails the first send: it is
        // made once more on a new connection. (Should the endpoint have taken an outcome
        // before closing, it refuses the second post; nothing is applied twice.)
        let mut reused = true;
        loop {
            let connection = match self.connection.as_mut() {
                Some(c) if !c.is_closed() => c,
                _ => {
                    reused = false;
                    self.connection.insert(self.connect().await?)
                }
            };
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path.as_str())
                .header(header::HOST, self.authority.as_str());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let request = request.body(Full::new(body.clone().unwrap_or_default()))?;
            let sent = match connection.ready().await {
                Ok(()) => connection.send_request(request).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await?.to_bytes();
                    return Ok((parts.status, parts.headers, body));
                }
                Err(e)
                    if reused
                        && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) =>
                {
                    self.connection = None;
                    reused = false;
                }
                Err(e) => {
                    self.connection = None;
                    return Err(e.into());
                }
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Error> {
        let stream = tokio::net::TcpStream::connect(self.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the endpoint closes the connection; the next call opens another.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests;
