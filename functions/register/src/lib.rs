//! `register` function: tenant registration and lookup, plus `GET /health`.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{delete, get, post, put},
};
use serde_json::{Value, json};
use shared::{
    ApiError, AppState,
    api_key::{self, KeyLabel, NewKeyRequest},
    auth::{Caller, TenantAccess},
    event::subscription::{self, SubscriptionRequest, SubscriptionView},
    http::{ApiJson, ApiPath, finish, health},
    ids::TenantId,
    ids::TenantStatus,
    onboarding::{self, MetaApp, OnboardRequest},
    outbox,
    tenant::{
        self, RegisterRequest, SettingsPatch, TokenRequest,
        numbers::{self, NumberRequest},
    },
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/health", get(health))
            .route("/tenants/register", post(register))
            .route("/tenants/onboard", post(onboard))
            .route("/tenants", get(list))
            .route("/tenants/{tenantId}", get(show).patch(update))
            .route("/tenants/{tenantId}/access-token", put(replace_token))
            .route(
                "/tenants/{tenantId}/api-keys",
                get(list_keys).post(create_key),
            )
            .route("/tenants/{tenantId}/api-keys/{keyId}", delete(delete_key))
            .route("/tenants/{tenantId}/numbers", post(add_number))
            .route(
                "/tenants/{tenantId}/event-subscriptions",
                get(list_subscriptions).post(create_subscription),
            )
            .route(
                "/tenants/{tenantId}/event-subscriptions/{subscriptionId}",
                delete(delete_subscription),
            )
            .route(
                "/tenants/{tenantId}/event-subscriptions/{subscriptionId}/deliveries",
                get(deliveries),
            )
            .route(
                "/tenants/{tenantId}/numbers/{phoneNumberId}",
                delete(remove_number),
            )
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

/// `POST /tenants/onboard` (admin): Embedded Signup's code → a tenant with all the shared
/// account's numbers (201), or the same tenant again for a retried code (200).
async fn onboard(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OnboardRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let app = MetaApp {
        graph: &state.graph,
        app_id: state.config.meta_app_id.as_deref(),
        app_secret: state.config.app_secret.as_ref(),
    };
    let done = onboarding::onboard(&state.store, state.cipher()?, &app, &body).await?;
    for n in &done.tenant.numbers {
        state.tenants_by_number.invalidate(&n.phone_number_id);
    }
    if let Some(hash) = &done.revoked {
        state.accepted_keys.invalidate(hash);
    }
    let status = if done.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "ok": true,
            "tenant": done.tenant,
            "apiKey": done.api_key.expose(),
            "registered": done.registered,
            "replayed": done.replayed,
        })),
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

/// `PATCH /tenants/{tenantId}` (admin): pacing, conversation settings, status.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SettingsPatch>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = TenantId::parse(&id)?;
    let tenant = tenant::update_settings(&state.store, &id, &body).await?;
    // This process paces, answers and authenticates with the new settings at once (others
    // within their caches' lifetimes: 4 s for keys and sending).
    state.sending.invalidate(&id);
    state.bot_configs.invalidate(&id);
    let mut released = 0;
    if body.status.is_some() {
        state.tenants_by_number.invalidate(&tenant.phone_number_id);
        for hash in api_key::hashes(&state.store, &id).await? {
            state.accepted_keys.invalidate(&hash);
            state.rejected_keys.invalidate(&hash);
        }
        if tenant.status == TenantStatus::Active {
            released = outbox::release_held(state.outbox(), &id).await?;
        }
    }
    Ok(Json(
        json!({ "ok": true, "tenant": tenant, "released": released }),
    ))
}

/// `POST /tenants/{tenantId}/numbers` (admin): one more number the tenant sends from and is
/// reached on.
async fn add_number(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(body): ApiJson<NumberRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    access.caller.require_admin()?;
    let number = body.parse()?;
    let tenant = numbers::add(&state.store, &access.tenant, &number).await?;
    // This process routes and sends from it at once (others within 4 s).
    state.tenants_by_number.invalidate(&number.phone_number_id);
    state.sending.invalidate(&access.tenant);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "tenant": tenant })),
    ))
}

/// `DELETE /tenants/{tenantId}/numbers/{phoneNumberId}` (admin): never the last one.
async fn remove_number(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath((_, number)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    access.caller.require_admin()?;
    let tenant = numbers::remove(&state.store, &access.tenant, &number).await?;
    state.tenants_by_number.invalidate(&number);
    state.sending.invalidate(&access.tenant);
    Ok(Json(json!({ "ok": true, "tenant": tenant })))
}

/// `POST /tenants/{tenantId}/event-subscriptions`: a URL for some event types; the signing
/// secret is shown this once.
async fn create_subscription(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (url, events) = body.parse(state.config.app_env)?;
    let (view, secret) =
        subscription::create(&state.store, state.cipher()?, &access.tenant, url, events).await?;
    // This process forwards to it at once (others within 10 s).
    state.subscribers.invalidate(&access.tenant);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "subscription": view, "secret": secret.expose() })),
    ))
}

async fn list_subscriptions(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Value>, ApiError> {
    let subs: Vec<SubscriptionView> = subscription::list(&state.store, &access.tenant)
        .await?
        .iter()
        .map(SubscriptionView::from)
        .collect();
    Ok(Json(json!({ "ok": true, "subscriptions": subs })))
}

async fn delete_subscription(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath((_, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    subscription::delete(&state.store, &access.tenant, &id).await?;
    state.subscribers.invalidate(&access.tenant);
    Ok(Json(json!({ "ok": true, "deleted": id })))
}

/// `GET …/event-subscriptions/{subscriptionId}/deliveries`: the latest attempts.
async fn deliveries(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath((_, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let attempts = subscription::deliveries(&state.store, &access.tenant, &id).await?;
    Ok(Json(json!({ "ok": true, "deliveries": attempts })))
}

/// `GET /tenants/{tenantId}/api-keys` (admin or the tenant): labels, prefixes, dates.
async fn list_keys(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Value>, ApiError> {
    let keys = api_key::list(&state.store, &access.tenant).await?;
    Ok(Json(json!({ "ok": true, "apiKeys": keys })))
}

/// `POST /tenants/{tenantId}/api-keys` (admin): a new labelled key, shown this once.
async fn create_key(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    access.caller.require_admin()?;
    let label = KeyLabel::parse(body.label.as_deref().unwrap_or_default())?;
    let (view, key) = api_key::create(&state.store, &access.tenant, &label).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "apiKey": key.expose(), "key": view })),
    ))
}

/// `DELETE /tenants/{tenantId}/api-keys/{keyId}` (admin): refused at once here, within 4 s
/// everywhere.
async fn delete_key(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath((_, key_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    access.caller.require_admin()?;
    let key_id = api_key::parse_key_id(&key_id)?;
    let hash = api_key::revoke(&state.store, &access.tenant, &key_id).await?;
    state.accepted_keys.invalidate(&hash);
    Ok(Json(json!({ "ok": true, "deleted": key_id })))
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
