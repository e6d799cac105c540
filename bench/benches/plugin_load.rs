//! Plugin load cold (Cranelift compiles the component) against warm (compiled code from the
//! on-disk cache), and instantiation of a pre-linked component, alone and with `configure`.

use criterion::{Criterion, criterion_group, criterion_main};
use weft_bench::bare::Bare;
use weft_bench::stages::{STAGES, default_plugin_dir, owned_params, plugin_path};
use weft_bench::workload::TITLE_SCHEMA;
use weft_runtime::{Runtime, RuntimeOptions};

fn load(c: &mut Criterion) {
    let path = plugin_path(&default_plugin_dir(), STAGES[0].plugin).expect("filter.wasm");
    let cold = Runtime::new(RuntimeOptions { cache_dir: None }).expect("runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let warm = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
    })
    .expect("runtime");
    warm.load_file(&path).expect("first load fills the cache");

    let mut group = c.benchmark_group("plugin_load");
    group.sample_size(10);
    group.bench_function("cold", |b| b.iter(|| cold.load_file(&path).expect("loads")));
    group.bench_function("warm", |b| b.iter(|| warm.load_file(&path).expect("loads")));
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let filter = &STAGES[0];
    let bare = Bare::load(
        runtime.engine(),
        &plugin_path(&default_plugin_dir(), filter.plugin).expect("filter.wasm"),
    )
    .expect("loads");
    let params = owned_params(filter);

    let mut group = c.benchmark_group("instantiate");
    group.bench_function("store+instantiate", |b| {
        b.iter(|| {
            let mut store = bare.store();
            bare.instantiate(&mut store).expect("instantiates");
            store
        })
    });
    group.bench_function("store+instantiate+configure", |b| {
        b.iter(|| {
            let mut store = bare.store();
            bare.configured(&mut store, &params, TITLE_SCHEMA)
                .expect("configures");
            store
        })
    });
    group.finish();
}

criterion_group!(benches, load, instantiate);
criterion_main!(benches);
