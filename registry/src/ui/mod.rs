//! The catalog: server-rendered pages at `/ui` over the store, for finding plugins, schemas,
//! pipelines and lineage, and for registering a pipeline.
//!
//! Pages are HTML rendered here from the store (maud templates: every value escaped); the
//! only script, `assets/catalog.js`, holds the write token and drives the creation form
//! through the JSON API. CSS, JS and icon are compiled in (`include_str!`): no CDN, works
//! offline. The router is merged outside the API's JSON error and token layers: its errors
//! are pages, and its reads follow `auth_reads` through [`access`].

mod access;
mod fields;
mod graph;
mod layout;
mod pipelines;
mod plugins;
mod subjects;
mod tables;
#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use maud::html;

use crate::state::AppState;
use layout::{Section, UiResult, page};

/// Every catalog route.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/plugins", get(plugins::list))
        .route("/ui/plugins/{name}", get(plugins::plugin))
        .route("/ui/plugins/{name}/{version}", get(plugins::version))
        .route(
            "/ui/plugins/{name}/{version}/download",
            get(plugins::download),
        )
        .route("/ui/subjects", get(subjects::list))
        .route("/ui/subjects/{subject}", get(subjects::subject))
        .route("/ui/subjects/{subject}/diff", get(subjects::diff_page))
        .route("/ui/pipelines", get(pipelines::list))
        .route("/ui/pipelines/{name}", get(pipelines::pipeline))
        .route("/ui/lineage", get(pipelines::lineage))
        .route("/ui/create", get(pipelines::create))
        .layer(middleware::from_fn_with_state(state, access::require_read));
    // The token page and the assets are open: they are what a reader needs to present a token.
    Router::new()
        .merge(pages)
        .route("/ui/token", get(access::token_page))
        .route("/ui/assets/{file}", get(layout::asset))
        .route(
            "/ui/{*rest}",
            get(|| async { layout::not_found("no such catalog page") }),
        )
        .layer(middleware::from_fn(layout::security_headers))
}

/// What the registry holds, and where to look.
async fn home(State(state): State<AppState>) -> UiResult {
    let (plugins, subjects, pipelines) = state
        .store
        .read(|store| {
            Ok((
                store.plugin_names()?.len(),
                store.subjects(false, "")?.len(),
                store.all_pipelines()?.len(),
            ))
        })
        .await?;
    let body = html! {
        h1 { "Catalog" }
        p { "Plugins, the schemas of every topic, the pipelines between them and who reads which field." }
        div.cards {
            a.card href="/ui/plugins" { span.count #plugin-count { (plugins) } " plugins" }
            a.card href="/ui/subjects" { span.count #subject-count { (subjects) } " subjects" }
            a.card href="/ui/pipelines" { span.count #pipeline-count { (pipelines) } " pipelines" }
            a.card href="/ui/lineage" { "Lineage graph" }
        }
        form.inline action="/ui/subjects" method="get" {
            input type="search" name="q" placeholder="Find data: a field, record, topic or doc" aria-label="search schemas";
            button type="submit" { "Search schemas" }
        }
        form.inline action="/ui/plugins" method="get" {
            input type="search" name="q" placeholder="Find a plugin" aria-label="search plugins";
            button type="submit" { "Search plugins" }
        }
    };
    Ok(page("Catalog", Section::Home, body))
}
