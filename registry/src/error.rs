//! The one error type of the HTTP API: every failure becomes `{error_code, message}` JSON.
//!
//! Codes under the Confluent routes are the Confluent Schema Registry's (40401, 42201, ...), so
//! existing clients react to them unchanged; the weft routes (`/v1`) use the same scheme with
//! their own numbers. Internal failures are logged and answered without their details.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The body of every error response, shared with the host's client.
pub use weft_registry_api::ErrorBody;

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    // ---- Confluent Schema Registry codes ----
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    #[error("Schema not found")]
    SchemaNotFound,
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted { subject: String, version: u32 },
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted { subject: String, version: u32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("{0}")]
    IncompatibleSchema(String),
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive (and weft's pipelines)"
    )]
    InvalidCompatibilityLevel,
    #[error("The specified subject is not valid: {0}")]
    InvalidSubject(String),

    // ---- generic HTTP ----
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("writes are disabled: the registry was started without any token")]
    WritesDisabled,
    #[error("no such route: {0}")]
    NoRoute(String),

    // ---- weft plugins, pipelines and lineage ----
    #[error("plugin `{0}` not found")]
    PluginNotFound(String),
    #[error("plugin `{name}` has no version {version}")]
    PluginVersionNotFound { name: String, version: String },
    #[error("plugin `{name}` has no version matching `{req}` (yanked versions are skipped)")]
    NoMatchingVersion { name: String, req: String },
    #[error("pipeline `{0}` not found")]
    PipelineNotFound(String),
    #[error(
        "plugin {name}@{version} already exists with other content (sha256 {existing}); versions are immutable: publish a new version"
    )]
    VersionExists {
        name: String,
        version: String,
        existing: String,
    },
    #[error("{0}")]
    IncompatiblePlugin(String),
    #[error("{0}")]
    IncompatiblePipeline(String),
    #[error("invalid plugin: {0}")]
    InvalidPlugin(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid version requirement `{0}`: expected semver like `^1.2` or `=1.0.3`")]
    InvalidVersionReq(String),
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
    #[error("invalid annotation: {0}")]
    InvalidAnnotation(String),
    #[error(
        "invalid field path `{0}`: expected Avro field names joined by dots, e.g. `owner.email`"
    )]
    InvalidField(String),

    // ---- internal ----
    #[error("Error in the backend data store")]
    Store(String),
    #[error("Internal error")]
    Internal(String),
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    /// HTTP status and detailed code.
    pub fn codes(&self) -> (StatusCode, u32) {
        use ApiError::*;
        match self {
            SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            SchemaNotFound | SchemaIdNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            SubjectSoftDeleted(_) => (StatusCode::NOT_FOUND, 40404),
            SubjectNotSoftDeleted(_) => (StatusCode::NOT_FOUND, 40405),
            VersionSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40406),
            VersionNotSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40407),
            SubjectConfigNotFound(_) => (StatusCode::NOT_FOUND, 40408),
            IncompatibleSchema(_) => (StatusCode::CONFLICT, 409),
            InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            InvalidCompatibilityLevel => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            InvalidSubject(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42208),
            BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            Unauthorized => (StatusCode::UNAUTHORIZED, 40101),
            WritesDisabled => (StatusCode::FORBIDDEN, 40301),
            NoRoute(_) => (StatusCode::NOT_FOUND, 404),
            PluginNotFound(_) => (StatusCode::NOT_FOUND, 40410),
            PluginVersionNotFound { .. } => (StatusCode::NOT_FOUND, 40411),
            NoMatchingVersion { .. } => (StatusCode::NOT_FOUND, 40412),
            PipelineNotFound(_) => (StatusCode::NOT_FOUND, 40413),
            VersionExists { .. } => (StatusCode::CONFLICT, 40901),
            IncompatiblePlugin(_) => (StatusCode::CONFLICT, 40902),
            IncompatiblePipeline(_) => (StatusCode::CONFLICT, 40903),
            InvalidPlugin(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42210),
            InvalidName(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42211),
            InvalidVersionReq(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42212),
            InvalidPipeline(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42213),
            InvalidAnnotation(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42214),
            InvalidField(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42215),
            Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50000),
        }
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> Self {
        ApiError::Store(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<ApiError>> for ApiError {
    fn from(e: sled::transaction::TransactionError<ApiError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    /// Only stored records are decoded with serde_json directly; request bodies go through
    /// [`crate::extract::ApiJson`], so a failure here is corrupt storage.
    fn from(e: serde_json::Error) -> Self {
        ApiError::Store(format!("undecodable record: {e}"))
    }
}

/// Builds the JSON error response for a status alone (used for rejections from layers).
pub fn error_response(status: StatusCode, error_code: u32, message: String) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            error_code,
            message,
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"weft-registry\""),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        let message = match &self {
            ApiError::Store(detail) | ApiError::Internal(detail) => {
                tracing::error!(error_code = code, "{detail}");
                self.to_string()
            }
            _ => self.to_string(),
        };
        error_response(status, code, message)
    }
}
