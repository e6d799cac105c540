//! Pipelines as resources: register (lineage) or deploy (definition + cluster), read, list,
//! delete, and the list a daemon of one cluster follows, with an ETag for cheap polling.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::lineage::{ValidationReport, check_pipeline};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::names;
use crate::state::AppState;
use crate::store::{ClusterPipelines, Endpoint, Pipeline, PluginRef, Store, semver_of};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines))
        .routes(routes!(get_pipeline, put_pipeline, delete_pipeline))
        .routes(routes!(cluster_pipelines))
        .routes(routes!(validate))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only the pipelines deployed to this cluster.
    pub cluster: Option<String>,
}

/// List registered pipelines (`?cluster=` keeps those deployed to one cluster).
#[utoipa::path(get, path = "/v1/pipelines", tag = "lineage", params(ListQuery),
    responses((status = 200, body = Vec<Pipeline>)))]
async fn list_pipelines(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Pipeline>>> {
    if let Some(c) = &q.cluster {
        names::cluster_name(c)?;
    }
    let mut all = state.store.read(|store| store.all_pipelines()).await?;
    if let Some(c) = q.cluster {
        all.retain(|p| p.cluster.as_deref() == Some(c.as_str()) && p.definition.is_some());
    }
    Ok(Json(all))
}

/// What the daemons of a cluster must run. The ETag is the list's digest: a daemon polls
/// with `If-None-Match` and gets an empty 304 until something deployed there changes.
#[utoipa::path(get, path = "/v1/clusters/{cluster}/pipelines", tag = "lineage",
    params(("cluster" = String, Path)),
    responses((status = 200, body = ClusterPipelines), (status = 304, description = "If-None-Match matched")))]
async fn cluster_pipelines(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    names::cluster_name(&cluster)?;
    let list = state
        .store
        .read(move |store| store.cluster_pipelines(&cluster))
        .await?;
    let etag = format!("\"{}\"", list.digest);
    let etag_header =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    if matched {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok(([(header::ETAG, etag_header)], Json(list)).into_response())
}

/// Get a pipeline.
#[utoipa::path(get, path = "/v1/pipelines/{name}", tag = "lineage", params(("name" = String, Path)),
    responses((status = 200, body = Pipeline), (status = 404, body = ErrorBody, description = "40413")))]
async fn get_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Pipeline>> {
    names::pipeline_name(&name)?;
    Ok(Json(
        state.store.read(move |store| store.pipeline(&name)).await?,
    ))
}

/// Register, deploy or replace a pipeline after checking its schema chain.
///
/// With `definition` (the pipeline file's TOML) and `cluster`, the pipeline is deployed: the
/// daemons following that cluster run it. Empty `sources`, `processors` and `sinks` are then
/// read from the definition (Kafka topics; `name@requirement` plugins pinned to the newest
/// matching version). Without `definition` the body is a lineage report (what a daemon runs)
/// and the stored definition and cluster are kept.
#[utoipa::path(put, path = "/v1/pipelines/{name}", tag = "lineage", params(("name" = String, Path)),
    request_body = Pipeline,
    responses((status = 201, body = Pipeline), (status = 200, body = Pipeline, description = "replaced"),
        (status = 409, body = ErrorBody, description = "40903 a link is incompatible"),
        (status = 422, body = ErrorBody, description = "42213 invalid pipeline")))]
async fn put_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<Pipeline>)> {
    names::pipeline_name(&name)?;
    let p = strict_pipeline(body)?;
    if p.name != name {
        return Err(ApiError::InvalidPipeline(format!(
            "the body names pipeline `{}` but the URL `{name}`",
            p.name
        )));
    }
    if let Some(cluster) = &p.cluster {
        names::cluster_name(cluster)?;
        if p.definition.is_none() {
            return Err(ApiError::InvalidPipeline(format!(
                "pipeline `{name}` names cluster `{cluster}` but has no `definition` to run there"
            )));
        }
    }
    let (p, report) = state
        .store
        .read(move |store| {
            let p = with_definition_lineage(store, p)?;
            let report = check_pipeline(store, &p)?;
            Ok((p, report))
        })
        .await?;
    if !report.errors.is_empty() {
        return Err(ApiError::InvalidPipeline(report.errors.join("; ")));
    }
    if !report.valid {
        let problems: Vec<String> = report
            .links
            .iter()
            .filter(|l| l.status == "incompatible")
            .map(|l| format!("{} → {}: {}", l.from, l.to, l.problems.join("; ")))
            .collect();
        return Err(ApiError::IncompatiblePipeline(format!(
            "pipeline `{name}` has incompatible links: {}",
            problems.join(" | ")
        )));
    }
    let (created, stored) = state
        .store
        .write(move |store| store.put_pipeline(&p))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// Unregister a pipeline (and undeploy it from its cluster).
#[utoipa::path(delete, path = "/v1/pipelines/{name}", tag = "lineage", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody, description = "40413")))]
async fn delete_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    names::pipeline_name(&name)?;
    state
        .store
        .write(move |store| store.delete_pipeline(&name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a pipeline's schema chain without registering it.
#[utoipa::path(post, path = "/v1/pipelines/validate", tag = "lineage", request_body = Pipeline,
    responses((status = 200, body = ValidationReport)))]
async fn validate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<ValidationReport>> {
    let p = strict_pipeline(body)?;
    let report = state
        .store
        .read(move |store| check_pipeline(store, &with_definition_lineage(store, p)?))
        .await?;
    Ok(Json(report))
}

/// Checks that a definition is a pipeline file in shape (TOML with `[[source]]` and `[sink]`;
/// the daemon checks the rest exactly as `weft validate` does) and, when the body lists no
/// lineage of its own, reads it from the definition.
pub(super) fn with_definition_lineage(store: &Store, mut p: Pipeline) -> ApiResult<Pipeline> {
    let Some(text) = &p.definition else {
        return Ok(p);
    };
    let invalid =
        |why: String| ApiError::InvalidPipeline(format!("definition of `{}`: {why}", p.name));
    let table: toml::Table =
        toml::from_str(text).map_err(|e| invalid(format!("not valid TOML: {}", e.message())))?;
    let sources = match table.get("source") {
        Some(toml::Value::Array(items)) if !items.is_empty() => items.as_slice(),
        _ => return Err(invalid("needs at least one [[source]]".into())),
    };
    let Some(toml::Value::Table(sink)) = table.get("sink") else {
        return Err(invalid("needs a [sink]".into()));
    };
    if !(p.sources.is_empty() && p.processors.is_empty() && p.sinks.is_empty()) {
        return Ok(p);
    }
    let str_of =
        |t: &toml::Table, key: &str| t.get(key).and_then(toml::Value::as_str).map(String::from);
    for source in sources.iter().filter_map(toml::Value::as_table) {
        if str_of(source, "kind").as_deref() != Some("kafka") {
            continue;
        }
        let topics: Vec<String> = source
            .get("topics")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // An explicit subject belongs to a single topic; several topics use their own.
        let subject = if topics.len() == 1 {
            str_of(source, "subject")
        } else {
            None
        };
        p.sources.extend(topics.into_iter().map(|topic| Endpoint {
            topic,
            subject: subject.clone(),
        }));
    }
    if str_of(sink, "kind").as_deref() == Some("kafka")
        && let Some(topic) = str_of(sink, "topic")
    {
        p.sinks.push(Endpoint {
            topic,
            subject: str_of(sink, "subject"),
        });
    }
    let processors = table.get("processor").and_then(toml::Value::as_array);
    for (i, processor) in processors.into_iter().flatten().enumerate() {
        let Some(reference) = processor.as_table().and_then(|t| str_of(t, "plugin")) else {
            return Err(invalid(format!("processor[{i}] has no `plugin`")));
        };
        // A local component is only known to the machine that runs it: not pinned here.
        if reference.ends_with(".wasm") {
            continue;
        }
        p.processors
            .push(pin(store, &reference).map_err(|e| match e {
                ApiError::Store(_) | ApiError::Internal(_) => e,
                e => invalid(format!("processor[{i}]: {e}")),
            })?);
    }
    Ok(p)
}

/// The newest non-yanked version matching `name@requirement`.
fn pin(store: &Store, reference: &str) -> ApiResult<PluginRef> {
    let (name, req_text) = reference.split_once('@').ok_or_else(|| {
        ApiError::InvalidPipeline(format!(
            "`{reference}` is neither a .wasm path nor a registry reference NAME@VERSION"
        ))
    })?;
    names::plugin_name(name)?;
    let req = semver::VersionReq::parse(req_text.trim())
        .map_err(|_| ApiError::InvalidVersionReq(req_text.to_string()))?;
    let mut best: Option<semver::Version> = None;
    for v in store.plugin_versions(name)?.iter().filter(|v| !v.yanked) {
        let version = semver_of(v)?;
        if req.matches(&version) && best.as_ref().is_none_or(|b| version > *b) {
            best = Some(version);
        }
    }
    let version = best.ok_or_else(|| ApiError::NoMatchingVersion {
        name: name.to_string(),
        req: req_text.to_string(),
    })?;
    Ok(PluginRef {
        name: name.to_string(),
        version: version.to_string(),
        reads: None,
    })
}

/// A pipeline body with no key the registry does not know: the shared type ignores unknown
/// keys (daemons and registries of other versions talk to each other), but a person's typo
/// (`sorces`) must not register a pipeline that silently reads nothing.
fn strict_pipeline(body: serde_json::Value) -> ApiResult<Pipeline> {
    const TOP: &[&str] = &[
        "name",
        "description",
        "sources",
        "processors",
        "sinks",
        "passes",
        "cluster",
        "definition",
        "revision",
    ];
    const ENDPOINT: &[&str] = &["topic", "subject"];
    const PLUGIN: &[&str] = &["name", "version", "reads"];
    let unknown = |at: &str, value: &serde_json::Value, known: &[&str]| -> ApiResult<()> {
        if let Some(key) = value
            .as_object()
            .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(ApiError::BadRequest(format!(
                "invalid JSON body: unknown field `{key}`{at}, expected one of {}",
                known.join(", ")
            )));
        }
        Ok(())
    };
    unknown("", &body, TOP)?;
    for (list, known) in [
        ("sources", ENDPOINT),
        ("sinks", ENDPOINT),
        ("processors", PLUGIN),
    ] {
        let items = body.get(list).and_then(serde_json::Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            unknown(&format!(" in {list}[{i}]"), item, known)?;
        }
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
