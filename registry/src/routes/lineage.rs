//! Lineage: who reads a topic, who reads a field (through which stage, directly or
//! downstream), who uses a plugin version, what a topic derives from, and the check of a
//! pipeline's whole schema chain (`pipelines.rs`, which serves the pipelines and
//! `POST /v1/pipelines/validate`, depends on it, never the other way).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_registry_api::{FieldLineage, FieldReader};
use weft_schema::{check_can_read, check_level};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::fields;
use crate::names;
use crate::state::AppState;
use crate::store::{Pipeline, Store, parse_schema};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(topic_lineage))
        .routes(routes!(field_lineage))
        .routes(routes!(plugin_lineage))
        .routes(routes!(plugin_version_lineage))
}

/// One link of a pipeline's schema chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkReport {
    /// What writes, e.g. `topic orders (subject orders-value v3)` or `mask@1.0.0`.
    pub from: String,
    /// What reads.
    pub to: String,
    /// `ok`, `incompatible`, or `unchecked` (a schema is unknown before `configure` runs).
    pub status: String,
    pub problems: Vec<String>,
}

/// The result of checking a pipeline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationReport {
    /// No link is incompatible and every plugin version exists.
    pub valid: bool,
    pub links: Vec<LinkReport>,
    /// Problems outside the links (unknown plugin versions, bad names).
    pub errors: Vec<String>,
}

/// Lineage of one topic.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicLineage {
    pub topic: String,
    /// Pipelines reading the topic.
    pub consumers: Vec<String>,
    /// Pipelines writing the topic.
    pub producers: Vec<String>,
    /// Topics this one derives from, transitively through the producers.
    pub upstream: Vec<String>,
    /// Topics derived from this one, transitively through the consumers.
    pub downstream: Vec<String>,
}

/// A pipeline using a plugin.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PluginUse {
    pub pipeline: String,
    pub version: String,
}

pub(super) fn check_pipeline(store: &Store, p: &Pipeline) -> ApiResult<ValidationReport> {
    let mut errors = Vec::new();
    // Its messages go into the report as they are: wrapped in InvalidPipeline here, the
    // answer would say "invalid pipeline: invalid pipeline: ...".
    if let Err(why) = field_lists(p) {
        errors.push(why);
    }
    let mut check_name = |r: ApiResult<()>| {
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    };
    check_name(names::pipeline_name(&p.name));
    for e in p.sources.iter().chain(&p.sinks) {
        check_name(names::topic_name(&e.topic));
        check_name(names::subject(&e.subject()));
    }
    // File and generated ends are not topics: a file → file pipeline lists none, and is
    // still worth registering for its plugins or its definition.
    if p.definition.is_none()
        && p.sources.is_empty()
        && p.sinks.is_empty()
        && p.processors.is_empty()
    {
        errors.push(
            "a pipeline needs a definition, or at least one source topic, processor or sink topic"
                .into(),
        );
    }
    let mut links = Vec::new();
    // Each source starts its own walk down the chain: (label, schema text) known so far.
    for source in &p.sources {
        let subject = source.subject();
        let mut current: Option<(String, String)> = match store.version(&subject, None, false) {
            Ok(v) => Some((
                format!("topic {} (subject {subject} v{})", source.topic, v.version),
                v.schema,
            )),
            Err(ApiError::SubjectNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let mut from_label = format!("topic {}", source.topic);
        for plugin in &p.processors {
            let id = format!("{}@{}", plugin.name, plugin.version);
            let meta = match store.plugin_version(&plugin.name, &plugin.version) {
                Ok(meta) => meta,
                Err(e @ (ApiError::PluginNotFound(_) | ApiError::PluginVersionNotFound { .. })) => {
                    errors.push(e.to_string());
                    current = None;
                    from_label = id;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(reader) = &meta.manifest.input_schema {
                links.push(link(current.as_ref(), &from_label, &id, |writer| {
                    let w = parse_schema(writer)?;
                    let r = parse_schema(reader)?;
                    Ok(check_can_read(&w, &r).err().map(|e| vec![e.to_string()]))
                })?);
            }
            current = meta.manifest.output_schema.clone().map(|s| (id.clone(), s));
            from_label = id;
        }
        for sink in &p.sinks {
            let subject = sink.subject();
            let to = format!("topic {} (subject {subject})", sink.topic);
            match store.version(&subject, None, false) {
                Ok(_) => {}
                Err(ApiError::SubjectNotFound(_)) => continue,
                Err(e) => return Err(e),
            }
            let level = store.effective_level(&subject)?;
            // Only the versions the level compares with: the latest, unless transitive.
            let versions = store.compared_versions(&subject, level.avro())?;
            links.push(link(current.as_ref(), &from_label, &to, |writer| {
                let w = parse_schema(writer)?;
                let previous = versions
                    .iter()
                    .map(|v| parse_schema(&v.schema))
                    .collect::<ApiResult<Vec<_>>>()?;
                Ok(check_level(level.avro(), &w, &previous)
                    .err()
                    .map(|problems| problems.iter().map(|p| format!("{level}: {p}")).collect()))
            })?);
        }
    }
    let valid = errors.is_empty() && links.iter().all(|l| l.status != "incompatible");
    Ok(ValidationReport {
        valid,
        links,
        errors,
    })
}

/// Fields listed in a stage's `reads` or in `passes` per list at most.
const MAX_FIELDS: usize = 10_000;

/// `reads` and `passes` list field paths (`owner.email`), a bounded number of them.
fn field_lists(p: &Pipeline) -> Result<(), String> {
    let lists = p
        .processors
        .iter()
        .filter_map(|r| r.reads.as_ref().map(|l| (format!("{}: reads", r.id()), l)))
        .chain(p.passes.as_ref().map(|l| ("passes".to_string(), l)));
    for (what, list) in lists {
        if list.len() > MAX_FIELDS {
            return Err(format!(
                "{what} lists {} fields, more than {MAX_FIELDS}",
                list.len()
            ));
        }
        if let Some(bad) = list.iter().find(|f| !fields::valid_path(f)) {
            return Err(format!(
                "{what}: {}",
                ApiError::InvalidField(bad.chars().take(100).collect())
            ));
        }
    }
    Ok(())
}

/// One link: unchecked when the upstream schema is unknown, else the check's verdict.
fn link(
    current: Option<&(String, String)>,
    from_label: &str,
    to: &str,
    check: impl FnOnce(&str) -> ApiResult<Option<Vec<String>>>,
) -> ApiResult<LinkReport> {
    let Some((from, writer)) = current else {
        return Ok(LinkReport {
            from: from_label.to_string(),
            to: to.to_string(),
            status: "unchecked".into(),
            problems: vec!["the upstream schema is only known once `configure` runs".into()],
        });
    };
    let problems = check(writer)?.unwrap_or_default();
    Ok(LinkReport {
        from: from.clone(),
        to: to.to_string(),
        status: if problems.is_empty() {
            "ok"
        } else {
            "incompatible"
        }
        .into(),
        problems,
    })
}

/// Who reads and writes a topic, and what it derives from.
#[utoipa::path(get, path = "/v1/lineage/topics/{topic}", tag = "lineage", params(("topic" = String, Path)),
    responses((status = 200, body = TopicLineage)))]
async fn topic_lineage(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> ApiResult<Json<TopicLineage>> {
    names::topic_name(&topic)?;
    let pipelines = state.store.read(|store| store.all_pipelines()).await?;
    let reads = |p: &Pipeline, t: &str| p.sources.iter().any(|e| e.topic == t);
    let writes = |p: &Pipeline, t: &str| p.sinks.iter().any(|e| e.topic == t);
    let names_where = |f: &dyn Fn(&Pipeline) -> bool| -> Vec<String> {
        pipelines
            .iter()
            .filter(|p| f(p))
            .map(|p| p.name.clone())
            .collect()
    };
    // Walks producers (upstream) or consumers (downstream) to a fixed point; cycles end it.
    let walk = |upstream: bool| -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut frontier = vec![topic.clone()];
        while let Some(t) = frontier.pop() {
            for p in &pipelines {
                let (hit, next) = if upstream {
                    (writes(p, &t), &p.sources)
                } else {
                    (reads(p, &t), &p.sinks)
                };
                if hit {
                    for e in next {
                        if e.topic != topic && seen.insert(e.topic.clone()) {
                            frontier.push(e.topic.clone());
                        }
                    }
                }
            }
        }
        seen.into_iter().collect()
    };
    Ok(Json(TopicLineage {
        consumers: names_where(&|p| reads(p, &topic)),
        producers: names_where(&|p| writes(p, &topic)),
        upstream: walk(true),
        downstream: walk(false),
        topic: topic.clone(),
    }))
}

/// Who reads one field of a subject's schema: each stage of a registered pipeline whose
/// `reads` include it (or that lists no fields, `all_fields`), then, through pipelines that
/// pass the field to a sink topic under its name (`passes`), the readers of that topic's
/// subject, with the topics in `via`. Cycles end; a huge graph ends at a bound (`truncated`).
#[utoipa::path(get, path = "/v1/lineage/fields/{subject}/{field}", tag = "lineage",
    params(("subject" = String, Path), ("field" = String, Path, description = "dotted path, e.g. `owner.email`")),
    responses((status = 200, body = FieldLineage),
        (status = 404, body = ErrorBody, description = "40401 no such subject and no pipeline reads it"),
        (status = 422, body = ErrorBody, description = "42215 not a field path")))]
async fn field_lineage(
    State(state): State<AppState>,
    Path((subject, field)): Path<(String, String)>,
) -> ApiResult<Json<FieldLineage>> {
    names::subject(&subject)?;
    if !fields::valid_path(&field) {
        return Err(ApiError::InvalidField(field.chars().take(100).collect()));
    }
    let answer = state
        .store
        .read(move |store| {
            let pipelines = store.all_pipelines()?;
            let read = pipelines
                .iter()
                .any(|p| p.sources.iter().any(|e| e.subject() == subject));
            if !read {
                // Unknown to lineage: a subject that exists simply has no reader.
                store.version_numbers(&subject, true)?;
            }
            let walk = fields::walk(&pipelines, &subject, std::slice::from_ref(&field));
            let readers = walk
                .hits
                .iter()
                .map(|hit| FieldReader {
                    pipeline: hit.pipeline.name.clone(),
                    stage: hit.stage.id(),
                    position: hit.position,
                    topic: hit.topic.clone(),
                    via: hit.via.clone(),
                    all_fields: hit.all_fields,
                })
                .collect();
            Ok(FieldLineage {
                subject,
                field,
                readers,
                truncated: walk.truncated,
            })
        })
        .await?;
    Ok(Json(answer))
}

/// Pipelines using any version of a plugin.
#[utoipa::path(get, path = "/v1/lineage/plugins/{name}", tag = "lineage", params(("name" = String, Path)),
    responses((status = 200, body = Vec<PluginUse>)))]
async fn plugin_lineage(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PluginUse>>> {
    names::plugin_name(&name)?;
    let mut out = Vec::new();
    for p in state.store.read(|store| store.all_pipelines()).await? {
        for r in p.processors.iter().filter(|r| r.name == name) {
            out.push(PluginUse {
                pipeline: p.name.clone(),
                version: r.version.clone(),
            });
        }
    }
    Ok(Json(out))
}

/// Pipelines using one plugin version.
#[utoipa::path(get, path = "/v1/lineage/plugins/{name}/versions/{version}", tag = "lineage",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Vec<String>)))]
async fn plugin_version_lineage(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Vec<String>>> {
    names::plugin_name(&name)?;
    let version = names::version(&version)?.to_string();
    let users = state
        .store
        .all_pipelines()?
        .into_iter()
        .filter(|p| {
            p.processors
                .iter()
                .any(|r| r.name == name && r.version == version)
        })
        .map(|p| p.name)
        .collect();
    Ok(Json(users))
}
