//! Building a pipeline from its config (load plugins, check every link) and running it
//! one batch at a time: [`Pipeline::build`], [`Pipeline::open`], [`RunningPipeline::step`]
//! until the source is exhausted, [`RunningPipeline::close`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use weft_runtime::{Chain, ChainLimits, DeadLetter, Plugin, Runtime, StageSpec, StageStats};

use crate::config::{PipelineConfig, ProcessorConfig};
use crate::io::{
    Batch, DeadLetterSink, DeliveryGate, Sink, Source, Stall, Ticket, open_dead_letter, open_sink,
    open_sources,
};
pub use crate::resolve::{LocalOnly, PluginResolver};
use crate::{Error, Result};

/// A pipeline whose plugins are loaded and whose links are checked; nothing is running yet
/// and no sink has been opened.
pub struct Pipeline {
    config: PipelineConfig,
    source: Box<dyn Source>,
    chain: Chain,
    /// sha256 of each processor's component, in chain order.
    digests: Vec<String>,
    source_schema: Arc<Schema>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.config.pipeline.name)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Opens the sources, loads every plugin, checks its parameters, configures the chain and
    /// checks each link's schemas. Fails before any event moves.
    pub fn build(
        config: PipelineConfig,
        runtime: &Runtime,
        resolver: &dyn PluginResolver,
    ) -> Result<Self> {
        let source = open_sources(&config.sources, config.limits.max_depth)?;
        let source_schema = source.schema();
        let (chain, digests) = build_chain(&config, runtime, resolver, source_schema.clone())?;
        Ok(Self {
            config,
            source,
            chain,
            digests,
            source_schema,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// sha256 of each processor's component, in chain order.
    pub fn stage_digests(&self) -> &[String] {
        &self.digests
    }

    /// Schema of the events the sink receives.
    pub fn output_schema(&self) -> Arc<Schema> {
        self.chain
            .output_schema()
            .unwrap_or_else(|| self.source_schema.clone())
    }

    pub fn source_schema(&self) -> Arc<Schema> {
        self.source_schema.clone()
    }

    pub fn source_name(&self) -> String {
        self.source.name()
    }

    /// The registry id of the source's reader schema, when it follows a subject's latest.
    pub fn reader_schema_id(&self) -> Option<u32> {
        self.source.reader_schema_id()
    }

    /// Runs until the source is exhausted or `options.stop` is set (checked before each
    /// batch): [`Pipeline::open`], [`RunningPipeline::step`] in a loop, then
    /// [`RunningPipeline::close`], on a run thread of its own ([`on_run_thread`]).
    pub fn run(self, options: &RunOptions) -> Result<RunSummary> {
        on_run_thread(move || {
            let mut running = self.open()?;
            while !options.stop.load(Ordering::Relaxed) {
                if running.step()?.exhausted {
                    break;
                }
            }
            running.close()
        })?
    }

    /// Opens the sink and the dead-letter sink; nothing is read before the first step.
    pub fn open(self) -> Result<RunningPipeline> {
        let started = Instant::now();
        let limits = self.config.limits;
        let output_schema = self.output_schema();
        let stall = Stall::default();
        let sink = open_sink(
            &self.config.sink,
            output_schema.clone(),
            limits.max_depth,
            &stall,
        )?;
        let dead_sink = open_dead_letter(&self.config.dead_letter, limits.max_depth, &stall)?;
        let summary = RunSummary {
            source: self.source.name(),
            sink: sink.name(),
            dead_letter: dead_sink.name().to_string(),
            processors: self.chain.stage_ids(),
            ..RunSummary::default()
        };
        let mut source = self.source;
        source.watch_deliveries(gates(sink.as_ref(), &dead_sink));
        Ok(RunningPipeline {
            source,
            chain: self.chain,
            digests: self.digests,
            sink,
            dead_sink,
            output_schema,
            batch_size: limits.batch_size,
            linger: Duration::from_millis(limits.linger_ms),
            max_depth: limits.max_depth,
            batch: Batch::default(),
            polls: Ticket::default(),
            in_flight: None,
            unreported: Step::default(),
            failed: false,
            summary,
            started,
            exhausted: false,
            stall,
        })
    }
}

/// A pipeline whose sinks are open. Whoever drives it decides when to step and when to
/// stop: the CLI steps until the source is exhausted or a signal arrives, printing progress
/// between steps. Step it on a run thread ([`on_run_thread`]).
pub struct RunningPipeline {
    source: Box<dyn Source>,
    chain: Chain,
    digests: Vec<String>,
    sink: Box<dyn Sink>,
    dead_sink: DeadLetterSink,
    output_schema: Arc<Schema>,
    batch_size: usize,
    linger: Duration,
    /// Deepest nesting the sinks accept (`limits.max_depth`), for sinks opened by a swap.
    max_depth: usize,
    /// Reused from batch to batch.
    batch: Batch,
    /// The ticket of the last poll (`Source::acknowledge`).
    polls: Ticket,
    /// The batch written to the sinks and not flushed yet.
    in_flight: Option<InFlight>,
    /// Counts of a batch completed between two steps (by a swap), which the next step
    /// reports with its own.
    unreported: Step,
    /// A step failed: the batch in flight may be lost in the sinks, so it is never
    /// acknowledged and no further step runs (a restart reads it again).
    failed: bool,
    /// The totals so far.
    summary: RunSummary,
    started: Instant,
    exhausted: bool,
    /// Why a sink's flush is waiting (a broker that is down), shared with every sink opened.
    stall: Stall,
}

/// What one [`RunningPipeline::step`] did: the counts of the batches it completed (flushed
/// and acknowledged to the source), so `events_out` counts only what the sinks confirmed.
/// With a Kafka sink that is the batch the step before wrote; with file or stdout sinks,
/// which are flushed as soon as written, the step's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Events read from the source (including those it could not decode).
    pub events_in: u64,
    pub events_out: u64,
    /// Events the source could not decode (also counted in `dead_letters`).
    pub source_rejected: u64,
    /// Events the sink could not write (also counted in `dead_letters`).
    pub sink_refused: u64,
    pub dead_letters: u64,
    /// Events this step read and wrote that are still in flight (not flushed yet): a later
    /// step, or closing the run, completes and counts them.
    pub in_flight: u64,
    /// The source has nothing more; a further step reads nothing.
    pub exhausted: bool,
}

impl Step {
    /// Adds the counts of a completed batch.
    fn add(&mut self, done: &Step) {
        self.events_in += done.events_in;
        self.events_out += done.events_out;
        self.source_rejected += done.source_rejected;
        self.sink_refused += done.sink_refused;
        self.dead_letters += done.dead_letters;
    }
}

/// A batch written to the sinks and not flushed yet: its poll's ticket and its counts.
struct InFlight {
    ticket: Ticket,
    counts: Step,
    /// The chain ran over it (a poll of dead letters only is no batch in the summary).
    processed: bool,
}

impl RunningPipeline {
    /// Moves one batch, overlapping it with the one before: polls batch k from the source,
    /// runs the chain over it, then flushes batch k-1 (written by the previous step) and
    /// acknowledges it to the source (`Source::acknowledge`; a Kafka source commits
    /// acknowledged offsets on a timer), and only then writes batch k and its dead letters,
    /// which stay in flight while the next step polls. So a broker's acknowledgements of one
    /// batch overlap the next poll and chain, and per-partition order holds: when a flush
    /// runs, only one batch is in flight. Sinks without a delivery gate (files, stdout) are
    /// flushed as soon as they are written, so a source's revoke never waits on them.
    ///
    /// The batch of the step that exhausts the source is flushed and acknowledged before the
    /// step returns; [`RunningPipeline::close`] and [`RunningPipeline::swap`] finish the one
    /// in flight. After an error nothing more is acknowledged (a restart reads the batch in
    /// flight again) and every further step fails.
    pub fn step(&mut self) -> Result<Step> {
        self.refuse_after_failure()?;
        let stepped = self.move_batch();
        if stepped.is_err() {
            self.failed = true;
        }
        stepped
    }

    /// After a failed step the run cannot go on: neither a step nor a swap.
    fn refuse_after_failure(&self) -> Result<()> {
        if self.failed {
            return Err(Error::Runtime(
                "an earlier step failed; the run cannot go on (a restart reads the batch in flight again)".into(),
            ));
        }
        Ok(())
    }

    fn move_batch(&mut self) -> Result<Step> {
        if self.exhausted {
            return Ok(Step {
                exhausted: true,
                ..Step::default()
            });
        }
        self.batch.clear();
        let more = self
            .source
            .poll(self.batch_size, self.linger, &mut self.batch)?;
        self.polls = self.polls.next();
        let mut counts = Step {
            events_in: self.batch.len() as u64,
            source_rejected: self.batch.dead.len() as u64,
            ..Step::default()
        };
        let mut dead = std::mem::take(&mut self.batch.dead);
        let output = if self.batch.events.is_empty() {
            None
        } else {
            let events = std::mem::take(&mut self.batch.events);
            let positions = std::mem::take(&mut self.batch.positions);
            Some(self.chain.process_at(events, positions)?)
        };
        let mut step = std::mem::take(&mut self.unreported);
        step.add(&self.finish_in_flight()?);
        let processed = output.is_some();
        if let Some(mut output) = output {
            let refused = self.sink.write(&output.events)?;
            counts.events_out = (output.events.len() - refused.len()) as u64;
            counts.sink_refused = refused.len() as u64;
            dead.append(&mut output.dead);
            dead.extend(refused.into_iter().map(|r| DeadLetter {
                event: output.dead_event(r.index),
                stage: None,
                processor: self.summary.sink.clone(),
                reason: r.reason,
                schema: Some(self.output_schema.clone()),
            }));
        }
        counts.dead_letters = dead.len() as u64;
        self.dead_sink.write(&dead)?;
        let sink_gated = self.sink.delivery_gate().is_some();
        let dead_gated = self.dead_sink.delivery_gate().is_some();
        if !sink_gated {
            self.sink.flush()?;
        }
        if !dead_gated {
            self.dead_sink.flush()?;
        }
        self.in_flight = Some(InFlight {
            ticket: self.polls,
            counts,
            processed,
        });
        if !more || !(sink_gated || dead_gated) {
            // Nothing left to overlap with, or nothing to wait for: complete it now.
            let done = self.finish_in_flight()?;
            step.add(&done);
        } else {
            step.in_flight = counts.events_in;
        }
        step.exhausted = !more;
        self.exhausted = !more;
        Ok(step)
    }

    /// Flushes the batch in flight (waits for every delivery), acknowledges it to the
    /// source and adds it to the run's totals; returns its counts. Nothing is in flight
    /// afterwards.
    fn finish_in_flight(&mut self) -> Result<Step> {
        let Some(batch) = self.in_flight.take() else {
            return Ok(Step::default());
        };
        self.sink.flush()?;
        self.dead_sink.flush()?;
        self.source.acknowledge(batch.ticket)?;
        self.summary.add(&batch.counts);
        self.summary.batches += u64::from(batch.processed);
        Ok(batch.counts)
    }

    /// What the run has done so far, as [`RunningPipeline::close`] would report it now.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            elapsed: self.started.elapsed(),
            stages: self.chain.stats().to_vec(),
            digests: self.digests.clone(),
            ..self.summary.clone()
        }
    }

    /// Flushes and acknowledges the batch in flight (unless a step failed), closes the sink
    /// (finishing an Avro container file), flushes the dead-letter sink and closes the
    /// source, which commits what was acknowledged (a Kafka source otherwise commits on a
    /// timer). A run closed before its source was exhausted counts as interrupted.
    pub fn close(mut self) -> Result<RunSummary> {
        if !self.failed {
            self.finish_in_flight()?;
        }
        self.sink.close()?;
        self.dead_sink.flush()?;
        self.source.close()?;
        Ok(RunSummary {
            interrupted: !self.exhausted,
            ..self.summary()
        })
    }
}

/// The delivery gates of a pipeline's sinks, for its source's revoke callback.
fn gates(sink: &dyn Sink, dead_sink: &DeadLetterSink) -> Vec<Arc<dyn DeliveryGate>> {
    sink.delivery_gate()
        .into_iter()
        .chain(dead_sink.delivery_gate())
        .collect()
}

/// Loads every processor of `config`, checks its parameters and builds the chain against
/// `input` (the source's schema), checking each link; also the sha256 of each component. A
/// build reads no event, so `weft serve` builds a new version's chain beside the running one
/// and swaps it in between two batches ([`RunningPipeline::swap`]).
pub fn build_chain(
    config: &PipelineConfig,
    runtime: &Runtime,
    resolver: &dyn PluginResolver,
    input: Arc<Schema>,
) -> Result<(Chain, Vec<String>)> {
    let mut specs = Vec::with_capacity(config.processors.len());
    let mut digests = Vec::with_capacity(config.processors.len());
    let mut problems = Vec::new();
    for (index, p) in config.processors.iter().enumerate() {
        match resolver.resolve(runtime, &p.plugin) {
            Ok(plugin) => {
                digests.push(plugin.sha256().to_string());
                match stage_spec(index, p, plugin) {
                    Ok(spec) => specs.push(spec),
                    Err(mut found) => problems.append(&mut found),
                }
            }
            Err(e) => problems.push(format!("processor[{index}].plugin: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Processors { problems });
    }
    let limits = ChainLimits {
        memory_bytes: (config.limits.memory_mb as usize) << 20,
        deadline: Duration::from_millis(config.limits.deadline_ms),
        max_depth: config.limits.max_depth,
        max_emit_per_event: config.limits.max_emit_per_event,
        max_batch_output_bytes: usize::try_from(config.limits.max_batch_output_mb << 20)
            .unwrap_or(usize::MAX),
    };
    Ok((Chain::build(runtime, specs, input, limits)?, digests))
}

/// The stage of one `[[processor]]`, or every problem with its parameters.
fn stage_spec(
    index: usize,
    config: &ProcessorConfig,
    plugin: Plugin,
) -> std::result::Result<StageSpec, Vec<String>> {
    let manifest = plugin.manifest();
    let key = format!("processor[{index}]");
    let mut problems = Vec::new();
    for name in config.params.keys() {
        if !manifest.params.iter().any(|p| &p.name == name) {
            let known: Vec<_> = manifest.params.iter().map(|p| p.name.as_str()).collect();
            problems.push(format!(
                "{key}.params.{name}: {} has no parameter `{name}` (it takes: {})",
                plugin.id(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    for p in &manifest.params {
        if p.required && p.default.is_none() && !config.params.contains_key(&p.name) {
            problems.push(format!(
                "{key}.params: {} requires parameter `{}` ({})",
                plugin.id(),
                p.name,
                p.description
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let params = config
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    Ok(StageSpec { plugin, params })
}

/// Stack of the thread a run's loop runs on. apache-avro decodes, encodes and resolves
/// values by recursion, and so do the JSON conversions: measured in a debug build, decoding
/// a linked list takes about 100 KiB of stack per level (15 KiB to convert it from JSON,
/// 33 KiB to encode it), so the default `limits.max_depth` of 64 needs about 6.3 MiB — more
/// than a Rust test thread's 2 MiB and most of the main thread's 8 MiB. 64 MiB leaves ten
/// times that (and the largest `max_depth` allowed, 256, fits too); it is reserved address
/// space, and only the pages a run touches take memory.
pub const RUN_STACK_BYTES: usize = 64 << 20;

/// Calls `run` on a thread with a [`RUN_STACK_BYTES`] stack and returns what it returns
/// (its panic resumes here). Steps belong on such a thread, whichever thread drives them;
/// fails only when the thread cannot start.
pub fn on_run_thread<T: Send>(run: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let run = std::thread::Builder::new()
            .name("weft-run".into())
            .stack_size(RUN_STACK_BYTES)
            .spawn_scoped(scope, run)
            .map_err(|e| Error::Runtime(format!("starting the run thread: {e}")))?;
        Ok(run
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// How [`Pipeline::run`] stops.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Set to stop after the current batch (Ctrl-C).
    pub stop: Arc<AtomicBool>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub source: String,
    pub sink: String,
    pub dead_letter: String,
    /// `name@version` of each processor, in chain order.
    pub processors: Vec<String>,
    /// Hex sha256 of each processor's component, in chain order: with `processors`, the
    /// pinned pipeline the run used (`name@version@<sha256 hex>`, as `weft serve`'s status
    /// shows it).
    pub digests: Vec<String>,
    /// Events read from the source (including those it could not decode).
    pub events_in: u64,
    pub events_out: u64,
    /// Events the source could not decode (also counted in `dead_letters`).
    pub source_rejected: u64,
    /// Events the sink could not write (also counted in `dead_letters`).
    pub sink_refused: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub stages: Vec<StageStats>,
    pub elapsed: Duration,
    /// Closed before the source was exhausted (stopped by a signal).
    pub interrupted: bool,
}

impl RunSummary {
    /// Adds the counts of a completed batch to the totals.
    fn add(&mut self, done: &Step) {
        self.events_in += done.events_in;
        self.events_out += done.events_out;
        self.source_rejected += done.source_rejected;
        self.sink_refused += done.sink_refused;
        self.dead_letters += done.dead_letters;
    }

    /// The digest of processor `index`, empty when unknown.
    fn digest(&self, index: usize) -> &str {
        self.digests.get(index).map_or("", String::as_str)
    }

    /// Events read per batch the chain ran over, on average; 0 before the first. At a low
    /// rate a batch is what the source had ready, so this says how much of the cost was per
    /// batch rather than per event.
    pub fn events_per_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.events_in as f64 / self.batches as f64
        }
    }

    /// The summary as JSON, for scripts and benchmarks.
    pub fn to_json(&self) -> serde_json::Value {
        let secs = self.elapsed.as_secs_f64();
        serde_json::json!({
            "source": self.source,
            "sink": self.sink,
            "dead_letter": self.dead_letter,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "dead_letters": self.dead_letters,
            "source_rejected": self.source_rejected,
            "sink_refused": self.sink_refused,
            "batches": self.batches,
            "events_per_batch": self.events_per_batch(),
            "elapsed_s": secs,
            "events_per_s": self.events_in as f64 / secs.max(1e-9),
            "interrupted": self.interrupted,
            "processors": self.processors.iter().zip(&self.stages).enumerate().map(|(i, (name, s))| serde_json::json!({
                "processor": name,
                "sha256": self.digest(i),
                "pin": format!("{name}@{}", self.digest(i)),
                "events_in": s.events_in,
                "events_out": s.events_out,
                "rejected": s.rejected,
                "traps": s.traps,
                "busy_s": s.busy.as_secs_f64(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "source       {}", self.source)?;
        writeln!(f, "sink         {}", self.sink)?;
        writeln!(f, "dead letters {}", self.dead_letter)?;
        // The sha256 column shows a prefix, enough to tell builds apart; `--json` has it whole.
        writeln!(
            f,
            "{:<4} {:<28} {:<12} {:>10} {:>10} {:>9} {:>6} {:>10}",
            "#", "processor", "sha256", "in", "out", "rejected", "traps", "ns/event"
        )?;
        for (i, (name, s)) in self.processors.iter().zip(&self.stages).enumerate() {
            let ns = if s.events_in == 0 {
                0.0
            } else {
                s.busy.as_nanos() as f64 / s.events_in as f64
            };
            let digest = self.digest(i);
            writeln!(
                f,
                "{:<4} {:<28} {:<12} {:>10} {:>10} {:>9} {:>6} {:>10.0}",
                i + 1,
                name,
                digest.get(..12).unwrap_or(digest),
                s.events_in,
                s.events_out,
                s.rejected,
                s.traps,
                ns
            )?;
        }
        write!(
            f,
            "{} events in, {} out, {} dead letters ({} undecodable at the source{}) in {:.2}s — {:.0} events/s, {} batches of {:.1} events on average{}",
            self.events_in,
            self.events_out,
            self.dead_letters,
            self.source_rejected,
            if self.sink_refused > 0 {
                format!(", {} refused by the sink", self.sink_refused)
            } else {
                String::new()
            },
            secs,
            self.events_in as f64 / secs.max(1e-9),
            self.batches,
            self.events_per_batch(),
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )
    }
}

mod swap;
pub use swap::{Replaced, Swap};

#[cfg(test)]
mod deep_nesting_tests;
#[cfg(test)]
mod tests;
