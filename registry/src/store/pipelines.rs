//! Registered pipelines: what each reads, runs and writes, the raw material of lineage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Store, decode, encode};
use crate::error::{ApiError, ApiResult};

/// A topic a pipeline reads or writes, and the subject holding its value schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub topic: String,
    /// Subject of the topic's value schema; defaults to `<topic>-value` (Confluent's
    /// topic name strategy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Endpoint {
    /// The subject, explicit or by the topic name strategy.
    pub fn subject(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| format!("{}-value", self.topic))
    }
}

/// One processor of a pipeline: an exact plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
}

/// A pipeline as registered for lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub sources: Vec<Endpoint>,
    /// Processors in chain order.
    #[serde(default)]
    pub processors: Vec<PluginRef>,
    pub sinks: Vec<Endpoint>,
}

impl Store {
    /// Stores or replaces a pipeline; returns whether it was new.
    pub fn put_pipeline(&self, pipeline: &Pipeline) -> ApiResult<bool> {
        let previous = self
            .pipelines
            .insert(pipeline.name.as_bytes(), encode(pipeline)?)?;
        Ok(previous.is_none())
    }

    pub fn pipeline(&self, name: &str) -> ApiResult<Pipeline> {
        match self.pipelines.get(name.as_bytes())? {
            Some(bytes) => decode(&bytes),
            None => Err(ApiError::PipelineNotFound(name.to_string())),
        }
    }

    /// Every pipeline, by name.
    pub fn all_pipelines(&self) -> ApiResult<Vec<Pipeline>> {
        self.pipelines.iter().map(|item| decode(&item?.1)).collect()
    }

    pub fn delete_pipeline(&self, name: &str) -> ApiResult<()> {
        match self.pipelines.remove(name.as_bytes())? {
            Some(_) => Ok(()),
            None => Err(ApiError::PipelineNotFound(name.to_string())),
        }
    }
}
