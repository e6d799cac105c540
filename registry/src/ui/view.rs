//! What the catalog reads of a stored pipeline or plugin version, through their JSON.
//!
//! The stored types grow optional fields (field lineage: a stage's `reads`, a pipeline's
//! `passes`; a version's `annotations`). Reading them through their serialized form lets the
//! pages show them when present and build unchanged while they are absent: serde's defaults
//! are the one place that knows an older record lacks them.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::store::Pipeline;
use weft_registry_api::PluginVersion;

/// A topic a pipeline reads or writes.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointView {
    pub topic: String,
    #[serde(default)]
    pub subject: Option<String>,
}

impl EndpointView {
    /// The subject of the topic's values: explicit, else `<topic>-value`.
    pub fn subject(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| format!("{}-value", self.topic))
    }
}

/// One stage: a plugin version, and the source fields it reads when it reported them.
#[derive(Debug, Clone, Deserialize)]
pub struct StageView {
    pub name: String,
    pub version: String,
    /// `None`: every field, or not reported.
    #[serde(default)]
    pub reads: Option<Vec<String>>,
}

impl StageView {
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A registered pipeline.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineView {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sources: Vec<EndpointView>,
    #[serde(default)]
    pub processors: Vec<StageView>,
    #[serde(default)]
    pub sinks: Vec<EndpointView>,
    /// Source fields that reach the sink under the same name; `None`: unknown.
    #[serde(default)]
    pub passes: Option<Vec<String>>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub definition: Option<String>,
    #[serde(default)]
    pub revision: u64,
}

impl PipelineView {
    pub fn of(pipeline: &Pipeline) -> ApiResult<Self> {
        through_json(pipeline)
    }

    /// Whether the pipeline reads (`sources`) or writes (`sinks`) this subject.
    pub fn reads_subject(&self, subject: &str) -> bool {
        self.sources.iter().any(|e| e.subject() == subject)
    }

    pub fn writes_subject(&self, subject: &str) -> bool {
        self.sinks.iter().any(|e| e.subject() == subject)
    }
}

/// Every pipeline, as views.
pub fn pipelines(pipelines: &[Pipeline]) -> ApiResult<Vec<PipelineView>> {
    pipelines.iter().map(PipelineView::of).collect()
}

/// The annotations of a plugin version (e.g. `rolled-back` by a daemon), each as the
/// `(key, value)` pairs it holds, in order.
pub fn annotations(version: &PluginVersion) -> Vec<Vec<(String, String)>> {
    let Ok(Value::Object(map)) = serde_json::to_value(version) else {
        return Vec::new();
    };
    let Some(Value::Array(items)) = map.get("annotations") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .collect()
}

fn through_json<T: serde::Serialize, V: serde::de::DeserializeOwned>(value: &T) -> ApiResult<V> {
    let json = serde_json::to_value(value)
        .map_err(|e| ApiError::Internal(format!("viewing a stored record: {e}")))?;
    serde_json::from_value(json)
        .map_err(|e| ApiError::Internal(format!("viewing a stored record: {e}")))
}
