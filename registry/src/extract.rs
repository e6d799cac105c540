//! Request extractors and response wrappers that keep every answer JSON.
//!
//! axum's own `Json`/`Query` rejections are plain text and its `Json` insists on a JSON
//! content type; Confluent clients send `application/vnd.schemaregistry.v1+json` and tools
//! like curl often send none, so bodies are parsed whatever the content type says.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, error_response};

/// The Confluent Schema Registry's media type; every answer under its routes carries it.
pub const SCHEMA_REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// A JSON body, whatever its content type; errors are [`ApiError::BadRequest`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")).into_response())
    }
}

/// Query parameters; errors are [`ApiError::BadRequest`].
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A JSON answer in the Confluent media type.
#[derive(Debug)]
pub struct SrJson<T>(pub T);

impl<T: Serialize> IntoResponse for SrJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SCHEMA_REGISTRY_JSON),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(format!("serializing a response: {e}")).into_response(),
        }
    }
}

/// Middleware: an error answered by a layer or by axum itself (413 from the body limit, 405,
/// a plain-text rejection) is rewritten as `{error_code, message}` JSON.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => 41301,
        _ if status.is_server_error() => 50000,
        _ => u32::from(status.as_u16()),
    };
    error_response(status, code, message)
}
