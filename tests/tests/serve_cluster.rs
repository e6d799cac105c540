//! `weft serve` following a cluster in the registry, through the real binaries: a pipeline
//! deployed to the cluster in the registry runs on every daemon of that cluster, the
//! registry's lineage lists it with its plugin pinned, a folder pipeline of the same name
//! wins on its machine (and says so), and removing the pipeline from the registry stops it
//! everywhere.
//!
//! The second test is the scale-out story: two daemons of a cluster run one Kafka pipeline in
//! one consumer group, one is killed (SIGKILL) mid-stream and restarted as a supervisor would,
//! and an independent consumer finds every event in the output.
//!
//! Needs the `weft` and `weft-registry` binaries, the plugins (scripts/build-plugins.sh) and
//! tansu (scripts/setup.sh --kafka); a missing one fails the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use weft_tests::kafka::{
    Broker, Collector, Framing, REGISTRY_TOKEN, Registry, Storage, TestProducer, tally, title_id,
    titles,
};
use weft_tests::serve::{Daemon, wait_until};
use weft_tests::{plugin, title_schema, titles_jsonl};

const CLUSTER: &str = "test-cluster";

/// A `weft serve` (the shared harness) following [`CLUSTER`], its pipelines folder holding
/// the title schema and 50 titles (registry pipelines name them relative to the folder, so
/// each daemon reads and writes its own files), plus the `local` pipeline files.
fn start(dir: &Path, registry: &Registry, local: &[(&str, &str)]) -> Daemon {
    let folder = dir.join("pipelines");
    std::fs::create_dir_all(&folder).expect("pipelines folder");
    std::fs::copy(title_schema(), folder.join("title.avsc")).expect("schema");
    std::fs::write(folder.join("in.jsonl"), titles_jsonl(50)).expect("input");
    for (name, text) in local {
        std::fs::write(folder.join(format!("{name}.toml")), text).expect("local pipeline");
    }
    Daemon::start(
        dir,
        &format!(
            "[registry]\nurl = \"{}\"\ntoken = \"{REGISTRY_TOKEN}\"\n\n[cluster]\nname = \"{CLUSTER}\"\n",
            registry.url
        ),
    )
}

/// A file in the daemon's pipelines folder.
fn file(daemon: &Daemon, relative: &str) -> PathBuf {
    daemon.pipelines_dir().join(relative)
}

/// Lines of a JSON-lines file the daemon's pipelines wrote (0 when missing).
fn lines(daemon: &Daemon, relative: &str) -> usize {
    std::fs::read_to_string(file(daemon, relative))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// `weft_kafka_rebalances_total` of the pipeline: partition assignments received.
fn assignments(daemon: &Daemon, pipeline: &str) -> f64 {
    daemon
        .metric(&format!(
            "weft_kafka_rebalances_total{{pipeline=\"{pipeline}\"}}"
        ))
        .unwrap_or(0.0)
}

/// jsonl → filter@^0.1 (from the registry) → jsonl, paths relative to the daemon's folder.
fn definition(condition: &str, out: &str) -> String {
    format!(
        "[[source]]\nkind = \"jsonl\"\npath = \"in.jsonl\"\nschema = \"title.avsc\"\n\n\
         [[processor]]\nplugin = \"filter@^0.1\"\nparams = {{ condition = \"{condition}\" }}\n\n\
         [sink]\nkind = \"jsonl\"\npath = \"{out}\"\n"
    )
}

#[test]
fn daemons_of_a_cluster_run_what_the_registry_deploys_and_report_its_lineage() {
    let registry = Registry::start();
    let client = registry.client();
    client
        .push(std::fs::read(plugin("filter")).expect("filter plugin"))
        .expect("push filter");
    let http = reqwest::blocking::Client::new();
    let pushed: Value = http
        .get(format!(
            "{}/v1/plugins/filter/resolve?req=%5E0.1",
            registry.url
        ))
        .send()
        .and_then(|r| r.json())
        .expect("filter resolves");
    let filter_version = pushed["version"].as_str().expect("version").to_string();

    // B already runs a folder pipeline named `conflict`; it must keep it.
    let local_conflict = definition("year > 2030", "local.jsonl");
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = start(dirs[0].path(), &registry, &[]);
    let b = start(dirs[1].path(), &registry, &[("conflict", &local_conflict)]);

    // Years 1991..=2040: `year > 2000` keeps 40 of the 50 titles.
    client
        .deploy_pipeline(
            "recent",
            CLUSTER,
            &definition("year > 2000", "recent.jsonl"),
        )
        .expect("deploy recent");
    client
        .deploy_pipeline(
            "conflict",
            CLUSTER,
            &definition("year > 2020", "conflict.jsonl"),
        )
        .expect("deploy conflict");
    for d in [&a, &b] {
        let done = wait_until(Duration::from_secs(120), || lines(d, "recent.jsonl") == 40);
        assert!(
            done,
            "{} wrote {} of 40 events; log:\n{}",
            d.dir().display(),
            lines(d, "recent.jsonl"),
            d.log()
        );
    }

    // The registry's lineage shows what runs: the plugin pinned to the pushed version, and
    // the lineage reports kept the deployment.
    let lineage_lists_it = wait_until(Duration::from_secs(30), || {
        let users: Value = http
            .get(format!(
                "{}/v1/lineage/plugins/filter/versions/{filter_version}",
                registry.url
            ))
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        users
            .as_array()
            .is_some_and(|u| u.iter().any(|p| p == "recent"))
    });
    assert!(
        lineage_lists_it,
        "lineage never listed `recent`; log A:\n{}",
        a.log()
    );
    let stored = client.pipeline("recent").expect("registered");
    assert_eq!(stored.cluster.as_deref(), Some(CLUSTER));
    assert_eq!(
        stored.definition.as_deref(),
        Some(definition("year > 2000", "recent.jsonl").as_str())
    );
    assert_eq!(stored.processors[0].version, filter_version);

    // `conflict`: A runs the registry's (20 titles after 2020); B keeps its own file and
    // says why it refused the registry's.
    let a_ran = wait_until(Duration::from_secs(60), || {
        lines(&a, "conflict.jsonl") == 20
    });
    assert!(
        a_ran,
        "A wrote {} of 20; log:\n{}",
        lines(&a, "conflict.jsonl"),
        a.log()
    );
    let b_local = wait_until(Duration::from_secs(60), || lines(&b, "local.jsonl") == 10);
    assert!(
        b_local,
        "B's local pipeline wrote {}; log:\n{}",
        lines(&b, "local.jsonl"),
        b.log()
    );
    assert_eq!(
        std::fs::read_to_string(file(&b, "conflict.toml")).expect("B's file"),
        local_conflict,
        "the registry must not overwrite a folder pipeline"
    );
    assert_eq!(lines(&b, "conflict.jsonl"), 0);
    // An unchanged list is a 304, not a failure.
    for d in [&a, &b] {
        assert!(
            !d.log().contains("polling the registry failed"),
            "{}",
            d.log()
        );
    }
    assert!(
        b.log().contains("the local one wins"),
        "B's log:\n{}",
        b.log()
    );

    // Removed from the registry: stopped and its file removed on every daemon, and only the
    // registry's (B's folder pipeline stays).
    assert!(client.delete_pipeline("recent").expect("delete"));
    assert!(client.delete_pipeline("conflict").expect("delete"));
    for d in [&a, &b] {
        let gone = wait_until(Duration::from_secs(60), || !file(d, "recent.toml").exists());
        assert!(
            gone,
            "recent still deployed on {}: log:\n{}",
            d.dir().display(),
            d.log()
        );
    }
    let a_gone = wait_until(Duration::from_secs(30), || {
        !file(&a, "conflict.toml").exists()
    });
    assert!(a_gone, "A still runs conflict; log:\n{}", a.log());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(file(&b, "conflict.toml")).expect("B's own pipeline stays"),
        local_conflict
    );
}

/// Every distinct id read from `out` so far, reading until `done` or `within`.
fn distinct_ids(out: &mut Collector, within: Duration, done: impl Fn(usize) -> bool) -> usize {
    let schema = titles();
    let mut seen = std::collections::HashSet::new();
    let mut read = 0;
    out.wait_for(within, |messages| {
        for m in &messages[read..] {
            seen.insert(title_id(&schema, &m.value, Framing::Raw));
        }
        read = messages.len();
        done(seen.len())
    });
    seen.len()
}

#[test]
fn two_daemons_share_a_kafka_pipeline_and_a_killed_one_loses_nothing() {
    const N: u64 = 6_000;
    let broker = Broker::start(Storage::Sqlite);
    let brokers = broker.address();
    broker.create_topic("in", 3);
    broker.create_topic("out", 3);
    broker.create_topic("dead", 1);

    let registry = Registry::start();
    let client = registry.client();
    client
        .push(std::fs::read(plugin("filter")).expect("filter plugin"))
        .expect("push filter");
    let definition = format!(
        r#"[[source]]
kind = "kafka"
brokers = "{brokers}"
topics = ["in"]
group = "serve-scale-out"
format = "avro"
schema = "title.avsc"

[source.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500

[[processor]]
plugin = "filter@^0.1"
params = {{ condition = "id > 0" }}

[sink]
kind = "kafka"
brokers = "{brokers}"
topic = "out"
format = "avro"

[dead_letter]
kind = "kafka"
brokers = "{brokers}"
topic = "dead"

[limits]
batch_size = 100
linger_ms = 20
"#
    );
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = start(dirs[0].path(), &registry, &[]);
    let mut b = start(dirs[1].path(), &registry, &[]);
    let mut out = Collector::new(&brokers, "out");
    client
        .deploy_pipeline("scale", CLUSTER, &definition)
        .expect("deploy");

    // Both daemons join the group and get partitions of `in`.
    let both = wait_until(Duration::from_secs(90), || {
        out.poll(Duration::from_millis(100));
        assignments(&a, "scale") > 0.0 && assignments(&b, "scale") > 0.0
    });
    assert!(
        both,
        "not both in the group; A:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    // A paced stream (about 5 s), so the kill lands while events flow.
    let producing = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let producer = TestProducer::new(&brokers);
            for start in (1..=N).step_by(100) {
                producer.titles("in", start..=(start + 99).min(N), Framing::Raw, false);
                std::thread::sleep(Duration::from_millis(80));
            }
        })
    };
    let at_kill = distinct_ids(&mut out, Duration::from_secs(90), |d| d as u64 >= N / 10);
    let before = assignments(&a, "scale");
    b.kill();
    assert!(
        (at_kill as u64) < N,
        "the kill must land mid-stream: {at_kill} of {N}"
    );
    // The group notices the dead member after session.timeout.ms (6 s) and gives A its
    // partitions. (tansu 0.6 then keeps the old generation until a member joins or leaves,
    // so B rejoins only after that: see tests/kafka.rs.)
    let noticed = wait_until(Duration::from_secs(30), || {
        out.poll(Duration::from_millis(100));
        assignments(&a, "scale") > before
    });
    assert!(
        noticed,
        "the group never noticed the killed daemon; A:\n{}",
        a.log()
    );
    // Restarted, B finds the pipeline in its folder (the registry's file) and rejoins.
    b.restart();
    producing.join().expect("producer thread");
    let distinct = distinct_ids(&mut out, Duration::from_secs(180), |d| d as u64 >= N);
    assert_eq!(
        distinct as u64,
        N,
        "only {distinct} of {N} arrived; A:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    out.poll(Duration::from_secs(1));
    let schema = titles();
    let t = tally(
        out.messages
            .iter()
            .map(|m| title_id(&schema, &m.value, Framing::Raw)),
        1..=N as i64,
    );
    assert!(
        t.missing.is_empty() && t.unexpected.is_empty(),
        "lost {:?}",
        &t.missing
    );
    println!(
        "scale-out through the cluster: kill at {at_kill}, {} received, {} duplicates",
        t.received, t.duplicates
    );
}
