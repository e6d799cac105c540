//! `GET /v1/pipelines/{name}/dashboard`: the Grafana dashboard and Prometheus alert rules of
//! a running pipeline (`crate::dashboard` generates them), for the stages it actually pinned.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::pipelines::blocking;
use crate::serve::Daemon;

pub fn router() -> OpenApiRouter<Daemon> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// A pipeline's default dashboard and alerts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DashboardResponse {
    /// Grafana's dashboard object (import it as it is).
    #[schema(value_type = Object)]
    pub dashboard: serde_json::Value,
    /// A Prometheus rules file (YAML): FAILED, lag growing, dead letters, traps.
    pub alerts_yaml: String,
}

/// The Grafana dashboard and Prometheus alert rules for this pipeline's stages.
#[utoipa::path(get, path = "/v1/pipelines/{name}/dashboard", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, body = DashboardResponse),
        (status = 404, body = ErrorBody, description = "pipeline_not_found"),
        (status = 422, body = ErrorBody, description = "invalid_pipeline: its file no longer loads")))]
async fn dashboard(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<Json<DashboardResponse>> {
    let detail = daemon
        .get(&name)
        .ok_or_else(|| ApiError::PipelineNotFound(name.clone()))?;
    // The stages as pinned (`name@version`), so the panels name what runs.
    let stage_ids: Vec<String> = detail.stages.iter().map(|s| s.processor.clone()).collect();
    let file = std::path::PathBuf::from(&detail.file);
    blocking(move || {
        let config = crate::config::load_file(&file).map_err(|e| ApiError::InvalidPipeline {
            name: name.clone(),
            errors: e
                .issues
                .iter()
                .map(|i| match i.key.as_str() {
                    "" => i.message.clone(),
                    key => format!("{key}: {}", i.message),
                })
                .collect(),
        })?;
        let generated = crate::dashboard::generate(&name, &config, &stage_ids);
        let alerts_yaml = generated
            .alerts_yaml()
            .map_err(|e| ApiError::Internal(format!("writing the alert rules of {name}: {e}")))?;
        Ok(Json(DashboardResponse {
            dashboard: generated.dashboard,
            alerts_yaml,
        }))
    })
    .await?
}
