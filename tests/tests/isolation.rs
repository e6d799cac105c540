//! Hostile processors never take the host down: the poison event goes to the dead-letter
//! sink with the processor and the reason, the instance is re-created, the rest flows on.

use serde_json::Value;
use weft_tests::Workdir;

/// Runs titles 1..=10 through `enrich → hostile(mode, when id=3) → project` and returns
/// (summary, output ids, dead letters).
fn run_hostile(
    mode: &str,
    limits: &str,
) -> (weft_host::pipeline::RunSummary, Vec<i64>, Vec<Value>) {
    let work = Workdir::new();
    let pipeline = work.hostile_pipeline(mode, limits);
    let summary = work
        .run(&pipeline)
        .expect("the host survives and finishes the run");
    let out = work.read_jsonl("out.jsonl");
    let ids = out.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    // Downstream of the hostile stage, events are intact.
    assert_eq!(
        out[0],
        serde_json::json!({"id": 1, "title_slug": "title-1"})
    );
    (summary, ids, work.read_jsonl("dead.jsonl"))
}

fn assert_isolated(mode: &str, limits: &str, reason_contains: &str) {
    let (summary, ids, dead) = run_hostile(mode, limits);
    assert_eq!(
        ids,
        vec![1, 2, 4, 5, 6, 7, 8, 9, 10],
        "{mode}: every other event flows on"
    );
    assert_eq!(
        dead.len(),
        1,
        "{mode}: exactly the poison event is dead-lettered: {dead:?}"
    );
    assert_eq!(dead[0]["processor"], "hostile@0.1.0");
    assert_eq!(dead[0]["stage"], 2);
    assert_eq!(
        dead[0]["value"]["id"], 3,
        "{mode}: the dead letter holds the event"
    );
    let reason = dead[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(reason_contains),
        "{mode}: reason {reason:?} should contain {reason_contains:?}"
    );
    assert_eq!(summary.events_in, 10);
    assert_eq!(summary.events_out, 9);
    assert_eq!(summary.dead_letters, 1);
    assert_eq!(summary.stages[1].rejected, 1);
    // The processors after the hostile one saw every surviving event.
    assert_eq!(summary.stages[2].events_in, 9);
}

#[test]
fn a_panic_is_isolated_with_its_message() {
    assert_isolated("panic", "", "panic");
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    assert_isolated(
        "loop",
        "deadline_ms = 200",
        "deadline of 200 ms per batch exceeded",
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    assert_isolated(
        "oom",
        "memory_mb = 32",
        "memory limit of 32 MiB per processor exceeded",
    );
}

#[test]
fn a_wasm_trap_is_isolated() {
    assert_isolated("trap", "", "trap");
}

#[test]
fn opening_a_file_fails_inside_the_sandbox() {
    let (summary, ids, dead) = run_hostile("open-file", "");
    assert_eq!(ids, vec![1, 2, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().expect("reason");
    assert!(
        !reason.contains("root:"),
        "the plugin read /etc/passwd: {reason}"
    );
    // No directory is preopened, so the guest's libc finds no file at all.
    assert!(
        reason.contains("No such file or directory"),
        "the open was refused: {reason}"
    );
    assert_eq!(
        summary.stages[1].traps, 0,
        "a refused open is an error, not a trap"
    );
}
