//! One pipeline's thread: build, open, step until told otherwise, and between two steps apply
//! what the supervisor sends (pause, resume, restart, a new version, delete, shutdown). A
//! failure — an error or a panic — makes the pipeline FAILED and is retried with exponential
//! backoff; it never leaves this thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use weft_runtime::StageStats;

use super::State;
use super::apply::{Canary, Pipe};
use super::build::{build, panicked, problems, resolver};
use super::decide::Pins;
use super::diff::{Plan, plan};
use super::history::HistoryKind;
use super::metrics::{LagLabels, Metrics, StageLabels};
use super::shared::{
    Context, Control, Outcome, Reply, Shared, Version, close, followed_source, is_file, lock,
    processor_name, unblock,
};
use crate::config::{PipelineConfig, SourceConfig};
use crate::pipeline::{Pipeline, RunningPipeline, Step, Swap, build_chain};

/// What ends a wait while not running.
enum Wake {
    Build,
    Stop,
}

pub(super) struct Worker {
    pub name: String,
    pub ctx: Arc<Context>,
    pub shared: Arc<Mutex<Shared>>,
    pub control: Receiver<Control>,
    /// Built already (by `put`'s validation): the first run uses it instead of building.
    pub prebuilt: Option<Pipeline>,
    /// Failures since the last successful step: the backoff's exponent.
    failures: u32,
    /// Stage stats already added to the metrics (the chain's stats are cumulative).
    seen: Vec<StageStats>,
    /// Source assignments already counted (the source's count is cumulative while it is open).
    assignments: u64,
    /// The canary window of the last upgrade that changed a plugin version.
    canary: Option<Canary>,
}

impl Worker {
    pub fn new(
        name: String,
        ctx: Arc<Context>,
        shared: Arc<Mutex<Shared>>,
        control: Receiver<Control>,
        prebuilt: Option<Pipeline>,
    ) -> Self {
        Self {
            name,
            ctx,
            shared,
            control,
            prebuilt,
            failures: 0,
            seen: Vec::new(),
            assignments: 0,
            canary: None,
        }
    }

    /// Plugin versions rolled back for this pipeline: never resolved for it again.
    pub(super) fn excluded(&self) -> std::collections::BTreeSet<String> {
        lock(&self.shared).ledger.excluded().clone()
    }

    fn set_state(&self, state: State) {
        let mut shared = lock(&self.shared);
        if shared.state != state {
            shared.state = state;
            shared.since = Instant::now();
        }
        if state == State::Running {
            shared.last_error = None;
        }
        drop(shared);
        self.ctx.metrics.set_state(&self.name, state);
    }

    fn set_error(&self, error: String) {
        tracing::warn!(pipeline = %self.name, "{error}");
        lock(&self.shared).last_error = Some(error);
    }

    /// The thread's body: runs until deleted or shut down.
    pub fn run(mut self) {
        let mut builds = 0u64;
        loop {
            if builds > 0 {
                lock(&self.shared).restarts += 1;
                self.ctx
                    .metrics
                    .restarts
                    .get_or_create(&Metrics::pipeline(&self.name))
                    .inc();
            }
            builds += 1;
            self.set_state(State::Starting);
            let outcome = catch_unwind(AssertUnwindSafe(|| self.run_once()))
                .unwrap_or_else(|panic| Outcome::Failed(panicked(&*panic)));
            let wake = match outcome {
                Outcome::Stop => Wake::Stop,
                Outcome::Rebuild => Wake::Build,
                Outcome::Exhausted => {
                    self.set_state(State::Stopped);
                    self.idle(None)
                }
                Outcome::Paused => {
                    self.set_state(State::Paused);
                    self.idle(None)
                }
                Outcome::Failed(error) => {
                    self.failures = self.failures.saturating_add(1);
                    self.set_error(error);
                    self.set_state(State::Failed);
                    let wait = self.ctx.daemon.restart.backoff(self.failures);
                    self.idle(Some(wait))
                }
            };
            if let Wake::Stop = wake {
                self.set_state(State::Stopped);
                return;
            }
        }
    }

    /// Builds (or takes the prebuilt pipeline), opens and steps until a control or the end
    /// of the source says otherwise.
    fn run_once(&mut self) -> Outcome {
        let built = match self.prebuilt.take() {
            Some(built) => built,
            None => {
                let Some(config) = self.config() else {
                    return Outcome::Failed("no valid pipeline file".into());
                };
                match build(&self.ctx, self.last_reader(config), &self.excluded()) {
                    Ok(built) => built,
                    Err(e) => return Outcome::Failed(e),
                }
            }
        };
        let config = built.config().clone();
        let mut running = match built.open() {
            Ok(running) => running,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        self.canary = None;
        self.show_canary();
        self.chain_changed(&running);
        lock(&self.shared).stall = running.stall();
        self.assignments = 0;
        self.set_state(State::Running);
        self.changed(&config);
        loop {
            loop {
                let message = match self.control.try_recv() {
                    Ok(message) => message,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.close(running, Outcome::Stop),
                };
                match message {
                    Control::Pause => return self.close(running, Outcome::Paused),
                    Control::Resume => {}
                    Control::Restart => {
                        self.failures = 0;
                        return self.close(running, Outcome::Rebuild);
                    }
                    Control::Delete | Control::Shutdown => {
                        return self.close(running, Outcome::Stop);
                    }
                    Control::Replace(version, reply) => {
                        if let Some(outcome) = self.replace(&mut running, *version, reply) {
                            return self.close(running, outcome);
                        }
                    }
                    Control::Upgrade(prepared) => {
                        if let Some(outcome) = self.upgrade(&mut running, *prepared) {
                            return self.close(running, outcome);
                        }
                    }
                }
            }
            let started = Instant::now();
            match running.step() {
                Ok(step) => {
                    self.failures = 0;
                    self.record(&step, &running, started.elapsed());
                    if let Some(outcome) = self.watch_canary(&mut running) {
                        return self.close(running, outcome);
                    }
                    if step.exhausted {
                        return self.close(running, Outcome::Exhausted);
                    }
                }
                Err(e) => {
                    // The batch in flight is uncommitted: the next build reads it again.
                    return self.close(running, Outcome::Failed(e.to_string()));
                }
            }
        }
    }

    /// Applies a new version between two steps. `Some`: the run must end that way (a new
    /// source means a new build).
    fn replace(
        &mut self,
        running: &mut RunningPipeline,
        version: Version,
        reply: Option<Reply>,
    ) -> Option<Outcome> {
        let Some(old) = self.config() else {
            return self.restart_with(version, reply);
        };
        let new = &version.config;
        match plan(&old, new) {
            Plan::Unchanged => {
                self.accept(version, reply);
                None
            }
            Plan::Restart => self.restart_with(version, reply),
            Plan::Swap {
                chain,
                sink,
                dead_letter,
            } => {
                // The stream waits from here (the last batch is committed) to the next step.
                let paused = Instant::now();
                let mut swap = Swap {
                    limits: Some(new.limits),
                    ..Swap::default()
                };
                let mut output = running.output_schema();
                if chain {
                    let resolver = match resolver(&self.ctx, new, &self.excluded()) {
                        Ok(r) => r,
                        Err(e) => return self.refuse(vec![e], reply),
                    };
                    let built = catch_unwind(AssertUnwindSafe(|| {
                        build_chain(
                            new,
                            &self.ctx.runtime,
                            resolver.as_ref(),
                            running.source_schema(),
                        )
                    }));
                    match built {
                        Ok(Ok((c, digests))) => {
                            output = c.output_schema().unwrap_or_else(|| running.source_schema());
                            swap.chain = Some((c, digests));
                        }
                        Ok(Err(e)) => return self.refuse(problems(&e), reply),
                        Err(panic) => return self.refuse(vec![panicked(&*panic)], reply),
                    }
                }
                let same_output = *output == *running.output_schema();
                if sink || !same_output {
                    if !sink && is_file(&new.sink) {
                        // Reopening the same file would truncate what it holds; a new
                        // build re-reads a file source from its start into a fresh file.
                        return self.restart_with(version, reply);
                    }
                    swap.sink = Some(new.sink.clone());
                }
                if dead_letter {
                    swap.dead_letter = Some(new.dead_letter.clone());
                }
                let before = lock(&self.shared).pins();
                if let Err(e) = running.swap(swap) {
                    return self.refuse(problems(&e), reply);
                }
                // The chain a canary would swap back belongs to the old version; the swap set
                // the new version's batch size.
                self.canary = None;
                self.show_canary();
                let pause = paused.elapsed();
                tracing::info!(pipeline = %self.name, pause_ms = pause.as_secs_f64() * 1e3, "swapped");
                let labels = Metrics::pipeline(&self.name);
                self.ctx.metrics.swaps.get_or_create(&labels).inc();
                self.ctx
                    .metrics
                    .swap_pause
                    .get_or_create(&labels)
                    .observe(pause.as_secs_f64());
                self.chain_changed(running);
                let after = lock(&self.shared).pins();
                self.reloaded(
                    &before,
                    &after,
                    "a new version of the pipeline file, swapped at a batch boundary",
                );
                let config = version.config.clone();
                self.accept(version, reply);
                self.changed(&config);
                None
            }
        }
    }

    /// `config` reading with the schema the pipeline last ran with, when its source follows
    /// the same subject: a rebuild (a failure, a restart, the daemon's start) must not take a
    /// schema version the upgrade check refused; the check moves it on when it can.
    fn last_reader(&self, mut config: PipelineConfig) -> PipelineConfig {
        let Some((subject, id)) = lock(&self.shared).ledger.reader() else {
            return config;
        };
        if followed_source(&config).is_some_and(|(_, s)| s == subject)
            && let Some(SourceConfig::Kafka(kafka)) = config.sources.first_mut()
        {
            kafka.reader_id = Some(id);
        }
        config
    }

    /// Records a reload in the history; a blocked upgrade is checked again from scratch.
    fn reloaded(&self, before: &Pins, after: &Pins, reason: &str) {
        let mut shared = lock(&self.shared);
        shared.ledger.record(
            HistoryKind::Reload,
            &before.to_string(),
            &after.to_string(),
            reason,
        );
        unblock(&self.ctx, &self.name, &mut shared);
    }

    /// A version whose source differs: validated by a full build, then run in place of the
    /// current one.
    fn restart_with(&mut self, version: Version, reply: Option<Reply>) -> Option<Outcome> {
        match build(&self.ctx, version.config.clone(), &self.excluded()) {
            Ok(built) => {
                let before = lock(&self.shared).pins();
                let after = built_pins(&built);
                self.reloaded(
                    &before,
                    &after,
                    "a new version of the pipeline file with another source: restarted",
                );
                self.prebuilt = Some(built);
                self.accept(version, reply);
                Some(Outcome::Rebuild)
            }
            Err(e) => self.refuse(vec![e], reply),
        }
    }

    fn accept(&self, version: Version, reply: Option<Reply>) {
        let mut shared = lock(&self.shared);
        shared.version = Some(version);
        if shared
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(REFUSED))
        {
            shared.last_error = None;
        }
        drop(shared);
        if let Some(reply) = reply {
            // The asker may have given up waiting; the version is applied all the same.
            let _ = reply.send(Ok(()));
        }
    }

    fn refuse(&self, problems: Vec<String>, reply: Option<Reply>) -> Option<Outcome> {
        self.set_error(format!("{REFUSED}{}", problems.join("; ")));
        if let Some(reply) = reply {
            let _ = reply.send(Err(problems));
        }
        None
    }

    /// Waits while not running (PAUSED, FAILED, STOPPED) for a control, or `timeout` (the
    /// backoff of a FAILED pipeline).
    fn idle(&mut self, timeout: Option<Duration>) -> Wake {
        let mut deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let message = match deadline {
                Some(at) => match self
                    .control
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => return Wake::Build,
                    Err(RecvTimeoutError::Disconnected) => return Wake::Stop,
                },
                None => match self.control.recv() {
                    Ok(message) => message,
                    Err(_) => return Wake::Stop,
                },
            };
            let state = lock(&self.shared).state;
            match message {
                Control::Delete | Control::Shutdown => return Wake::Stop,
                Control::Restart => {
                    self.failures = 0;
                    return Wake::Build;
                }
                Control::Resume if state == State::Paused => return Wake::Build,
                Control::Resume => {}
                Control::Pause => {
                    self.prebuilt = None;
                    self.set_state(State::Paused);
                    deadline = None;
                }
                Control::Upgrade(_) => {
                    // Built for a run that ended: the next check looks again.
                    lock(&self.shared).pending = false;
                }
                Control::Replace(version, reply) => {
                    let source_changed = self
                        .config()
                        .is_none_or(|old| matches!(plan(&old, &version.config), Plan::Restart));
                    match build(&self.ctx, version.config.clone(), &self.excluded()) {
                        Err(e) => {
                            self.refuse(vec![e], reply);
                        }
                        Ok(built) => {
                            let before = lock(&self.shared).pins();
                            self.reloaded(
                                &before,
                                &built_pins(&built),
                                "a new version of the pipeline file, applied while the pipeline was not running",
                            );
                            self.accept(*version, reply);
                            match state {
                                State::Paused => {}
                                // A finished file source runs again only from a new source.
                                State::Stopped if !source_changed => {}
                                _ => {
                                    self.failures = 0;
                                    self.prebuilt = Some(built);
                                    return Wake::Build;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds a step's counts to the status and the metrics.
    fn record(&mut self, step: &Step, running: &RunningPipeline, took: Duration) {
        let labels = Metrics::pipeline(&self.name);
        let m = &self.ctx.metrics;
        let stats = running.summary().stages;
        self.count(step);
        if step.events_in > 0 {
            m.batch_duration
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
        }
        // Whatever the step completed: the chain ran over the batch it read, which a later
        // step completes (the run loop keeps one batch in flight).
        {
            let ids = lock(&self.shared).stage_ids.clone();
            for (i, (now, id)) in stats.iter().zip(&ids).enumerate() {
                let before = self.seen.get(i).cloned().unwrap_or_default();
                let stage = StageLabels {
                    pipeline: self.name.clone(),
                    stage: (i + 1).to_string(),
                    processor: processor_name(id),
                };
                m.stage_in
                    .get_or_create(&stage)
                    .inc_by(now.events_in.saturating_sub(before.events_in));
                m.stage_out
                    .get_or_create(&stage)
                    .inc_by(now.events_out.saturating_sub(before.events_out));
                m.stage_rejected
                    .get_or_create(&stage)
                    .inc_by(now.rejected.saturating_sub(before.rejected));
                m.stage_traps
                    .get_or_create(&stage)
                    .inc_by(now.traps.saturating_sub(before.traps));
                m.stage_busy
                    .get_or_create(&stage)
                    .inc_by(now.busy.saturating_sub(before.busy).as_secs_f64());
            }
        }
        // Assignments since this source was opened, added as they come.
        let assignments = running.source_assignments();
        if assignments > self.assignments {
            m.rebalances
                .get_or_create(&labels)
                .inc_by(assignments - self.assignments);
            self.assignments = assignments;
        }
        let lag = running.source_lag();
        for l in &lag {
            m.lag
                .get_or_create(&LagLabels {
                    pipeline: self.name.clone(),
                    topic: l.topic.clone(),
                    partition: l.partition.to_string(),
                })
                .set(l.lag);
        }
        let mut shared = lock(&self.shared);
        shared.lag = lag;
        shared.stage_stats = stats.clone();
        drop(shared);
        self.seen = stats;
    }

    /// Closes the run (see [`close`]) and counts the batch closing completed: the run loop
    /// keeps one batch in flight, which no step has counted yet.
    fn close(&mut self, running: RunningPipeline, outcome: Outcome) -> Outcome {
        let before = running.summary();
        let (outcome, closed) = close(running, outcome);
        if let Some(after) = closed {
            let last = Step {
                events_in: after.events_in.saturating_sub(before.events_in),
                events_out: after.events_out.saturating_sub(before.events_out),
                dead_letters: after.dead_letters.saturating_sub(before.dead_letters),
                ..Step::default()
            };
            self.count(&last);
        }
        outcome
    }

    /// Adds the counts of completed batches to the status and the metrics.
    fn count(&self, done: &Step) {
        if done.events_in == 0 {
            return;
        }
        let labels = Metrics::pipeline(&self.name);
        let m = &self.ctx.metrics;
        m.events_in.get_or_create(&labels).inc_by(done.events_in);
        m.events_out.get_or_create(&labels).inc_by(done.events_out);
        m.dead_letters
            .get_or_create(&labels)
            .inc_by(done.dead_letters);
        m.commits.get_or_create(&labels).inc();
        let mut shared = lock(&self.shared);
        shared.events_in += done.events_in;
        shared.events_out += done.events_out;
        shared.dead_letters += done.dead_letters;
        shared.last_commit = Some(SystemTime::now());
    }
}

impl Pipe for Worker {
    fn name(&self) -> &str {
        &self.name
    }

    fn ctx(&self) -> &Context {
        &self.ctx
    }

    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn canary(&self) -> Option<&Canary> {
        self.canary.as_ref()
    }

    fn canary_mut(&mut self) -> &mut Option<Canary> {
        &mut self.canary
    }

    fn config(&self) -> Option<PipelineConfig> {
        lock(&self.shared)
            .version
            .as_ref()
            .map(|v| v.config.clone())
    }

    fn chain_changed(&mut self, running: &RunningPipeline) {
        let summary = running.summary();
        let mut shared = lock(&self.shared);
        shared.stage_ids = summary.processors;
        shared.digests = running.stage_digests().to_vec();
        shared.stage_stats = summary.stages.clone();
        shared.source_schema = Some(running.source_schema());
        shared.output_schema = Some(running.output_schema());
        shared.reader_schema_id = running.reader_schema_id();
        shared.fields = super::registry_sync::FieldFlow::of(running.chain());
        let followed = shared
            .version
            .as_ref()
            .and_then(|v| followed_source(&v.config).map(|(_, subject)| subject));
        if let (Some(subject), Some(id)) = (followed, shared.reader_schema_id) {
            shared.ledger.set_reader(&subject, id);
        }
        self.seen = summary.stages;
    }

    fn changed(&self, config: &PipelineConfig) {
        let hooks = self
            .ctx
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for hook in hooks.iter() {
            if catch_unwind(AssertUnwindSafe(|| hook(&self.name, config))).is_err() {
                tracing::error!(pipeline = %self.name, "a change hook panicked");
            }
        }
    }
}

/// What `last_error` says when a new version was not applied.
pub(super) const REFUSED: &str = "reload refused: ";

/// The pins a freshly built pipeline will run with.
fn built_pins(built: &Pipeline) -> Pins {
    Pins {
        stages: built
            .chain()
            .stage_ids()
            .iter()
            .map(|id| processor_name(id))
            .collect(),
        reader: built.reader_schema_id(),
    }
}
