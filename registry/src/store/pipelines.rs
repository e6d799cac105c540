//! Registered pipelines: what each reads, runs and writes (the raw material of lineage) and,
//! for pipelines deployed through the registry, their whole definition and target cluster
//! (the desired state the `weft serve` daemons of that cluster follow). The types are
//! weft-registry-api's, shared with the daemon that reports and follows them.

use sha2::{Digest, Sha256};
pub use weft_registry_api::{ClusterPipelines, DeployedPipeline, Endpoint, Pipeline, PluginRef};

use super::{Store, decode, encode};
use crate::error::{ApiError, ApiResult};

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
