//! What the functions use of AWS — SQS, KMS, Secrets Manager and two S3 requests — as
//! SigV4-signed HTTP requests on one reqwest client, without the AWS SDK: the SDK's
//! orchestrator, credential chain and clients were a third of each binary, most of its cold
//! start and a tenth of a message's CPU time, for nine operations.
//!
//! Settings are the standard environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN` (what Lambda gives every function), `AWS_REGION` (or
//! `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL` (the local stack). Profiles and SSO are not
//! read: run locally with exported credentials (`aws configure export-credentials`).

pub mod kms;
pub mod secrets;
pub mod sigv4;
pub mod sqs;

use std::{sync::Arc, time::Duration};

use crate::secret::Secret;

pub use kms::Kms;
pub use sqs::Sqs;

/// Signing credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The process's AWS settings and HTTP connection pool (cheap to clone).
#[derive(Clone)]
pub struct Aws(Arc<Inner>);

struct Inner {
    credentials: Option<Credentials>,
    region: String,
    endpoint: Option<String>,
    /// Built on first use: a cold start that calls no AWS API (the webhook answering a
    /// verification, the admin UI) does not set up TLS for it.
    http: std::sync::OnceLock<reqwest::Client>,
}

/// A failed AWS call, with the service's own error code when it answered.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials,
    #[error("{service} unreachable: {source}")]
    Transport {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{service} answered HTTP {status} {code}: {message}")]
    Service {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{service} answered something unreadable: {detail}")]
    Unreadable {
        service: &'static str,
        detail: String,
    },
}

impl AwsError {
    /// Worth another attempt: the service was unreachable, overloaded or throttling.
    fn transient(&self) -> bool {
        match self {
            Self::Transport { source, .. } => !source.is_builder(),
            Self::Service { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || code.contains("Throttl")
                    || code == "RequestLimitExceeded"
            }
            _ => false,
        }
    }

    /// The service's error code (`QueueDoesNotExist`, `InvalidCiphertextException`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub(crate) const JSON_1_0: &str = "application/x-amz-json-1.0";
pub(crate) const JSON_1_1: &str = "application/x-amz-json-1.1";

/// Attempts per call: the first and two retries on a transient failure. A retried
/// SendMessage whose first attempt did reach SQS enqueues the job twice, as the SDK's
/// retries did: the sender's claim makes the second a no-op.
const ATTEMPTS: u32 = 3;
/// A request (connection included) that takes longer is abandoned and retried: a hung
/// service becomes an error the caller handles, well inside the function's own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Aws {
    /// The standard AWS environment (see the module's comment).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret)) => Some(Credentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: get("AWS_SESSION_TOKEN").map(Secret::new),
            }),
            _ => None,
        };
        Self(Arc::new(Inner {
            credentials,
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: get("AWS_ENDPOINT_URL").map(|e| e.trim_end_matches('/').to_owned()),
            http: std::sync::OnceLock::new(),
        }))
    }

    pub fn region(&self) -> &str {
        &self.0.region
    }

    /// `AWS_ENDPOINT_URL`, when set (a local stack serving every service).
    pub fn endpoint_url(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }

    pub fn credentials(&self) -> Result<&Credentials, AwsError> {
        self.0.credentials.as_ref().ok_or(AwsError::NoCredentials)
    }

    pub fn sqs(&self) -> Sqs {
        Sqs::new(self.clone())
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.0.http.get_or_init(|| {
            crate::tls::client(REQUEST_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(50))
                .build()
                .unwrap_or_default()
        })
    }

    /// The service's regional endpoint.
    fn service_url(&self, service: &str) -> String {
        match &self.0.endpoint {
            Some(endpoint) => format!("{endpoint}/"),
            None => {
                let domain = if self.0.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://{service}.{}.{domain}/", self.0.region)
            }
        }
    }

    /// One call of an AWS JSON-protocol API (`X-Amz-Target: {target}`, `content_type` the
    /// service's [`JSON_1_0`] or [`JSON_1_1`]), retried on transient failures; the response
    /// body.
    pub(crate) async fn json_call(
        &self,
        service: &'static str,
        content_type: &'static str,
        target: &str,
        body: Vec<u8>,
        extra_time: Duration,
    ) -> Result<bytes::Bytes, AwsError> {
        let credentials = self.credentials()?;
        let url =
            reqwest::Url::parse(&self.service_url(service)).map_err(|e| AwsError::Unreadable {
                service,
                detail: format!("endpoint: {e}"),
            })?;
        let payload_hash = sigv4::sha256_hex(&body);
        let body = bytes::Bytes::from(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let signer = sigv4::Signer {
                credentials,
                scope: sigv4::Scope {
                    region: &self.0.region,
                    service,
                },
                time: std::time::SystemTime::now(),
            };
            let signed = sigv4::sign_headers(
                &signer,
                "POST",
                &url,
                &[("content-type", content_type), ("x-amz-target", target)],
                &payload_hash,
            );
            let mut request = self
                .http()
                .post(url.clone())
                .timeout(REQUEST_TIMEOUT + extra_time)
                .header("content-type", content_type)
                .header("x-amz-target", target)
                .body(body.clone());
            for (name, value) in signed {
                request = request.header(name, value);
            }
            let result = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes) => Err(service_error(service, status.as_u16(), &bytes)),
                        Err(source) => Err(AwsError::Transport { service, source }),
                    }
                }
                Err(source) => Err(AwsError::Transport {
                    service,
                    source: source.without_url(),
                }),
            };
            match result {
                Err(e) if attempt < ATTEMPTS && e.transient() => {
                    let backoff = 25u64 << attempt;
                    let jitter = rand::random_range(0..=backoff);
                    tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
                }
                other => return other,
            }
        }
    }
}

/// An AWS JSON error body: `{"__type": "…#Code", "message": "…"}`.
fn service_error(service: &'static str, status: u16, body: &[u8]) -> AwsError {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "__type", default)]
        kind: String,
        #[serde(default, alias = "Message")]
        message: String,
    }
    let parsed: Body = serde_json::from_slice(body).unwrap_or(Body {
        kind: String::new(),
        message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    });
    let code = parsed
        .kind
        .rsplit_once('#')
        .map_or(parsed.kind.as_str(), |(_, c)| c)
        .to_owned();
    AwsError::Service {
        service,
        status,
        code: if code.is_empty() {
            format!("HTTP{status}")
        } else {
            code
        },
        message: parsed.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_code_and_message() {
        let e = service_error(
            "sqs",
            400,
            br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no queue"}"#,
        );
        assert_eq!(e.code(), Some("QueueDoesNotExist"));
        assert!(e.to_string().contains("no queue"), "{e}");
        assert!(!e.transient());
        let e = service_error("kms", 400, br#"{"__type":"ThrottlingException"}"#);
        assert!(e.transient());
        let e = service_error("kms", 503, b"<html>busy</html>");
        assert_eq!(e.code(), Some("HTTP503"));
        assert!(e.transient());
    }

    #[test]
    fn regional_endpoints_unless_one_is_set() {
        let aws = Aws::from_lookup(|k| (k == "AWS_REGION").then(|| "eu-west-1".into()));
        assert_eq!(
            aws.service_url("sqs"),
            "https://sqs.eu-west-1.amazonaws.com/"
        );
        assert!(matches!(aws.credentials(), Err(AwsError::NoCredentials)));
        let aws = Aws::from_lookup(|k| {
            (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000/".into())
        });
        assert_eq!(aws.service_url("kms"), "http://127.0.0.1:5000/");
        assert_eq!(aws.region(), "us-east-1");
    }
}
