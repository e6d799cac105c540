//! Runs the benchmarked chain's components through the bare harness with wasmtime's perf
//! map on, so `perf record` / `perf report` name the guest's functions. Build the plugins
//! unstripped for names, e.g.
//! `CARGO_PROFILE_PLUGIN_STRIP=false cargo build --profile plugin --target wasm32-wasip2 --target-dir /tmp/wasm-prof -p weft-plugin-filter -p weft-plugin-project -p weft-plugin-mask`,
//! then `perf record -g target/release/examples/profile_fused /tmp/wasm-prof/wasm32-wasip2/plugin 200000`.

use std::path::PathBuf;

use anyhow::Context;
use weft_bench::bare::{Bare, Event, Outcome, wasm};
use weft_bench::stages::{STAGES, default_plugin_dir, owned_params, plugin_path};
use weft_bench::workload::{TITLE_SCHEMA, Workload};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(default_plugin_dir, PathBuf::from);
    let events: u64 = args
        .next()
        .map_or(Ok(200_000), |n| n.parse())
        .context("event count")?;
    let batch = 1024;

    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    let engine = wasmtime::Engine::new(&config).map_err(wasm)?;

    let mut stages = Vec::new();
    let mut input = TITLE_SCHEMA.to_owned();
    for def in STAGES {
        let bare = Bare::load(&engine, &plugin_path(&dir, def.plugin)?)?;
        let mut store = bare.store();
        let (processor, output) = bare.configured(&mut store, &owned_params(def), &input)?;
        input = output;
        stages.push((store, processor));
    }

    let workload = Workload::generate(16_384)?;
    let mut source = workload.source(events);
    let mut out = 0usize;
    while source.remaining() > 0 {
        let mut current = source.next_batch(batch, |value| Event {
            key: None,
            value,
            headers: Vec::new(),
            timestamp: None,
        });
        for (store, processor) in &mut stages {
            let outcomes = processor
                .weft_processor_stage()
                .call_process(&mut *store, &current)
                .map_err(wasm)?
                .map_err(anyhow::Error::msg)?;
            let mut next = Vec::with_capacity(current.len());
            for (event, outcome) in current.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Keep => next.push(event),
                    Outcome::Emit(events) => next.extend(events),
                    Outcome::Reject(reason) => anyhow::bail!("rejected: {reason}"),
                }
            }
            current = next;
        }
        out += current.len();
    }
    println!("{out} events out");
    Ok(())
}
