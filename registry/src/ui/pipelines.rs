//! Pipeline pages: the list, one pipeline (topics, stages with the fields they read, its
//! definition), the lineage graph with field-level lineage, and the creation form.

use axum::extract::{Path, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::graph::{Graph, Kind, MAX_NODES, svg};
use super::layout::{
    PageQuery, SearchQuery, Section, UiResult, cut_note, page, pipeline_href, plugin_version_href,
    seg, subject_href,
};
use crate::state::AppState;
use crate::store::{Endpoint, Pipeline, PluginRef};

async fn all(state: &AppState) -> UiResult<Vec<Pipeline>> {
    Ok(state.store.read(|store| store.all_pipelines()).await?)
}

/// Pipelines listed at most; a search narrows the rest.
const MAX_LISTED: usize = 500;

/// Every registered pipeline, or those whose name, description, topics or plugins hold `q`.
pub async fn list(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<SearchQuery>,
) -> UiResult {
    let needle = query.needle();
    let mut pipelines = all(&state).await?;
    if !needle.is_empty() {
        pipelines.retain(|p| {
            let topics = p.sources.iter().chain(&p.sinks).map(|e| e.topic.as_str());
            let plugins = p.processors.iter().map(|s| s.name.as_str());
            [p.name.as_str(), p.description.as_str()]
                .into_iter()
                .chain(topics)
                .chain(plugins)
                .any(|text| text.to_lowercase().contains(&needle))
        });
    }
    let total = pipelines.len();
    pipelines.truncate(MAX_LISTED);
    let body = html! {
        h1 { "Pipelines" }
        p { a.button href="/ui/create" { "New pipeline" } " " a href="/ui/lineage" { "Lineage graph" } }
        form.inline action="/ui/pipelines" method="get" {
            input #pipeline-search type="search" name="q" value=(query.q) placeholder="name, topic or plugin";
            button type="submit" { "Search" }
        }
        (cut_note(pipelines.len(), total, "Narrow the search to see the others."))
        @if pipelines.is_empty() { p.note { "No pipeline matches." } }
        @else {
            table.list #pipelines {
                thead { tr { th { "Pipeline" } th { "Reads" } th { "Runs" } th { "Writes" } th { "Deployed" } } }
                tbody {
                    @for p in &pipelines {
                        tr {
                            td { a href=(pipeline_href(&p.name)) { (p.name) } @if !p.description.is_empty() { div.doc { (p.description) } } }
                            td { (topics(&p.sources)) }
                            td { @for s in &p.processors { a.chip.plugin href=(plugin_version_href(&s.name, &s.version)) { (s.id()) } " " } }
                            td { (topics(&p.sinks)) }
                            td { (deployment(p)) }
                        }
                    }
                }
            }
            p.note { "Running state and rates are reported by each " code { "weft serve" } " daemon's admin API, not stored here." }
        }
    };
    Ok(page("Pipelines", Section::Pipelines, body))
}

fn topics(endpoints: &[Endpoint]) -> Markup {
    html! {
        @for e in endpoints {
            a.chip.topic href=(subject_href(&e.subject())) title=(e.subject()) { (e.topic) } " "
        }
    }
}

fn deployment(p: &Pipeline) -> Markup {
    html! {
        @match (&p.cluster, &p.definition) {
            (Some(c), Some(_)) => { "cluster " code { (c) } " rev " (p.revision) }
            (None, Some(_)) => "definition stored, no cluster",
            _ => "lineage only",
        }
    }
}

/// One pipeline: its topics, its stages (what each reads), what reaches the sink, its file.
pub async fn pipeline(State(state): State<AppState>, Path(name): Path<String>) -> UiResult {
    let lookup = name.clone();
    let p = state
        .store
        .read(move |store| store.pipeline(&lookup))
        .await?;
    let body = html! {
        p.crumbs { a href="/ui/pipelines" { "Pipelines" } " / " a href=(format!("/ui/lineage?focus=pipeline:{}", seg(&name))) { "lineage" } }
        h1 { "Pipeline " code { (p.name) } }
        @if !p.description.is_empty() { p.doc { (p.description) } }
        dl.facts {
            dt { "reads" } dd #sources { (topics(&p.sources)) @if p.sources.is_empty() { "no topic" } }
            dt { "writes" } dd #sinks { (topics(&p.sinks)) @if p.sinks.is_empty() { "no topic" } }
            dt { "deployed" } dd { (deployment(&p)) }
            dt { "passes to the sink" } dd {
                @match &p.passes {
                    Some(fields) => { @for f in fields { code.chip { (f) } " " } @if fields.is_empty() { "no source field by its name" } }
                    None => "not reported (every field may)",
                }
            }
        }
        h2 { "Stages" }
        @if p.processors.is_empty() { p.note { "No processor: events are copied as they are." } }
        @else {
            ol.stages #stages {
                @for s in &p.processors {
                    li id=(format!("stage-{}", s.name)) {
                        a.plugin href=(plugin_version_href(&s.name, &s.version)) { (s.id()) }
                        " reads "
                        @match &s.reads {
                            Some(fields) => { @for f in fields { code.chip { (f) } " " } @if fields.is_empty() { "no field" } }
                            None => "every field (or did not report)",
                        }
                    }
                }
            }
        }
        @if let Some(definition) = &p.definition {
            h2 { "Definition" }
            pre.definition { (definition) }
        }
    };
    Ok(page(&format!("Pipeline {name}"), Section::Pipelines, body))
}

#[derive(Debug, Deserialize)]
pub struct LineageQuery {
    /// `topic:NAME`, `pipeline:NAME` or `plugin:NAME@VERSION`: draw its neighbourhood first.
    #[serde(default)]
    pub focus: String,
}

/// The lineage graph (bounded) and, where stages reported them, the fields each reads.
pub async fn lineage(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<LineageQuery>,
) -> UiResult {
    let pipelines = all(&state).await?;
    let graph = Graph::of(&pipelines);
    let focus = query.focus.split_once(':').and_then(|(kind, label)| {
        let kind = match kind {
            "topic" => Kind::Topic,
            "pipeline" => Kind::Pipeline,
            "plugin" => Kind::Plugin,
            _ => return None,
        };
        graph.find(kind, label)
    });
    let (shown, total) = graph.bounded(focus, MAX_NODES);
    let field_rows: Vec<(&Pipeline, &Endpoint, &PluginRef, &Vec<String>)> = pipelines
        .iter()
        .flat_map(|p| {
            p.sources.iter().flat_map(move |e| {
                p.processors
                    .iter()
                    .filter_map(move |s| s.reads.as_ref().map(|r| (p, e, s, r)))
            })
        })
        .collect();
    let body = html! {
        h1 { "Lineage" }
        p { "Topics (each links to its value subject) feed pipelines, which run plugin versions and write topics. Click a box to open it." }
        form.inline action="/ui/lineage" method="get" {
            input name="focus" value=(query.focus) placeholder="topic:orders, pipeline:clean, plugin:mask@1.0.0";
            button type="submit" { "Focus" }
        }
        @if !query.focus.is_empty() && focus.is_none() { p.error { "Nothing named " code { (query.focus) } " in the graph." } }
        @if total > shown.nodes.len() {
            p.note #graph-cut {
                "Showing " (shown.nodes.len()) " of " (total) " nodes (at most " (MAX_NODES) " are drawn"
                @if focus.is_some() { ", nearest to the focus first" } "). Focus on a topic, pipeline or plugin to see its part."
            }
        }
        @if shown.nodes.is_empty() { p.note { "No pipeline is registered yet." } }
        @else { div.graph { (svg(&shown)) } }
        h2 { "Field-level lineage" }
        @if field_rows.is_empty() {
            p.note { "No stage has reported which fields it reads yet (daemons report it with the pipelines they run)." }
        } @else {
            table.list #field-lineage {
                thead { tr { th { "Topic" } th { "Pipeline" } th { "Stage" } th { "Reads" } } }
                tbody {
                    @for (p, e, s, reads) in &field_rows {
                        tr {
                            td { a href=(subject_href(&e.subject())) { (e.topic) } }
                            td { a href=(pipeline_href(&p.name)) { (p.name) } }
                            td { a href=(plugin_version_href(&s.name, &s.version)) { (s.id()) } }
                            td { @for f in *reads { code.chip { (f) } " " } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Lineage", Section::Lineage, body))
}

/// The creation form: a pipeline file checked as you type through `POST
/// /v1/pipelines/validate`, registered with `PUT /v1/pipelines/{name}` (catalog.js).
pub async fn create(State(state): State<AppState>) -> UiResult {
    let (plugins, subjects) = state
        .store
        .read(|store| {
            let mut plugins = Vec::new();
            for name in store.plugin_names()?.into_iter().take(200) {
                if let Some(v) = store
                    .plugin_versions(&name)?
                    .iter()
                    .rev()
                    .find(|v| !v.yanked)
                {
                    plugins.push((name, v.manifest.version.clone()));
                }
            }
            Ok((
                plugins,
                store
                    .subjects(false, "")?
                    .into_iter()
                    .take(200)
                    .collect::<Vec<_>>(),
            ))
        })
        .await?;
    let example = r#"[[source]]
kind = "kafka"
brokers = "localhost:9092"
topics = ["orders"]
group = "orders-clean"

[[processor]]
plugin = "filter@^1"
[processor.params]
condition = "amount > 0"

[sink]
kind = "kafka"
brokers = "localhost:9092"
topic = "orders-clean"
"#;
    let body = html! {
        h1 { "New pipeline" }
        p { "The definition is a pipeline file, as " code { "weft run" } " reads it. It is checked against the registry's plugins and schemas as you type; registering needs a write token (asked once, kept for this browser tab)." }
        div.create {
            form #pipeline-form {
                label for="pf-name" { "Name" }
                input #pf-name name="name" required pattern="[A-Za-z0-9._-]+" autocomplete="off";
                label for="pf-description" { "Description" }
                input #pf-description name="description" autocomplete="off";
                label for="pf-cluster" { "Cluster (optional: daemons of this cluster run it)" }
                input #pf-cluster name="cluster" autocomplete="off";
                label for="pf-definition" { "Definition (TOML)" }
                textarea #pf-definition name="definition" rows="16" spellcheck="false" placeholder=(example) {}
                div #token-row hidden {
                    label for="pf-token" { "Registry token" }
                    input #pf-token type="password" autocomplete="off";
                }
                div.actions {
                    button #pf-validate type="button" { "Validate" }
                    button #pf-submit type="submit" { "Register" }
                }
            }
            aside.checks {
                h2 { "Checks" }
                div #validation aria-live="polite" { p.note { "Type a definition: it is checked as you type." } }
                p #form-error.error role="alert" hidden {}
                p #form-result hidden {}
            }
        }
        h2 { "Available" }
        p { "Plugins: " @for (name, version) in &plugins { code.chip title=(format!("newest {version}")) { (name) "@^" (major(version)) } " " } }
        p { "Subjects: " @for s in &subjects { a.chip href=(subject_href(s)) { (s) } " " } }
    };
    Ok(page("New pipeline", Section::Create, body))
}

fn major(version: &str) -> String {
    match semver::Version::parse(version) {
        Ok(v) if v.major == 0 => format!("0.{}", v.minor),
        Ok(v) => v.major.to_string(),
        Err(_) => version.to_string(),
    }
}
