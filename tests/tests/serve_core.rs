//! `weft serve`'s core through the real binary: file pipelines in a folder that finish
//! STOPPED with their output complete, a file edited while a generator pipeline runs (swapped
//! at a batch boundary: nothing lost, nothing repeated), a processor that loops forever beside
//! a healthy pipeline, broken files FAILED on their own, and SIGTERM flushing every output.
//!
//! Needs the plugins and the `weft` binary (`cargo build -p weft-host --bin weft`).

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use weft_tests::serve::{Daemon, Options};
use weft_tests::{plugin, title_schema, titles_jsonl, toml_path};

/// Plugin compiles on a loaded machine are slow: every wait may take two minutes.
const WAIT: Duration = Duration::from_secs(120);

/// The shared daemon harness with this file's settings: failed pipelines retried quickly, a
/// 60 s grace for SIGTERM. Pipeline files already in `<dir>/pipelines` run.
fn start(dir: &Path) -> Daemon {
    Daemon::start_with(
        dir,
        Options {
            weftd: "[restart]\ninitial_ms = 100\nmax_ms = 400\n".into(),
            args: vec!["--grace".into(), "60s".into()],
            ..Options::default()
        },
    )
}

/// `GET /v1/pipelines`.
fn pipelines(daemon: &Daemon) -> Vec<serde_json::Value> {
    let (code, list) = daemon.get("/v1/pipelines");
    assert_eq!(code, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

/// SIGTERM; the exit status (the test fails if it does not exit within 90 s).
fn terminate(daemon: &mut Daemon) -> ExitStatus {
    daemon
        .terminate(Duration::from_secs(90))
        .unwrap_or_else(|| {
            panic!(
                "weft serve did not exit after SIGTERM; log:\n{}",
                daemon.log()
            )
        })
}

/// A pipeline file: `source` (a `[[source]]` body), `processors` (whole tables), a jsonl sink
/// at `out`, dead letters to `<out>.dead`.
fn pipeline(source: &str, processors: &str, out: &Path, limits: &str) -> String {
    format!(
        "[[source]]\n{source}\n{processors}\n[sink]\nkind = \"jsonl\"\npath = {out}\n\n\
         [dead_letter]\nkind = \"jsonl\"\npath = {dead}\n\n[limits]\n{limits}\n",
        out = toml_path(out),
        dead = toml_path(&out.with_extension("dead")),
    )
}

fn mask(fields: &str) -> String {
    format!(
        "[[processor]]\nplugin = {}\nparams = {{ fields = \"{fields}\" }}\n",
        toml_path(&plugin("mask"))
    )
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

fn ids(events: &[serde_json::Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn file_pipelines_finish_stopped_and_a_broken_file_fails_alone() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let input = dir.join("titles.jsonl");
    std::fs::write(&input, titles_jsonl(3000)).expect("input");
    let source = format!(
        "kind = \"jsonl\"\npath = {}\nschema = {}",
        toml_path(&input),
        toml_path(&title_schema())
    );
    std::fs::create_dir_all(dir.join("pipelines")).expect("folder");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join("pipelines").join(name), text).expect("pipeline file")
    };
    write(
        "copy.toml",
        &pipeline(&source, "", &dir.join("copy.jsonl"), "batch_size = 100"),
    );
    write(
        "masked.toml",
        &pipeline(
            &source,
            &mask("owner.email"),
            &dir.join("masked.jsonl"),
            "batch_size = 100",
        ),
    );
    // Not a pipeline: an unknown section and no sink.
    write(
        "broken.toml",
        &format!("[[source]]\n{source}\n[sinks]\nkind = \"null\"\n"),
    );
    // Parses, but its plugin is not a component: FAILED at build, retried with backoff.
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").expect("garbage");
    write(
        "missing-plugin.toml",
        &pipeline(
            &source,
            &format!("[[processor]]\nplugin = {}\n", toml_path(&garbage)),
            &dir.join("never.jsonl"),
            "",
        ),
    );
    // Not a pipeline file at all: ignored.
    write("README.md", "pipelines live here\n");

    let mut daemon = start(dir);
    for name in ["copy", "masked"] {
        daemon.wait_for(&format!("{name} to finish"), WAIT, || {
            daemon.state(name) == "STOPPED"
        });
        let status = daemon.status(name);
        assert_eq!(status["events_in"], 3000, "{status}");
        assert_eq!(status["events_out"], 3000, "{status}");
        assert_eq!(status["last_error"], serde_json::Value::Null, "{status}");
    }
    assert_eq!(
        ids(&read_jsonl(&dir.join("copy.jsonl"))),
        (1..=3000).collect::<Vec<_>>()
    );
    let masked = read_jsonl(&dir.join("masked.jsonl"));
    assert_eq!(ids(&masked), (1..=3000).collect::<Vec<_>>());
    assert!(
        masked.iter().all(|e| e["owner"]["email"] == "***"),
        "{:?}",
        masked[0]
    );
    let masked_status = daemon.status("masked");
    let stage = masked_status["stages"][0].as_str().expect("one stage");
    assert!(stage.starts_with("mask@"), "{stage}");
    assert_eq!(
        stage.rsplit('@').next().map(str::len),
        Some(64),
        "sha256 in {stage}"
    );

    // Each file was read once at the start: reading a file is no reason to read it again.
    let reads = daemon.log().matches("sinks: unknown section").count();
    assert_eq!(reads, 1, "{}", daemon.log());
    let broken = daemon.status("broken");
    assert_eq!(broken["state"], "FAILED", "{broken}");
    let error = broken["last_error"].as_str().expect("an error");
    assert!(error.contains("sinks: unknown section"), "{error}");
    assert!(error.contains("sink: missing"), "{error}");

    daemon.wait_for("missing-plugin to be retried", WAIT, || {
        let s = daemon.status("missing-plugin");
        s["restarts"].as_u64() >= Some(2)
    });
    let failing = daemon.status("missing-plugin");
    assert_eq!(failing["state"], "FAILED", "{failing}");
    assert!(
        failing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("garbage.wasm")),
        "{failing}"
    );
    assert!(
        daemon
            .metric("weft_pipeline_restarts_total{pipeline=\"missing-plugin\"}")
            .is_some_and(|n| n >= 2.0)
    );
    assert_eq!(
        daemon.metric("weft_pipeline_state{pipeline=\"broken\",state=\"FAILED\"}"),
        Some(1.0)
    );
    assert_eq!(
        daemon.metric("weft_pipeline_events_out_total{pipeline=\"copy\"}"),
        Some(3000.0)
    );
    assert!(pipelines(&daemon).iter().all(|p| p["name"] != "README"));

    // Fixing the broken file starts it; removing a file stops and forgets its pipeline.
    write(
        "broken.toml",
        &pipeline(&source, "", &dir.join("fixed.jsonl"), "batch_size = 500"),
    );
    daemon.wait_for("the fixed file to run", WAIT, || {
        daemon.state("broken") == "STOPPED"
    });
    assert_eq!(read_jsonl(&dir.join("fixed.jsonl")).len(), 3000);
    std::fs::remove_file(dir.join("pipelines/missing-plugin.toml")).expect("remove");
    daemon.wait_for("the removed pipeline to go", WAIT, || {
        pipelines(&daemon)
            .iter()
            .all(|p| p["name"] != "missing-plugin")
    });

    let status = terminate(&mut daemon);
    assert!(status.success(), "{status:?}; log:\n{}", daemon.log());
}

#[test]
fn an_edited_file_is_swapped_at_a_batch_boundary_and_sigterm_flushes_everything() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let out = dir.join("gen.jsonl");
    let file = dir.join("pipelines/gen.toml");
    // 400 events a second for a long time: the swap and the stop both land mid-stream.
    let source = format!(
        "kind = \"generate\"\nschema = {}\ncount = 10000000\nrate = 400.0",
        toml_path(&title_schema())
    );
    let limits = "batch_size = 20\nlinger_ms = 20";
    std::fs::create_dir_all(dir.join("pipelines")).expect("folder");
    std::fs::write(&file, pipeline(&source, &mask("owner.email"), &out, limits)).expect("v1");
    let mut daemon = start(dir);
    daemon.wait_for("v1 to run", WAIT, || {
        daemon.status("gen")["events_out"].as_u64() >= Some(200)
    });
    assert_eq!(
        daemon.metric("weft_kafka_rebalances_total{pipeline=\"gen\"}"),
        None,
        "a generator has no group"
    );

    // Same source, another chain: a swap, not a restart.
    std::fs::write(&file, pipeline(&source, &mask("title"), &out, limits)).expect("v2");
    daemon.wait_for("the swap", WAIT, || {
        daemon.metric("weft_pipeline_swaps_total{pipeline=\"gen\"}") == Some(1.0)
    });
    let swapped_at = daemon.status("gen")["events_out"].as_u64().expect("count");
    daemon.wait_for("v2 to run", WAIT, || {
        daemon.status("gen")["events_out"].as_u64() >= Some(swapped_at + 200)
    });
    let status = daemon.status("gen");
    assert_eq!(status["state"], "RUNNING", "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    // The same file written again (an editor's save, or `put`'s own write) changes nothing.
    std::fs::write(&file, pipeline(&source, &mask("title"), &out, limits)).expect("v2 again");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        daemon.metric("weft_pipeline_swaps_total{pipeline=\"gen\"}"),
        Some(1.0)
    );

    let exit = terminate(&mut daemon);
    assert!(exit.success(), "{exit:?}; log:\n{}", daemon.log());
    assert!(daemon.log().contains("stopped"), "{}", daemon.log());

    // Every line whole, ids 0.. without a gap or a repeat; v1's events first (email masked),
    // then v2's (title masked), both present.
    let events = read_jsonl(&out);
    assert_eq!(ids(&events), (0..events.len() as i64).collect::<Vec<_>>());
    let v1 = |e: &serde_json::Value| e["owner"]["email"] == "***" && e["title"] != "***";
    let v2 = |e: &serde_json::Value| e["title"] == "***" && e["owner"]["email"] != "***";
    let first_v2 = events
        .iter()
        .position(v2)
        .expect("v2's events in the output");
    assert!(first_v2 >= 200, "v1 ran first");
    assert!(events[..first_v2].iter().all(v1), "only v1 before the swap");
    assert!(events[first_v2..].iter().all(v2), "only v2 after the swap");
}

#[test]
fn a_processor_looping_forever_leaves_the_other_pipelines_flowing() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let input = dir.join("titles.jsonl");
    std::fs::write(&input, titles_jsonl(2000)).expect("input");
    std::fs::create_dir_all(dir.join("pipelines")).expect("folder");
    let hostile = format!(
        "[[processor]]\nplugin = {}\nparams = {{ mode = \"loop\" }}\n",
        toml_path(&plugin("hostile"))
    );
    let generator = format!(
        "kind = \"generate\"\nschema = {}\ncount = 10000000\nrate = 200.0",
        toml_path(&title_schema())
    );
    std::fs::write(
        dir.join("pipelines/hostile.toml"),
        pipeline(
            &generator,
            &hostile,
            &dir.join("hostile.jsonl"),
            "batch_size = 4\ndeadline_ms = 50",
        ),
    )
    .expect("hostile");
    let daemon = start(dir);
    daemon.wait_for("the loop to trap", WAIT, || {
        daemon
            .metric("weft_stage_traps_total{pipeline=\"hostile\",stage=\"1\",processor=\"hostile@0.1.0\"}")
            .is_some_and(|n| n >= 4.0)
    });
    // A healthy pipeline added while the hostile one traps runs to its end.
    let source = format!(
        "kind = \"jsonl\"\npath = {}\nschema = {}",
        toml_path(&input),
        toml_path(&title_schema())
    );
    std::fs::write(
        dir.join("pipelines/healthy.toml"),
        pipeline(
            &source,
            &mask("owner.name"),
            &dir.join("healthy.jsonl"),
            "batch_size = 50",
        ),
    )
    .expect("healthy");
    daemon.wait_for("healthy to finish", WAIT, || {
        pipelines(&daemon)
            .iter()
            .any(|p| p["name"] == "healthy" && p["state"] == "STOPPED")
    });
    assert_eq!(
        ids(&read_jsonl(&dir.join("healthy.jsonl"))),
        (1..=2000).collect::<Vec<_>>()
    );
    let hostile = daemon.status("hostile");
    assert_eq!(
        hostile["state"], "RUNNING",
        "traps are dead letters, not failures: {hostile}"
    );
    assert!(hostile["dead_letters"].as_u64() >= Some(4), "{hostile}");
    assert!(read_jsonl(&dir.join("hostile.jsonl")).is_empty());
}
