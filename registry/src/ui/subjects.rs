//! Subject pages: data discovery (search over subject names, record names, field names and
//! docs), a subject's versions as field tables with who reads each field, its compatibility
//! level and the pipelines reading and writing its topic, and the diff of two versions.

use axum::extract::{Path, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::fields::{diff, outline};
use super::layout::{
    PageQuery, SearchQuery, Section, UiResult, cut_note, page, pipeline_href, plugin_version_href,
    seg, subject_href,
};
use super::tables::{Readers, diff_table, outline_table};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Pipeline;

/// Subjects whose newest schema a search reads; past it the page says the search was partial.
const MAX_SCANNED: usize = 5000;
/// Subjects listed in results.
const MAX_LISTED: usize = 300;
/// Matches shown per subject.
const MAX_HITS: usize = 6;

/// One subject in the results, with what matched.
struct Found {
    subject: String,
    record: String,
    version: u32,
    hits: Vec<(&'static str, String)>,
}

/// Every subject, or those whose name, record names, field names or docs contain `q`.
pub async fn list(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<SearchQuery>,
) -> UiResult {
    let needle = query.needle();
    let searching = !needle.is_empty();
    let (found, total, scanned_all) = state
        .store
        .read(move |store| {
            let subjects = store.subjects(false, "")?;
            let scanned_all = subjects.len() <= MAX_SCANNED;
            let mut found = Vec::new();
            let mut total = 0;
            for subject in subjects.into_iter().take(MAX_SCANNED) {
                let latest = match store.version(&subject, None, false) {
                    Ok(v) => v,
                    // Deleted between the listing and this read.
                    Err(ApiError::SubjectNotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                let o = outline(&latest.schema).unwrap_or_default();
                let hits = if needle.is_empty() {
                    Vec::new()
                } else {
                    let hits = matches(&needle, &subject, &o);
                    if hits.is_empty() {
                        continue;
                    }
                    hits
                };
                total += 1;
                if found.len() < MAX_LISTED {
                    found.push(Found {
                        subject,
                        record: o.name,
                        version: latest.version,
                        hits,
                    });
                }
            }
            Ok((found, total, scanned_all))
        })
        .await?;
    let body = html! {
        h1 { "Subjects" }
        form.inline action="/ui/subjects" method="get" {
            input #subject-search type="search" name="q" value=(query.q) placeholder="subject, record, field or doc";
            button type="submit" { "Search" }
        }
        @if found.is_empty() { p.note #no-results { "No subject matches." } }
        @else {
            table.list #subjects {
                thead { tr { th { "Subject" } th { "Record" } th { "Latest" } @if searching { th { "Matches" } } } }
                tbody {
                    @for f in &found {
                        tr {
                            td { a href=(subject_href(&f.subject)) { (f.subject) } }
                            td { code { (f.record) } }
                            td { "v" (f.version) }
                            @if searching {
                                td.hits {
                                    @for (kind, text) in &f.hits {
                                        span.hit { span.kind { (kind) } " " (text) } " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (cut_note(found.len(), total, "Narrow the search to see the others."))
        @if !scanned_all { p.note { "Only the first " (MAX_SCANNED) " subjects (by name) were searched." } }
    };
    Ok(page("Subjects", Section::Subjects, body))
}

/// What of a subject's newest schema contains `needle` (already lowercase).
fn matches(needle: &str, subject: &str, o: &super::fields::Outline) -> Vec<(&'static str, String)> {
    let has = |text: &str| text.to_lowercase().contains(needle);
    let mut hits = Vec::new();
    if has(subject) {
        hits.push(("subject", subject.to_string()));
    }
    for (name, doc) in &o.named {
        if has(name) {
            hits.push(("record", name.clone()));
        }
        if has(doc) {
            hits.push(("doc", format!("{name}: {doc}")));
        }
    }
    for f in &o.fields {
        // The field's own name, not its parents': `city` finds `address.city`, `address`
        // finds `address` once rather than every field under it.
        let own = f.path.rsplit('.').next().unwrap_or(&f.path);
        if has(own) {
            hits.push(("field", f.path.clone()));
        }
        if has(&f.doc) {
            hits.push(("doc", format!("{}: {}", f.path, f.doc)));
        }
    }
    hits.truncate(MAX_HITS);
    hits
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    /// The version shown; the newest when absent.
    pub v: Option<u32>,
}

/// A subject: one version's fields (with their readers), its versions, level, pipelines.
pub async fn subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    PageQuery(query): PageQuery<VersionQuery>,
) -> UiResult {
    let s = subject.clone();
    let (shown, versions, level, explicit, stored) = state
        .store
        .read(move |store| {
            let versions = store.live_versions(&s, false)?;
            let shown = store.version(&s, query.v, false)?;
            let level = store.effective_level(&s)?;
            let explicit = store.subject_level(&s)?.is_some();
            let stored = store.all_pipelines()?;
            Ok((shown, versions, level, explicit, stored))
        })
        .await?;
    let readers: Vec<&Pipeline> = stored
        .iter()
        .filter(|p| p.sources.iter().any(|e| e.subject() == subject))
        .collect();
    let writers: Vec<&Pipeline> = stored
        .iter()
        .filter(|p| p.sinks.iter().any(|e| e.subject() == subject))
        .collect();
    let o = outline(&shown.schema).unwrap_or_default();
    let (by_field, everything) = field_readers(&stored, &subject, &o);
    let newest = versions.last().map(|v| v.version).unwrap_or(shown.version);
    let previous = versions
        .iter()
        .rev()
        .nth(1)
        .map(|v| v.version)
        .unwrap_or(newest);
    let body = html! {
        p.crumbs { a href="/ui/subjects" { "Subjects" } }
        h1 { "Subject " code { (subject) } }
        dl.facts {
            dt { "compatibility" } dd #level { (level.to_string()) @if !explicit { " (global default)" } }
            dt { "shown" } dd { "version " (shown.version) ", schema id " (shown.id) @if shown.version != newest { " — newest is " a href=(subject_href(&subject)) { "v" (newest) } } }
            dt { "read by" } dd #readers { (pipeline_chips(&readers)) }
            dt { "written by" } dd #writers { (pipeline_chips(&writers)) }
        }
        h2 { "Fields" }
        (outline_table(&o, (shown.version == newest).then_some(&by_field)))
        @if shown.version == newest && !everything.is_empty() {
            p.note #reads-everything {
                "Read whole (every field, or not reported): "
                @for (href, label) in &everything { a.chip href=(href) { (label) } " " }
            }
        }
        h2 { "Versions" }
        ul.versions {
            @for v in versions.iter().rev() {
                li {
                    a href=(format!("{}?v={}", subject_href(&subject), v.version)) { "v" (v.version) }
                    " (schema id " (v.id) ")"
                }
            }
        }
        @if versions.len() > 1 {
            form.inline #diff-form action=(format!("{}/diff", subject_href(&subject))) method="get" {
                label { "Compare " (version_select("from", &versions, previous)) }
                label { " with " (version_select("to", &versions, newest)) }
                button type="submit" { "Diff" }
            }
        }
    };
    Ok(page(&subject, Section::Subjects, body))
}

/// Per field of the schema, the stages reading it, directly or downstream (the registry's
/// field lineage walk, the one `GET /v1/lineage/fields` answers with); and the stages that
/// report no field list, which may read any.
fn field_readers(
    pipelines: &[Pipeline],
    subject: &str,
    o: &super::fields::Outline,
) -> (Readers, Vec<(String, String)>) {
    // Lineage paths are dotted; the table marks array items `[]` and map values `{}`.
    let paths: Vec<(String, &str)> = o
        .fields
        .iter()
        .map(|f| (f.path.replace("[]", "").replace("{}", ""), f.path.as_str()))
        .collect();
    let lineage_paths: Vec<String> = paths.iter().map(|(l, _)| l.clone()).collect();
    let walk = crate::fields::walk(pipelines, subject, &lineage_paths);
    let mut by_field = Readers::new();
    let mut everything: Vec<(String, String)> = Vec::new();
    for hit in &walk.hits {
        let href = format!(
            "{}#stage-{}",
            pipeline_href(&hit.pipeline.name),
            seg(&hit.stage.name)
        );
        let mut label = format!(
            "{} · {}@{}",
            hit.pipeline.name, hit.stage.name, hit.stage.version
        );
        if !hit.via.is_empty() {
            label.push_str(&format!(" (via {})", hit.via.join(" → ")));
        }
        if hit.all_fields {
            if !everything.iter().any(|(h, l)| *h == href && *l == label) {
                everything.push((href, label));
            }
            continue;
        }
        if let Some((_, path)) = paths.iter().find(|(l, _)| *l == hit.field) {
            let links = by_field.entry((*path).to_string()).or_default();
            if !links.iter().any(|(h, l)| *h == href && *l == label) {
                links.push((href, label));
            }
        }
    }
    (by_field, everything)
}

fn pipeline_chips(pipelines: &[&Pipeline]) -> Markup {
    html! {
        @if pipelines.is_empty() { "no registered pipeline" }
        @for p in pipelines {
            a.chip href=(pipeline_href(&p.name)) { (p.name) } " "
            @for stage in &p.processors {
                a.chip.plugin href=(plugin_version_href(&stage.name, &stage.version)) { (stage.id()) } " "
            }
        }
    }
}

fn version_select(name: &str, versions: &[crate::store::SubjectVersion], selected: u32) -> Markup {
    html! {
        select name=(name) id=(format!("diff-{name}")) {
            @for v in versions.iter().rev() {
                option value=(v.version) selected[v.version == selected] { "v" (v.version) }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

/// The field-level diff between two versions of a subject.
pub async fn diff_page(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    PageQuery(query): PageQuery<DiffQuery>,
) -> UiResult {
    let s = subject.clone();
    let (from, to, versions) = state
        .store
        .read(move |store| {
            Ok((
                store.version(&s, Some(query.from), false)?,
                store.version(&s, Some(query.to), false)?,
                store.live_versions(&s, false)?,
            ))
        })
        .await?;
    let old = outline(&from.schema).unwrap_or_default();
    let new = outline(&to.schema).unwrap_or_default();
    let changes = diff(&old.fields, &new.fields);
    let body = html! {
        p.crumbs { a href="/ui/subjects" { "Subjects" } " / " a href=(subject_href(&subject)) { (subject) } }
        h1 { code { (subject) } ": v" (from.version) " → v" (to.version) }
        form.inline #diff-form action=(format!("{}/diff", subject_href(&subject))) method="get" {
            label { "Compare " (version_select("from", &versions, from.version)) }
            label { " with " (version_select("to", &versions, to.version)) }
            button type="submit" { "Diff" }
        }
        (diff_table(&changes))
        @if old.truncated || new.truncated { p.note { "Large schemas: only their first fields are compared." } }
    };
    Ok(page(&format!("{subject} diff"), Section::Subjects, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_matches_field_names_records_and_docs() {
        let o = outline(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"customer_email","type":"string","doc":"contact address"},
                {"name":"address","type":{"type":"record","name":"Addr","fields":[
                    {"name":"city","type":"string"}]}}]}"#,
        )
        .expect("outline");
        let kinds =
            |needle: &str| -> Vec<(&'static str, String)> { matches(needle, "orders-value", &o) };
        assert_eq!(kinds("email"), [("field", "customer_email".to_string())]);
        assert_eq!(kinds("city"), [("field", "address.city".to_string())]);
        assert_eq!(
            kinds("address"),
            [
                ("doc", "customer_email: contact address".to_string()),
                ("field", "address".to_string())
            ]
        );
        assert_eq!(kinds("shop.order"), [("record", "shop.Order".to_string())]);
        assert_eq!(kinds("orders"), [("subject", "orders-value".to_string())]);
        assert!(kinds("nothing-like-it").is_empty());
    }
}
