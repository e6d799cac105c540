//! Confluent schemas by global id.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_registry_api::SchemaResponse;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, SrJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schema_by_id))
        .routes(routes!(raw_schema_by_id))
        .routes(routes!(id_versions))
        .routes(routes!(id_subjects))
        .routes(routes!(schema_types))
}

/// A subject version using a schema id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubjectVersionRef {
    pub subject: String,
    pub version: u32,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct DeletedQuery {
    /// Include soft-deleted versions.
    #[serde(default)]
    pub deleted: bool,
}

fn parse_id(text: &str) -> ApiResult<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::SchemaNotFound)
}

/// Get a schema by its global id.
#[utoipa::path(get, path = "/schemas/ids/{id}", tag = "schemas",
    params(("id" = u32, Path)),
    responses((status = 200, body = SchemaResponse), (status = 404, body = ErrorBody, description = "40403")))]
async fn schema_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<SrJson<SchemaResponse>> {
    let id = parse_id(&id)?;
    let entry = state
        .store
        .read(move |store| store.schema_by_id(id))
        .await?;
    Ok(SrJson(SchemaResponse {
        schema: entry.schema,
    }))
}

/// Get a schema by its global id, as raw JSON.
#[utoipa::path(get, path = "/schemas/ids/{id}/schema", tag = "schemas",
    params(("id" = u32, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody, description = "40403")))]
async fn raw_schema_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<SrJson<serde_json::Value>> {
    let id = parse_id(&id)?;
    let entry = state
        .store
        .read(move |store| store.schema_by_id(id))
        .await?;
    Ok(SrJson(serde_json::from_str(&entry.schema)?))
}

/// The subject versions that use a schema id.
#[utoipa::path(get, path = "/schemas/ids/{id}/versions", tag = "schemas",
    params(("id" = u32, Path), DeletedQuery),
    responses((status = 200, body = Vec<SubjectVersionRef>), (status = 404, body = ErrorBody, description = "40403")))]
async fn id_versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeletedQuery>,
) -> ApiResult<SrJson<Vec<SubjectVersionRef>>> {
    let id = parse_id(&id)?;
    let usages = state
        .store
        .read(move |store| {
            store.schema_by_id(id)?;
            store.id_usages(id, q.deleted)
        })
        .await?;
    Ok(SrJson(
        usages
            .into_iter()
            .map(|(subject, version)| SubjectVersionRef { subject, version })
            .collect(),
    ))
}

/// The subjects that use a schema id.
#[utoipa::path(get, path = "/schemas/ids/{id}/subjects", tag = "schemas",
    params(("id" = u32, Path), DeletedQuery),
    responses((status = 200, body = Vec<String>), (status = 404, body = ErrorBody, description = "40403")))]
async fn id_subjects(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeletedQuery>,
) -> ApiResult<SrJson<Vec<String>>> {
    let id = parse_id(&id)?;
    let usages = state
        .store
        .read(move |store| {
            store.schema_by_id(id)?;
            store.id_usages(id, q.deleted)
        })
        .await?;
    let mut subjects: Vec<String> = usages.into_iter().map(|(subject, _)| subject).collect();
    subjects.dedup();
    Ok(SrJson(subjects))
}

/// The schema types this registry stores.
#[utoipa::path(get, path = "/schemas/types", tag = "schemas",
    responses((status = 200, body = Vec<String>)))]
async fn schema_types() -> SrJson<Vec<&'static str>> {
    SrJson(vec!["AVRO"])
}
