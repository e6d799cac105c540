//! One component call per batch size: the filter plugin's `process` on 1, 64 and 1024
//! events through a bare harness (the call, lowering and lifting, and the guest's work),
//! and the whole fused chain per batch, against the same chain run natively.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weft_bench::bare::{Bare, Event};
use weft_bench::fused;
use weft_bench::native::{self, NativeChain};
use weft_bench::stages::{STAGES, default_plugin_dir, owned_params, plugin_path};
use weft_bench::workload::{TITLE_SCHEMA, Workload};
use weft_runtime::{Runtime, RuntimeOptions};

const BATCHES: [usize; 3] = [1, 64, 1024];

fn batch_of<E>(workload: &Workload, n: usize, make: impl Fn(Vec<u8>) -> E + Copy) -> Vec<E> {
    workload.source(n as u64).next_batch(n, make)
}

fn component_call(c: &mut Criterion) {
    let workload = Workload::generate(1024).expect("workload");
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let plugins = default_plugin_dir();
    let filter = &STAGES[0];
    let bare = Bare::load(
        runtime.engine(),
        &plugin_path(&plugins, filter.plugin).expect("filter.wasm"),
    )
    .expect("filter loads");
    let mut store = bare.store();
    let (processor, _) = bare
        .configured(&mut store, &owned_params(filter), TITLE_SCHEMA)
        .expect("filter configures");

    let mut group = c.benchmark_group("filter_call");
    for n in BATCHES {
        let batch: Vec<Event> = batch_of(&workload, n, |value| Event {
            key: None,
            value,
            headers: Vec::new(),
            timestamp: None,
        });
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
            b.iter(|| {
                let outcomes = processor
                    .weft_processor_stage()
                    .call_process(&mut store, black_box(batch))
                    .expect("no trap")
                    .expect("no fatal error");
                black_box(outcomes)
            });
        });
    }
    group.finish();
}

fn chain(c: &mut Criterion) {
    let workload = Workload::generate(1024).expect("workload");
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let mut fused_chain =
        fused::build_chain(&runtime, &default_plugin_dir(), workload.schema().clone())
            .expect("chain builds");
    let mut native_chain = NativeChain::build(TITLE_SCHEMA).expect("native chain");

    let mut group = c.benchmark_group("chain");
    for n in BATCHES {
        group.throughput(Throughput::Elements(n as u64));
        let fused_batch = batch_of(&workload, n, fused::event);
        group.bench_with_input(BenchmarkId::new("fused", n), &fused_batch, |b, batch| {
            b.iter_batched(
                || batch.clone(),
                |batch| fused::process(&mut fused_chain, batch).expect("processes"),
                BatchSize::SmallInput,
            );
        });
        let native_batch = batch_of(&workload, n, native::event);
        group.bench_with_input(BenchmarkId::new("native", n), &native_batch, |b, batch| {
            b.iter_batched(
                || batch.clone(),
                |batch| native_chain.process(batch).expect("processes"),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, component_call, chain);
criterion_main!(benches);
