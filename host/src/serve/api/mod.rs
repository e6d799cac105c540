//! The admin HTTP API of `weft serve`: pipelines (list, show, put, delete, pause, resume,
//! restart), health, readiness and metrics, described at `/openapi.json`. Reads are open;
//! every write needs an admin bearer token.

mod auth;
mod body;
mod dashboard;
mod error;
mod meta;
mod pipelines;
#[cfg(test)]
mod tests;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::{Json, Router, middleware};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use auth::AdminAuth;
pub use dashboard::DashboardResponse;
pub use error::{ApiError, ErrorBody};
pub use meta::Readiness;
pub use pipelines::{DeleteResponse, PutResponse};

use super::Daemon;

/// A pipeline file is a few KiB; 1 MiB leaves room and bounds what a request can make the
/// daemon hold.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "weft serve",
        description = "Admin API of a weft daemon: the pipelines it runs, their state and counters, health, readiness and Prometheus metrics. Writes need `Authorization: Bearer <admin token>`."
    ),
    modifiers(&AdminToken),
    tags(
        (name = "pipelines", description = "the pipelines this daemon runs (one file each in its folder)"),
        (name = "meta", description = "liveness, readiness, metrics")
    )
)]
struct ApiDoc;

/// Declares the bearer scheme the writes' `security(("admin_token" = []))` refers to.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api() -> OpenApiRouter<Daemon> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(pipelines::router())
        .merge(dashboard::router())
        .merge(meta::router())
}

/// The OpenAPI description of every route, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The admin service: every route, the token check on writes, JSON errors everywhere,
/// request tracing. `weft serve` binds it to `listen`.
pub fn app(daemon: Daemon, auth: AdminAuth) -> Router {
    let (router, spec) = api().split_for_parts();
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
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(auth, auth::require_token))
        .layer(middleware::from_fn(error::json_errors))
        // The default span records method and path only: never headers, so never tokens.
        .layer(TraceLayer::new_for_http())
        .with_state(daemon)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_string())
}
