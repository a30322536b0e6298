//! `register` function: tenant registration and lookup, plus `GET /health`.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde_json::{Value, json};
use shared::{
    ApiError, AppState,
    auth::Caller,
    http::{ApiJson, ApiPath, finish, health},
    ids::TenantId,
    tenant::{self, RegisterRequest},
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/health", get(health))
            .route("/tenants/register", post(register))
            .route("/tenants", get(list))
            .route("/tenants/{tenantId}", get(show))
            .with_state(state),
    )
}

async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let done = tenant::register(&state, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "tenant": done.tenant, "apiKey": done.api_key.expose() })),
    ))
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let tenants = tenant::list(&state).await?;
    Ok(Json(json!({ "ok": true, "tenants": tenants })))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TenantId::parse(&id)?;
    caller.require_tenant(&id)?;
    let tenant = tenant::find(&state, &id).await?;
    Ok(Json(json!({ "ok": true, "tenant": tenant })))
}
