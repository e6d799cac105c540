//! Confluent subjects: register, look up, list, get and delete schema versions.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_registry_api::{IdResponse, VersionResponse};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, SrJson};
use crate::names;
use crate::state::AppState;
use crate::store::{SchemaText, SubjectVersion, canonical_schema, parse_schema};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_subjects))
        .routes(routes!(lookup, delete_subject))
        .routes(routes!(list_versions, register))
        .routes(routes!(get_version, delete_version))
        .routes(routes!(get_version_schema))
        .routes(routes!(referenced_by))
}

/// A schema as clients send it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    /// The Avro schema, as JSON text.
    pub schema: String,
    /// Only `AVRO` (the default) is supported.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// Schema references are not supported; must be absent or empty.
    #[serde(default)]
    pub references: Vec<serde_json::Value>,
}

impl SchemaRequest {
    /// Parses and canonicalises the schema; 42201 if it is not a valid Avro schema.
    pub fn parsed(&self) -> ApiResult<(apache_avro::Schema, SchemaText)> {
        if let Some(kind) = &self.schema_type
            && !kind.eq_ignore_ascii_case("AVRO")
        {
            return Err(ApiError::InvalidSchema(format!(
                "schema type {kind} is not supported; this registry stores AVRO schemas"
            )));
        }
        if !self.references.is_empty() {
            return Err(ApiError::InvalidSchema(
                "schema references are not supported".into(),
            ));
        }
        let schema = parse_schema(&self.schema)?;
        Ok((schema, canonical_schema(&self.schema)?))
    }
}

impl From<&SubjectVersion> for VersionResponse {
    fn from(v: &SubjectVersion) -> Self {
        Self {
            subject: v.subject.clone(),
            version: v.version,
            id: v.id,
            schema: v.schema.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Include soft-deleted subjects or versions.
    #[serde(default)]
    pub deleted: bool,
    /// Only subjects starting with this.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

/// Query of register and lookup.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct SchemaQuery {
    /// Store (register) and compare the schema in its canonical form: full names, no
    /// `namespace`, fixed key order (docs, defaults and properties kept). Identity is always
    /// by canonical form; this also makes the stored and served text canonical.
    #[serde(default)]
    pub normalize: bool,
    /// Lookup only: consider soft-deleted versions too.
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Delete for good (allowed only after a soft delete).
    #[serde(default)]
    pub permanent: bool,
}

/// `latest`/`-1` or a number in `[1, 2^31-1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    Latest,
    Number(u32),
}

impl VersionSel {
    pub fn parse(text: &str) -> ApiResult<Self> {
        if text == "latest" || text == "-1" {
            return Ok(VersionSel::Latest);
        }
        match text.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(VersionSel::Number(
                u32::try_from(n).map_err(|_| ApiError::InvalidVersion(text.to_string()))?,
            )),
            _ => Err(ApiError::InvalidVersion(text.to_string())),
        }
    }

    /// The version number, `None` for the latest (as [`crate::store::Store::version`] takes it).
    pub fn number(self) -> Option<u32> {
        match self {
            VersionSel::Latest => None,
            VersionSel::Number(n) => Some(n),
        }
    }

    /// Picks the version out of a subject's versions (those the caller chose to consider).
    pub fn pick(self, versions: &[SubjectVersion]) -> ApiResult<&SubjectVersion> {
        match self {
            VersionSel::Latest => versions.last(),
            VersionSel::Number(n) => versions.iter().find(|v| v.version == n),
        }
        .ok_or_else(|| {
            ApiError::VersionNotFound(match self {
                VersionSel::Latest => "latest".into(),
                VersionSel::Number(n) => n.to_string(),
            })
        })
    }
}

/// List subjects.
#[utoipa::path(get, path = "/subjects", tag = "subjects", params(ListQuery),
    responses((status = 200, body = Vec<String>)))]
async fn list_subjects(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<SrJson<Vec<String>>> {
    let prefix = q.subject_prefix.unwrap_or_default();
    let subjects = state
        .store
        .read(move |store| store.subjects(q.deleted, &prefix))
        .await?;
    Ok(SrJson(subjects))
}

/// List the versions of a subject.
#[utoipa::path(get, path = "/subjects/{subject}/versions", tag = "subjects",
    params(("subject" = String, Path), ListQuery),
    responses((status = 200, body = Vec<u32>), (status = 404, body = ErrorBody, description = "40401")))]
async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<SrJson<Vec<u32>>> {
    names::subject(&subject)?;
    let numbers = state
        .store
        .read(move |store| store.version_numbers(&subject, q.deleted))
        .await?;
    Ok(SrJson(numbers))
}

/// Register a schema under a subject (idempotent; checked against the subject's level).
#[utoipa::path(post, path = "/subjects/{subject}/versions", tag = "subjects",
    params(("subject" = String, Path), SchemaQuery), request_body = SchemaRequest,
    responses((status = 200, body = IdResponse),
        (status = 409, body = ErrorBody, description = "incompatible with an earlier schema"),
        (status = 422, body = ErrorBody, description = "42201 invalid schema")))]
async fn register(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<SchemaQuery>,
    ApiJson(req): ApiJson<SchemaRequest>,
) -> ApiResult<SrJson<IdResponse>> {
    names::subject(&subject)?;
    // Parsing and the compatibility check are CPU work, the store's lock may wait: all of
    // it runs on the blocking pool, and the answer waits for the flush.
    let (id, version, subject) = state
        .store
        .write(move |store| {
            let (schema, canonical) = req.parsed()?;
            let canonical = if q.normalize {
                canonical.normalized()
            } else {
                canonical
            };
            let (id, version) = store.register(&subject, &schema, &canonical)?;
            Ok((id, version, subject))
        })
        .await?;
    tracing::info!(subject, id, version, "schema registered");
    Ok(SrJson(IdResponse { id }))
}

/// Find the version of a subject that holds a schema.
#[utoipa::path(post, path = "/subjects/{subject}", tag = "subjects",
    params(("subject" = String, Path), SchemaQuery), request_body = SchemaRequest,
    responses((status = 200, body = VersionResponse),
        (status = 404, body = ErrorBody, description = "40401 subject or 40403 schema not found")))]
async fn lookup(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<SchemaQuery>,
    ApiJson(req): ApiJson<SchemaRequest>,
) -> ApiResult<SrJson<VersionResponse>> {
    names::subject(&subject)?;
    // Identity is the canonical form whether or not `normalize` is set.
    let found = state
        .store
        .read(move |store| {
            let (_, canonical) = req.parsed()?;
            store.lookup(&subject, &canonical.identity, q.deleted)
        })
        .await?;
    Ok(SrJson((&found).into()))
}

/// Delete a subject: soft by default, permanently after a soft delete.
#[utoipa::path(delete, path = "/subjects/{subject}", tag = "subjects",
    params(("subject" = String, Path), DeleteQuery),
    responses((status = 200, body = Vec<u32>, description = "the versions deleted"),
        (status = 404, body = ErrorBody, description = "40401, 40404, 40405")))]
async fn delete_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<SrJson<Vec<u32>>> {
    names::subject(&subject)?;
    let deleted = state
        .store
        .write(move |store| store.delete_subject(&subject, q.permanent))
        .await?;
    Ok(SrJson(deleted))
}

async fn find_version(
    state: &AppState,
    subject: String,
    version: &str,
    include_deleted: bool,
) -> ApiResult<SubjectVersion> {
    names::subject(&subject)?;
    let number = VersionSel::parse(version)?.number();
    state
        .store
        .read(move |store| store.version(&subject, number, include_deleted))
        .await
}

/// Get one version of a subject.
#[utoipa::path(get, path = "/subjects/{subject}/versions/{version}", tag = "subjects",
    params(("subject" = String, Path), ("version" = String, Path, description = "number or `latest`"), ListQuery),
    responses((status = 200, body = VersionResponse),
        (status = 404, body = ErrorBody, description = "40401, 40402"),
        (status = 422, body = ErrorBody, description = "42202 invalid version")))]
async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<SrJson<VersionResponse>> {
    let found = find_version(&state, subject, &version, q.deleted).await?;
    Ok(SrJson((&found).into()))
}

/// Get only the schema of one version, as raw JSON.
#[utoipa::path(get, path = "/subjects/{subject}/versions/{version}/schema", tag = "subjects",
    params(("subject" = String, Path), ("version" = String, Path), ListQuery),
    responses((status = 200, body = Object, description = "the Avro schema itself")))]
async fn get_version_schema(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<SrJson<serde_json::Value>> {
    let found = find_version(&state, subject, &version, q.deleted).await?;
    let value = serde_json::from_str(&found.schema)?;
    Ok(SrJson(value))
}

/// Schemas referencing this version: always none (references are not supported).
#[utoipa::path(get, path = "/subjects/{subject}/versions/{version}/referencedby", tag = "subjects",
    params(("subject" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Vec<u32>)))]
async fn referenced_by(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<SrJson<Vec<u32>>> {
    find_version(&state, subject, &version, false).await?;
    Ok(SrJson(Vec::new()))
}

/// Soft-delete a version, or permanently delete a soft-deleted one.
#[utoipa::path(delete, path = "/subjects/{subject}/versions/{version}", tag = "subjects",
    params(("subject" = String, Path), ("version" = String, Path), DeleteQuery),
    responses((status = 200, body = u32, description = "the version deleted"),
        (status = 404, body = ErrorBody, description = "40401, 40402, 40406, 40407")))]
async fn delete_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<SrJson<u32>> {
    names::subject(&subject)?;
    let sel = VersionSel::parse(&version)?;
    let deleted = state
        .store
        .write(move |store| {
            // A permanent delete addresses soft-deleted versions; a soft one, live ones.
            let latest = store.version(&subject, None, q.permanent)?;
            let target = match sel {
                // Name the precise state of an explicitly numbered version: the store's
                // delete tells "not soft-deleted" and "already soft-deleted" apart.
                VersionSel::Number(n) => {
                    store.version(&subject, Some(n), true)?;
                    n
                }
                VersionSel::Latest => latest.version,
            };
            store.delete_version(&subject, target, q.permanent)?;
            Ok(target)
        })
        .await?;
    Ok(SrJson(deleted))
}
