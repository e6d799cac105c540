//! What a pipeline's worker shares with the rest of the daemon: the version it runs, the
//! control messages it reads between two steps (with the [`Prepared`] upgrade one carries),
//! how a run ends, the status it writes (and the API, the upgrade check and `ready` read),
//! the context every worker has in common, and what blocks or clears an upgrade there. Both
//! halves of an upgrade (`upgrade` checks, `apply` swaps) and the worker stand above it.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime};

use apache_avro::Schema;
use weft_runtime::{Chain, Runtime, StageStats};

use super::config::DaemonConfig;
use super::decide::{Change, Pins, describe};
use super::history::{HistoryKind, Ledger};
use super::metrics::Metrics;
use super::{ChangeHook, PartitionLag, State};
use crate::config::{KafkaSourceConfig, PipelineConfig, SinkConfig, SourceConfig, WireFormat};
use crate::io::Stall;
use crate::pipeline::{RunSummary, RunningPipeline};

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

/// A chain built and checked beside the running one, for the worker to swap in.
pub(super) struct Prepared {
    /// The pipeline version it was built for: a reload since makes it stale.
    pub key: String,
    pub from: Pins,
    pub to: Pins,
    pub changes: Vec<Change>,
    pub chain: Chain,
    pub digests: Vec<String>,
    /// The new reader schema with its id, when the source subject moved.
    pub reader: Option<(u32, Arc<Schema>)>,
}

impl Prepared {
    /// Stages whose plugin version changed (a canary watches them).
    pub fn plugin_stages(&self) -> Vec<usize> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Plugin { stage, .. } => Some(*stage),
                Change::Schema { .. } => None,
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        describe(&self.changes)
    }
}

/// How a run of the worker ended (`Worker::run_once`; applying an upgrade may end it too).
pub(super) enum Outcome {
    /// Deleted or shut down: the thread ends.
    Stop,
    /// The finite source is exhausted: STOPPED until restarted or given a new source.
    Exhausted,
    Paused,
    /// Build again at once (restart on request, or a version with another source).
    Rebuild,
    Failed(String),
}

/// Closes the running pipeline (which completes the batch in flight) and ends the run with
/// `outcome`; also the run's totals once closed, which count that last batch.
pub(super) fn close(running: RunningPipeline, outcome: Outcome) -> (Outcome, Option<RunSummary>) {
    match (running.close(), outcome) {
        (Err(e), Outcome::Failed(first)) => {
            (Outcome::Failed(format!("{first} (closing: {e})")), None)
        }
        (Err(e), Outcome::Stop) => {
            tracing::warn!("closing: {e}");
            (Outcome::Stop, None)
        }
        (Err(e), _) => (Outcome::Failed(format!("closing: {e}")), None),
        (Ok(summary), outcome) => (outcome, Some(summary)),
    }
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

/// What `upgrade` in the status says while an upgrade is blocked.
pub(super) const BLOCKED: &str = "upgrade blocked: ";

/// Marks an upgrade to `to` as blocked: status, metric, history. The same target is not
/// tried again (see [`super::decide::decide`]).
pub(super) fn block(
    ctx: &Context,
    name: &str,
    shared: &Mutex<Shared>,
    from: &Pins,
    to: &Pins,
    reason: String,
) {
    let message = format!("{BLOCKED}{reason}");
    tracing::warn!(pipeline = %name, "{message}");
    let mut s = lock(shared);
    s.upgrade = Some(message);
    s.blocked = Some(to.clone());
    s.ledger.record(
        HistoryKind::Blocked,
        &from.to_string(),
        &to.to_string(),
        &reason,
    );
    drop(s);
    ctx.metrics
        .upgrade_blocked
        .get_or_create(&Metrics::pipeline(name))
        .set(1);
}

/// Clears a blocked upgrade (it was applied, the registry moved back, the file changed).
pub(super) fn unblock(ctx: &Context, name: &str, s: &mut Shared) {
    if s.upgrade.take().is_some() || s.blocked.take().is_some() {
        ctx.metrics
            .upgrade_blocked
            .get_or_create(&Metrics::pipeline(name))
            .set(0);
    }
}

/// The Confluent Kafka source that follows its subject's latest schema, if that is the
/// pipeline's only source.
pub(super) fn followed_source(config: &PipelineConfig) -> Option<(&KafkaSourceConfig, String)> {
    match config.sources.as_slice() {
        [SourceConfig::Kafka(k)] if k.format == WireFormat::Confluent && k.schema.is_none() => {
            k.reader_subject().map(|subject| (k, subject))
        }
        _ => None,
    }
}

/// Whether the sink writes a file (which reopening would truncate).
pub(super) fn is_file(sink: &SinkConfig) -> bool {
    matches!(sink, SinkConfig::Jsonl { .. } | SinkConfig::AvroFile { .. })
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
