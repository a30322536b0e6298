//! The one error type of the HTTP API and its one mapping to status codes.
//!
//! Body shape: `{"error": "<Reason Phrase>", "message": "<what and which field>"}` plus
//! `field` when one field is to blame. Dependency failures are 503 (retryable): the error
//! keeps its cause, which is logged once, when the response is made, and never reaches the
//! caller.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        message: String,
        /// Extra members merged into the body (e.g. the original `messageId`).
        extra: Map<String, Value>,
    },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{field}: {message}")]
    Unprocessable { field: String, message: String },
    /// Well-formed, but a rule of WhatsApp's (or the tenant's) refuses it: a 422 with a
    /// machine-readable `code` besides the field.
    #[error("{field}: {message}")]
    Refused {
        code: &'static str,
        field: String,
        message: String,
    },
    /// A dependency (database, KMS, queue, ...) failed; the caller should retry.
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        /// What went wrong (may name hosts, never credentials); logged, never answered.
        cause: String,
    },
    /// The Graph API failed a call made on the caller's behalf (sync, media): Graph's words.
    #[error("{0}")]
    BadGateway(String),
    /// Another request is still doing this work (same wamid or idempotency key): retry.
    #[error("{0}")]
    InProgress(String),
    /// The tenant is disabled: its own keys get a 403, an admin's send a 409.
    #[error(
        "tenant is disabled: activate it with PATCH /tenants/{{tenantId}} {{\"status\": \"active\"}}"
    )]
    TenantDisabled { by_admin: bool },
    /// A bug: never used for bad input.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict {
            message: msg.into(),
            extra: Map::new(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn refused(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Refused {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A failed dependency; the cause is kept for the one log line at the HTTP boundary.
    pub fn unavailable(dependency: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            dependency,
            cause: cause.to_string(),
        }
    }

    /// Logs what the caller is not told. Called once per error, where it becomes a response.
    pub fn log(&self) {
        match self {
            Self::Unavailable { dependency, cause } => {
                tracing::error!(dependency, error = %cause, "dependency failed")
            }
            Self::Internal => tracing::error!("internal error"),
            Self::InProgress(why) => tracing::info!(reason = %why, "answered retry later"),
            _ => {}
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } | Self::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } | Self::InProgress(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::TenantDisabled { by_admin: true } => StatusCode::CONFLICT,
            Self::TenantDisabled { by_admin: false } => StatusCode::FORBIDDEN,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        // Seconds before a retry is worth it: the other request needs a moment to finish.
        let retry_after = if matches!(self, Self::InProgress(_)) {
            "2"
        } else {
            "1"
        };
        let mut body = json!({
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": self.to_string(),
        });
        match self {
            Self::Unprocessable { field, .. } => {
                body["field"] = Value::String(field);
            }
            Self::Refused { code, field, .. } => {
                body["field"] = Value::String(field);
                body["code"] = Value::String(code.to_owned());
            }
            Self::Conflict { extra, .. } => {
                if let Some(obj) = body.as_object_mut() {
                    obj.extend(extra);
                }
            }
            Self::TenantDisabled { .. } => {
                body["code"] = Value::String("tenant_disabled".into());
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(retry_after),
            );
        }
        response
    }
}

impl From<mongodb::error::Error> for ApiError {
    fn from(e: mongodb::error::Error) -> Self {
        Self::unavailable("database", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprocessable_names_the_field() {
        let e = ApiError::invalid("buttons[1].title", "must be at most 20 characters");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.to_string(),
            "buttons[1].title: must be at most 20 characters"
        );
    }
}
