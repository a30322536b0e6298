//! `templates` function: a tenant's message templates (text or reply buttons).

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::{
    ApiError, AppState,
    auth::TenantAccess,
    http::{ApiJson, ApiPath, ApiQuery, finish},
    meta_template,
    template::{self, TemplateDoc, TemplateInput, TemplateKey},
    tenant,
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/tenants/{tenantId}/templates", post(create).get(list))
            .route(
                "/tenants/{tenantId}/templates/{key}",
                get(show).put(replace).delete(deactivate),
            )
            .route("/tenants/{tenantId}/meta-templates", get(meta_templates))
            .route(
                "/tenants/{tenantId}/meta-templates/sync",
                post(sync_meta_templates),
            )
            .with_state(state),
    )
}

fn one(doc: &TemplateDoc) -> Json<Value> {
    Json(json!({ "ok": true, "template": doc.view() }))
}

/// A key in the path that cannot be valid cannot exist either.
fn path_key(params: &HashMap<String, String>) -> Result<TemplateKey, ApiError> {
    let raw = params.get("key").map(String::as_str).unwrap_or_default();
    TemplateKey::parse("key", raw)
        .map_err(|_| ApiError::not_found(format!("template {raw:?} not found")))
}

/// After a write (even a failed one, which may have written part): this process answers
/// the tenant's next message with what was saved.
fn saved_for(state: &AppState, access: &TenantAccess) {
    state.bot_configs.invalidate(&access.tenant);
}

async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(input): ApiJson<TemplateInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let saved = template::create_or_update(&state.store, &access.tenant, &input).await;
    saved_for(&state, &access);
    let (doc, created) = saved?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, one(&doc)))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let all = matches!(q.all.as_deref(), Some("true" | "1" | "yes"));
    let docs = template::list(&state.store, &access.tenant, all).await?;
    let templates: Vec<template::TemplateView> = docs.iter().map(TemplateDoc::view).collect();
    Ok(Json(json!({ "ok": true, "templates": templates })))
}

async fn show(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    Ok(one(
        &template::get(&state.store, &access.tenant, &key).await?
    ))
}

async fn replace(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    let saved = template::replace(&state.store, &access.tenant, &key, &input).await;
    saved_for(&state, &access);
    Ok(one(&saved?))
}

async fn deactivate(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    let saved = template::deactivate(&state.store, &access.tenant, &key).await;
    saved_for(&state, &access);
    Ok(one(&saved?))
}

/// The tenant's WABA, which Meta templates belong to: 422 naming `wabaId` without one.
async fn waba_of(state: &AppState, access: &TenantAccess) -> Result<String, ApiError> {
    tenant::find(&state.store, &access.tenant)
        .await?
        .waba_id
        .ok_or_else(|| {
            ApiError::invalid(
                "wabaId",
                "the tenant has no WhatsApp Business Account id: set it with PATCH /tenants/{tenantId}",
            )
        })
}

fn meta_list(docs: &[meta_template::MetaTemplateDoc]) -> Json<Value> {
    let templates: Vec<_> = docs
        .iter()
        .map(meta_template::MetaTemplateDoc::view)
        .collect();
    Json(json!({ "ok": true, "templates": templates }))
}

async fn meta_templates(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Value>, ApiError> {
    waba_of(&state, &access).await?;
    Ok(meta_list(
        &meta_template::list(&state.store, &access.tenant).await?,
    ))
}

async fn sync_meta_templates(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Value>, ApiError> {
    let waba = waba_of(&state, &access).await?;
    let (_, token) = state.credentials(&access.tenant).await?;
    let docs =
        meta_template::sync(&state.store, &state.graph, &token, &access.tenant, &waba).await?;
    Ok(meta_list(&docs))
}
