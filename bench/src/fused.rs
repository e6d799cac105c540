//! The fused variant: the shipped components chained in one wasmtime `Store` by weft's own
//! [`Chain`], one call per processor per batch.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use apache_avro::Schema;
use weft_host::Event;
use weft_runtime::{Chain, ChainLimits, Runtime, StageSpec, StageStats};

use crate::stages::{STAGES, StageDef, owned_params, plugin_path};

/// The limits of a default pipeline file (`[limits]` left out).
pub const LIMITS: ChainLimits = ChainLimits::DEFAULT;

/// Loads the components of [`STAGES`] from `plugin_dir` and builds the chain.
pub fn build_chain(
    runtime: &Runtime,
    plugin_dir: &Path,
    input: Arc<Schema>,
) -> anyhow::Result<Chain> {
    build_stages(runtime, plugin_dir, STAGES, input)
}

/// Loads the components of `defs` (some of [`STAGES`]) from `plugin_dir` and chains them.
pub fn build_stages(
    runtime: &Runtime,
    plugin_dir: &Path,
    defs: &[StageDef],
    input: Arc<Schema>,
) -> anyhow::Result<Chain> {
    let mut specs = Vec::with_capacity(defs.len());
    for def in defs {
        let path = plugin_path(plugin_dir, def.plugin)?;
        let plugin = runtime
            .load_file(&path)
            .with_context(|| format!("loading plugin {}", path.display()))?;
        specs.push(StageSpec {
            plugin,
            params: owned_params(def),
        });
    }
    Chain::build(runtime, specs, input, LIMITS).context("building the fused chain")
}

/// Runs one batch and returns how many events came out; dead letters fail the run (the
/// workload has none).
pub fn process(chain: &mut Chain, batch: Vec<Event>) -> anyhow::Result<usize> {
    let output = chain.process(batch).context("processing a batch")?;
    if let Some(dead) = output.dead.first() {
        anyhow::bail!(
            "{} dead letters, e.g. from {}: {}",
            output.dead.len(),
            dead.processor,
            dead.reason
        );
    }
    Ok(output.events.len())
}

/// Busy nanoseconds per received event of each stage between two snapshots of the stats.
pub fn stage_ns_per_event(before: &[StageStats], after: &[StageStats]) -> Vec<f64> {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| {
            let events = a.events_in.saturating_sub(b.events_in).max(1);
            a.busy.saturating_sub(b.busy).as_nanos() as f64 / events as f64
        })
        .collect()
}

/// A host event carrying `value`, as a source without keys or headers makes it.
pub fn event(value: Vec<u8>) -> Event {
    Event {
        key: None,
        value,
        headers: Vec::new(),
        timestamp: None,
    }
}
