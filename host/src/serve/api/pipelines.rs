//! `/v1/pipelines`: list, show, create or replace, delete, pause, resume, restart.
//!
//! Every change goes through the daemon, which validates a definition exactly as
//! `weft validate` does before touching what runs, and writes it through to the folder.
//! Those calls build plugins (seconds), so they run off the async workers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::pipeline_text;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::serve::{
    ControlError, Daemon, History, PipelineDetail, PipelineStatus, PutError, PutOutcome,
    State as PipelineState, valid_name,
};

pub fn router() -> OpenApiRouter<Daemon> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines))
        .routes(routes!(get_pipeline, put_pipeline, delete_pipeline))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(restart))
        .routes(routes!(history))
}

/// What a PUT did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutResponse {
    pub name: String,
    /// `created`, `replaced` (swapped at a batch boundary) or `unchanged` (nothing touched).
    pub outcome: PutOutcome,
}

/// What a DELETE did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteResponse {
    pub name: String,
    /// Always true: deleting a pipeline that does not exist is a 404.
    pub deleted: bool,
}

/// Every pipeline with its state, uptime, pinned stages and counts.
#[utoipa::path(get, path = "/v1/pipelines", tag = "pipelines",
    responses((status = 200, body = Vec<PipelineStatus>)))]
async fn list_pipelines(State(daemon): State<Daemon>) -> Json<Vec<PipelineStatus>> {
    Json(daemon.list())
}

/// One pipeline: its config as loaded, status, per-stage counters, source lag per partition
/// and last commit time.
#[utoipa::path(get, path = "/v1/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "the pipeline: its file's name without `.toml`")),
    responses((status = 200, body = PipelineDetail),
        (status = 404, body = ErrorBody, description = "pipeline_not_found")))]
async fn get_pipeline(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineDetail>> {
    daemon
        .get(&name)
        .map(Json)
        .ok_or(ApiError::PipelineNotFound(name))
}

/// A pipeline's history of automatic upgrades, blocked upgrades, rollbacks and reloads,
/// oldest first (the last 200), kept in the daemon's data_dir across restarts.
#[utoipa::path(get, path = "/v1/pipelines/{name}/history", tag = "pipelines",
    params(("name" = String, Path, description = "the pipeline; also one deleted since, while its history is kept")),
    responses((status = 200, body = History),
        (status = 404, body = ErrorBody, description = "pipeline_not_found: neither running nor any history")))]
async fn history(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<Json<History>> {
    let key = name.clone();
    // The history of a pipeline not running is read from disk.
    blocking(move || daemon.history(&key))
        .await?
        .map(Json)
        .ok_or(ApiError::PipelineNotFound(name))
}

/// Create or replace a pipeline. The body is a pipeline file (`Content-Type:
/// application/toml` or `text/toml`) or JSON of the same structure. It is validated as
/// `weft validate` does, every error at once, before the running pipeline is touched; a
/// replaced pipeline is swapped at a batch boundary, keeping its consumer group membership.
#[utoipa::path(put, path = "/v1/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "the pipeline; written to `<name>.toml` in the folder")),
    request_body(description = "the pipeline file, or its structure as JSON",
        content(("application/toml"), ("text/toml"), ("application/json"))),
    responses((status = 201, body = PutResponse, description = "created and started"),
        (status = 200, body = PutResponse, description = "replaced, or unchanged"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_pipeline with every error under `errors`, or invalid_name")),
    security(("admin_token" = [])))]
async fn put_pipeline(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PutResponse>)> {
    if !valid_name(&name) {
        return Err(ApiError::InvalidName(name));
    }
    let text = pipeline_text(&headers, &body).map_err(|errors| ApiError::InvalidPipeline {
        name: name.clone(),
        errors,
    })?;
    let key = name.clone();
    let outcome = blocking(move || daemon.put(&key, &text))
        .await?
        .map_err(|e| put_error(&name, e))?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced | PutOutcome::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(PutResponse { name, outcome })))
}

/// Stop a pipeline after its current batch (written, committed), leave its group and remove
/// its file.
#[utoipa::path(delete, path = "/v1/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, body = DeleteResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "pipeline_not_found")),
    security(("admin_token" = [])))]
async fn delete_pipeline(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<Json<DeleteResponse>> {
    let key = name.clone();
    let deleted = blocking(move || daemon.delete(&key))
        .await?
        .map_err(|e| control_error(&name, e))?;
    if !deleted {
        return Err(ApiError::PipelineNotFound(name));
    }
    Ok(Json(DeleteResponse {
        name,
        deleted: true,
    }))
}

/// Pause after the current batch (written and committed); a Kafka source leaves its group.
/// Answers once the pipeline is PAUSED (200), or with its current status if it has not got
/// there within 30 s (202: it will at its next batch boundary).
#[utoipa::path(post, path = "/v1/pipelines/{name}/pause", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, body = PipelineStatus, description = "paused"),
        (status = 202, body = PipelineStatus, description = "requested, not yet applied"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("admin_token" = [])))]
async fn pause(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<PipelineStatus>)> {
    control(daemon, name, Action::Pause).await
}

/// Resume a paused pipeline (it rejoins its group and reads on from its committed
/// offsets). Resuming one that is not paused changes nothing.
#[utoipa::path(post, path = "/v1/pipelines/{name}/resume", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, body = PipelineStatus, description = "no longer paused"),
        (status = 202, body = PipelineStatus, description = "requested, not yet applied"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("admin_token" = [])))]
async fn resume(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<PipelineStatus>)> {
    control(daemon, name, Action::Resume).await
}

/// Rebuild a pipeline from its file after its current batch, resolving registry references
/// (`mask@^1`) again; a FAILED pipeline is retried at once.
#[utoipa::path(post, path = "/v1/pipelines/{name}/restart", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, body = PipelineStatus, description = "rebuilt"),
        (status = 202, body = PipelineStatus, description = "requested, not yet applied"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("admin_token" = [])))]
async fn restart(
    State(daemon): State<Daemon>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<PipelineStatus>)> {
    control(daemon, name, Action::Restart).await
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Restart,
}

/// Sends the request; the daemon returns once the pipeline applied it at its batch boundary
/// (bounded). 200 when the status shows it applied, 202 when it is still pending.
async fn control(
    daemon: Daemon,
    name: String,
    action: Action,
) -> ApiResult<(StatusCode, Json<PipelineStatus>)> {
    let key = name.clone();
    let status = blocking(move || {
        let before = daemon.get(&key).map(|d| d.status.restarts);
        let status = match action {
            Action::Pause => daemon.pause(&key),
            Action::Resume => daemon.resume(&key),
            Action::Restart => daemon.restart(&key),
        }?;
        let applied = match action {
            Action::Pause => matches!(status.state, PipelineState::Paused | PipelineState::Stopped),
            Action::Resume => status.state != PipelineState::Paused,
            Action::Restart => before.is_none_or(|b| status.restarts > b),
        };
        Ok((applied, status))
    })
    .await?
    .map_err(|e: ControlError| control_error(&name, e))?;
    let (applied, status) = status;
    let code = if applied {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(status)))
}

/// Runs a daemon call that may block (building plugins, joining a pipeline's thread) on
/// tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("daemon call panicked or was cancelled: {e}")))
}

fn put_error(name: &str, e: PutError) -> ApiError {
    match e {
        PutError::Invalid(errors) => ApiError::InvalidPipeline {
            name: name.to_string(),
            errors,
        },
        PutError::BadName(name) => ApiError::InvalidName(name),
        PutError::ShuttingDown => ApiError::ShuttingDown,
        e @ PutError::Io { .. } => ApiError::Internal(format!("putting pipeline `{name}`: {e}")),
    }
}

fn control_error(name: &str, e: ControlError) -> ApiError {
    match e {
        ControlError::NotFound(_) => ApiError::PipelineNotFound(name.to_string()),
        ControlError::ShuttingDown => ApiError::ShuttingDown,
        e @ ControlError::Io { .. } => ApiError::Internal(format!("pipeline `{name}`: {e}")),
    }
}
