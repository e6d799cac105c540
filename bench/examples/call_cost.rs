//! What one `process` call of each benchmarked stage costs, alone and chained, at small and
//! large batches: ns per event per stage (best of five rounds, wall clock on one thread).
//! The difference between batch 1 and batch 1024 is the fixed cost of a call, what a
//! pipeline pays per batch when events trickle in (`target/release/examples/call_cost`).

use std::time::Instant;

use anyhow::Context;
use weft_bench::fused::{build_stages, event, process};
use weft_bench::stages::{STAGES, StageDef, plugin_dir_and_events};
use weft_bench::workload::Workload;
use weft_runtime::{Chain, Runtime, RuntimeOptions};

/// ns per event per stage at batch 1 with a 500 µs pause between calls, as at 2,000
/// events/s over Kafka: caches and branch predictors go cold between batches. Each call is
/// timed alone (the pauses are not counted) and the median call is taken, so a call the
/// machine's other work preempted does not count.
fn paced(c: &mut Chain, workload: &Workload, stages: usize) -> anyhow::Result<f64> {
    let calls = 2000u64;
    let mut source = workload.source(calls);
    let mut times = Vec::with_capacity(calls as usize);
    while source.remaining() > 0 {
        let batch = source.next_batch(1, event);
        let start = Instant::now();
        process(c, batch)?;
        times.push(start.elapsed().as_nanos() as f64);
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2] / stages as f64)
}

/// ns per event per stage at batch 1024 when, as in `weft run` with a `generate` source, the
/// same thread generates and encodes each batch before the chain runs over it: only the
/// chain is timed, its caches left as the source's work leaves them.
fn after_source(c: &mut Chain, workload: &Workload, stages: usize) -> anyhow::Result<f64> {
    use weft_host::io::Source;
    let mut generator =
        weft_host::io::generate::Generator::new(workload.schema().clone(), u64::MAX, None, 7)?;
    let mut batch = weft_host::io::Batch::default();
    let (mut busy, mut events) = (std::time::Duration::ZERO, 0usize);
    for _ in 0..200 {
        batch.clear();
        generator.poll(1024, std::time::Duration::ZERO, &mut batch)?;
        let input: Vec<_> = batch.events.drain(..).collect();
        events += input.len();
        let start = Instant::now();
        process(c, input)?;
        busy += start.elapsed();
    }
    Ok(busy.as_nanos() as f64 / events as f64 / stages as f64)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (dir, events) = plugin_dir_and_events(&mut args)?;
    let runtime = Runtime::new(RuntimeOptions::default()).context("runtime")?;
    let workload = Workload::generate(16_384)?;
    let mut variants: Vec<(String, Vec<StageDef>)> = STAGES
        .iter()
        .map(|d| (d.plugin.to_string(), vec![*d]))
        .collect();
    variants.push(("chain".into(), STAGES.to_vec()));
    // A component without the SDK that keeps every event: the host's and wasmtime's share.
    // No stage: what the harness itself costs (copying events in, dropping them).
    variants.insert(0, ("no stage".into(), Vec::new()));
    variants.insert(
        1,
        (
            "raw keep".into(),
            vec![StageDef {
                plugin: "raw",
                params: &[("mode", "pass"), ("every", "1000000000")],
            }],
        ),
    );
    // mask's hash against its redact: what the salted SHA-256 (and its hex) costs in Wasm.
    variants.push((
        "mask redact".into(),
        vec![StageDef {
            plugin: "mask",
            params: &[("fields", "owner.email"), ("mode", "redact")],
        }],
    ));
    if let Ok(only) = std::env::var("ONLY") {
        variants.retain(|(name, _)| *name == only);
    }
    println!(
        "| stages | batch 1 | batch 8 | batch 1024 | fixed per call (1 − 1024) | batch 1 paced at 2,000/s (median call) | batch 1024 after a generated batch |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, defs) in variants {
        let mut c = build_stages(&runtime, &dir, &defs, workload.schema().clone())?;
        let mut row = Vec::new();
        let only_batch: Option<usize> = std::env::var("BATCH").ok().and_then(|b| b.parse().ok());
        for batch in [1usize, 8, 1024] {
            if only_batch.is_some_and(|b| b != batch) {
                row.push(0.0);
                continue;
            }
            let n = if batch == 1 { events / 4 } else { events };
            let mut best = f64::MAX;
            for _ in 0..5 {
                let mut source = workload.source(n);
                let start = Instant::now();
                while source.remaining() > 0 {
                    process(&mut c, source.next_batch(batch, event))?;
                }
                let ns = start.elapsed().as_nanos() as f64 / n as f64 / defs.len().max(1) as f64;
                best = best.min(ns);
            }
            row.push(best);
        }
        let slow = paced(&mut c, &workload, defs.len().max(1))?;
        let polluted = after_source(&mut c, &workload, defs.len().max(1))?;
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {slow:.0} | {polluted:.0} |",
            row[0],
            row[1],
            row[2],
            row[0] - row[2]
        );
    }
    native_hash(&workload)?;
    Ok(())
}

/// ns per salted SHA-256 (hex) of the workload's e-mail addresses, natively (the sha2 crate
/// picks SHA-NI when the CPU has it), beside mask's redact, to compare with the components.
fn native_hash(workload: &Workload) -> anyhow::Result<()> {
    use weft_guest::avro::types::Value;
    let emails: Vec<String> = workload
        .values()
        .iter()
        .filter_map(|bytes| {
            let value =
                apache_avro::from_avro_datum(workload.schema(), &mut &bytes[..], None).ok()?;
            let Value::Record(fields) = value else {
                return None;
            };
            let owner = fields.into_iter().find(|(n, _)| n == "owner")?.1;
            let owner = match owner {
                Value::Union(_, v) => *v,
                v => v,
            };
            let Value::Record(owner) = owner else {
                return None;
            };
            match owner.into_iter().find(|(n, _)| n == "email")?.1 {
                Value::String(s) => Some(s),
                Value::Union(_, v) => match *v {
                    Value::String(s) => Some(s),
                    _ => None,
                },
                _ => None,
            }
        })
        .collect();
    anyhow::ensure!(!emails.is_empty(), "no e-mail address in the workload");
    let rounds = 200_000usize;
    let mut best = f64::MAX;
    let mut sink = 0u8;
    for _ in 0..5 {
        let start = Instant::now();
        for i in 0..rounds {
            sink ^= mask::salted_sha256_hex("weft-bench", &emails[i % emails.len()])[0];
        }
        best = best.min(start.elapsed().as_nanos() as f64 / rounds as f64);
    }
    let mean_len = emails.iter().map(String::len).sum::<usize>() as f64 / emails.len() as f64;
    println!(
        "native salted SHA-256 hex: {best:.0} ns per hash ({mean_len:.0}-byte values; {sink})"
    );
    Ok(())
}
