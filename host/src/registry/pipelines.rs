//! The registry's pipeline routes for the host: the pipelines deployed to a cluster (polled
//! with an ETag, so an unchanged list costs a 304), deploying one, and reporting what a
//! daemon runs so the registry's lineage reflects it.
//!
//! The types mirror the registry's `store::pipelines` by hand, with only the fields the host
//! reads or writes (unknown fields in answers are ignored, so the registry may add some).

use serde::{Deserialize, Serialize};

use super::client::{Client, ClientError, Result, seg};

/// A topic a pipeline reads or writes, and the subject of its value schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A processor pinned to an exact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
}

/// What a daemon reports about a pipeline it runs: `PUT /v1/pipelines/{name}` without a
/// definition, which the registry takes as lineage and never as a (un)deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub sources: Vec<Endpoint>,
    pub processors: Vec<PluginRef>,
    pub sinks: Vec<Endpoint>,
}

/// A pipeline as the registry stores it (lineage, and the deployment if any).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredPipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sources: Vec<Endpoint>,
    #[serde(default)]
    pub processors: Vec<PluginRef>,
    #[serde(default)]
    pub sinks: Vec<Endpoint>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub definition: Option<String>,
    #[serde(default)]
    pub revision: u64,
}

/// One pipeline a daemon of the cluster must run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeployedPipeline {
    pub name: String,
    pub revision: u64,
    /// The pipeline file (TOML).
    pub definition: String,
}

/// `GET /v1/clusters/{cluster}/pipelines`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterPipelines {
    pub cluster: String,
    pub digest: String,
    pub pipelines: Vec<DeployedPipeline>,
}

impl Client {
    /// The pipelines deployed to `cluster`, unless they still match `etag` (then `None`).
    /// Returns the new ETag with the list.
    pub fn cluster_pipelines(
        &self,
        cluster: &str,
        etag: Option<&str>,
    ) -> Result<Option<(String, ClusterPipelines)>> {
        let path = format!("/v1/clusters/{}/pipelines", seg(cluster));
        let mut req = self.request(reqwest::Method::GET, &path);
        if let Some(etag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let resp = match self.send(req, &path) {
            Ok(resp) => resp,
            // `send` counts every status but 2xx as an error; 304 is the cheap answer.
            Err(ClientError::Api { status: 304, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.bytes().map_err(|e| self.transport(&path, e))?;
        let list = serde_json::from_slice(&body).map_err(|e| self.transport(&path, e))?;
        Ok(Some((etag, list)))
    }

    /// Deploys a pipeline file to a cluster (creates or replaces it); returns what is stored.
    pub fn deploy_pipeline(
        &self,
        name: &str,
        cluster: &str,
        definition: &str,
    ) -> Result<RegisteredPipeline> {
        let body = serde_json::json!({"name": name, "cluster": cluster, "definition": definition});
        self.put_pipeline(name, &body)
    }

    /// Reports what runs under `lineage.name` (keeps any deployment of that name).
    pub fn report_pipeline(&self, lineage: &Lineage) -> Result<RegisteredPipeline> {
        let body = serde_json::to_value(lineage).map_err(|e| ClientError::Transport {
            url: self.base_url().to_string(),
            reason: format!("encoding the lineage of {}: {e}", lineage.name),
        })?;
        self.put_pipeline(&lineage.name, &body)
    }

    /// A registered pipeline.
    pub fn pipeline(&self, name: &str) -> Result<RegisteredPipeline> {
        let path = format!("/v1/pipelines/{}", seg(name));
        Ok(self
            .send_json(self.request(reqwest::Method::GET, &path), &path)?
            .1)
    }

    /// Unregisters (and undeploys) a pipeline; `false` if there was none.
    pub fn delete_pipeline(&self, name: &str) -> Result<bool> {
        let path = format!("/v1/pipelines/{}", seg(name));
        match self.send(self.request(reqwest::Method::DELETE, &path), &path) {
            Ok(_) => Ok(true),
            Err(e) if e.error_code() == Some(40413) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put_pipeline(&self, name: &str, body: &serde_json::Value) -> Result<RegisteredPipeline> {
        let path = format!("/v1/pipelines/{}", seg(name));
        let req = self
            .request(reqwest::Method::PUT, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        Ok(self.send_json(req, &path)?.1)
    }
}
