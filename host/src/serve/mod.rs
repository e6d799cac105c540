//! `weft serve`: the host's long-running mode. A [`Daemon`] runs every pipeline of a folder
//! (one thread each), reports their state and counters, and replaces a pipeline's chain at a
//! batch boundary when its file changes. The admin API (`serve::api`), the registry sync and
//! the CLI are thin layers over the [`Daemon`] handle.
//!
//! Modules, each using only those before it (and the plain types of this hub and of
//! `registry_sync::report`): `config` (weftd.toml), `metrics` (the Prometheus families),
//! `history` (each pipeline's upgrade history on disk), `decide` (the
//! pure upgrade policy), `diff` (what a new version changes), `watch` (folder events to a
//! callback) ← `shared` (what a worker shares: status, control, a prepared upgrade, blocking
//! one) ← `build` (building with the registry resolver), `folder` (pipeline files) ← `apply`
//! (swapping in an upgrade, its canary, over the worker's `Pipe` trait) ← `worker` (one
//! pipeline's thread: build, step, swap, back off), `upgrade` (the check that finds and builds
//! upgrades, over the supervisor's `Workers` trait) ← `supervisor` (the set of workers,
//! put/delete) ← this hub's [`Daemon`] ← `api`, `registry_sync`.

pub mod api;
mod apply;
mod build;
pub mod config;
mod decide;
mod diff;
mod folder;
pub mod history;
pub mod metrics;
pub mod registry_sync;
mod shared;
mod supervisor;
mod upgrade;
mod watch;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::Runtime;

use crate::config::PipelineConfig;
pub use crate::io::PartitionLag;
pub use config::{DaemonConfig, RestartConfig, UpgradesConfig};
pub use folder::valid_name;
pub use history::{History, HistoryEntry, HistoryKind};

/// A running daemon. Cheap to clone: every clone drives the same pipelines.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<supervisor::Supervisor>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

/// Called after a pipeline (re)starts or is replaced, with its name and config.
pub type ChangeHook = Box<dyn Fn(&str, &PipelineConfig) + Send + Sync>;

impl Daemon {
    /// Loads every `*.toml` of the pipelines folder, starts each pipeline on a thread of its
    /// own and watches the folder. A file that does not load is a FAILED pipeline, not an
    /// error: only a daemon config that cannot work (no folder) fails the start.
    pub fn start(config: DaemonConfig, runtime: Runtime) -> anyhow::Result<Daemon> {
        let inner = supervisor::Supervisor::start(config, runtime)?;
        Ok(Daemon { inner })
    }

    /// Every pipeline's status, by name.
    pub fn list(&self) -> Vec<PipelineStatus> {
        self.inner.list()
    }

    /// The source fields each stage of a pipeline's running chain reads, and those that
    /// reach its sink; `None` for an unknown pipeline.
    pub fn field_flow(&self, name: &str) -> Option<registry_sync::FieldFlow> {
        self.inner.field_flow(name)
    }

    pub fn get(&self, name: &str) -> Option<PipelineDetail> {
        self.inner.get(name)
    }

    /// The upgrade history (upgrades, blocked upgrades, rollbacks, reloads) of a pipeline
    /// that runs or ran here; `None` for one never seen.
    pub fn history(&self, name: &str) -> Option<History> {
        self.inner.history(name)
    }

    /// Validates exactly as `weft validate` does (every error at once) without touching the
    /// running version; on success writes `<pipelines>/<name>.toml` (temp file + rename) and
    /// swaps or starts it. The folder watcher then sees a file equal to what runs and leaves
    /// it alone.
    pub fn put(&self, name: &str, toml_text: &str) -> Result<PutOutcome, PutError> {
        self.inner.put(name, toml_text)
    }

    /// Stops the pipeline (finishing its batch) and removes its file. `false`: no such pipeline.
    pub fn delete(&self, name: &str) -> Result<bool, ControlError> {
        self.inner.delete(name)
    }

    /// Finishes the current batch, commits and closes the pipeline (a Kafka source leaves
    /// its group); [`Daemon::resume`] builds it again. Pause, resume and restart return once
    /// the pipeline has applied them at its batch boundary (at most a minute): the status
    /// they return shows the new state.
    pub fn pause(&self, name: &str) -> Result<PipelineStatus, ControlError> {
        self.inner.control(name, shared::Control::Pause)
    }

    pub fn resume(&self, name: &str) -> Result<PipelineStatus, ControlError> {
        self.inner.control(name, shared::Control::Resume)
    }

    /// Closes and builds the pipeline again (resolving registry references again).
    pub fn restart(&self, name: &str) -> Result<PipelineStatus, ControlError> {
        self.inner.control(name, shared::Control::Restart)
    }

    /// The Prometheus text exposition of every pipeline's metrics.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// `Err`: the names of the pipelines that are not RUNNING. A pipeline PAUSED on request
    /// and one STOPPED because its finite source is exhausted count as ready: both are where
    /// their operator wants them.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        self.inner.ready()
    }

    /// Asks every pipeline to finish its current batch, commit and close, and waits up to
    /// `deadline` for them. Pipelines still busy after it are left to the process exit.
    pub fn shutdown(&self, deadline: Duration) {
        self.inner.shutdown(deadline)
    }

    /// Registers a hook called after a pipeline (re)starts or is replaced.
    pub fn on_change(&self, f: ChangeHook) {
        self.inner.on_change(f)
    }

    /// The runtime the pipelines run on (to interrupt plugin calls on a second signal).
    pub fn runtime(&self) -> &Runtime {
        self.inner.runtime()
    }

    /// The daemon config it was started with (paths resolved).
    pub fn config(&self) -> &DaemonConfig {
        self.inner.config()
    }
}

/// A pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Building (loading plugins, checking links, connecting).
    Starting,
    Running,
    /// Paused on request: closed until resumed.
    Paused,
    /// The last build or step failed; retried with exponential backoff.
    Failed,
    /// Deleted, shut down, or its finite source is exhausted.
    Stopped,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Starting,
        State::Running,
        State::Paused,
        State::Failed,
        State::Stopped,
    ];

    /// The name the API and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Stopped => "STOPPED",
        }
    }
}

/// One line of `GET /v1/pipelines`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PipelineStatus {
    pub name: String,
    pub state: State,
    /// Seconds in the current state.
    pub uptime_s: f64,
    /// `name@version@sha256` of every stage, in order.
    pub stages: Vec<String>,
    /// The same pins (`name@version@sha256`), which an automatic upgrade changes.
    #[serde(default)]
    pub pins: Vec<String>,
    /// Registry id of the source's reader schema, when the source follows its subject's
    /// latest schema (a Confluent Kafka source without a pinned `schema`).
    #[serde(default)]
    pub reader_schema_id: Option<u32>,
    /// `upgrade blocked: <what changed>: <link, field, rule>` while an automatic upgrade is
    /// blocked (the pipeline runs on as it was); `null` otherwise.
    #[serde(default)]
    pub upgrade: Option<String>,
    /// While a canary window watches a new plugin version: its progress (`stamp@1.2.0 (stage
    /// 1): 12 of its first 200 events seen, 0 trapped (more than 5 rolls it back)`).
    #[serde(default)]
    pub canary: Option<String>,
    pub last_error: Option<String>,
    /// Builds after the first: retries after a failure and restarts on request.
    pub restarts: u64,
    pub events_in: u64,
    pub events_out: u64,
    pub dead_letters: u64,
}

/// `GET /v1/pipelines/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PipelineDetail {
    pub status: PipelineStatus,
    /// The pipeline file as loaded (TOML as JSON).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Path of the pipeline file.
    pub file: String,
    pub stages: Vec<StageCounters>,
    pub source_lag: Vec<PartitionLag>,
    /// When the source was last committed (RFC 3339).
    pub last_commit: Option<String>,
}

/// One processor's counters since its chain was built.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageCounters {
    /// 1-based position in the chain.
    pub stage: usize,
    /// `name@version`.
    pub processor: String,
    pub sha256: String,
    pub events_in: u64,
    pub events_out: u64,
    pub rejected: u64,
    pub traps: u64,
    pub busy_s: f64,
}

/// What [`Daemon::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PutOutcome {
    Created,
    Replaced,
    /// The parsed config equals the running one: nothing was touched.
    Unchanged,
}

/// Why [`Daemon::put`] refused a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Every problem `weft validate` would report (422).
    #[error("invalid pipeline: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Not a usable pipeline name (letters, digits, `-`, `_`, `.`; at most 100).
    #[error(
        "invalid pipeline name {0:?}: use letters, digits, '-', '_' and '.', at most 100 characters, not starting with '.'"
    )]
    BadName(String),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// Writing the pipeline file failed.
    #[error("writing {path}: {reason}")]
    Io { path: String, reason: String },
}

/// Why a control request (pause, resume, restart, delete) failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no pipeline named {0:?}")]
    NotFound(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("removing {path}: {reason}")]
    Io { path: String, reason: String },
}
