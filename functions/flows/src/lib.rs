//! `flows` function: a tenant's flow rules and fallback template.

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};

use shared::{
    ApiError, AppState,
    auth::TenantAccess,
    flow::{self, FlowDoc, FlowInput, FlowView},
    http::{ApiJson, finish},
    simulator::{self, SimulateRequest},
    template,
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/tenants/{tenantId}/flows", post(save).get(show))
            .route("/tenants/{tenantId}/simulate", post(simulate))
            .with_state(state),
    )
}

/// `{ok: true, flows, fallbackTemplateKey, version, ...}`: the normalised shape at the top
/// level, so what GET returns can be posted back as is.
fn body(doc: &FlowDoc) -> Json<FlowView> {
    Json(doc.view())
}

async fn save(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(input): ApiJson<FlowInput>,
) -> Result<(StatusCode, Json<FlowView>), ApiError> {
    let keys = input.template_keys()?;
    let existing = template::existing_keys(&state.store, &access.tenant, &keys).await?;
    let saved = flow::save(&state.store, &access.tenant, &input, &existing).await;
    // This process answers the tenant's next message with the saved flow.
    state.bot_configs.invalidate(&access.tenant);
    let (doc, created) = saved?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, body(&doc)))
}

async fn show(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<FlowView>, ApiError> {
    Ok(body(&flow::get(&state.store, &access.tenant).await?))
}

/// What the bot would answer, with no side effect (nothing stored, queued or sent).
async fn simulate(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(req): ApiJson<SimulateRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = simulator::simulate(&state.store, &access.tenant, &req).await?;
    Ok(Json(serde_json::json!({
        "ok": true,
        "reply": s.reply,
        "reason": s.reason,
        "changes": s.changes,
        "conversation": s.conversation,
    })))
}
