//! The set of running pipelines: starts a worker per pipeline file, applies new versions from
//! the folder or from `put`, answers the status API, and shuts everything down in order.
//! Writes (put, delete, a file event) are serialised by one lock; reads take a snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use weft_runtime::Runtime;

use super::config::DaemonConfig;
use super::folder::{load_version, pipeline_name, valid_name, write_atomically};
use super::history::{History, Ledger};
use super::metrics::Metrics;
use super::shared::{self, Context, Control, Shared, Version, lock};
use super::upgrade::{Upgrader, Workers};
use super::worker::{self, Worker};
use super::{
    ChangeHook, ControlError, PipelineDetail, PipelineStatus, PutError, PutOutcome, StageCounters,
    State,
};
use crate::pipeline::{Pipeline, RUN_STACK_BYTES, on_run_thread};

/// Longest `put` waits for a running pipeline to take a new version at its next batch
/// boundary (a batch stuck in a slow processor can hold it up to its deadlines).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// One pipeline: its file, its worker (none while its file does not parse), its status.
struct Entry {
    file: PathBuf,
    shared: Arc<Mutex<Shared>>,
    worker: Option<(Sender<Control>, JoinHandle<()>)>,
}

pub(super) struct Supervisor {
    ctx: Arc<Context>,
    pipelines: Mutex<BTreeMap<String, Entry>>,
    /// Serialises put, delete and file events, so two writers never start one pipeline twice.
    writes: Mutex<()>,
    /// Workers told to stop by a delete, joined by `shutdown`.
    stopping: Mutex<Vec<JoinHandle<()>>>,
    shutting_down: AtomicBool,
    watcher: Mutex<Option<super::watch::FolderWatch>>,
    /// The upgrade check's thread (`[upgrades]`); dropped on shutdown.
    upgrader: Mutex<Option<Upgrader>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Supervisor {
    pub fn start(config: DaemonConfig, runtime: Runtime) -> anyhow::Result<Arc<Supervisor>> {
        std::fs::create_dir_all(&config.pipelines).with_context(|| {
            format!(
                "creating the pipelines folder {}",
                config.pipelines.display()
            )
        })?;
        let folder = config.pipelines.clone();
        let supervisor = Arc::new(Supervisor {
            ctx: Arc::new(Context {
                runtime,
                daemon: config,
                metrics: Metrics::new(),
                hooks: RwLock::new(Vec::new()),
            }),
            pipelines: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(()),
            stopping: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            watcher: Mutex::new(None),
            upgrader: Mutex::new(None),
        });
        // Watch first, so a file written while the others load is not missed.
        let weak = Arc::downgrade(&supervisor);
        let watch = super::watch::FolderWatch::start(&folder, move |file| {
            // The supervisor gone (the daemon shut down), the watch ends.
            weak.upgrade()
                .map(|supervisor| supervisor.file_changed(file))
                .is_some()
        })?;
        *guard(&supervisor.watcher) = Some(watch);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("reading {}", folder.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| pipeline_name(path).is_some())
            .collect();
        files.sort();
        for file in files {
            supervisor.file_changed(&file);
        }
        let upgrader = Upgrader::start(Arc::downgrade(&supervisor), supervisor.ctx.clone())
            .context("starting the upgrade check")?;
        *guard(&supervisor.upgrader) = upgrader;
        Ok(supervisor)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.ctx.runtime
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.ctx.daemon
    }

    pub fn on_change(&self, hook: ChangeHook) {
        self.ctx
            .hooks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(hook);
    }

    fn file_of(&self, name: &str) -> PathBuf {
        self.ctx.daemon.pipelines.join(format!("{name}.toml"))
    }

    /// Reads a pipeline file as `weft run` would, with the daemon's defaults for what it
    /// leaves out (Kafka brokers).
    fn load(&self, text: &str, file: &Path) -> Result<Version, Vec<String>> {
        load_version(text, file, &self.ctx.daemon)
    }

    /// A file of the folder was created, changed or removed (the watcher, and the start).
    pub fn file_changed(&self, file: &Path) {
        let Some(name) = pipeline_name(file) else {
            return;
        };
        if self.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        let _writes = guard(&self.writes);
        // Checked again under the lock: a shutdown may have begun while this waited for it.
        if self.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(entry) = guard(&self.pipelines).remove(&name) {
                    tracing::info!(pipeline = %name, "file removed: stopping");
                    self.stop(entry);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), "cannot read: {e}");
                return;
            }
        };
        let loaded = self.load(&text, file);
        let mut pipelines = guard(&self.pipelines);
        match (pipelines.get(&name), loaded) {
            (Some(entry), Ok(version)) if entry.worker.is_some() => {
                let shared = lock(&entry.shared);
                if shared
                    .version
                    .as_ref()
                    .is_some_and(|v| v.key == version.key)
                {
                    return;
                }
                drop(shared);
                tracing::info!(pipeline = %name, "file changed: applying the new version");
                if let Some((control, _)) = &entry.worker {
                    let _ = control.send(Control::Replace(Box::new(version), None));
                }
            }
            (Some(entry), Err(problems)) => {
                let mut shared = lock(&entry.shared);
                if entry.worker.is_some() {
                    shared.last_error = Some(format!("{}{}", worker::REFUSED, problems.join("; ")));
                } else {
                    shared.last_error = Some(problems.join("; "));
                }
                tracing::warn!(pipeline = %name, "{}", problems.join("; "));
            }
            (None, Err(problems)) => {
                tracing::warn!(pipeline = %name, "{}", problems.join("; "));
                pipelines.insert(name.clone(), self.broken(file, problems));
                self.ctx.metrics.set_state(&name, State::Failed);
            }
            (_, Ok(version)) => {
                // New, or broken until now.
                let entry = self.spawn(&name, file, version, None);
                pipelines.insert(name, entry);
            }
        }
    }

    /// A pipeline whose file does not load: FAILED with the problems, no worker, until the
    /// file changes.
    fn broken(&self, file: &Path, problems: Vec<String>) -> Entry {
        let mut shared = Shared::new(None, self.ledger(file));
        shared.state = State::Failed;
        shared.last_error = Some(problems.join("; "));
        Entry {
            file: file.to_path_buf(),
            shared: Arc::new(Mutex::new(shared)),
            worker: None,
        }
    }

    fn spawn(
        &self,
        name: &str,
        file: &Path,
        version: Version,
        prebuilt: Option<Pipeline>,
    ) -> Entry {
        let shared = Arc::new(Mutex::new(Shared::new(Some(version), self.ledger(file))));
        self.ctx.metrics.set_state(name, State::Starting);
        // A series from the start (0), so an alert on it can tell "not blocked" from "absent".
        self.ctx
            .metrics
            .upgrade_blocked
            .get_or_create(&Metrics::pipeline(name))
            .set(0);
        let (tx, rx) = channel();
        let worker = Worker::new(
            name.to_string(),
            self.ctx.clone(),
            shared.clone(),
            rx,
            prebuilt,
        );
        let spawned = std::thread::Builder::new()
            .name(format!("weft-{name}"))
            .stack_size(RUN_STACK_BYTES)
            .spawn(move || worker.run());
        match spawned {
            Ok(handle) => Entry {
                file: file.to_path_buf(),
                shared,
                worker: Some((tx, handle)),
            },
            Err(e) => {
                let problem = format!("starting the pipeline's thread: {e}");
                self.ctx.metrics.set_state(name, State::Failed);
                self.broken(file, vec![problem])
            }
        }
    }

    /// The upgrade history and rolled-back versions of the pipeline in `file`.
    fn ledger(&self, file: &Path) -> Ledger {
        let name = pipeline_name(file).unwrap_or_default();
        Ledger::load(&self.ctx.daemon.data_dir, &name)
    }

    /// The upgrade history of a pipeline that runs, or ran here before.
    pub fn history(&self, name: &str) -> Option<History> {
        let entries = match guard(&self.pipelines).get(name) {
            Some(entry) => lock(&entry.shared).ledger.entries(),
            None if valid_name(name) => {
                let entries = Ledger::load(&self.ctx.daemon.data_dir, name).entries();
                if entries.is_empty() {
                    return None;
                }
                entries
            }
            None => return None,
        };
        Some(History {
            pipeline: name.to_string(),
            entries,
        })
    }

    /// Tells a worker to stop after its batch; `shutdown` joins it.
    fn stop(&self, entry: Entry) {
        if let Some((control, handle)) = entry.worker {
            let _ = control.send(Control::Delete);
            guard(&self.stopping).push(handle);
        }
        lock(&entry.shared).state = State::Stopped;
    }

    pub fn put(&self, name: &str, text: &str) -> Result<PutOutcome, PutError> {
        if !valid_name(name) {
            return Err(PutError::BadName(name.to_string()));
        }
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(PutError::ShuttingDown);
        }
        let file = self.file_of(name);
        let version = self.load(text, &file).map_err(PutError::Invalid)?;
        let _writes = guard(&self.writes);
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(PutError::ShuttingDown);
        }
        let existing = guard(&self.pipelines).get(name).map(|e| {
            (
                e.shared.clone(),
                e.worker.as_ref().map(|(tx, _)| tx.clone()),
            )
        });
        match existing {
            Some((shared, Some(control))) => {
                if lock(&shared)
                    .version
                    .as_ref()
                    .is_some_and(|v| v.key == version.key)
                {
                    return Ok(PutOutcome::Unchanged);
                }
                let (reply, answer) = channel();
                control
                    .send(Control::Replace(Box::new(version), Some(reply)))
                    .map_err(|_| PutError::ShuttingDown)?;
                match answer.recv_timeout(REPLY_TIMEOUT) {
                    Ok(Ok(())) => {}
                    Ok(Err(problems)) => return Err(PutError::Invalid(problems)),
                    Err(_) => {
                        return Err(PutError::Invalid(vec![format!(
                            "pipeline {name} did not reach a batch boundary within {}s; the new version was not applied",
                            REPLY_TIMEOUT.as_secs()
                        )]));
                    }
                }
                write_atomically(&file, text)?;
                Ok(PutOutcome::Replaced)
            }
            existing => {
                // Nothing runs: validate with a full build, then run that very build. On a
                // thread with a run's stack, as deep schemas need (the API's threads are small).
                let ctx = self.ctx.clone();
                let config = version.config.clone();
                let excluded = Ledger::load(&self.ctx.daemon.data_dir, name)
                    .excluded()
                    .clone();
                let built = on_run_thread(move || super::build::build(&ctx, config, &excluded))
                    .map_err(|e| PutError::Invalid(vec![e.to_string()]))?
                    .map_err(|e| PutError::Invalid(vec![e]))?;
                write_atomically(&file, text)?;
                let entry = self.spawn(name, &file, version, Some(built));
                guard(&self.pipelines).insert(name.to_string(), entry);
                Ok(if existing.is_some() {
                    PutOutcome::Replaced
                } else {
                    PutOutcome::Created
                })
            }
        }
    }

    pub fn delete(&self, name: &str) -> Result<bool, ControlError> {
        let _writes = guard(&self.writes);
        let Some(entry) = guard(&self.pipelines).remove(name) else {
            return Ok(false);
        };
        let file = entry.file.clone();
        self.stop(entry);
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(ControlError::Io {
                path: file.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Sends pause, resume or restart and waits (bounded) until the worker has applied it
    /// at its batch boundary, so the answer shows the new state.
    pub fn control(&self, name: &str, message: Control) -> Result<PipelineStatus, ControlError> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(ControlError::ShuttingDown);
        }
        let (shared, control) = {
            let pipelines = guard(&self.pipelines);
            let entry = pipelines
                .get(name)
                .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
            (
                entry.shared.clone(),
                entry.worker.as_ref().map(|(tx, _)| tx.clone()),
            )
        };
        let Some(control) = control else {
            // A file that does not load has nothing to pause or restart until it changes.
            return Ok(status(name, &shared));
        };
        let restarts = lock(&shared).restarts;
        let applied: fn(&Shared, u64) -> bool = match message {
            Control::Pause => |s, _| s.state == State::Paused,
            Control::Resume => |s, _| s.state != State::Paused,
            Control::Restart => |s, before| s.restarts > before,
            _ => |_, _| true,
        };
        if control.send(message).is_err() {
            return Err(ControlError::ShuttingDown);
        }
        let until = Instant::now() + REPLY_TIMEOUT;
        while !applied(&lock(&shared), restarts) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(status(name, &shared))
    }

    pub fn list(&self) -> Vec<PipelineStatus> {
        let pipelines = guard(&self.pipelines);
        pipelines
            .iter()
            .map(|(name, e)| status(name, &e.shared))
            .collect()
    }

    /// What a pipeline's running chain reads and passes on (the registry sync reports it).
    pub fn field_flow(&self, name: &str) -> Option<super::registry_sync::FieldFlow> {
        let pipelines = guard(&self.pipelines);
        Some(lock(&pipelines.get(name)?.shared).fields.clone())
    }

    pub fn get(&self, name: &str) -> Option<PipelineDetail> {
        let pipelines = guard(&self.pipelines);
        let entry = pipelines.get(name)?;
        let status = status(name, &entry.shared);
        let shared = lock(&entry.shared);
        let stages = shared
            .stage_ids
            .iter()
            .zip(&shared.stage_stats)
            .enumerate()
            .map(|(i, (id, s))| StageCounters {
                stage: i + 1,
                processor: shared::processor_name(id),
                sha256: shared.digests.get(i).cloned().unwrap_or_default(),
                events_in: s.events_in,
                events_out: s.events_out,
                rejected: s.rejected,
                traps: s.traps,
                busy_s: s.busy.as_secs_f64(),
            })
            .collect();
        Some(PipelineDetail {
            status,
            config: shared
                .version
                .as_ref()
                .map_or(serde_json::Value::Null, |v| v.json.clone()),
            file: entry.file.display().to_string(),
            stages,
            source_lag: shared.lag.clone(),
            last_commit: shared
                .last_commit
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
        })
    }

    pub fn metrics_text(&self) -> String {
        self.ctx.metrics.encode()
    }

    pub fn ready(&self) -> Result<(), Vec<String>> {
        let not_ready: Vec<String> = guard(&self.pipelines)
            .iter()
            .filter(|(_, e)| {
                let s = lock(&e.shared);
                // RUNNING but blocked in a sink that retries (a broker down) is not ready.
                !matches!(s.state, State::Running | State::Paused | State::Stopped)
                    || (s.state == State::Running && s.stall.get().is_some())
            })
            .map(|(name, _)| name.clone())
            .collect();
        if not_ready.is_empty() {
            Ok(())
        } else {
            Err(not_ready)
        }
    }

    pub fn shutdown(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        self.shutting_down.store(true, Ordering::Relaxed);
        // No more file events: a file removed while stopping must not count as a delete.
        guard(&self.watcher).take();
        guard(&self.upgrader).take();
        let _writes = guard(&self.writes);
        let mut handles = std::mem::take(&mut *guard(&self.stopping));
        for (name, entry) in guard(&self.pipelines).iter_mut() {
            if let Some((control, handle)) = entry.worker.take() {
                tracing::info!(pipeline = %name, "stopping after the current batch");
                let _ = control.send(Control::Shutdown);
                handles.push(handle);
            }
        }
        while handles.iter().any(|h| !h.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut late = 0;
        for handle in handles {
            if handle.is_finished() {
                if handle.join().is_err() {
                    tracing::error!("a pipeline thread panicked while stopping");
                }
            } else {
                late += 1;
            }
        }
        if late > 0 {
            tracing::warn!(
                "{late} pipeline(s) still busy after {deadline:?}; leaving them to the exit"
            );
        }
    }
}

fn status(name: &str, shared: &Mutex<Shared>) -> PipelineStatus {
    let s = lock(shared);
    let pins: Vec<String> = s
        .stage_ids
        .iter()
        .zip(s.digests.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(id, digest)| {
            format!(
                "{}@{}",
                shared::processor_name(id),
                digest.map_or("", String::as_str)
            )
        })
        .collect();
    PipelineStatus {
        name: name.to_string(),
        state: s.state,
        uptime_s: s.since.elapsed().as_secs_f64(),
        stages: pins.clone(),
        pins,
        reader_schema_id: s.reader_schema_id,
        upgrade: s.upgrade.clone(),
        canary: s.canary.clone(),
        // A sink waiting while it retries is the news while it lasts; it clears itself.
        last_error: match s.stall.get() {
            Some(why) if s.state == State::Running => Some(format!("waiting: {why}")),
            _ => s.last_error.clone(),
        },
        restarts: s.restarts,
        events_in: s.events_in,
        events_out: s.events_out,
        dead_letters: s.dead_letters,
    }
}

/// The upgrade check's view of the supervisor: every pipeline with a worker.
impl Workers for Supervisor {
    fn workers(&self) -> Vec<(String, Arc<Mutex<Shared>>, Sender<Control>)> {
        guard(&self.pipelines)
            .iter()
            .filter_map(|(name, e)| {
                let (control, _) = e.worker.as_ref()?;
                Some((name.clone(), e.shared.clone(), control.clone()))
            })
            .collect()
    }
}
