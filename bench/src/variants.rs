//! The in-process variants, each run by a child process of the driver: native, fused at a
//! given batch size, and the start-up costs (plugin load, instantiation, chain build).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use weft_runtime::{Runtime, RuntimeOptions, StageSpec};

use crate::bare::Bare;
use crate::fused::{self, LIMITS};
use crate::measure::{self, VariantResult, own_peak_rss_mib};
use crate::native::{self, NativeChain};
use crate::report::Startup;
use crate::stages::{STAGES, owned_params, plugin_path};
use crate::workload::{DISTINCT, TITLE_SCHEMA, Workload};

/// Events run before the timed loop so that allocators, caches and guest memories are
/// warm; a tenth of the run, at most 20,000.
fn warm_up_events(events: u64) -> u64 {
    (events / 10).min(20_000)
}

/// Native chain at `batch` events per batch.
pub fn native(events: u64, batch: usize) -> anyhow::Result<VariantResult> {
    let workload = Workload::generate(DISTINCT)?;
    let mut chain = NativeChain::build(TITLE_SCHEMA)?;
    let process = |chain: &mut NativeChain, batch| chain.process(batch).map(|out| out.len());
    let mut warm = workload.source(warm_up_events(events));
    measure::drive(&mut warm, batch, native::event, |b| process(&mut chain, b))?;
    chain.reset_stats();
    let mut source = workload.source(events);
    let mut run = measure::drive(&mut source, batch, native::event, |b| {
        process(&mut chain, b)
    })?;
    let mut result = VariantResult {
        variant: "native".into(),
        batch,
        stages: STAGES.len(),
        events_in: run.events_in,
        events_out: run.events_out,
        elapsed_s: run.elapsed.as_secs_f64(),
        stage_ns_per_event: chain.stage_ns_per_event(),
        p50_batch_us: run.batch_quantile_us(0.5),
        p99_batch_us: run.batch_quantile_us(0.99),
        peak_rss_mib: own_peak_rss_mib(),
        note: Some(
            "the same chain hand-written in Rust over the Avro bytes, no Wasm, no SDK".into(),
        ),
        ..VariantResult::default()
    };
    result.finish_rates();
    Ok(result)
}

/// The fused Wasm chain at `batch` events per component call.
pub fn fused(plugin_dir: &Path, events: u64, batch: usize) -> anyhow::Result<VariantResult> {
    let workload = Workload::generate(DISTINCT)?;
    let runtime = Runtime::new(RuntimeOptions::default()).context("starting the runtime")?;
    let mut chain = fused::build_chain(&runtime, plugin_dir, workload.schema().clone())?;
    let mut warm = workload.source(warm_up_events(events));
    measure::drive(&mut warm, batch, fused::event, |b| {
        fused::process(&mut chain, b)
    })?;
    let before = chain.stats().to_vec();
    let mut source = workload.source(events);
    let mut run = measure::drive(&mut source, batch, fused::event, |b| {
        fused::process(&mut chain, b)
    })?;
    let mut result = VariantResult {
        variant: "fused".into(),
        batch,
        stages: STAGES.len(),
        events_in: run.events_in,
        events_out: run.events_out,
        elapsed_s: run.elapsed.as_secs_f64(),
        stage_ns_per_event: fused::stage_ns_per_event(&before, chain.stats()),
        p50_batch_us: run.batch_quantile_us(0.5),
        p99_batch_us: run.batch_quantile_us(0.99),
        peak_rss_mib: own_peak_rss_mib(),
        ..VariantResult::default()
    };
    result.finish_rates();
    Ok(result)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn time<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed(), value))
}

/// Start-up costs of the chain's plugins.
pub fn startup(plugin_dir: &Path) -> anyhow::Result<Startup> {
    let paths = STAGES
        .iter()
        .map(|s| plugin_path(plugin_dir, s.plugin))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Cold: no cache, Cranelift compiles every component.
    let cold = Runtime::new(RuntimeOptions { cache_dir: None }).context("starting the runtime")?;
    let mut cold_times = Vec::new();
    for path in &paths {
        cold_times.push(time(|| Ok(cold.load_file(path)?))?.0);
    }

    // Warm: a private cache, filled by a first load of each component.
    let cache = tempfile::tempdir().context("creating a cache dir")?;
    let warm = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
    })
    .context("starting the runtime")?;
    let mut plugins = Vec::new();
    for path in &paths {
        plugins.push(warm.load_file(path)?);
    }
    let mut warm_times = Vec::new();
    for _ in 0..10 {
        for path in &paths {
            warm_times.push(time(|| Ok(warm.load_file(path)?))?.0);
        }
    }

    // Instantiation alone, and with `configure`, each in a fresh store.
    let mut instantiate_times = Vec::new();
    let mut configure_times = Vec::new();
    let mut input = TITLE_SCHEMA.to_owned();
    for (def, path) in STAGES.iter().zip(&paths) {
        let bare = Bare::load(warm.engine(), path)?;
        let params = owned_params(def);
        for _ in 0..100 {
            let mut store = bare.store();
            instantiate_times.push(time(|| bare.instantiate(&mut store))?.0);
        }
        let mut output = String::new();
        for _ in 0..30 {
            let mut store = bare.store();
            let (took, (_, out)) = time(|| bare.configured(&mut store, &params, &input))?;
            configure_times.push(took);
            output = out;
        }
        input = output;
    }

    // The whole chain from loaded plugins.
    let schema = Workload::generate(1)?.schema().clone();
    let specs: Vec<StageSpec> = STAGES
        .iter()
        .zip(plugins)
        .map(|(def, plugin)| StageSpec {
            plugin,
            params: owned_params(def),
        })
        .collect();
    let mut build_times = Vec::new();
    for _ in 0..20 {
        let specs = specs.clone();
        let schema = schema.clone();
        let runtime = &warm;
        build_times
            .push(time(|| Ok(weft_runtime::Chain::build(runtime, specs, schema, LIMITS)?))?.0);
    }

    let mean_ms = |t: &[Duration]| {
        t.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / t.len().max(1) as f64
    };
    Ok(Startup {
        load_cold_ms: mean_ms(&cold_times),
        load_warm_ms: median(warm_times).as_secs_f64() * 1e3,
        instantiate_us: median(instantiate_times).as_secs_f64() * 1e6,
        instantiate_configure_us: median(configure_times).as_secs_f64() * 1e6,
        chain_build_us: median(build_times).as_secs_f64() * 1e6,
    })
}
