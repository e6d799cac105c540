//! Runs the benchmarked chain through weft's own [`Chain`](weft_runtime::Chain), as the
//! in-memory fused variant does, with wasmtime's perf map on (`WEFT_PERF_MAP`), so `perf
//! record` / `perf report` name the guest's functions beside the host's. Build the plugins
//! unstripped for names, e.g.
//! `CARGO_PROFILE_PLUGIN_STRIP=false cargo build --profile plugin --target wasm32-wasip2 --target-dir /tmp/wasm-prof -p weft-plugin-filter -p weft-plugin-project -p weft-plugin-mask`,
//! then `WEFT_PERF_MAP=1 perf record -g target/release/examples/profile_fused /tmp/wasm-prof/wasm32-wasip2/plugin 200000 [batch]`.

use anyhow::Context;
use weft_bench::fused::{build_chain, event, process};
use weft_bench::stages::plugin_dir_and_events;
use weft_bench::workload::Workload;
use weft_runtime::{Runtime, RuntimeOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (dir, events) = plugin_dir_and_events(&mut args)?;
    // Batch 1 shows what each call costs whatever its size (low rates over Kafka).
    let batch: usize = args
        .next()
        .map_or(Ok(1024), |n| n.parse())
        .context("batch size")?;

    anyhow::ensure!(
        std::env::var_os("WEFT_PERF_MAP").is_some(),
        "set WEFT_PERF_MAP=1, or perf cannot name the guest's functions"
    );
    // No cache: code loaded from it would not be in the perf map under the guest's names.
    let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).context("runtime")?;
    let workload = Workload::generate(16_384)?;
    let mut chain = build_chain(&runtime, &dir, workload.schema().clone())?;
    let mut source = workload.source(events);
    let mut out = 0usize;
    while source.remaining() > 0 {
        out += process(&mut chain, source.next_batch(batch, event))?;
    }
    println!("{out} events out");
    Ok(())
}
