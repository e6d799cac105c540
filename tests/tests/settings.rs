//! Settings reach the whole run through the real `weft` binary: `--registry`, `--token` and
//! `--brokers` beat their environment variables, which beat the pipeline file, also in the
//! Kafka Confluent path (schema registration); and a run names every plugin it used by
//! name, version and sha256.
//!
//! The Kafka tests need tansu (`scripts/setup.sh --kafka`) and the binaries (`cargo build -p
//! weft-host --bin weft -p weft-registry --bin weft-registry`); missing pieces fail the tests,
//! never skip them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use weft_tests::kafka::{
    Broker, Collector, Framing, REGISTRY_TOKEN, Registry, Storage, free_port, title_id, titles,
};
use weft_tests::{plugin, title_schema, toml_path, weft_command};

const EVENTS: usize = 20;

/// The variables a developer's shell may hold; each test sets only its own.
const SETTINGS_ENV: [&str; 3] = [
    "WEFT_KAFKA_BROKERS",
    "WEFT_REGISTRY_URL",
    "WEFT_REGISTRY_TOKEN",
];

/// Runs `weft ARGS` to the end with exactly the settings variables in `env`.
fn weft(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = weft_command();
    command.args(args);
    for name in SETTINGS_ENV {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run weft")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A URL where nothing listens.
fn nowhere() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// `EVENTS` generated titles into a Kafka topic; `extra` adds lines to the file.
fn to_kafka(dir: &Path, name: &str, sink: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
{extra}

[[source]]
kind = "generate"
schema = {schema}
count = {EVENTS}

[sink]
kind = "kafka"
{sink}
"#,
        schema = toml_path(&title_schema()),
    );
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// The summary a `weft run --json` printed, after checking it succeeded.
fn summary(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "weft failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", text(&out.stdout)))
}

/// Every message of `topic` is a title in the Confluent framing with schema `id`.
fn assert_framed(brokers: &str, topic: &str, id: u32) {
    let mut collector = Collector::new(brokers, topic);
    let arrived = collector.wait_for(Duration::from_secs(30), |m| m.len() >= EVENTS);
    assert!(
        arrived,
        "{} of {EVENTS} messages in {topic}",
        collector.messages.len()
    );
    let schema = titles();
    for message in &collector.messages {
        title_id(&schema, &message.value, Framing::Confluent(id));
    }
}

/// The pipeline file names a registry where nothing listens; the Confluent sink registers
/// its schema in the registry the flag names, with the flag's token (the registry refuses
/// writes without it), though the environment names yet another registry. Without flags, the
/// environment's registry and token beat the file's.
#[test]
fn registry_and_token_reach_the_confluent_sink_flag_over_env_over_file() {
    let broker = Broker::start(Storage::Memory);
    let registry = Registry::start();
    let brokers = broker.address();
    broker.create_topic("by-flag", 1);
    broker.create_topic("by-env", 1);
    let work = tempfile::tempdir().expect("temp dir");
    let file_registry = format!("[registry]\nurl = \"{}\"", nowhere());

    let pipeline = to_kafka(
        work.path(),
        "by-flag.toml",
        &format!("brokers = \"{brokers}\"\ntopic = \"by-flag\"\nregister_schema = true"),
        &file_registry,
    );
    let out = weft(
        &[
            "--registry",
            &registry.url,
            "--token",
            REGISTRY_TOKEN,
            "run",
            "--quiet",
            "--json",
            &pipeline.display().to_string(),
        ],
        &[
            ("WEFT_REGISTRY_URL", &nowhere()),
            ("WEFT_REGISTRY_TOKEN", "not-the-token"),
        ],
    );
    assert_eq!(summary(&out)["events_out"], EVENTS);
    let (id, _) = registry
        .client()
        .latest("by-flag-value")
        .expect("the sink registered its schema in the flag's registry");
    assert_framed(&brokers, "by-flag", id);

    let pipeline = to_kafka(
        work.path(),
        "by-env.toml",
        &format!("brokers = \"{brokers}\"\ntopic = \"by-env\"\nregister_schema = true"),
        &file_registry,
    );
    let out = weft(
        &["run", "--quiet", "--json", &pipeline.display().to_string()],
        &[
            ("WEFT_REGISTRY_URL", &registry.url),
            ("WEFT_REGISTRY_TOKEN", REGISTRY_TOKEN),
        ],
    );
    assert_eq!(summary(&out)["events_out"], EVENTS);
    let (id, _) = registry
        .client()
        .latest("by-env-value")
        .expect("the sink registered its schema in the environment's registry");
    assert_framed(&brokers, "by-env", id);
}

/// The sink table names brokers where nothing listens: `--brokers` beats them and
/// `WEFT_KAFKA_BROKERS`; without the flag, the variable beats the table.
#[test]
fn brokers_flag_over_env_over_the_table() {
    let broker = Broker::start(Storage::Memory);
    let brokers = broker.address();
    let dead = format!("127.0.0.1:{}", free_port());
    broker.create_topic("raw", 1);
    let work = tempfile::tempdir().expect("temp dir");
    // Against brokers that are not there, a delivery fails after 10 s instead of retrying
    // for the default 5 minutes, so a wrong choice fails the test quickly.
    let pipeline = to_kafka(
        work.path(),
        "raw.toml",
        &format!(
            "brokers = \"{dead}\"\ntopic = \"raw\"\nformat = \"avro\"\n\
             [sink.properties]\n\"message.timeout.ms\" = 10000"
        ),
        "",
    );
    let path = pipeline.display().to_string();

    let out = weft(
        &["--brokers", &brokers, "run", "--quiet", "--json", &path],
        &[("WEFT_KAFKA_BROKERS", &dead)],
    );
    assert_eq!(summary(&out)["events_out"], EVENTS);

    let out = weft(
        &["run", "--quiet", "--json", &path],
        &[("WEFT_KAFKA_BROKERS", &brokers)],
    );
    assert_eq!(summary(&out)["events_out"], EVENTS);

    let mut collector = Collector::new(&brokers, "raw");
    let arrived = collector.wait_for(Duration::from_secs(30), |m| m.len() >= 2 * EVENTS);
    assert!(
        arrived,
        "{} of {} messages",
        collector.messages.len(),
        2 * EVENTS
    );
    let schema = titles();
    for message in &collector.messages {
        title_id(&schema, &message.value, Framing::Raw);
    }
}

/// Hex sha256 of a file, by an independent tool.
fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// `weft validate` and both forms of the run summary name each plugin as
/// name@version@sha256, with the digest of the component's bytes.
#[test]
fn validate_and_the_summary_pin_each_plugin_by_sha256() {
    let filter = plugin("filter");
    let project = plugin("project");
    let (filter_sha, project_sha) = (sha256sum(&filter), sha256sum(&project));
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = work.path().join("pins.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[[source]]
kind = "generate"
schema = {schema}
count = {EVENTS}

[[processor]]
plugin = {filter}
params = {{ condition = "year >= 0" }}

[[processor]]
plugin = {project}
params = {{ keep = "id,year" }}

[sink]
kind = "null"
"#,
            schema = toml_path(&title_schema()),
            filter = toml_path(&filter),
            project = toml_path(&project),
        ),
    )
    .expect("write pipeline");
    let path = pipeline.display().to_string();

    let out = weft(&["validate", &path], &[]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    let pins: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pin "))
        .collect();
    assert_eq!(pins.len(), 2, "{shown}");
    assert!(
        pins[0].starts_with("filter@") && pins[0].ends_with(&format!("@{filter_sha}")),
        "{shown}"
    );
    assert!(
        pins[1].starts_with("project@") && pins[1].ends_with(&format!("@{project_sha}")),
        "{shown}"
    );

    let summary = summary(&weft(&["run", "--quiet", "--json", &path], &[]));
    let stages = summary["processors"].as_array().expect("processors");
    assert_eq!(stages.len(), 2, "{summary}");
    assert_eq!(stages[0]["sha256"], filter_sha.as_str(), "{summary}");
    assert_eq!(stages[1]["sha256"], project_sha.as_str(), "{summary}");
    assert_eq!(
        stages[0]["pin"],
        format!(
            "{}@{filter_sha}",
            stages[0]["processor"].as_str().expect("id")
        ),
        "{summary}"
    );

    let out = weft(&["run", "--quiet", &path], &[]);
    let table = text(&out.stderr);
    assert!(out.status.success(), "{table}");
    for sha in [&filter_sha, &project_sha] {
        assert!(table.contains(&sha[..12]), "no {} in\n{table}", &sha[..12]);
    }
}
