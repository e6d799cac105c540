//! Plugin pages: the list with search, a plugin's versions, one version's manifest, schemas,
//! digest and download.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use weft_registry_api::PluginVersion;

use super::layout::{
    PageQuery, SearchQuery, Section, UiResult, cut_note, human_size, page, pipeline_href,
    plugin_href, plugin_version_href, seg,
};
use super::tables::schema_table;
use crate::state::AppState;
use crate::store::Pipeline;

/// Plugins listed per page of results.
const MAX_LISTED: usize = 500;

/// Every plugin (newest version's description), filtered by `q` over names and descriptions.
pub async fn list(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<SearchQuery>,
) -> UiResult {
    let needle = query.needle();
    let (rows, total) = state
        .store
        .read(move |store| {
            let mut rows = Vec::new();
            let mut total = 0;
            for name in store.plugin_names()? {
                let versions = store.plugin_versions(&name)?;
                let Some(newest) = versions.last() else {
                    continue;
                };
                let description = &newest.manifest.description;
                if !needle.is_empty()
                    && !name.to_lowercase().contains(&needle)
                    && !description.to_lowercase().contains(&needle)
                {
                    continue;
                }
                total += 1;
                if rows.len() < MAX_LISTED {
                    let live = versions.iter().filter(|v| !v.yanked).count();
                    rows.push((name, newest.clone(), versions.len(), live));
                }
            }
            Ok((rows, total))
        })
        .await?;
    let body = html! {
        h1 { "Plugins" }
        form.inline action="/ui/plugins" method="get" {
            input #plugin-search type="search" name="q" value=(query.q) placeholder="name or description";
            button type="submit" { "Search" }
        }
        @if rows.is_empty() { p.note { "No plugin matches." } }
        @else {
            table.list #plugins {
                thead { tr { th { "Plugin" } th { "Newest" } th { "Description" } th { "Versions" } } }
                tbody {
                    @for (name, newest, count, live) in &rows {
                        tr {
                            td { a href=(plugin_href(name)) { (name) } }
                            td { a href=(plugin_version_href(name, &newest.manifest.version)) { (newest.manifest.version) } }
                            td.doc { (newest.manifest.description) }
                            td { (count) @if live != count { " (" (count - live) " yanked)" } }
                        }
                    }
                }
            }
        }
        (cut_note(rows.len(), total, "Narrow the search to see the others."))
    };
    Ok(page("Plugins", Section::Plugins, body))
}

/// A plugin's versions, newest first, yanked ones marked.
pub async fn plugin(State(state): State<AppState>, Path(name): Path<String>) -> UiResult {
    let lookup = name.clone();
    let (versions, users) = state
        .store
        .read(move |store| {
            let versions = store.plugin_versions(&lookup)?;
            if versions.is_empty() {
                return Err(crate::error::ApiError::PluginNotFound(lookup));
            }
            let users = store.all_pipelines()?;
            Ok((versions, users))
        })
        .await?;
    let users: Vec<Pipeline> = users
        .into_iter()
        .filter(|p| p.processors.iter().any(|s| s.name == name))
        .collect();
    let body = html! {
        h1 { "Plugin " code { (name) } }
        @if let Some(newest) = versions.last() { p.doc { (newest.manifest.description) } }
        table.list #versions {
            thead { tr { th { "Version" } th { "Uploaded" } th { "Size" } th { "sha256" } th { "Used by" } th {} } }
            tbody {
                @for v in versions.iter().rev() {
                    @let version = &v.manifest.version;
                    tr class=[v.yanked.then_some("yanked")] {
                        td { a href=(plugin_version_href(&name, version)) { (version) } }
                        td { (v.uploaded_at) }
                        td { (human_size(v.size)) }
                        td { code.digest { (short(&v.sha256)) } }
                        td {
                            @for p in users.iter().filter(|p| p.processors.iter().any(|s| s.name == name && &s.version == version)) {
                                a.chip href=(pipeline_href(&p.name)) { (p.name) } " "
                            }
                        }
                        td {
                            @if v.yanked { span.badge.yanked { "yanked" } }
                            @if let Some(last) = v.annotations.last() { " " span.badge.annotated title=(last.reason) { (last.kind) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Plugin {name}"), Section::Plugins, body))
}

/// One version: manifest, parameters, schemas as field tables, digest, size, download.
pub async fn version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> UiResult {
    let (n, v) = (name.clone(), version.clone());
    let (meta, users) = state
        .store
        .read(move |store| {
            let meta = store.plugin_version(&n, &v)?;
            let users = store.all_pipelines()?;
            Ok((meta, users))
        })
        .await?;
    let users: Vec<Pipeline> = users
        .into_iter()
        .filter(|p| {
            p.processors
                .iter()
                .any(|s| s.name == name && s.version == version)
        })
        .collect();
    let body = html! {
        p.crumbs { a href="/ui/plugins" { "Plugins" } " / " a href=(plugin_href(&name)) { (name) } }
        h1 { code { (meta.manifest.id()) } @if meta.yanked { " " span.badge.yanked { "yanked" } } }
        p.doc { (meta.manifest.description) }
        dl.facts {
            dt { "sha256" } dd { code.digest #sha256 { (meta.sha256) } }
            dt { "size" } dd { (human_size(meta.size)) " (" (meta.size) " bytes)" }
            dt { "uploaded" } dd { (meta.uploaded_at) }
            dt { "download" } dd {
                a #download href=(format!("{}/download", plugin_version_href(&name, &version))) download=(format!("{}-{}.wasm", name, version)) {
                    (name) "-" (version) ".wasm"
                }
            }
            dt { "used by" } dd {
                @if users.is_empty() { "no registered pipeline" }
                @for p in &users { a.chip href=(pipeline_href(&p.name)) { (p.name) } " " }
            }
        }
        (annotations(&meta))
        h2 { "Parameters" }
        @if meta.manifest.params.is_empty() { p.note { "None." } }
        @else {
            table.fields #params {
                thead { tr { th { "Name" } th { "Required" } th { "Default" } th { "Description" } } }
                tbody {
                    @for p in &meta.manifest.params {
                        tr {
                            td { code { (p.name) } }
                            td { @if p.required { "yes" } @else { "no" } }
                            td { @if let Some(d) = &p.default { code { (d) } } }
                            td.doc { (p.description) }
                        }
                    }
                }
            }
        }
        h2 { "Input schema" }
        @match &meta.manifest.input_schema {
            Some(s) => (schema_table(s, None)),
            None => p.note { "Any record: the plugin adapts to the schema it receives." },
        }
        h2 { "Output schema" }
        @match &meta.manifest.output_schema {
            Some(s) => (schema_table(s, None)),
            None => p.note { "Derived from the input when the pipeline is configured." },
        }
    };
    Ok(page(&meta.manifest.id(), Section::Plugins, body))
}

/// What daemons (or people) noted on this version, e.g. a canary's rollback.
fn annotations(meta: &PluginVersion) -> Markup {
    html! {
        @if !meta.annotations.is_empty() {
            h2 { "Annotations" }
            ul #annotations {
                @for note in &meta.annotations {
                    li {
                        span.badge.annotated { (note.kind) }
                        @if let Some(p) = &note.pipeline { " in " a href=(pipeline_href(p)) { (p) } }
                        @if !note.reason.is_empty() { ": " (note.reason) }
                        @if let Some(at) = &note.at { " " span.note { "(" (at) ")" } }
                    }
                }
            }
        }
    }
}

/// The component bytes, as the API's download serves them, behind the catalog's read rule.
pub async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> UiResult<Response> {
    let (meta, bytes) = state
        .store
        .read(move |store| {
            let meta = store.plugin_version(&name, &version)?;
            let bytes = store.blob(&meta.sha256)?;
            Ok((meta, bytes))
        })
        .await?;
    let file = format!(
        "attachment; filename=\"{}-{}.wasm\"",
        seg(&meta.manifest.name),
        seg(&meta.manifest.version)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/wasm".to_string()),
            (header::CONTENT_DISPOSITION, file),
            (
                header::HeaderName::from_static("x-weft-sha256"),
                meta.sha256,
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}
