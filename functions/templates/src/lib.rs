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
    template::{self, TemplateDoc, TemplateInput, TemplateKey},
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/tenants/{tenantId}/templates", post(create).get(list))
            .route(
                "/tenants/{tenantId}/templates/{key}",
                get(show).put(replace).delete(deactivate),
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

async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(input): ApiJson<TemplateInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (doc, created) = template::create_or_update(&state, &access.tenant, &input).await?;
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
    let docs = template::list(&state, &access.tenant, all).await?;
    let templates: Vec<Value> = docs.iter().map(TemplateDoc::view).collect();
    Ok(Json(json!({ "ok": true, "templates": templates })))
}

async fn show(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    Ok(one(&template::get(&state, &access.tenant, &key).await?))
}

async fn replace(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    Ok(one(&template::replace(
        &state,
        &access.tenant,
        &key,
        &input,
    )
    .await?))
}

async fn deactivate(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let key = path_key(&params)?;
    Ok(one(
        &template::deactivate(&state, &access.tenant, &key).await?
    ))
}
