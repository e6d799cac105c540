//! The daemon and the registry: following the pipelines deployed to a cluster (`[cluster]
//! name` in weftd.toml) and reporting every pipeline that starts or changes, so the registry's
//! lineage reflects what actually runs.
//!
//! Following: a thread polls `GET /v1/clusters/{cluster}/pipelines` with the last ETag (an
//! unchanged list costs an empty 304) and applies the list through [`Daemon::put`] and
//! [`Daemon::delete`], so a registry pipeline is a file in the folder like any other (it
//! survives a registry outage and a restart) and is validated and swapped the same way. What
//! the sync applied is recorded in `<data_dir>/cluster-sync.json`: those files are the
//! registry's. A pipeline of the folder (or the admin API) with the name of a registry
//! pipeline wins on its machine: the registry's is refused, logged and listed in
//! [`SyncStatus::refused`]; nothing is dropped silently.
//!
//! Reporting: the [`Daemon::on_change`] hook queues the pipeline; a thread sends
//! `PUT /v1/pipelines/{name}` with its Kafka topics and its registry plugins pinned to the
//! `name@version` that runs, each with the source fields it reads, and the source fields
//! that reach the sink ([`FieldFlow`], from the running chain): the registry's field lineage
//! and its PIPELINES guard work from them. The report has no definition, so the registry
//! keeps whatever is deployed under that name. Transport failures are retried; refusals are
//! logged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Daemon, PutError, PutOutcome};
use crate::config::{self, PipelineConfig};
use crate::registry::client::{Client, ClientError};
use crate::registry::pipelines::ClusterPipelines;

mod report;
pub use report::{FieldFlow, lineage};

/// How often the cluster's list is polled (a 304 when nothing changed).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a lineage report that could not reach the registry waits before the next try.
const REPORT_RETRY: Duration = Duration::from_secs(5);
const MANIFEST: &str = "cluster-sync.json";

/// What the sync did last, for the admin API and logs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// The cluster followed, if any.
    pub cluster: Option<String>,
    pub registry: String,
    /// ETag of the last list applied in full.
    pub etag: Option<String>,
    /// When the registry last answered a poll (RFC 3339).
    pub last_poll: Option<String>,
    /// The last poll's failure, cleared by a successful poll.
    pub last_error: Option<String>,
    /// Registry pipelines applied here: name → revision.
    pub applied: BTreeMap<String, u64>,
    /// Registry pipelines not applied here, and why (a folder pipeline of the same name,
    /// a definition that does not validate on this machine).
    pub refused: BTreeMap<String, String>,
    /// Pipelines whose lineage report the registry refused, and why.
    pub lineage_refused: BTreeMap<String, String>,
}

/// The running sync; dropping it asks its threads to stop.
#[derive(Debug)]
pub struct RegistrySync {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<SyncStatus>>,
    threads: Vec<JoinHandle<()>>,
}

impl RegistrySync {
    /// Starts reporting lineage to the daemon's `[registry]` and, with `[cluster]`, following
    /// that cluster. `None` without a `[registry]`; a `[cluster]` without one is an error.
    pub fn start(daemon: &Daemon) -> anyhow::Result<Option<RegistrySync>> {
        let config = daemon.config();
        let cluster = config.cluster.as_ref().map(|c| c.name.clone());
        let Some(registry) = &config.registry else {
            if let Some(cluster) = cluster {
                anyhow::bail!(
                    "[cluster] name = {cluster:?} needs a [registry] url to follow the cluster from"
                );
            }
            return Ok(None);
        };
        let client = Client::new(&registry.url, registry.token.clone())
            .with_context(|| format!("registry client for {}", registry.url))?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(SyncStatus {
            cluster: cluster.clone(),
            registry: registry.url.clone(),
            ..SyncStatus::default()
        }));
        let (tx, rx) = channel::<Job>();
        let hook_tx = tx.clone();
        daemon.on_change(Box::new(move |name, config| {
            // A closed channel means the sync stopped: nothing left to report to.
            let _ = hook_tx.send(Job {
                name: name.to_string(),
                config: Some(config.clone()),
            });
        }));
        // Pipelines that started before the hook was in place are reported too (those whose
        // chain is not built yet by their hook, once it is).
        for p in daemon.list() {
            let _ = tx.send(Job {
                name: p.name,
                config: None,
            });
        }
        let mut threads = Vec::new();
        let reporter = Reporter {
            daemon: daemon.clone(),
            client: client.clone(),
            status: status.clone(),
            stop: stop.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("weft-lineage".into())
                .spawn(move || reporter.run(rx))
                .context("starting the lineage reporter")?,
        );
        if let Some(cluster) = cluster {
            let follower = Follower {
                manifest_path: config.data_dir.join(MANIFEST),
                pipelines_dir: config.pipelines.clone(),
                daemon: daemon.clone(),
                client,
                cluster,
                status: status.clone(),
                stop: stop.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name("weft-cluster".into())
                    .spawn(move || follower.run())
                    .context("starting the cluster follower")?,
            );
        }
        Ok(Some(RegistrySync {
            stop,
            status,
            threads,
        }))
    }

    pub fn status(&self) -> SyncStatus {
        lock(&self.status).clone()
    }

    /// Stops polling and reporting, waiting for a poll or report in flight (bounded by the
    /// client's timeout).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RegistrySync {
    /// Asks the threads to stop without waiting: a registry that hangs must not hold a
    /// SIGTERM past its grace period. A change applied after this meets a daemon that is
    /// shutting down and is refused.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Sleeps up to `d`, waking early when asked to stop; `false` once stopped.
fn pause(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

/// A pipeline to report; without a config it is loaded from the pipeline's file.
struct Job {
    name: String,
    config: Option<PipelineConfig>,
}

struct Reporter {
    daemon: Daemon,
    client: Client,
    status: Arc<Mutex<SyncStatus>>,
    stop: Arc<AtomicBool>,
}

impl Reporter {
    fn run(self, rx: Receiver<Job>) {
        // Latest job per pipeline: a burst of changes becomes one report.
        let mut pending: BTreeMap<String, Option<PipelineConfig>> = BTreeMap::new();
        let mut retry_at: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => {
                    pending.insert(job.name, job.config);
                    continue; // drain the burst first
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if pending.is_empty() || retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            retry_at = None;
            for (name, config) in std::mem::take(&mut pending) {
                if self.report(&name, config.as_ref()) == Reported::Retry {
                    pending.insert(name, config);
                    retry_at = Some(Instant::now() + REPORT_RETRY);
                }
            }
        }
    }

    fn report(&self, name: &str, config: Option<&PipelineConfig>) -> Reported {
        let Some(detail) = self.daemon.get(name) else {
            return Reported::Done; // deleted meanwhile
        };
        let loaded;
        let config = match config {
            Some(c) => c,
            None => match config::load_file(Path::new(&detail.file)) {
                Ok(c) => {
                    loaded = c;
                    &loaded
                }
                // A pipeline whose file does not load runs nothing to report.
                Err(_) => return Reported::Done,
            },
        };
        // No chain yet (a pipeline of the folder still building when the sync started, or
        // one that failed to build): nothing runs to report, and a report without its stages
        // is wrong or refused. The change hook reports it once its chain runs.
        if detail.stages.len() != config.processors.len() {
            return Reported::Done;
        }
        let stage_ids: Vec<String> = detail.stages.iter().map(|s| s.processor.clone()).collect();
        let flow = self.daemon.field_flow(name).unwrap_or_default();
        let lineage = lineage(name, config, &stage_ids, &flow);
        match self.client.report_pipeline(&lineage) {
            Ok(_) => {
                tracing::info!(pipeline = %name, "lineage reported to the registry");
                lock(&self.status).lineage_refused.remove(name);
                Reported::Done
            }
            Err(e @ ClientError::Transport { .. }) => {
                tracing::warn!(pipeline = %name, "lineage report failed, retrying: {e}");
                Reported::Retry
            }
            Err(e) => {
                tracing::warn!(pipeline = %name, "the registry refused the lineage report: {e}");
                lock(&self.status)
                    .lineage_refused
                    .insert(name.to_string(), e.to_string());
                Reported::Done
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Reported {
    Done,
    Retry,
}

/// What the sync applied, kept across restarts: those files are the registry's.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    cluster: String,
    /// name → (revision, sha256 of the definition)
    pipelines: BTreeMap<String, Applied>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    revision: u64,
    sha256: String,
}

struct Follower {
    manifest_path: PathBuf,
    pipelines_dir: PathBuf,
    daemon: Daemon,
    client: Client,
    cluster: String,
    status: Arc<Mutex<SyncStatus>>,
    stop: Arc<AtomicBool>,
}

impl Follower {
    fn run(self) {
        let mut manifest = self.load_manifest();
        let mut etag: Option<String> = None;
        let mut last_error: Option<String> = None;
        loop {
            match self
                .client
                .cluster_pipelines(&self.cluster, etag.as_deref())
            {
                Ok(answer) => {
                    last_error = None;
                    let mut status = lock(&self.status);
                    status.last_poll = Some(now());
                    status.last_error = None;
                    drop(status);
                    if let Some((new_etag, list)) = answer
                        && self.apply(&list, &mut manifest)
                    {
                        lock(&self.status).etag = Some(new_etag.clone());
                        etag = Some(new_etag);
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    // Logged when it starts or changes, not once a second.
                    if last_error.as_deref() != Some(&text) {
                        tracing::warn!(cluster = %self.cluster, "polling the registry failed (pipelines keep running as they are): {text}");
                    }
                    lock(&self.status).last_error = Some(text.clone());
                    last_error = Some(text);
                }
            }
            if !pause(&self.stop, POLL_INTERVAL) {
                return;
            }
        }
    }

    /// Applies a list; `false` if something should be tried again at the next poll.
    fn apply(&self, list: &ClusterPipelines, manifest: &mut Manifest) -> bool {
        let mut complete = true;
        let mut refused = BTreeMap::new();
        let listed: BTreeSet<&str> = list.pipelines.iter().map(|p| p.name.as_str()).collect();
        for p in &list.pipelines {
            let sha256 = hex::encode(Sha256::digest(p.definition.as_bytes()));
            let applied = Applied {
                revision: p.revision,
                sha256,
            };
            if manifest.pipelines.get(&p.name) == Some(&applied) {
                continue;
            }
            let ours = manifest.pipelines.contains_key(&p.name);
            if !ours && (self.daemon.get(&p.name).is_some() || self.file(&p.name).exists()) {
                let why = format!(
                    "a pipeline named {} runs here from {} (the folder or the admin API); the local one wins: rename one of them",
                    p.name,
                    self.file(&p.name).display()
                );
                tracing::warn!(cluster = %self.cluster, pipeline = %p.name, "registry pipeline refused: {why}");
                refused.insert(p.name.clone(), why);
                continue;
            }
            match self.daemon.put(&p.name, &p.definition) {
                Ok(outcome) => {
                    tracing::info!(cluster = %self.cluster, pipeline = %p.name, revision = p.revision, "registry pipeline {}", match outcome {
                        PutOutcome::Created => "started",
                        PutOutcome::Replaced => "replaced",
                        PutOutcome::Unchanged => "unchanged",
                    });
                    manifest.pipelines.insert(p.name.clone(), applied);
                }
                Err(PutError::Invalid(problems)) => {
                    let why = format!("does not validate here: {}", problems.join("; "));
                    tracing::warn!(cluster = %self.cluster, pipeline = %p.name, revision = p.revision, "registry pipeline refused: {why}");
                    refused.insert(p.name.clone(), why);
                    // Claimed, so a later folder file of that name is not mistaken for
                    // a local one; retried when its revision changes.
                    manifest.pipelines.insert(p.name.clone(), applied);
                }
                Err(e @ PutError::BadName(_)) => {
                    tracing::warn!(cluster = %self.cluster, pipeline = %p.name, "registry pipeline refused: {e}");
                    refused.insert(p.name.clone(), e.to_string());
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, pipeline = %p.name, "applying the registry pipeline failed, retrying: {e}");
                    complete = false;
                }
            }
        }
        let gone: Vec<String> = manifest
            .pipelines
            .keys()
            .filter(|name| !listed.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            match self.daemon.delete(&name) {
                Ok(_) => {
                    tracing::info!(cluster = %self.cluster, pipeline = %name, "registry pipeline removed from the cluster: stopped");
                    manifest.pipelines.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, pipeline = %name, "stopping the removed registry pipeline failed, retrying: {e}");
                    complete = false;
                }
            }
        }
        if let Err(e) = self.save_manifest(manifest) {
            tracing::warn!("{e:#}");
            complete = false;
        }
        let mut status = lock(&self.status);
        status.applied = manifest
            .pipelines
            .iter()
            .filter(|(name, _)| !refused.contains_key(*name))
            .map(|(name, a)| (name.clone(), a.revision))
            .collect();
        status.refused = refused;
        complete
    }

    fn file(&self, name: &str) -> PathBuf {
        self.pipelines_dir.join(format!("{name}.toml"))
    }

    fn load_manifest(&self) -> Manifest {
        let read = std::fs::read(&self.manifest_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok());
        match read {
            // Another cluster's record still says which files the sync wrote: they are
            // removed unless the new cluster deploys them too.
            Some(m) => Manifest {
                cluster: self.cluster.clone(),
                pipelines: m.pipelines,
            },
            None => Manifest {
                cluster: self.cluster.clone(),
                pipelines: BTreeMap::new(),
            },
        }
    }

    fn save_manifest(&self, manifest: &Manifest) -> anyhow::Result<()> {
        let path = &self.manifest_path;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(manifest).context("encoding the sync manifest")?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}
