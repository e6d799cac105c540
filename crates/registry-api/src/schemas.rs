//! The Confluent Schema Registry dialect's answers that weft's own client reads. Field names
//! are Confluent's: existing serializers read the same JSON.

use serde::{Deserialize, Serialize};

/// `{"id": N}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdResponse {
    pub id: u32,
}

/// `{"schema": "..."}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaResponse {
    pub schema: String,
}

/// One subject version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionResponse {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}
