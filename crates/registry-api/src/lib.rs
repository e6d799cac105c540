//! The registry's API types that both sides use: the registry serialises them, the host's
//! client deserialises them, so neither keeps a copy of the other's. One of them,
//! [`PluginManifest`], is also what `weft-runtime` reads from a component's `describe()`:
//! the one definition of a plugin's metadata, from the artifact to the HTTP answer.
//!
//! Only serde here, so the host links no web framework and the runtime no HTTP types; the
//! registry turns on `openapi` for the OpenAPI document's schemas. Grouped by resource as the
//! registry's routes are.
#![forbid(unsafe_code)]

mod error;
mod pipelines;
mod plugins;
mod schemas;

pub use error::ErrorBody;
pub use pipelines::{
    ClusterPipelines, DeployedPipeline, Endpoint, FieldLineage, FieldReader, Lineage, Pipeline,
    PluginRef,
};
pub use plugins::{Annotation, ParamInfo, PluginManifest, PluginSummary, PluginVersion};
pub use schemas::{IdResponse, SchemaResponse, VersionResponse};
