//! Registered pipelines: what each reads, runs and writes (the raw material of lineage) and,
//! for pipelines deployed through the registry, their whole definition and target cluster
//! (the desired state the `weft serve` daemons of that cluster follow).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// A pipeline as registered: its lineage (topics and exact plugin versions) and, when it is
/// deployed through the registry, its definition and the cluster that runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a daemon of a cluster must run: one deployed pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeployedPipeline {
    pub name: String,
    pub revision: u64,
    /// The pipeline file (TOML), as deployed.
    pub definition: String,
}

/// Every pipeline deployed to one cluster, with a digest of the whole list (the ETag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterPipelines {
    pub cluster: String,
    /// Hex digest of the list: equal digests, equal lists. Also the response's ETag.
    pub digest: String,
    /// By name.
    pub pipelines: Vec<DeployedPipeline>,
}

impl Store {
    /// Stores a pipeline. With a definition it sets the desired state (definition and
    /// cluster, a new revision if either changed); without one it updates the lineage and
    /// keeps what was deployed. Returns whether the pipeline was new and what is stored now.
    pub fn put_pipeline(&self, pipeline: &Pipeline) -> ApiResult<(bool, Pipeline)> {
        // Read-merge-write: two writers of one pipeline must not lose each other's half.
        let _guard = self.lock();
        let previous = match self.pipelines.get(pipeline.name.as_bytes())? {
            Some(bytes) => Some(decode::<Pipeline>(&bytes)?),
            None => None,
        };
        let mut next = pipeline.clone();
        match (&pipeline.definition, &previous) {
            (None, Some(prev)) => {
                next.definition = prev.definition.clone();
                next.cluster = prev.cluster.clone();
                next.revision = prev.revision;
            }
            (None, None) => {
                next.cluster = None;
                next.revision = 0;
            }
            (Some(_), Some(prev))
                if prev.definition == next.definition && prev.cluster == next.cluster =>
            {
                next.revision = prev.revision;
            }
            (Some(_), _) => {
                // Monotonic across restarts (sled persists the generator ahead of use).
                next.revision = self.db.generate_id()? + 1;
            }
        }
        self.pipelines
            .insert(next.name.as_bytes(), encode(&next)?)?;
        Ok((previous.is_none(), next))
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

    /// What the daemons of `cluster` must run. The digest covers names, revisions and
    /// definitions, so it is computed from exactly the list answered: a reader never pairs
    /// a new digest with an old list (which a separately stored counter could allow).
    pub fn cluster_pipelines(&self, cluster: &str) -> ApiResult<ClusterPipelines> {
        let mut pipelines = Vec::new();
        let mut hash = Sha256::new();
        for p in self.all_pipelines()? {
            let (Some(c), Some(definition)) = (&p.cluster, p.definition) else {
                continue;
            };
            if c != cluster {
                continue;
            }
            // Length-prefixed fields: no two lists hash the same by shifting text between fields.
            for field in [p.name.as_bytes(), definition.as_bytes()] {
                hash.update((field.len() as u64).to_be_bytes());
                hash.update(field);
            }
            hash.update(p.revision.to_be_bytes());
            pipelines.push(DeployedPipeline {
                name: p.name,
                revision: p.revision,
                definition,
            });
        }
        Ok(ClusterPipelines {
            cluster: cluster.to_string(),
            digest: hex::encode(&hash.finalize()[..16]),
            pipelines,
        })
    }

    pub fn delete_pipeline(&self, name: &str) -> ApiResult<()> {
        let _guard = self.lock();
        match self.pipelines.remove(name.as_bytes())? {
            Some(_) => Ok(()),
            None => Err(ApiError::PipelineNotFound(name.to_string())),
        }
    }
}
