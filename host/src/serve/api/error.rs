//! The admin API's one error type: every failure becomes `{error_code, message}` JSON, with
//! the whole list of problems under `errors` when a pipeline does not validate.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `invalid_pipeline`, `pipeline_not_found`, `unauthorized`, ...
    pub error_code: String,
    /// For people; the CLI prints it as it is.
    pub message: String,
    /// Every problem found, for `invalid_pipeline` (all at once, as `weft validate` lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("pipeline `{0}` not found")]
    PipelineNotFound(String),
    #[error("pipeline `{name}` does not validate: {n} error{s}", n = errors.len(), s = if errors.len() == 1 { "" } else { "s" })]
    InvalidPipeline { name: String, errors: Vec<String> },
    #[error(
        "invalid pipeline name `{0}`: 1 to 100 of A-Z a-z 0-9 . _ -, not starting with a dot (it names the file <name>.toml)"
    )]
    InvalidName(String),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("missing bearer token: writes need `Authorization: Bearer <admin token>`")]
    Unauthorized,
    #[error("the bearer token is not one of this daemon's admin tokens")]
    Forbidden,
    #[error("writes are disabled: the daemon was started without an admin token")]
    WritesDisabled,
    #[error("no such route: {0}")]
    NoRoute(String),
    /// Details are logged, never sent.
    #[error("internal error")]
    Internal(String),
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    /// HTTP status and `error_code`.
    pub fn codes(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            PipelineNotFound(_) => (StatusCode::NOT_FOUND, "pipeline_not_found"),
            InvalidPipeline { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pipeline"),
            InvalidName(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            WritesDisabled => (StatusCode::FORBIDDEN, "writes_disabled"),
            NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The JSON error response for a status, code and message.
pub fn error_response(status: StatusCode, body: ErrorBody) -> Response {
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"weft-serve\""),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        // The detail of an internal error goes to the log (by `log_internal`), not the client.
        let detail = match &self {
            ApiError::Internal(detail) => Some(detail.clone()),
            _ => None,
        };
        let message = self.to_string();
        let errors = match self {
            ApiError::InvalidPipeline { errors, .. } => errors,
            _ => Vec::new(),
        };
        let mut response = error_response(
            status,
            ErrorBody {
                error_code: code.to_string(),
                message,
                errors,
            },
        );
        if let Some(detail) = detail {
            response.extensions_mut().insert(InternalDetail(detail));
        }
        response
    }
}

/// What an internal error was, carried to the logging layer so `into_response` logs nothing.
#[derive(Debug, Clone)]
struct InternalDetail(String);

/// Middleware: logs internal errors, and turns the plain-text rejections of axum and its
/// layers (413 body too large, 405, 415) into the same JSON bodies as every other error.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    if let Some(InternalDetail(detail)) = response.extensions().get::<InternalDetail>() {
        tracing::error!(%method, %path, "{detail}");
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this route")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        _ if status.is_server_error() => ("internal", "internal error"),
        _ => (
            "bad_request",
            status.canonical_reason().unwrap_or("request failed"),
        ),
    };
    error_response(
        status,
        ErrorBody {
            error_code: code.into(),
            message: message.into(),
            errors: Vec::new(),
        },
    )
}
