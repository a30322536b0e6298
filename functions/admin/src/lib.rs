//! `admin` function: the Template Builder UI, a single page embedded in the binary (no
//! CDN, works offline). It talks to the same HTTP API as any client.

use axum::{
    Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use shared::{
    ApiError,
    http::{ApiPath, finish},
};

const INDEX: &str = include_str!("ui/index.html");

/// Assets by file name: (content type, body).
fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "app.js" => ("text/javascript; charset=utf-8", include_str!("ui/app.js")),
        "map.js" => ("text/javascript; charset=utf-8", include_str!("ui/map.js")),
        "app.css" => ("text/css; charset=utf-8", include_str!("ui/app.css")),
        // uPlot (MIT), installed with npm (functions/admin/package.json, `make ui-vendor`).
        "uplot.js" => (
            "text/javascript; charset=utf-8",
            include_str!("ui/uplot.js"),
        ),
        "uplot.css" => ("text/css; charset=utf-8", include_str!("ui/uplot.css")),
        _ => return None,
    })
}

pub fn router() -> Router {
    finish(
        Router::new()
            .route("/admin", get(index))
            .route("/admin/{asset}", get(serve_asset)),
    )
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn serve_asset(ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let (content_type, body) =
        asset(&name).ok_or_else(|| ApiError::not_found(format!("no asset {name:?}")))?;
    Ok(page(content_type, body))
}
