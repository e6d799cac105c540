//! First starts on Winch: code from wasmtime's baseline compiler keeps every limit a
//! Cranelift chain has (deadline, memory, traps, isolation of the poison event), a chain with
//! one Winch stage runs whole on Winch, and a large component's first `weft run` starts on
//! Winch and leaves Cranelift's code in the cache for the second.

// Only the scaffold-and-build helpers are used here; the chain checks serve the SDK tests.
#[allow(dead_code)]
mod sdk_common;

use serde_json::Value;
use weft_host::pipeline::RunSummary;
use weft_runtime::{BaselinePolicy, Compiler, Runtime, RuntimeOptions};
use weft_tests::{Workdir, plugin};

fn winch_runtime() -> Runtime {
    Runtime::with_policy(RuntimeOptions { cache_dir: None }, BaselinePolicy::Always)
        .expect("runtime starts")
}

/// `enrich → hostile(mode, when id=3) → project` over titles 1..=10 on Winch code.
fn run_hostile_on_winch(mode: &str, limits: &str) -> (RunSummary, Vec<i64>, Vec<Value>) {
    let work = Workdir::new();
    let summary = work
        .run_on(&work.hostile_pipeline(mode, limits), &winch_runtime())
        .expect("the host survives and finishes the run on Winch");
    let ids = work
        .read_jsonl("out.jsonl")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    (summary, ids, work.read_jsonl("dead.jsonl"))
}

fn assert_contained_on_winch(mode: &str, limits: &str, reason_contains: &str) {
    let (summary, ids, dead) = run_hostile_on_winch(mode, limits);
    assert_eq!(
        ids,
        vec![1, 2, 4, 5, 6, 7, 8, 9, 10],
        "{mode}: the rest flows on"
    );
    assert_eq!(dead.len(), 1, "{mode}: only the poison event: {dead:?}");
    assert_eq!(dead[0]["processor"], "hostile@0.1.0");
    assert_eq!(dead[0]["value"]["id"], 3);
    let reason = dead[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(reason_contains),
        "{mode}: reason {reason:?} should contain {reason_contains:?}"
    );
    assert_eq!(summary.dead_letters, 1);
}

#[test]
fn winch_code_is_what_the_policy_loads() {
    let runtime = winch_runtime();
    let hostile = runtime.load_file(&plugin("hostile")).expect("loads");
    assert_eq!(hostile.compiler(), Compiler::Winch);
    let off = Runtime::with_policy(RuntimeOptions { cache_dir: None }, BaselinePolicy::Off)
        .expect("runtime starts");
    let hostile = off.load_file(&plugin("hostile")).expect("loads");
    assert_eq!(hostile.compiler(), Compiler::Cranelift);
}

#[test]
fn an_endless_loop_hits_the_deadline_on_winch() {
    assert_contained_on_winch(
        "loop",
        "deadline_ms = 200",
        "deadline of 200 ms per batch exceeded",
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit_on_winch() {
    assert_contained_on_winch(
        "oom",
        "memory_mb = 32",
        "memory limit of 32 MiB per processor exceeded",
    );
}

#[test]
fn a_panic_and_a_trap_are_contained_on_winch() {
    assert_contained_on_winch("panic", "", "panic");
    assert_contained_on_winch("trap", "", "trap");
}

/// The Python scaffold (18.6 MB): the first `weft run` with an empty cache starts on Winch
/// and says so; the second loads Cranelift's code from the cache the first one filled.
#[test]
fn a_large_components_first_run_starts_on_winch_and_the_second_from_the_cache() {
    sdk_common::require("componentize-py", "--version");
    let built = sdk_common::scaffold_and_build("python", "shout", |_| {});
    let cache = tempfile::tempdir().expect("temp dir");
    let run = || {
        let out = weft_tests::weft_command()
            .env("WEFT_CACHE_DIR", cache.path())
            .env_remove("WEFT_BASELINE")
            .args(["run", "pipeline.toml"])
            .current_dir(&built.root)
            .output()
            .expect("weft runs");
        let stderr = sdk_common::text(&out.stderr);
        assert!(out.status.success(), "weft run: {stderr}");
        let outputs = sdk_common::read_jsonl(&built.root.join("out/events.jsonl"));
        assert_eq!(
            outputs,
            vec![
                serde_json::json!({"id": 1, "text": "> hello", "length": 7}),
                serde_json::json!({"id": 3, "text": "> world", "length": 7}),
            ]
        );
        stderr
    };
    let first = run();
    assert!(
        first.contains("compiled with Winch")
            && first.contains("compiled")
            && first.contains("into the cache"),
        "the first run starts on Winch and fills the cache: {first}"
    );
    let second = run();
    assert!(
        !second.contains("Winch"),
        "the second run loads Cranelift's code from the cache: {second}"
    );
}
