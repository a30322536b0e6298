//! `send` function: API sends (text and templates) and the message log.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde_json::{Value, json};
use shared::{
    ApiError, AppState,
    analytics::{self, AnalyticsQuery},
    auth::TenantAccess,
    customer::{self, CustomerQuery},
    dead_letter::{self, RedriveRequest},
    event::{self, Event, EventType},
    http::{ApiJson, ApiPath, ApiQuery, finish},
    message::{self, ListFilter, ListQuery, MessageDoc},
    meta_template::SendMetaTemplateRequest,
    send::{self, Accepted, SendTemplateRequest, SendTextRequest},
};

pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .route("/tenants/{tenantId}/send", post(send_text))
            .route("/tenants/{tenantId}/send/template", post(send_template))
            .route(
                "/tenants/{tenantId}/send/meta-template",
                post(send_meta_template),
            )
            .route("/tenants/{tenantId}/messages", get(messages))
            .route("/tenants/{tenantId}/customers", get(customers))
            .route("/tenants/{tenantId}/media/{mediaId}", get(media))
            .route("/tenants/{tenantId}/customers/{waId}", get(customer))
            .route(
                "/tenants/{tenantId}/customers/{waId}/handoff",
                post(handoff).delete(resume_bot),
            )
            .route("/tenants/{tenantId}/dead-letters", get(dead_letters))
            .route("/tenants/{tenantId}/analytics", get(analytics))
            .route(
                "/tenants/{tenantId}/dead-letters/redrive",
                post(redrive_dead_letters),
            )
            .with_state(state),
    )
}

/// `GET /tenants/{tenantId}/analytics?from&to&granularity`: counts over a bounded range.
async fn analytics(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let range = q.range()?;
    let templates = shared::template::load_active(&state.store, &access.tenant).await?;
    let report = analytics::report(&state.store, &access.tenant, &range, &templates).await?;
    Ok(Json(json!({ "ok": true, "analytics": report })))
}

/// `GET /tenants/{tenantId}/dead-letters`: messages whose jobs are in the DLQ.
async fn dead_letters(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Value>, ApiError> {
    let dlq = state.dead_letter_queue()?;
    let letters = dead_letter::list(&state.store, &dlq, &access.tenant).await?;
    Ok(Json(json!({ "ok": true, "deadLetters": letters })))
}

/// `POST /tenants/{tenantId}/dead-letters/redrive`: back to the send queue, each once.
async fn redrive_dead_letters(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(req): ApiJson<RedriveRequest>,
) -> Result<Json<Value>, ApiError> {
    let only = req.ids()?;
    let dlq = state.dead_letter_queue()?;
    let moved = dead_letter::redrive(&dlq, &access.tenant, only.as_deref()).await?;
    Ok(Json(
        json!({ "ok": true, "redriven": moved.len(), "messageIds": moved }),
    ))
}

fn accepted(a: Accepted) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "ok": true,
            "messageId": a.message_id,
            "idempotency_key": a.idempotency_key,
            "status": "queued",
        })),
    )
}

async fn send_text(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(req): ApiJson<SendTextRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(accepted(
        send::send_text(&state, &access.tenant, &req).await?,
    ))
}

async fn send_template(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(req): ApiJson<SendTemplateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(accepted(
        send::send_template(&state, &access.tenant, &req).await?,
    ))
}

async fn send_meta_template(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(req): ApiJson<SendMetaTemplateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(accepted(
        send::send_meta_template(&state, &access.tenant, &req).await?,
    ))
}

async fn messages(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = ListFilter::parse(&q)?;
    let docs = message::list(&state.store, &access.tenant, &f).await?;
    let next = (docs.len() as i64 == f.limit)
        .then(|| docs.last().map(|m| shared::ids::rfc3339(m.created_at)))
        .flatten();
    let messages: Vec<message::MessageView> = docs.iter().map(MessageDoc::view).collect();
    Ok(Json(
        json!({ "ok": true, "messages": messages, "nextBefore": next }),
    ))
}

async fn customers(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = customer::list(&state.store, &access.tenant, &q).await?;
    Ok(Json(json!({
        "ok": true,
        "customers": page.customers,
        "nextCursor": page.next_cursor,
    })))
}

async fn customer(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let wa_id = params.get("waId").map(String::as_str).unwrap_or_default();
    let c = customer::get(&state.store, &access.tenant, wa_id).await?;
    Ok(Json(json!({ "ok": true, "customer": c })))
}

/// An inbound file, fetched from Graph with the tenant's token.
async fn media(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<std::collections::HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = shared::media::parse_id(
        params
            .get("mediaId")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let (_, token) = state.credentials(&access.tenant).await?;
    let download = shared::media::download(
        &state.graph,
        state.media_bucket.as_ref(),
        &token,
        &access.tenant,
        id,
    )
    .await?;
    Ok(match download {
        shared::media::Download::Inline(file) => (
            [
                (axum::http::header::CONTENT_TYPE, file.mime_type),
                (
                    axum::http::header::CACHE_CONTROL,
                    "private, max-age=300".to_owned(),
                ),
            ],
            file.bytes,
        )
            .into_response(),
        shared::media::Download::Link(url) => {
            (StatusCode::FOUND, [(axum::http::header::LOCATION, url)]).into_response()
        }
    })
}

/// A human takes the conversation: no auto-replies for `{minutes?}` (default 24 h; the
/// body may be empty); inbound messages are still stored and API sends (the human's
/// replies) still go.
async fn handoff(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<std::collections::HashMap<String, String>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(shared::http::body_rejection)?;
    let wa_id = params.get("waId").map(String::as_str).unwrap_or_default();
    let request: customer::HandoffRequest = if body.iter().all(u8::is_ascii_whitespace) {
        customer::HandoffRequest::default()
    } else {
        shared::http::parse_json(&body)?
    };
    let until = request.until()?;
    let c = customer::set_handoff(&state.store, &access.tenant, wa_id, Some(until)).await?;
    let until = c.handoff_until.clone().unwrap_or_default();
    tracing::info!(tenantId = %access.tenant, until = %until, "conversation handed to a human");
    let started = Event::new(
        &access.tenant,
        EventType::HandoffStarted,
        &format!("{wa_id}|{until}"),
        json!({ "waId": wa_id, "until": until, "by": "api" }),
    );
    event::emit(&state.emitter(), &access.tenant, vec![started]).await;
    Ok(Json(json!({ "ok": true, "customer": c })))
}

/// The bot answers again, now.
async fn resume_bot(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiPath(params): ApiPath<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let wa_id = params.get("waId").map(String::as_str).unwrap_or_default();
    let c = customer::set_handoff(&state.store, &access.tenant, wa_id, None).await?;
    Ok(Json(json!({ "ok": true, "customer": c })))
}
