//! `register` function: tenant registration and lookup, plus `GET /health`.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post, put},
};
use serde_json::{Value, json};
use shared::{
    ApiError, AppState,
    auth::Caller,
    http::{ApiJson, ApiPath, finish, health},
    ids::TenantId,
    outbox,
    tenant::{self, RegisterRequest, SettingsPatch, TokenRequest},
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/health", get(health))
            .route("/tenants/register", post(register))
            .route("/tenants", get(list))
            .route("/tenants/{tenantId}", get(show).patch(update))
            .route("/tenants/{tenantId}/access-token", put(replace_token))
            .with_state(state),
    )
}

async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let done = tenant::register(&state.store, state.cipher()?, state.config.app_env, &body).await?;
    // This process routes the number at once (an unknown-number entry may be cached).
    state
        .tenants_by_number
        .invalidate(&done.tenant.phone_number_id);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "tenant": done.tenant, "apiKey": done.api_key.expose() })),
    ))
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let tenants = tenant::list(&state.store).await?;
    Ok(Json(json!({ "ok": true, "tenants": tenants })))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TenantId::parse(&id)?;
    caller.require_tenant(&id)?;
    let tenant = tenant::find(&state.store, &id).await?;
    Ok(Json(json!({ "ok": true, "tenant": tenant })))
}

/// `PATCH /tenants/{tenantId}` (admin): pacing and back-off settings.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SettingsPatch>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = TenantId::parse(&id)?;
    let tenant = tenant::update_settings(&state.store, &id, &body).await?;
    // This process paces and answers with the new settings at once (others within their
    // caches' lifetimes).
    state.sending.invalidate(&id);
    state.bot_configs.invalidate(&id);
    Ok(Json(json!({ "ok": true, "tenant": tenant })))
}

/// `PUT /tenants/{tenantId}/access-token` (admin): a new token; the messages held for the
/// old one are released.
async fn replace_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = TenantId::parse(&id)?;
    let tenant = tenant::replace_token(
        &state.store,
        state.cipher()?,
        state.config.app_env,
        &id,
        &body,
    )
    .await?;
    state.sending.invalidate(&id);
    let released = outbox::release_held(state.outbox(), &id).await?;
    Ok(Json(
        json!({ "ok": true, "tenant": tenant, "released": released }),
    ))
}
