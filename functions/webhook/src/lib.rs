//! `webhook` function: Meta's subscription challenge and event notifications.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;
use shared::{
    ApiError, AppState,
    config::AppEnv,
    http::{ApiQuery, WEBHOOK_BODY_LIMIT, body_rejection, finish_with_limit},
    webhook,
};

pub fn router(state: AppState) -> Router {
    if state.config.app_secret.is_none() {
        if state.config.app_env == AppEnv::Development {
            tracing::warn!(
                "APP_SECRET is not set: accepting UNSIGNED webhooks (APP_ENV=development)"
            );
        } else {
            tracing::error!("APP_SECRET is not set: every webhook will be refused with 503");
        }
    }
    finish_with_limit(
        Router::new()
            .route("/whatsapp/webhook", get(subscribe).post(notify))
            .with_state(state),
        WEBHOOK_BODY_LIMIT,
    )
}

#[derive(Deserialize)]
struct Challenge {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn subscribe(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Challenge>,
) -> Result<Response, ApiError> {
    let challenge = webhook::verify_subscription(
        &state,
        q.mode.as_deref(),
        q.token.as_deref(),
        q.challenge.as_deref(),
    )?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge,
    )
        .into_response())
}

async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = body.map_err(|e| match body_rejection(e) {
        ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge {
            limit: WEBHOOK_BODY_LIMIT,
        },
        other => other,
    })?;
    let signature = headers
        .get(webhook::signature::HEADER)
        .and_then(|v| v.to_str().ok());
    webhook::authenticate(&state, signature, &body)?;
    let Some(notification) = webhook::parse(&body)? else {
        return Ok((StatusCode::OK, Json(json!({ "ok": true, "ignored": true }))));
    };
    let summary = webhook::handle(&state, notification).await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "ok": true,
            "messages": summary.messages,
            "duplicates": summary.duplicates,
            "replies": summary.replies,
            "statuses": summary.statuses,
            "templateUpdates": summary.template_updates,
        })),
    ))
}
