//! The native variant: the shipped plugins' own Rust code, linked as libraries and run
//! through the SDK's native path (`weft_guest::testing`), which is the component's exact
//! configure / decode / process / encode path without the component ABI. Plain Rust over
//! the same Avro bytes, in-process.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use apache_avro::Schema;
use weft_guest::testing::{TestStage, WireEvent, WireOutcome, configure_record};

use crate::stages::{STAGES, StageDef};

struct NativeStage {
    name: &'static str,
    stage: TestStage,
    /// The schema (JSON) `configure` said the stage emits.
    output: String,
    /// The stage emits its input schema, so it may answer `keep`.
    keep_allowed: bool,
    events_in: u64,
    busy: Duration,
}

/// The benchmarked chain, natively.
pub struct NativeChain {
    stages: Vec<NativeStage>,
}

fn configure(def: &StageDef, input: &str) -> anyhow::Result<TestStage> {
    let configured = match def.plugin {
        "filter" => configure_record::<filter::Filter>(def.params, input),
        "project" => configure_record::<project::Project>(def.params, input),
        "mask" => configure_record::<mask::Mask>(def.params, input),
        other => return Err(anyhow!("no native build of plugin {other}")),
    };
    configured.map_err(|e| anyhow!("{}: configure failed: {}", def.plugin, e.message))
}

fn canonical(json: &str) -> anyhow::Result<String> {
    Ok(Schema::parse_str(json)
        .context("schema returned by configure")?
        .canonical_form())
}

impl NativeChain {
    /// Configures every stage of [`STAGES`] in order, feeding each the schema the previous
    /// one emits, as the host does.
    pub fn build(input_schema: &str) -> anyhow::Result<Self> {
        let mut stages = Vec::with_capacity(STAGES.len());
        let mut input = input_schema.to_owned();
        for def in STAGES {
            let stage = configure(def, &input)?;
            let output = stage.output_schema().to_owned();
            let keep_allowed = canonical(&output)? == canonical(&input)?;
            stages.push(NativeStage {
                name: def.plugin,
                stage,
                output: output.clone(),
                keep_allowed,
                events_in: 0,
                busy: Duration::ZERO,
            });
            input = output;
        }
        Ok(Self { stages })
    }

    /// Runs one batch through every stage and returns what comes out; rejections fail the
    /// run (the workload has none).
    pub fn process(&mut self, batch: Vec<WireEvent>) -> anyhow::Result<Vec<WireEvent>> {
        let mut current = batch;
        for stage in &mut self.stages {
            if current.is_empty() {
                break;
            }
            let started = Instant::now();
            stage.events_in += current.len() as u64;
            // The SDK's stage consumes its batch, as the component does its lowered copy;
            // a stage that may answer `keep` needs the input events back, so it gets a copy
            // (the native counterpart of the host copying the batch into guest memory).
            let (input, kept) = if stage.keep_allowed {
                (current.clone(), Some(current))
            } else {
                (current, None)
            };
            let len = input.len();
            let outcomes = stage
                .stage
                .process_events(input)
                .map_err(|e| anyhow!("{}: {e}", stage.name))?;
            let mut next = Vec::with_capacity(len);
            let mut kept = kept.map(Vec::into_iter);
            for outcome in outcomes {
                let original = kept.as_mut().and_then(Iterator::next);
                match (outcome, original) {
                    (WireOutcome::Keep, Some(event)) => next.push(event),
                    (WireOutcome::Keep, None) => {
                        return Err(anyhow!("{}: keep from a schema-changing stage", stage.name));
                    }
                    (WireOutcome::Emit(events), _) => next.extend(events),
                    (WireOutcome::Reject(reason), _) => {
                        return Err(anyhow!("{}: rejected an event: {reason}", stage.name));
                    }
                }
            }
            stage.busy += started.elapsed();
            current = next;
        }
        Ok(current)
    }

    /// The schema (JSON) each stage emits, in order.
    pub fn output_schemas(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.output.clone()).collect()
    }

    /// Busy nanoseconds per received event, per stage, since the last reset.
    pub fn stage_ns_per_event(&self) -> Vec<f64> {
        self.stages
            .iter()
            .map(|s| s.busy.as_nanos() as f64 / s.events_in.max(1) as f64)
            .collect()
    }

    /// Forgets the counters (after a warm-up).
    pub fn reset_stats(&mut self) {
        for stage in &mut self.stages {
            stage.events_in = 0;
            stage.busy = Duration::ZERO;
        }
    }
}

/// A native event carrying `value`, as a source without keys or headers makes it.
pub fn event(value: Vec<u8>) -> WireEvent {
    WireEvent {
        key: None,
        value,
        headers: Vec::new(),
        timestamp: None,
    }
}
