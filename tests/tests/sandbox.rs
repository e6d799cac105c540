//! What a processor written without the SDK (`tests/plugins/raw`) cannot do to the host:
//! hold it with a sleep, outlast a second Ctrl-C, flood or forge its log, lose why it
//! failed, make its output differ between a run and its replay, or smuggle in a huge
//! manifest. Mostly through the real `weft` binary, as a user would see it.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::{Chain, ChainLimits, Event, Runtime, StageSpec};
use weft_tests::{Workdir, plugin, runtime, title_schema, titles_jsonl, toml_path, weft_command};

/// A pipeline of titles 1..=`events` through `raw` with `params` (a TOML inline table's
/// inside), into `out.jsonl` and `dead.jsonl`, with `limits` added to `[limits]`.
fn raw_pipeline(work: &Workdir, events: u64, params: &str, limits: &str) -> std::path::PathBuf {
    let input = work.write("titles.jsonl", &titles_jsonl(events));
    let pipeline = format!(
        r#"[[source]]
kind = "jsonl"
path = {input}
schema = {schema}

[[processor]]
plugin = {raw}
params = {{ {params} }}

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
{batch}
{limits}
"#,
        batch = if limits.contains("batch_size") {
            ""
        } else {
            "batch_size = 4"
        },
        input = toml_path(&input),
        schema = toml_path(&title_schema()),
        raw = toml_path(&plugin("raw")),
    );
    work.write("pipeline.toml", &pipeline)
}

fn weft(args: &[&str], dir: &Path) -> Command {
    let mut command = weft_command();
    command
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` up to `limit`; kills it and fails the test past that. The limit is
/// generous: it tells "bounded" from "held for the plugin's whole sleep", not fast from slow.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> (ExitStatus, String) {
    // Read stderr while waiting: a full pipe would block weft and look like a hang.
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        pipe.read_to_string(&mut stderr).expect("read stderr");
        stderr
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for weft") {
            return (status, reader.join().expect("stderr reader"));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = reader.join().expect("stderr reader");
            panic!("{what}: weft still running after {limit:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_weft(work: &Workdir, limit: Duration, what: &str) -> (ExitStatus, String) {
    let child = weft(&["run", "--quiet", "pipeline.toml"], work.dir.path())
        .spawn()
        .expect("start weft");
    wait_bounded(child, limit, what)
}

#[test]
fn a_processor_sleeping_30_s_per_event_does_not_hold_the_host() {
    let work = Workdir::new();
    raw_pipeline(
        &work,
        8,
        r#"mode = "sleep", ms = "30000""#,
        "deadline_ms = 500",
    );
    // Before, each event held the host 30 s (4 minutes here).
    let (status, stderr) = run_weft(&work, Duration::from_secs(60), "sleep");
    assert!(status.success(), "{stderr}");
    // The clocks are frozen, so the sleep returns at once and every event flows on.
    assert_eq!(work.read_jsonl("out.jsonl").len(), 8, "{stderr}");
}

#[test]
fn a_second_ctrl_c_stops_a_looping_processor_without_committing_or_dead_lettering() {
    let work = Workdir::new();
    // A deadline of ten minutes: only the interrupt can end the call in time.
    raw_pipeline(&work, 4, r#"mode = "loop""#, "deadline_ms = 600000");
    let child = weft(&["run", "--quiet", "pipeline.toml"], work.dir.path())
        .spawn()
        .expect("start weft");
    // Let it load and enter the loop, then Ctrl-C twice.
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..2 {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, stderr) = wait_bounded(child, Duration::from_secs(60), "double Ctrl-C");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(work.read_jsonl("out.jsonl").is_empty(), "nothing written");
    let dead = std::fs::read_to_string(work.path("dead.jsonl")).unwrap_or_default();
    assert_eq!(dead, "", "the interrupted batch is not dead-lettered");
}

#[test]
fn a_log_flood_is_rate_limited_and_counted() {
    let work = Workdir::new();
    // 3 × 200,000 warnings within one run; printed unthrottled that is ~40 MB.
    raw_pipeline(
        &work,
        3,
        r#"mode = "log-flood", count = "200000""#,
        "deadline_ms = 60000\nbatch_size = 1",
    );
    let (status, stderr) = run_weft(&work, Duration::from_secs(120), "log flood");
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.len() < 256 << 10,
        "stderr holds {} bytes under a flood",
        stderr.len()
    );
    assert!(
        stderr.contains("log messages suppressed"),
        "the suppression is said: {stderr}"
    );
    let plugin_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("raw log flood message"))
        .collect();
    assert!(!plugin_lines.is_empty());
    assert!(
        plugin_lines.iter().all(|l| l.contains("plugin=raw@0.1.0")),
        "every plugin line is marked: {:?}",
        plugin_lines.first()
    );
}

#[test]
fn a_processor_that_floods_and_traps_on_every_event_gets_no_fresh_burst_per_instance() {
    let work = Workdir::new();
    // Every call logs without end until its 300 ms deadline: one batch call, then one call
    // per event to isolate the poison, each in a re-created instance.
    raw_pipeline(&work, 6, r#"mode = "log-flood""#, "deadline_ms = 300");
    let started = Instant::now();
    let (status, stderr) = run_weft(&work, Duration::from_secs(120), "flood and trap");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(status.success(), "{stderr}");
    assert_eq!(work.read_jsonl("dead.jsonl").len(), 6);
    let printed = stderr.matches("raw log flood message").count() as f64;
    // One burst for the whole run, then the rate: 7 instances with a burst each would
    // print 1,400 lines.
    let bound = weft_runtime::LOG_BURST + weft_runtime::LOG_RATE_PER_SEC * (elapsed + 1.0);
    assert!(
        printed <= bound,
        "{printed} lines printed in {elapsed:.1} s (bound {bound})"
    );
}

#[test]
fn a_forged_log_line_stays_on_one_escaped_line() {
    let work = Workdir::new();
    raw_pipeline(&work, 1, r#"mode = "log-forge""#, "");
    let output = weft(&["-v", "run", "--quiet", "pipeline.toml"], work.dir.path())
        .output()
        .expect("run weft");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "no escape sequence reaches the terminal"
    );
    assert!(!stderr.contains('\x07') && !stderr.contains('\r'));
    let forged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("sink failed, data lost"))
        .collect();
    assert_eq!(forged.len(), 1, "one line: {stderr}");
    assert!(forged[0].contains("innocent\\n2026-01-01T00:00:00.000000Z ERROR"));
    assert!(forged[0].contains("plugin=raw@0.1.0"), "{}", forged[0]);
    assert!(!forged[0].starts_with("2026-01-01"));
}

#[test]
fn a_plain_panic_reaches_the_dead_letter_with_its_stderr() {
    let work = Workdir::new();
    raw_pipeline(&work, 2, r#"mode = "stderr""#, "");
    let (status, stderr) = run_weft(&work, Duration::from_secs(60), "stderr");
    assert!(status.success(), "{stderr}");
    assert!(work.read_jsonl("out.jsonl").is_empty());
    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(dead.len(), 2, "both events, each with why");
    for letter in &dead {
        let reason = letter["reason"].as_str().expect("reason");
        assert!(reason.starts_with("trap: "), "{reason}");
        for expected in [
            "panicked at",
            "raw processor gives up on purpose",
            "raw: about to fail | raw: second line of context | raw: last words",
        ] {
            assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        }
        assert!(!reason.contains("RUST_BACKTRACE"), "{reason}");
    }
}

#[test]
fn a_configure_that_never_returns_fails_in_the_words_of_process() {
    let work = Workdir::new();
    raw_pipeline(&work, 1, r#"mode = "loop-configure""#, "deadline_ms = 200");
    let (status, stderr) = run_weft(&work, Duration::from_secs(60), "loop-configure");
    assert!(!status.success());
    assert!(
        stderr.contains("configure failed: deadline of 200 ms exceeded in configure"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "no raw backtrace: {stderr}");
}

#[test]
fn a_50_mb_manifest_is_refused_at_load_without_the_host_holding_it() {
    let output: Output = weft(
        &["inspect", &plugin("bloated").display().to_string()],
        &std::env::temp_dir(),
    )
    .output()
    .expect("run weft inspect");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("describe() failed: memory limit of 16 MiB exceeded in describe"),
        "{stderr}"
    );
    assert!(stderr.len() < 4096, "the error does not quote the manifest");
}

/// `raw` in mode `random` on 6 events; the three random headers of each emitted event.
fn random_headers(chain: &mut Chain, events: &[Event]) -> Vec<Vec<Vec<u8>>> {
    let output = chain.process(events.to_vec()).expect("process");
    assert!(output.dead.is_empty(), "{:?}", output.dead);
    output
        .events
        .iter()
        .map(|e| e.headers.iter().map(|h| h.value.clone()).collect())
        .collect()
}

fn random_chain(runtime: &Runtime, extra: Option<StageSpec>) -> (Chain, Vec<Event>) {
    let raw = runtime.load_file(&plugin("raw")).expect("load raw");
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#,
    )
    .expect("schema");
    let events = (0..6)
        .map(|id| Event {
            key: None,
            value: apache_avro::to_avro_datum(
                &schema,
                apache_avro::types::Value::Record(vec![(
                    "id".into(),
                    apache_avro::types::Value::Long(id),
                )]),
            )
            .expect("encode"),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect();
    let mut specs = vec![StageSpec {
        plugin: raw,
        params: vec![("mode".into(), "random".into())],
    }];
    specs.extend(extra);
    let limits = ChainLimits {
        memory_bytes: 64 << 20,
        deadline: Duration::from_secs(5),
        ..ChainLimits::default()
    };
    let chain = Chain::build(runtime, specs, Arc::new(schema), limits).expect("build");
    (chain, events)
}

#[test]
fn random_numbers_replay_identically_across_runs_batches_and_traps() {
    let runtime = runtime();
    let (mut first, events) = random_chain(&runtime, None);
    let expected = random_headers(&mut first, &events);
    assert_eq!(expected.len(), 6);
    assert_eq!(
        expected[0].len(),
        3,
        "random, insecure-random, insecure-seed"
    );
    assert_ne!(
        expected[0][0], expected[1][0],
        "still a sequence, not a constant"
    );

    // A second run, in batches of 2: the same numbers for the same events.
    let (mut again, _) = random_chain(&runtime, None);
    let mut replayed = Vec::new();
    for pair in events.chunks(2) {
        replayed.extend(random_headers(&mut again, pair));
    }
    assert_eq!(replayed, expected);

    // A later stage traps: the chain is re-created and `raw` starts its sequence over.
    let hostile = runtime.load_file(&plugin("hostile")).expect("load hostile");
    let trap = StageSpec {
        plugin: hostile,
        params: vec![
            ("mode".into(), "panic".into()),
            ("when".into(), "id=2".into()),
        ],
    };
    let (mut trapping, _) = random_chain(&runtime, Some(trap));
    let output = trapping.process(events[..3].to_vec()).expect("process");
    assert_eq!(output.dead.len(), 1, "the event with id 2 trapped");
    let after = random_headers(&mut trapping, &events[..2]);
    assert_eq!(
        after,
        expected[..2],
        "re-created instances reseed identically"
    );
}

#[test]
fn the_registry_refuses_the_50_mb_manifest_at_upload() {
    let registry = weft_tests::kafka::Registry::start();
    let client = registry.client();
    let bloated = std::fs::read(plugin("bloated")).expect("read bloated");
    let err = client.push(bloated).expect_err("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("memory limit of 16 MiB exceeded in describe"),
        "{text}"
    );
    assert!(text.len() < 4096, "the error does not quote the manifest");
    // The same sandbox still takes a component written without the SDK.
    let raw = std::fs::read(plugin("raw")).expect("read raw");
    client.push(raw).expect("raw is accepted");
}
