//! Plugins: upload (validated through `describe()`), list, metadata, download, resolve, yank,
//! annotate.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_registry_api::{Annotation, PluginManifest, PluginSummary, PluginVersion};
use weft_schema::CompatibilityLevel;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::names;
use crate::state::AppState;
use crate::store::{PutOutcome, parse_schema, semver_of};

/// Routes whose bodies are components (their own, larger, body limit).
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(download))
        .routes(routes!(resolve))
        .routes(routes!(yank))
        .routes(routes!(unyank))
        .routes(routes!(annotate))
        // The path the upgrade contract first named; same handler, not in the OpenAPI.
        .route(
            "/v1/plugins/{name}/{version}/annotations",
            axum::routing::post(annotate),
        )
        .routes(routes!(get_config, put_config))
}

/// `{"compatibility": "BACKWARD"}`: how a plugin's schemas may evolve between versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PluginConfig {
    pub compatibility: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ResolveQuery {
    /// A semver requirement, e.g. `^1.2`, `~1.4.0`, `=1.0.3`, `*`.
    pub req: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Upload a component (the body is the `.wasm`). Validated by instantiating it and calling
/// `describe()` in a sandbox; the version comes from its manifest.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = PluginVersion, description = "stored"),
        (status = 200, body = PluginVersion, description = "same bytes already stored under this version"),
        (status = 409, body = ErrorBody, description = "40901 version exists with other bytes, 40902 incompatible schemas"),
        (status = 413, body = ErrorBody, description = "too large"),
        (status = 422, body = ErrorBody, description = "42210 not a valid processor component")))]
async fn upload(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::InvalidPlugin(
            "empty body: send the component bytes".into(),
        ));
    }
    let inspector = state.inspector.clone();
    let bytes = body.clone();
    // Compiling and running `describe()` is CPU-bound: keep it off the async workers.
    let described = tokio::task::spawn_blocking(move || inspector.describe(&bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("inspector task: {e}")))?
        .map_err(ApiError::InvalidPlugin)?;

    names::plugin_name(&described.name)
        .map_err(|e| ApiError::InvalidPlugin(format!("manifest: {e}")))?;
    let version = names::version(&described.version)
        .map_err(|e| ApiError::InvalidPlugin(format!("manifest: {e}")))?;
    for (which, schema) in [
        ("input", &described.input_schema),
        ("output", &described.output_schema),
    ] {
        if let Some(text) = schema {
            parse_schema(text).map_err(|e| {
                ApiError::InvalidPlugin(format!("manifest: {which} schema is not valid Avro: {e}"))
            })?;
        }
    }
    let meta = PluginVersion {
        manifest: PluginManifest {
            version: version.to_string(),
            ..described
        },
        sha256: sha256_hex(&body),
        size: body.len() as u64,
        uploaded_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        yanked: false,
        annotations: Vec::new(),
    };
    let outcome = state
        .store
        .write(move |store| store.put_plugin(meta, &body))
        .await?;
    Ok(match outcome {
        PutOutcome::Created(meta) => {
            tracing::info!(
                name = meta.manifest.name,
                version = meta.manifest.version,
                sha256 = meta.sha256,
                "plugin stored"
            );
            (StatusCode::CREATED, Json(meta)).into_response()
        }
        PutOutcome::Existing(meta) => (StatusCode::OK, Json(meta)).into_response(),
    })
}

/// List plugins.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, body = Vec<PluginSummary>)))]
async fn list_plugins(State(state): State<AppState>) -> ApiResult<Json<Vec<PluginSummary>>> {
    let all = state
        .store
        .read(|store| {
            store
                .plugin_names()?
                .into_iter()
                .map(|name| Ok((store.plugin_versions(&name)?, name)))
                .collect::<ApiResult<Vec<_>>>()
        })
        .await?;
    let mut out = Vec::new();
    for (versions, name) in all {
        let latest = versions.iter().rev().find(|v| !v.yanked);
        out.push(PluginSummary {
            description: latest
                .or(versions.last())
                .map(|v| v.manifest.description.clone())
                .unwrap_or_default(),
            latest: latest.map(|v| v.manifest.version.clone()),
            versions: versions
                .iter()
                .map(|v| v.manifest.version.clone())
                .collect(),
            name,
        });
    }
    Ok(Json(out))
}

async fn checked_versions(state: &AppState, name: &str) -> ApiResult<Vec<PluginVersion>> {
    names::plugin_name(name)?;
    let name = name.to_string();
    state
        .store
        .read(move |store| {
            let versions = store.plugin_versions(&name)?;
            if versions.is_empty() {
                return Err(ApiError::PluginNotFound(name));
            }
            Ok(versions)
        })
        .await
}

async fn checked_version(state: &AppState, name: &str, version: &str) -> ApiResult<PluginVersion> {
    names::plugin_name(name)?;
    let version = names::version(version)?.to_string();
    let name = name.to_string();
    state
        .store
        .read(move |store| store.plugin_version(&name, &version))
        .await
}

/// Every version of a plugin, oldest first, with metadata.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<PluginVersion>), (status = 404, body = ErrorBody, description = "40410")))]
async fn list_versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PluginVersion>>> {
    Ok(Json(checked_versions(&state, &name).await?))
}

/// One version's metadata: manifest, schemas, sha256, size, upload time, yanked.
#[utoipa::path(get, path = "/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersion), (status = 404, body = ErrorBody, description = "40410, 40411")))]
async fn get_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PluginVersion>> {
    Ok(Json(checked_version(&state, &name, &version).await?))
}

/// Download a version's component bytes; the ETag is the sha256 (yanked versions too).
#[utoipa::path(get, path = "/v1/plugins/{name}/versions/{version}/download", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, content_type = "application/wasm", body = Vec<u8>),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorBody, description = "40410, 40411")))]
async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let meta = checked_version(&state, &name, &version).await?;
    let etag = format!("\"{}\"", meta.sha256);
    let etag_header =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sha_header =
        HeaderValue::from_str(&meta.sha256).map_err(|e| ApiError::Internal(e.to_string()))?;
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    let sha256 = meta.sha256.clone();
    let bytes = state.store.read(move |store| store.blob(&sha256)).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/wasm"),
            ),
            (header::ETAG, etag_header),
            (header::HeaderName::from_static("x-weft-sha256"), sha_header),
        ],
        bytes,
    )
        .into_response())
}

/// The newest non-yanked version matching a semver requirement.
#[utoipa::path(get, path = "/v1/plugins/{name}/resolve", tag = "plugins",
    params(("name" = String, Path), ResolveQuery),
    responses((status = 200, body = PluginVersion),
        (status = 404, body = ErrorBody, description = "40410, 40412 nothing matches"),
        (status = 422, body = ErrorBody, description = "42212 invalid requirement")))]
async fn resolve(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ResolveQuery>,
) -> ApiResult<Json<PluginVersion>> {
    let req = semver::VersionReq::parse(q.req.trim())
        .map_err(|_| ApiError::InvalidVersionReq(q.req.clone()))?;
    let versions = checked_versions(&state, &name).await?;
    let mut best: Option<(semver::Version, PluginVersion)> = None;
    for v in versions.into_iter().filter(|v| !v.yanked) {
        let version = semver_of(&v)?;
        if req.matches(&version) && best.as_ref().is_none_or(|(b, _)| version > *b) {
            best = Some((version, v));
        }
    }
    best.map(|(_, v)| Json(v))
        .ok_or(ApiError::NoMatchingVersion { name, req: q.req })
}

/// Yank a version: still downloadable by exact version, skipped by resolution.
#[utoipa::path(post, path = "/v1/plugins/{name}/versions/{version}/yank", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersion), (status = 404, body = ErrorBody)))]
async fn yank(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PluginVersion>> {
    let meta = checked_version(&state, &name, &version).await?;
    let yanked = state
        .store
        .write(move |store| store.set_yanked(&meta.manifest.name, &meta.manifest.version, true))
        .await?;
    Ok(Json(yanked))
}

/// Undo a yank.
#[utoipa::path(post, path = "/v1/plugins/{name}/versions/{version}/unyank", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersion), (status = 404, body = ErrorBody)))]
async fn unyank(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PluginVersion>> {
    let meta = checked_version(&state, &name, &version).await?;
    let unyanked = state
        .store
        .write(move |store| store.set_yanked(&meta.manifest.name, &meta.manifest.version, false))
        .await?;
    Ok(Json(unyanked))
}

/// Longest `reason` kept: an annotation is a note, not a log.
const MAX_REASON_CHARS: usize = 4096;

/// Checks what a client sends: a short lower-case kind, a pipeline name if any, a bounded
/// reason. `at` is the registry's to set.
fn checked_annotation(note: Annotation) -> ApiResult<Annotation> {
    let kind_ok = !note.kind.is_empty()
        && note.kind.len() <= 32
        && note
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !kind_ok {
        return Err(ApiError::InvalidAnnotation(format!(
            "kind `{}`: expected 1 to 32 of a-z, 0-9 and `-`, e.g. `{}`",
            note.kind,
            Annotation::ROLLED_BACK
        )));
    }
    if let Some(p) = &note.pipeline {
        names::pipeline_name(p)?;
    }
    if note.reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::InvalidAnnotation(format!(
            "reason longer than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(Annotation { at: None, ..note })
}

/// Annotate a version (e.g. `{"kind": "rolled-back", "pipeline": "orders", "reason": "..."}`,
/// which a daemon's canary sends). Stored with the time; the newest 100 are kept.
#[utoipa::path(post, path = "/v1/plugins/{name}/versions/{version}/annotations", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    request_body = Annotation,
    responses((status = 200, body = PluginVersion), (status = 404, body = ErrorBody, description = "40410, 40411"),
        (status = 422, body = ErrorBody, description = "42214 invalid annotation")))]
async fn annotate(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiJson(note): ApiJson<Annotation>,
) -> ApiResult<Json<PluginVersion>> {
    let note = checked_annotation(note)?;
    let meta = checked_version(&state, &name, &version).await?;
    let annotated = state
        .store
        .write(move |store| store.annotate(&meta.manifest.name, &meta.manifest.version, note))
        .await?;
    tracing::info!(plugin = %name, version = %version, "plugin version annotated");
    Ok(Json(annotated))
}

/// How this plugin's schemas may evolve between versions of one semver series (same
/// major): BACKWARD (default) means a new version can replace the previous one — its input
/// reads what the previous read and the previous one's consumers read its output; FORWARD
/// means the previous version can replace the new one (safe rollback); FULL both;
/// _TRANSITIVE against every earlier version of the series; NONE no check.
#[utoipa::path(get, path = "/v1/plugins/{name}/config", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginConfig)))]
async fn get_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginConfig>> {
    names::plugin_name(&name)?;
    let level = state
        .store
        .read(move |store| store.plugin_level(&name))
        .await?;
    Ok(Json(PluginConfig {
        compatibility: level.to_string(),
    }))
}

/// Set the plugin's evolution level (see GET).
#[utoipa::path(put, path = "/v1/plugins/{name}/config", tag = "plugins",
    params(("name" = String, Path)), request_body = PluginConfig,
    responses((status = 200, body = PluginConfig), (status = 422, body = ErrorBody, description = "42203")))]
async fn put_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(config): ApiJson<PluginConfig>,
) -> ApiResult<Json<PluginConfig>> {
    names::plugin_name(&name)?;
    let level: CompatibilityLevel = config
        .compatibility
        .parse()
        .map_err(|_| ApiError::InvalidCompatibilityLevel)?;
    state
        .store
        .write(move |store| store.set_plugin_level(&name, level))
        .await?;
    Ok(Json(PluginConfig {
        compatibility: level.to_string(),
    }))
}
