//! The registry's API types that both sides use: one definition of a plugin version's
//! metadata, serialised by the registry and deserialised by the host's client.
//!
//! Only serde here, so the host links no web framework; the registry turns on `openapi` for
//! the OpenAPI document's schemas.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// A parameter a plugin accepts, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamInfo {
    pub name: String,
    pub description: String,
    pub required: bool,
    /// Default value, as the pipeline file would give it.
    pub default: Option<String>,
}

/// One version of a plugin: its manifest and how its bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginVersion {
    pub name: String,
    /// Semantic version, from the manifest.
    pub version: String,
    pub description: String,
    /// Avro schema (JSON) the plugin reads; absent for schema-agnostic plugins.
    pub input_schema: Option<String>,
    /// Avro schema (JSON) the plugin writes; absent when derived from the input at configure time.
    pub output_schema: Option<String>,
    pub params: Vec<ParamInfo>,
    /// Hex sha256 of the component bytes; the download's ETag.
    pub sha256: String,
    pub size: u64,
    /// RFC 3339 time of the upload.
    pub uploaded_at: String,
    /// Yanked versions stay downloadable by exact version but are skipped by resolution.
    pub yanked: bool,
}
