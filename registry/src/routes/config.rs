//! Confluent compatibility configuration: global and per subject, plus the (fixed) mode.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, SrJson};
use crate::names;
use crate::state::AppState;
use crate::store::SubjectLevel;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_global, put_global, delete_global))
        .routes(routes!(get_subject, put_subject, delete_subject))
        .routes(routes!(get_mode))
}

/// `{"compatibility": "FULL"}`, as sent with PUT and answered to it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigUpdate {
    /// One of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL,
    /// FULL_TRANSITIVE, or weft's PIPELINES: BACKWARD, and a schema that would block the
    /// upgrade of a registered pipeline reading the subject (a field one of its stages reads
    /// removed or retyped, directly or downstream) is refused with 409.
    pub compatibility: String,
}

/// `{"compatibilityLevel": "BACKWARD"}`, as answered to GET and DELETE.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResponse {
    pub compatibility_level: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ConfigQuery {
    /// Answer the global level when the subject has none.
    #[serde(default)]
    pub default_to_global: bool,
}

fn level_of(update: &ConfigUpdate) -> ApiResult<SubjectLevel> {
    update
        .compatibility
        .parse()
        .map_err(|_| ApiError::InvalidCompatibilityLevel)
}

fn answer(level: SubjectLevel) -> SrJson<ConfigResponse> {
    SrJson(ConfigResponse {
        compatibility_level: level.to_string(),
    })
}

/// The global compatibility level.
#[utoipa::path(get, path = "/config", tag = "config", responses((status = 200, body = ConfigResponse)))]
async fn get_global(State(state): State<AppState>) -> ApiResult<SrJson<ConfigResponse>> {
    Ok(answer(
        state.store.read(|store| store.global_level()).await?,
    ))
}

/// Set the global compatibility level.
#[utoipa::path(put, path = "/config", tag = "config", request_body = ConfigUpdate,
    responses((status = 200, body = ConfigUpdate), (status = 422, body = ErrorBody, description = "42203")))]
async fn put_global(
    State(state): State<AppState>,
    ApiJson(update): ApiJson<ConfigUpdate>,
) -> ApiResult<SrJson<ConfigUpdate>> {
    let level = level_of(&update)?;
    state
        .store
        .write(move |store| store.set_level(None, Some(level)))
        .await?;
    Ok(SrJson(ConfigUpdate {
        compatibility: level.to_string(),
    }))
}

/// Reset the global level to the default (BACKWARD); answers the level it replaced.
#[utoipa::path(delete, path = "/config", tag = "config", responses((status = 200, body = ConfigResponse)))]
async fn delete_global(State(state): State<AppState>) -> ApiResult<SrJson<ConfigResponse>> {
    let previous = state
        .store
        .write(|store| {
            let previous = store.global_level()?;
            store.set_level(None, None)?;
            Ok(previous)
        })
        .await?;
    Ok(answer(previous))
}

/// A subject's compatibility level.
#[utoipa::path(get, path = "/config/{subject}", tag = "config",
    params(("subject" = String, Path), ConfigQuery),
    responses((status = 200, body = ConfigResponse), (status = 404, body = ErrorBody, description = "40408 not configured")))]
async fn get_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> ApiResult<SrJson<ConfigResponse>> {
    names::subject(&subject)?;
    state
        .store
        .read(move |store| match store.subject_level(&subject)? {
            Some(level) => Ok(answer(level)),
            None if q.default_to_global => Ok(answer(store.global_level()?)),
            None => Err(ApiError::SubjectConfigNotFound(subject)),
        })
        .await
}

/// Set a subject's compatibility level.
#[utoipa::path(put, path = "/config/{subject}", tag = "config",
    params(("subject" = String, Path)), request_body = ConfigUpdate,
    responses((status = 200, body = ConfigUpdate), (status = 422, body = ErrorBody, description = "42203")))]
async fn put_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiJson(update): ApiJson<ConfigUpdate>,
) -> ApiResult<SrJson<ConfigUpdate>> {
    names::subject(&subject)?;
    let level = level_of(&update)?;
    state
        .store
        .write(move |store| store.set_level(Some(&subject), Some(level)))
        .await?;
    Ok(SrJson(ConfigUpdate {
        compatibility: level.to_string(),
    }))
}

/// Remove a subject's level (the global one applies again); answers the level removed.
#[utoipa::path(delete, path = "/config/{subject}", tag = "config",
    params(("subject" = String, Path)),
    responses((status = 200, body = ConfigResponse), (status = 404, body = ErrorBody, description = "40401, 40408")))]
async fn delete_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<SrJson<ConfigResponse>> {
    names::subject(&subject)?;
    state
        .store
        .write(move |store| match store.set_level(Some(&subject), None)? {
            Some(previous) => Ok(answer(previous)),
            None => match store.version_numbers(&subject, true) {
                Ok(_) => Err(ApiError::SubjectConfigNotFound(subject)),
                Err(e) => Err(e),
            },
        })
        .await
}

/// `{"mode": "READWRITE"}`
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModeResponse {
    pub mode: String,
}

/// The registry's mode: always READWRITE (import mode is not supported).
#[utoipa::path(get, path = "/mode", tag = "config", responses((status = 200, body = ModeResponse)))]
async fn get_mode() -> SrJson<ModeResponse> {
    SrJson(ModeResponse {
        mode: "READWRITE".into(),
    })
}
