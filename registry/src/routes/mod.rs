//! The HTTP surface: one module per resource, assembled with their OpenAPI description.

mod compatibility;
mod config;
mod lineage;
mod pipelines;
mod plugins;
mod schemas;
mod subjects;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::Uri;
use axum::{Json, Router, middleware};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use compatibility::CompatibilityResponse;
pub use config::{ConfigResponse, ConfigUpdate};
pub use lineage::{LinkReport, PluginUse, TopicLineage, ValidationReport};
pub use plugins::PluginConfig;
pub use schemas::SubjectVersionRef;
pub use subjects::SchemaRequest;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "weft registry",
        description = "Versioned processor plugins with their schemas, Confluent-compatible schema subjects, compatibility checks and lineage. Writes need `Authorization: Bearer <token>`."
    ),
    tags(
        (name = "subjects", description = "Confluent Schema Registry: subjects and versions"),
        (name = "schemas", description = "Confluent Schema Registry: schemas by id"),
        (name = "config", description = "Confluent Schema Registry: compatibility levels"),
        (name = "compatibility", description = "Confluent Schema Registry: compatibility tests"),
        (name = "plugins", description = "weft processor plugins"),
        (name = "lineage", description = "weft pipelines and lineage"),
        (name = "meta", description = "service")
    )
)]
struct ApiDoc;

/// Every route with its description, body limits applied per group.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let json_limit = state.settings.max_body_bytes;
    let plugin_limit = state.settings.max_plugin_bytes;
    let json_routes = OpenApiRouter::new()
        .merge(subjects::router())
        .merge(schemas::router())
        .merge(config::router())
        .merge(compatibility::router())
        .merge(plugins::router())
        .merge(lineage::router())
        .merge(pipelines::router())
        .routes(routes!(root))
        .routes(routes!(health))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(json_limit));
    let upload_routes = plugins::upload_router()
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(plugin_limit));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(json_routes)
        .merge(upload_routes)
}

/// The OpenAPI description of every route, as served at `/openapi.json`.
pub fn openapi(state: &AppState) -> utoipa::openapi::OpenApi {
    api(state).split_for_parts().1
}

/// The service: every route, token checks, JSON errors everywhere, request tracing.
pub fn app(state: AppState) -> Router {
    let (router, spec) = api(&state).split_for_parts();
    let spec = std::sync::Arc::new(spec);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_token,
        ))
        .layer(middleware::from_fn(crate::extract::json_errors))
        // The catalog answers errors as pages and checks read tokens itself (crate::ui).
        .merge(crate::ui::router(state.clone()))
        // The default span records method and path only: never headers, so never tokens.
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_string())
}

/// `{}`, as the Confluent registry answers at its root (clients probe it).
#[utoipa::path(get, path = "/", tag = "meta", responses((status = 200, body = Object)))]
async fn root() -> crate::extract::SrJson<serde_json::Value> {
    crate::extract::SrJson(serde_json::json!({}))
}

/// Liveness, and whether the store answers.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, body = Object)))]
async fn health(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.read(|store| store.global_level()).await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}
