//! Pipelines as the registry records them: what each reads, runs and writes (the raw
//! material of lineage, down to the fields each stage reads) and, for pipelines deployed
//! through the registry, their definition and target cluster.
//!
//! No `deny_unknown_fields` here: these types travel both ways between versions of the
//! registry and of the daemon, so a reader ignores what a newer writer added (the registry
//! refuses unknown keys in its requests on its own, before it reads them as these types).

use serde::{Deserialize, Serialize};

/// A topic a pipeline reads or writes, and the subject holding its value schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One processor of a pipeline: an exact plugin version, and the fields it reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginRef {
    pub name: String,
    pub version: String,
    /// Fields of the pipeline's SOURCE schema this stage reads (top-level names, nested
    /// ones dotted: `owner.email`). Absent: every field, or unknown (a 0.1.0 component,
    /// an older daemon), which the compatibility guard treats as every field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<Vec<String>>,
}

impl PluginRef {
    /// `name@version`, as stages are named in messages.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A pipeline as registered: its lineage (topics, exact plugin versions, fields read) and,
/// when it is deployed through the registry, its definition and the cluster that runs it.
///
/// A daemon's lineage report is this type without `definition`, `cluster` or `revision`
/// (see [`Lineage`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Kafka topics read (file and generated sources are not topics and are not listed).
    #[serde(default)]
    pub sources: Vec<Endpoint>,
    /// Processors in chain order.
    #[serde(default)]
    pub processors: Vec<PluginRef>,
    /// Kafka topics written.
    #[serde(default)]
    pub sinks: Vec<Endpoint>,
    /// Source fields that reach the sinks under the same name (top-level names). Absent:
    /// unknown, which lineage and the compatibility guard treat as every field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<Vec<String>>,
    /// The cluster whose daemons run this pipeline (`[cluster] name` in their weftd.toml).
    /// Only with a `definition`; absent: registered for lineage, deployed nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The pipeline file (TOML) exactly as `weft run` reads it, stored verbatim. A PUT without
    /// one is a lineage report (what a daemon runs): it keeps the stored definition and cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// Set by the registry, ignored in a request: changes whenever the definition or the
    /// cluster change (never for a lineage report), so a daemon knows what to re-apply.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
}

/// What a daemon reports about a pipeline it runs: a [`Pipeline`] without a definition,
/// which the registry takes as lineage and never as a (un)deployment.
pub type Lineage = Pipeline;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a daemon of a cluster must run: one deployed pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployedPipeline {
    pub name: String,
    pub revision: u64,
    /// The pipeline file (TOML), as deployed.
    pub definition: String,
}

/// Every pipeline deployed to one cluster, with a digest of the whole list (the ETag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterPipelines {
    pub cluster: String,
    /// Hex digest of the list: equal digests, equal lists. Also the response's ETag.
    pub digest: String,
    /// By name.
    pub pipelines: Vec<DeployedPipeline>,
}

/// `GET /v1/lineage/fields/{subject}/{field}`: who reads one field of a subject's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldLineage {
    pub subject: String,
    /// Dotted path of the field (`owner.email`).
    pub field: String,
    /// Direct readers first, then downstream ones, by pipeline and position.
    pub readers: Vec<FieldReader>,
    /// The walk down the lineage graph stopped at its bound before it was complete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One stage that reads a field, directly or downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldReader {
    pub pipeline: String,
    /// `name@version` of the stage.
    pub stage: String,
    /// 1-based position of the stage in its pipeline's chain.
    pub position: usize,
    /// The topic the pipeline reads the field from.
    pub topic: String,
    /// Topics the field travelled through to get there (empty for a direct reader): each
    /// written by a pipeline that passes the field on under its name.
    #[serde(default)]
    pub via: Vec<String>,
    /// The stage reports no field list (every field, or unknown): it may read this one.
    #[serde(default)]
    pub all_fields: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record sled holds from before field lineage: no `reads`, no `passes`.
    const OLD: &str = r#"{"name":"p","description":"","sources":[{"topic":"orders"}],"processors":[{"name":"mask","version":"1.0.0"}],"sinks":[{"topic":"clean","subject":"clean-v"}],"cluster":"c","definition":"x","revision":3}"#;

    #[test]
    fn an_old_record_reads_as_every_field_unknown_and_writes_back_the_same() {
        let p: Pipeline = serde_json::from_str(OLD).expect("old record");
        assert_eq!(p.processors[0].reads, None);
        assert_eq!(p.passes, None);
        assert_eq!(p.sources[0].subject(), "orders-value");
        assert_eq!(serde_json::to_string(&p).expect("serialises"), OLD);
    }

    #[test]
    fn reads_and_passes_travel_and_unknown_fields_are_ignored() {
        let text = r#"{"name":"p","processors":[{"name":"filter","version":"1.0.0","reads":["year","owner.email"],"later":1}],"passes":["year"],"from_the_future":true}"#;
        let p: Pipeline = serde_json::from_str(text).expect("reads");
        assert_eq!(
            p.processors[0].reads.as_deref(),
            Some(&["year".to_string(), "owner.email".to_string()][..])
        );
        assert_eq!(p.passes.as_deref(), Some(&["year".to_string()][..]));
        assert_eq!(p.processors[0].id(), "filter@1.0.0");
        let again: Pipeline =
            serde_json::from_str(&serde_json::to_string(&p).expect("serialises")).expect("reads");
        assert_eq!(again, p);
    }
}
