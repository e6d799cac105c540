//! The registry's pipeline routes for the host: the pipelines deployed to a cluster (polled
//! with an ETag, so an unchanged list costs a 304), deploying one, and reporting what a
//! daemon runs so the registry's lineage reflects it.
//!
//! The types are weft-registry-api's, the same the registry serialises.

pub use weft_registry_api::{
    ClusterPipelines, DeployedPipeline, Endpoint, FieldLineage, FieldReader, Lineage, Pipeline,
    PluginRef,
};

use super::client::{Client, ClientError, Result, seg};

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
        let body = self.read_capped(resp, super::client::MAX_JSON_BYTES, &path, |_| ())?;
        let list = serde_json::from_slice(&body).map_err(|e| self.transport(&path, e))?;
        Ok(Some((etag, list)))
    }

    /// Deploys a pipeline file to a cluster (creates or replaces it); returns what is stored.
    pub fn deploy_pipeline(&self, name: &str, cluster: &str, definition: &str) -> Result<Pipeline> {
        let body = serde_json::json!({"name": name, "cluster": cluster, "definition": definition});
        self.put_pipeline(name, &body)
    }

    /// Reports what runs under `lineage.name` (keeps any deployment of that name).
    pub fn report_pipeline(&self, lineage: &Lineage) -> Result<Pipeline> {
        let body = serde_json::to_value(lineage).map_err(|e| ClientError::Transport {
            url: self.base_url().to_string(),
            reason: format!("encoding the lineage of {}: {e}", lineage.name),
        })?;
        self.put_pipeline(&lineage.name, &body)
    }

    /// Who reads one field of a subject's schema, directly and downstream.
    pub fn field_lineage(&self, subject: &str, field: &str) -> Result<FieldLineage> {
        let path = format!("/v1/lineage/fields/{}/{}", seg(subject), seg(field));
        Ok(self
            .send_json(self.request(reqwest::Method::GET, &path), &path)?
            .1)
    }

    /// A registered pipeline.
    pub fn pipeline(&self, name: &str) -> Result<Pipeline> {
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

    fn put_pipeline(&self, name: &str, body: &serde_json::Value) -> Result<Pipeline> {
        let path = format!("/v1/pipelines/{}", seg(name));
        let req = self
            .request(reqwest::Method::PUT, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        Ok(self.send_json(req, &path)?.1)
    }
}
