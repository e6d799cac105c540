//! The service's own routes: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::serve::Daemon;

pub fn router() -> OpenApiRouter<Daemon> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// The answer of `/ready`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Pipelines neither RUNNING, nor PAUSED on request, nor STOPPED after a finished file
    /// source: STARTING or FAILED ones.
    pub not_ready: Vec<String>,
}

/// Liveness: the daemon answers.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, body = Object)))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 when every pipeline runs as asked (PAUSED by request and STOPPED after a
/// finished file source count as ready), else 503 naming the others.
#[utoipa::path(get, path = "/ready", tag = "meta",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(daemon): State<Daemon>) -> (StatusCode, Json<Readiness>) {
    match daemon.ready() {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                ready: true,
                not_ready: Vec::new(),
            }),
        ),
        Err(not_ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                not_ready,
            }),
        ),
    }
}

/// Every pipeline's and stage's counters, in the Prometheus text exposition format
/// (OpenMetrics).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(daemon): State<Daemon>) -> Response {
    let text = daemon.metrics_text();
    // prometheus-client writes OpenMetrics, which ends with `# EOF`; say which one it is
    // so a scraper parses it with the right rules.
    let content_type = if text.trim_end().ends_with("# EOF") {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
