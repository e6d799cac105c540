//! What a pipeline's worker shares with the rest of the daemon: the version it runs, the
//! control messages it reads between two steps, the status it writes (and the API, the
//! upgrade check and `ready` read), and the context every worker has in common.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime};

use apache_avro::Schema;
use weft_runtime::{Runtime, StageStats};

use super::config::DaemonConfig;
use super::decide::Pins;
use super::history::Ledger;
use super::metrics::Metrics;
use super::upgrade::Prepared;
use super::{ChangeHook, PartitionLag, State};
use crate::config::PipelineConfig;
use crate::io::Stall;

/// A pipeline version as read from its file: the config, what the API shows of it, and the
/// key versions are compared by (its parsed form, so formatting and comments do not count).
#[derive(Debug, Clone)]
pub(super) struct Version {
    pub config: PipelineConfig,
    pub json: serde_json::Value,
    pub key: String,
}

impl Version {
    pub fn new(config: PipelineConfig, json: serde_json::Value) -> Self {
        let key = format!("{config:?}");
        Self { config, json, key }
    }
}

/// The answer to a new version: `Err` lists why it was refused.
pub(super) type Reply = Sender<Result<(), Vec<String>>>;

/// What the supervisor asks of a worker; read between two steps.
pub(super) enum Control {
    Pause,
    Resume,
    Restart,
    /// Swap to this version at the next batch boundary, or restart with it when its source
    /// differs. An invalid version is refused and the old one keeps running.
    Replace(Box<Version>, Option<Reply>),
    /// A chain the upgrade check built and checked: swap it in at the next batch boundary.
    Upgrade(Box<Prepared>),
    Delete,
    Shutdown,
}

/// What the status API and `ready` read; the worker writes it.
#[derive(Debug)]
pub(super) struct Shared {
    pub state: State,
    pub since: Instant,
    pub last_error: Option<String>,
    pub restarts: u64,
    /// `name@version (#n)` and sha256 of each stage of the current chain.
    pub stage_ids: Vec<String>,
    pub digests: Vec<String>,
    pub stage_stats: Vec<StageStats>,
    pub events_in: u64,
    pub events_out: u64,
    pub dead_letters: u64,
    pub last_commit: Option<SystemTime>,
    pub lag: Vec<PartitionLag>,
    /// The version running (or to run): compared with what a file or `put` brings.
    pub version: Option<Version>,
    /// The running pipeline's sinks say here why a flush is waiting: the worker is blocked
    /// inside it then, so only the sink can tell the status.
    pub stall: Stall,
    /// What the running chain reads and writes, for the upgrade check to build beside it.
    pub source_schema: Option<Arc<Schema>>,
    pub output_schema: Option<Arc<Schema>>,
    /// Registry id of the source's reader schema, when it follows its subject's latest.
    pub reader_schema_id: Option<u32>,
    /// `upgrade blocked: ...` while an automatic upgrade is blocked.
    pub upgrade: Option<String>,
    /// The target that was refused: not tried again until the registry answers otherwise.
    pub blocked: Option<Pins>,
    /// An upgrade was handed to the worker and not yet applied or dropped.
    pub pending: bool,
    /// The open canary window's progress, for the status.
    pub canary: Option<String>,
    /// The upgrade check's last failure to ask the registry, logged once.
    pub check_error: Option<String>,
    /// History and rolled-back versions (also on disk).
    pub ledger: Ledger,
    /// The fields the running chain reads and passes on, for the registry's lineage.
    pub fields: super::registry_sync::FieldFlow,
}

impl Shared {
    /// `name@version` of each running stage and the reader schema id.
    pub fn pins(&self) -> Pins {
        Pins {
            stages: self.stage_ids.iter().map(|id| processor_name(id)).collect(),
            reader: self.reader_schema_id,
        }
    }

    pub fn new(version: Option<Version>, ledger: Ledger) -> Self {
        Self {
            state: State::Starting,
            since: Instant::now(),
            last_error: None,
            restarts: 0,
            stage_ids: Vec::new(),
            digests: Vec::new(),
            stage_stats: Vec::new(),
            events_in: 0,
            events_out: 0,
            dead_letters: 0,
            last_commit: None,
            lag: Vec::new(),
            version,
            stall: Stall::default(),
            source_schema: None,
            output_schema: None,
            reader_schema_id: None,
            upgrade: None,
            blocked: None,
            pending: false,
            check_error: None,
            canary: None,
            ledger,
            fields: Default::default(),
        }
    }
}

/// What every worker shares: the runtime, the daemon's config, the metrics, the hooks.
pub(super) struct Context {
    pub runtime: Runtime,
    pub daemon: DaemonConfig,
    pub metrics: Metrics,
    pub hooks: RwLock<Vec<ChangeHook>>,
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave the status half-written in a way that
    // matters more than losing the status of a pipeline entirely.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `filter@0.1.0 (#1)` → `filter@0.1.0`.
pub(super) fn processor_name(stage_id: &str) -> String {
    stage_id
        .rsplit_once(" (#")
        .map_or(stage_id, |(name, _)| name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_ids_lose_their_position() {
        assert_eq!(processor_name("filter@0.1.0 (#2)"), "filter@0.1.0");
        assert_eq!(processor_name("odd"), "odd");
    }
}
