//! The body of every error answer.

use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Precise code: the HTTP status followed by a detail number (40401 = subject not found).
    pub error_code: u32,
    pub message: String,
}
