//! A fused chain: every processor of a task instantiated in one `Store`, called once per batch,
//! with traps isolated to the event that caused them. Each event's position (where the source
//! read it) travels beside the batch, never through a stage (see [`super::positions`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use wasmtime::Store;
use weft_schema::check_can_read;
use weft_schema::datum::DatumCheck;
use weft_schema::parse_schema;

use super::bindings::{Event, Outcome};
use super::contract::{Configured, Instance, normalize_reads};
use super::manifest::{SCHEMA_MAX, cap};
use super::positions::{Position, Traced, drop_forged, follow, position_at};
use super::state::{Export, begin_call};
use super::{HostState, Plugin, Runtime};
use crate::{Error, Result};

/// One processor of a chain, as the pipeline file gives it.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub plugin: Plugin,
    /// Parameters passed to `configure`, in file order.
    pub params: Vec<(String, String)>,
}

/// Per-call limits of every store of a chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainLimits {
    /// Linear-memory limit of each processor instance.
    pub memory_bytes: usize,
    /// Deadline of one `process` call.
    pub deadline: Duration,
    /// Deepest nesting of records, arrays and maps an emitted event may have.
    pub max_depth: usize,
    /// Most events a processor may emit for one input event.
    pub max_emit_per_event: usize,
    /// Most bytes (values, keys, headers and per-event bookkeeping) a processor's output for
    /// one batch may hold in host memory.
    pub max_batch_output_bytes: usize,
}

impl ChainLimits {
    /// The limits of a pipeline file without `[limits]`. A fan-out of 1000 per event covers
    /// splitting any array a sane event holds; 128 MiB per batch holds the default batch of
    /// 1024 events fanned out 100 times at 1 KiB each, while a run away plugin stops there
    /// instead of at the machine's memory.
    pub const DEFAULT: ChainLimits = ChainLimits {
        memory_bytes: 64 << 20,
        deadline: Duration::from_millis(1000),
        max_depth: weft_schema::datum::DEFAULT_MAX_DEPTH,
        max_emit_per_event: 1000,
        max_batch_output_bytes: 128 << 20,
    };
}

impl Default for ChainLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Counters of one processor over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageStats {
    pub events_in: u64,
    pub events_out: u64,
    pub rejected: u64,
    pub traps: u64,
    pub busy: Duration,
}

/// An event a processor rejected or could not process, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub event: Event,
    /// Index of the processor in the chain; `None` when the source could not decode it.
    pub stage: Option<usize>,
    /// `name@version` of the processor, or the source's name.
    pub processor: String,
    pub reason: String,
    /// The schema `event.value` is written with; `None` when it is raw input bytes.
    pub schema: Option<Arc<Schema>>,
}

/// What a batch became.
#[derive(Debug, Default)]
pub struct ChainOutput {
    pub events: Vec<Event>,
    pub dead: Vec<DeadLetter>,
    /// Where each of `events` was read: its input's position (see
    /// [`crate::position_at`]: shorter when the last events have none).
    pub positions: Vec<Option<Position>>,
}

impl ChainOutput {
    /// A copy of `events[index]` for a dead letter: with its position as headers.
    pub fn dead_event(&self, index: usize) -> Event {
        let mut event = self.events[index].clone();
        if let Some(position) = position_at(&self.positions, index) {
            position.put_on(&mut event.headers);
        }
        event
    }
}

struct Stage {
    spec: StageSpec,
    id: String,
    input: Arc<Schema>,
    input_json: String,
    output: Arc<Schema>,
    /// Checks every event the processor emits against `output`.
    output_check: DatumCheck,
    /// `keep` is only meaningful when the processor does not change the schema.
    keep_allowed: bool,
    /// The fields of `input` the configured instance reads; `None`: every field.
    reads: Option<Vec<String>>,
}

/// Why a call did not return outcomes.
enum CallError {
    /// The processor returned `err`: the batch as a whole failed.
    Fatal(String),
    /// The instance trapped and has been discarded.
    Trap(String),
}

/// Processors of one task, fused in one store.
pub struct Chain {
    runtime: Runtime,
    limits: ChainLimits,
    stages: Vec<Stage>,
    store: Store<HostState>,
    instances: Vec<Instance>,
    stats: Vec<StageStats>,
    /// Bytes the current stage has emitted for the current batch (see
    /// `ChainLimits::max_batch_output_bytes`).
    batch_output: usize,
    /// The emptied buffers of a stage's input, which the next stage's output is written to:
    /// a batch then allocates one list of events for the chain, not one per stage (a list
    /// of 1024 events is large enough that freeing it makes the allocator consolidate).
    spare: Traced<Event>,
}

/// Most events a kept spare buffer may have room for: a fan-out's buffer is let go.
const SPARE_MAX: usize = 1 << 14;

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("stages", &self.stage_ids())
            .finish_non_exhaustive()
    }
}

/// How a link is named in errors: `source → filter@0.1.0 (#1)`.
fn link_name(upstream: &str, downstream: &str) -> String {
    format!("{upstream} → {downstream}")
}

impl Chain {
    /// Instantiates and configures every processor in order, checking each link's schemas
    /// before any event moves. `input` is the schema of the events fed to the first processor.
    pub fn build(
        runtime: &Runtime,
        specs: Vec<StageSpec>,
        input: Arc<Schema>,
        limits: ChainLimits,
    ) -> Result<Self> {
        // One store, one engine: a Winch-compiled stage takes the whole chain to Winch.
        let (runtime, specs) = runtime.align(specs)?;
        let runtime = &runtime;
        let mut store = new_store(runtime, limits);
        let mut stages = Vec::with_capacity(specs.len());
        let mut instances = Vec::with_capacity(specs.len());
        let mut upstream_schema = input;
        let mut upstream_name = "source".to_string();
        for (index, spec) in specs.into_iter().enumerate() {
            let id = format!("{} (#{})", spec.plugin.id(), index + 1);
            let link = link_name(&upstream_name, &id);
            let manifest = spec.plugin.manifest();
            if let Some(declared) = &manifest.input_schema {
                let reader = parse_schema(declared).map_err(|e| Error::Schema {
                    origin: format!("{id} input"),
                    reason: e.to_string(),
                })?;
                check_can_read(&upstream_schema, &reader).map_err(|e| Error::Link {
                    link: link.clone(),
                    reason: format!(
                        "{} cannot read what {upstream_name} writes: {e}",
                        spec.plugin.id()
                    ),
                })?;
            }
            // The full schema (docs, defaults, aliases), not the canonical form: processors
            // that derive their output keep what downstream readers and files want.
            let input_json =
                serde_json::to_string(&*upstream_schema).map_err(|e| Error::Schema {
                    origin: format!("{id} input"),
                    reason: e.to_string(),
                })?;
            // Instantiation runs the guest's start code: a full deadline of its own, not
            // what the previous stage's `configure` left of it.
            begin_call(
                &mut store,
                index,
                &spec.plugin.id(),
                spec.plugin.sha256(),
                limits.deadline,
            );
            let instance =
                spec.plugin
                    .pre()
                    .instantiate(&mut store)
                    .map_err(|e| Error::Configure {
                        processor: id.clone(),
                        reason: format!("instantiation failed: {e:#}"),
                    })?;
            let configured = configure(
                &mut store,
                &instance,
                index,
                &spec,
                &id,
                &input_json,
                limits,
            )?;
            let output = parse_schema(&configured.output_schema).map_err(|e| Error::Schema {
                origin: format!("{id} output (returned by configure)"),
                reason: e.to_string(),
            })?;
            let output_check =
                DatumCheck::new(&output, limits.max_depth).map_err(|reason| Error::Schema {
                    origin: format!("{id} output (returned by configure)"),
                    reason,
                })?;
            let output = Arc::new(output);
            let keep_allowed = output.canonical_form() == upstream_schema.canonical_form();
            stages.push(Stage {
                id: spec.plugin.id(),
                spec,
                input: upstream_schema,
                input_json,
                output: output.clone(),
                output_check,
                keep_allowed,
                reads: normalize_reads(configured.reads),
            });
            instances.push(instance);
            upstream_schema = output;
            upstream_name = id;
        }
        let stats = vec![StageStats::default(); stages.len()];
        Ok(Self {
            runtime: runtime.clone(),
            limits,
            stages,
            store,
            instances,
            stats,
            batch_output: 0,
            spare: Traced::default(),
        })
    }

    /// Schema of the events the chain emits (its input schema when it has no processor).
    pub fn output_schema(&self) -> Option<Arc<Schema>> {
        self.stages.last().map(|s| s.output.clone())
    }

    /// `name@version` of each processor, in order.
    pub fn stage_ids(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.id.clone()).collect()
    }

    /// Input and output schema of each processor, in order.
    pub fn stage_schemas(&self) -> Vec<(Arc<Schema>, Arc<Schema>)> {
        self.stages
            .iter()
            .map(|s| (s.input.clone(), s.output.clone()))
            .collect()
    }

    /// The schema each processor receives, in order: the chain's input for the first, the
    /// previous processor's output for the others.
    pub fn stage_input_schemas(&self) -> Vec<Arc<Schema>> {
        self.stages.iter().map(|s| s.input.clone()).collect()
    }

    /// Per processor, in order, the fields of ITS input (see [`Chain::stage_input_schemas`])
    /// it reads, as its `configure` reported them (`weft:processor@0.2.0`): top-level field
    /// names, or dotted paths into nested records. `None` means every field: what a 0.1.0
    /// component, or one that did not say, is taken to read.
    pub fn stage_reads(&self) -> Vec<Option<Vec<String>>> {
        self.stages.iter().map(|s| s.reads.clone()).collect()
    }

    pub fn stats(&self) -> &[StageStats] {
        &self.stats
    }

    /// Runs one batch through every processor. Rejected events and events that made a
    /// processor trap come back as dead letters; the rest flows on. Fails only when an
    /// instance cannot be re-created after a trap. For events read without a position (see
    /// [`Chain::process_at`]).
    pub fn process(&mut self, batch: Vec<Event>) -> Result<ChainOutput> {
        self.process_at(batch, Vec::new())
    }

    /// [`Chain::process`] for events read at `positions` (one per event, or fewer: see
    /// [`crate::position_at`]). No processor sees a position: each output event gets its
    /// input's in [`ChainOutput::positions`], each dead letter its input's as `weft.source.*`
    /// headers after its own, and what a processor emits under that prefix is dropped.
    pub fn process_at(
        &mut self,
        batch: Vec<Event>,
        positions: Vec<Option<Position>>,
    ) -> Result<ChainOutput> {
        let mut current = Traced::input(batch);
        let mut dead = Traced::with_capacity(0);
        // One clock read per stage: a stage's end is the next one's start (at small batches
        // the reads are a visible part of a call's fixed cost).
        let mut started = Instant::now();
        for index in 0..self.stages.len() {
            if current.is_empty() {
                break;
            }
            self.stats[index].events_in += current.len() as u64;
            self.batch_output = 0;
            let mut next = std::mem::take(&mut self.spare);
            next.reserve(current.len());
            match self.call(index, &current.items) {
                Ok(outcomes) if outcomes.len() == current.len() => {
                    self.apply(index, &mut current, outcomes, &mut next, &mut dead)
                }
                Ok(outcomes) => {
                    let reason = format!(
                        "returned {} outcomes for {} events",
                        outcomes.len(),
                        current.len()
                    );
                    tracing::warn!(processor = %self.stages[index].id, "{reason}; isolating events one by one");
                    self.isolate(index, &mut current, &mut next, &mut dead)?
                }
                Err(CallError::Fatal(reason)) => {
                    tracing::warn!(processor = %self.stages[index].id, "batch failed: {reason}; isolating events one by one");
                    self.isolate(index, &mut current, &mut next, &mut dead)?
                }
                Err(CallError::Trap(reason)) => {
                    self.stats[index].traps += 1;
                    tracing::warn!(processor = %self.stages[index].id, "trapped on a batch: {reason}; isolating events one by one");
                    self.reset()?;
                    self.isolate(index, &mut current, &mut next, &mut dead)?
                }
            }
            let ended = Instant::now();
            self.stats[index].busy += ended - started;
            started = ended;
            self.stats[index].events_out += next.len() as u64;
            let drained = std::mem::replace(&mut current, next);
            if drained.items.capacity() <= SPARE_MAX {
                self.spare = drained;
            }
        }
        let Traced {
            items: mut dead,
            origins,
        } = dead;
        for (letter, origin) in dead.iter_mut().zip(origins) {
            if let Some(position) = position_at(&positions, origin as usize) {
                position.put_on(&mut letter.event.headers);
            }
        }
        let positions = follow(positions, &current.origins);
        Ok(ChainOutput {
            events: current.items,
            dead,
            positions,
        })
    }

    /// Moves `events` on as their outcomes say: into `next`, or to `dead`.
    fn apply(
        &mut self,
        index: usize,
        events: &mut Traced<Event>,
        outcomes: Vec<Outcome>,
        next: &mut Traced<Event>,
        dead: &mut Traced<DeadLetter>,
    ) {
        for ((event, origin), outcome) in events.drain().zip(outcomes) {
            match outcome {
                Outcome::Keep if self.stages[index].keep_allowed => next.push(origin, event),
                Outcome::Keep => dead.push(
                    origin,
                    self.dead_letter(
                        index,
                        event,
                        "contract violation: `keep` from a processor that changes the schema"
                            .into(),
                    ),
                ),
                Outcome::Emit(mut emitted) => match self.check_emitted(index, &mut emitted) {
                    Ok(()) => next.extend(origin, emitted),
                    Err(reason) => dead.push(origin, self.dead_letter(index, event, reason)),
                },
                Outcome::Reject(reason) => {
                    dead.push(origin, self.dead_letter(index, event, reason))
                }
            }
        }
    }

    /// Whether what a processor emitted for one input event may move on: few enough events,
    /// each a datum of the stage's output schema, within the batch's output budget. The
    /// lifted outcomes are already in host memory (at most what the guest's memory held);
    /// this bounds what the chain keeps of them. Position headers a processor emitted are
    /// dropped here (only the host says where an event was read).
    fn check_emitted(&mut self, index: usize, emitted: &mut [Event]) -> Result<(), String> {
        let limits = self.limits;
        if emitted.len() > limits.max_emit_per_event {
            return Err(format!(
                "emitted {} events, over limits.max_emit_per_event = {}",
                emitted.len(),
                limits.max_emit_per_event
            ));
        }
        let check = &self.stages[index].output_check;
        let count = emitted.len();
        let mut bytes = 0usize;
        for (i, event) in emitted.iter_mut().enumerate() {
            drop_forged(&mut event.headers);
            check.check(&event.value).map_err(|e| {
                format!(
                    "emitted an event that is not a datum of its output schema: event {} of {}: {e}",
                    i + 1,
                    count
                )
            })?;
            bytes = bytes.saturating_add(event_size(event));
        }
        let total = self.batch_output.saturating_add(bytes);
        if total > limits.max_batch_output_bytes {
            return Err(format!(
                "emitted {bytes} bytes, which would take this batch's output past \
                 limits.max_batch_output_mb = {} (lower limits.batch_size or raise the limit)",
                limits.max_batch_output_bytes >> 20
            ));
        }
        self.batch_output = total;
        Ok(())
    }

    /// Calls the processor on each event alone, so a poison event fails by itself.
    fn isolate(
        &mut self,
        index: usize,
        events: &mut Traced<Event>,
        next: &mut Traced<Event>,
        dead: &mut Traced<DeadLetter>,
    ) -> Result<()> {
        let mut one = Traced::with_capacity(1);
        for (event, origin) in events.drain() {
            match self.call(index, std::slice::from_ref(&event)) {
                Ok(outcomes) if outcomes.len() == 1 => {
                    one.push(origin, event);
                    self.apply(index, &mut one, outcomes, next, dead);
                }
                Ok(outcomes) => {
                    let reason = format!("returned {} outcomes for 1 event", outcomes.len());
                    dead.push(origin, self.dead_letter(index, event, reason));
                }
                Err(CallError::Fatal(reason)) => {
                    let reason = format!("failed: {reason}");
                    dead.push(origin, self.dead_letter(index, event, reason));
                }
                Err(CallError::Trap(reason)) => {
                    self.stats[index].traps += 1;
                    self.reset()?;
                    dead.push(origin, self.dead_letter(index, event, reason));
                }
            }
        }
        Ok(())
    }

    fn dead_letter(&mut self, index: usize, event: Event, reason: String) -> DeadLetter {
        self.stats[index].rejected += 1;
        DeadLetter {
            event,
            stage: Some(index),
            processor: self.stages[index].id.clone(),
            reason,
            schema: Some(self.stages[index].input.clone()),
        }
    }

    /// One `process` call. A trap caused by [`Runtime::interrupt`] also comes back as
    /// `Trap`: `process` then resets the chain, whose `configure` fails with
    /// `Error::Interrupted` before anything is dead-lettered, and the run stops.
    fn call(&mut self, index: usize, batch: &[Event]) -> Result<Vec<Outcome>, CallError> {
        let stage = &self.stages[index];
        begin_call(
            &mut self.store,
            index,
            &stage.id,
            stage.spec.plugin.sha256(),
            self.limits.deadline,
        );
        if self.store.data().interrupted() {
            return Err(CallError::Trap("interrupted: weft is shutting down".into()));
        }
        let result = self.instances[index].process(&mut self.store, batch);
        // A flood that ended with the call is counted now, not at the next log line.
        self.store.data_mut().report_suppressed(false);
        match result {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(reason)) => Err(CallError::Fatal(reason)),
            Err(err) => Err(CallError::Trap(self.trap_reason(&err))),
        }
    }

    /// A reason a user can act on: which limit was hit, or the guest's panic message and
    /// the tail of its stderr.
    fn trap_reason(&mut self, err: &wasmtime::Error) -> String {
        self.store.data_mut().failure(Export::Process, err)
    }

    /// Discards every instance (a trapped instance cannot be entered again) and builds the
    /// chain anew in a fresh store, with the same parameters and schemas.
    fn reset(&mut self) -> Result<()> {
        let mut store = new_store(&self.runtime, self.limits);
        let mut instances = Vec::with_capacity(self.stages.len());
        for (index, stage) in self.stages.iter().enumerate() {
            let plugin = &stage.spec.plugin;
            begin_call(
                &mut store,
                index,
                &plugin.id(),
                plugin.sha256(),
                self.limits.deadline,
            );
            let instance = stage
                .spec
                .plugin
                .pre()
                .instantiate(&mut store)
                .map_err(|e| Error::Configure {
                    processor: stage.id.clone(),
                    reason: format!("re-instantiation after a trap failed: {e:#}"),
                })?;
            configure(
                &mut store,
                &instance,
                index,
                &stage.spec,
                &stage.id,
                &stage.input_json,
                self.limits,
            )?;
            instances.push(instance);
        }
        self.store = store;
        self.instances = instances;
        Ok(())
    }
}

/// What an event costs in host memory.
fn event_size(event: &Event) -> usize {
    std::mem::size_of::<Event>()
        + event.value.len()
        + event.key.as_ref().map_or(0, Vec::len)
        + event
            .headers
            .iter()
            .map(|h| std::mem::size_of_val(h) + h.key.len() + h.value.len())
            .sum::<usize>()
}

fn new_store(runtime: &Runtime, limits: ChainLimits) -> Store<HostState> {
    super::state::new_store(runtime, limits.memory_bytes, limits.deadline)
}

/// Configures stage `stage` under the same deadline as `process`. Fails with
/// `Error::Interrupted` once the runtime is interrupted, without entering the guest.
fn configure(
    store: &mut Store<HostState>,
    instance: &Instance,
    stage: usize,
    spec: &StageSpec,
    id: &str,
    input_json: &str,
    limits: ChainLimits,
) -> Result<Configured> {
    let plugin = &spec.plugin;
    begin_call(store, stage, &plugin.id(), plugin.sha256(), limits.deadline);
    if store.data().interrupted() {
        return Err(Error::Interrupted);
    }
    let failed = |reason: String| Error::Configure {
        processor: id.to_string(),
        reason,
    };
    match instance.configure(&mut *store, &spec.params, input_json) {
        Ok(Ok(configured)) => {
            cap(
                "the output schema it returned",
                &configured.output_schema,
                SCHEMA_MAX,
            )
            .map_err(failed)?;
            Ok(configured)
        }
        Ok(Err(err)) => Err(failed(super::plugin_log::sanitize(&match err.param {
            Some(param) => format!("parameter `{param}`: {}", err.message),
            None => err.message,
        }))),
        Err(_) if store.data().interrupted() => Err(Error::Interrupted),
        Err(trap) => Err(failed(store.data_mut().failure(Export::Configure, &trap))),
    }
}
