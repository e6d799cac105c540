//! Kafka end to end, against a real Kafka-compatible broker (tansu) and the real `weft`
//! and `weft-registry` binaries: events produced by an independent client, read back by an
//! independent client and compared exactly, with and without faults.
//!
//! Needs tansu (`scripts/setup.sh --kafka`), the plugins (`scripts/build-plugins.sh`) and the
//! binaries (`cargo build -p weft-host --bin weft -p weft-registry --bin weft-registry`);
//! `scripts/test.sh` does all three. Missing pieces fail the tests, never skip them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_tests::kafka::{
    Broker, Collector, Framing, Host, REGISTRY_TOKEN, Registry, Storage, TestProducer, committed,
    end_offsets, tally, title_datum, title_id, title_key, titles,
};
use weft_tests::{plugin, title_schema, toml_path};

const PARTITIONS: u32 = 3;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Confluent in, Confluent out, through the real registry; source and processor dead
/// letters to a topic; keys, headers, partitions and commits checked.
#[test]
fn confluent_topic_to_topic_with_dead_letters() {
    let broker = Broker::start(Storage::Memory);
    let registry = Registry::start();
    let brokers = broker.address();
    for topic in ["titles-in", "titles-out"] {
        broker.create_topic(topic, PARTITIONS);
    }
    broker.create_topic("titles-dead", 1);
    let client = registry.client();
    let schema_text = std::fs::read_to_string(title_schema()).expect("schema");
    let in_id = client
        .register("titles-in-value", &schema_text)
        .expect("register the input schema");

    const N: u64 = 1000;
    let producer = TestProducer::new(&brokers);
    producer.titles("titles-in", 1..=N, Framing::Confluent(in_id), true);
    // Three values the source cannot decode: they go to the dead-letter topic as they are.
    let bad_magic = b"\x01not confluent".to_vec();
    let unknown_id = [&[0u8, 0, 0, 0x27, 0x0f][..], &title_datum(&titles(), 1)].concat();
    producer.send("titles-in", Some(b"bad-magic"), &bad_magic, &[]);
    producer.send("titles-in", Some(b"unknown-id"), &unknown_id, &[]);
    producer.send(
        "titles-in",
        Some(b"not-avro"),
        b"\x00\x00\x00\x00\x01\xff\xff",
        &[],
    );
    producer.flush();
    let source_dead = 3;

    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &format!(
            r#"
[registry]
url = "{registry}"

[[source]]
kind = "kafka"
brokers = "{brokers}"
topics = ["titles-in"]
group = "confluent-e2e"
start = "earliest"

[[processor]]
plugin = {filter}
params = {{ condition = "kind != 'book'" }}

[[processor]]
plugin = {hostile}
params = {{ mode = "panic", when = "id=7" }}

[sink]
kind = "kafka"
brokers = "{brokers}"
topic = "titles-out"
register_schema = true

[dead_letter]
kind = "kafka"
brokers = "{brokers}"
topic = "titles-dead"

[limits]
batch_size = 100
"#,
            registry = registry.url,
            filter = toml_path(&plugin("filter")),
            hostile = toml_path(&plugin("hostile")),
        ),
    );
    let started = Instant::now();
    let mut host = Host::start(
        work.path(),
        "host",
        &pipeline,
        &[("WEFT_REGISTRY_TOKEN", REGISTRY_TOKEN)],
    );

    // Books are filtered out; id 7 makes the hostile processor panic.
    let expected: Vec<i64> = (1..=N as i64)
        .filter(|id| id % 3 != 0 && *id != 7)
        .collect();
    let mut out = Collector::new(&brokers, "titles-out");
    let mut dead = Collector::new(&brokers, "titles-dead");
    let arrived = out.wait_for(Duration::from_secs(90), |m| m.len() >= expected.len())
        && dead.wait_for(Duration::from_secs(30), |m| m.len() > source_dead);
    assert!(
        arrived,
        "after {:?}: {} of {} events and {} of {} dead letters arrived\nhost log:\n{}",
        started.elapsed(),
        out.messages.len(),
        expected.len(),
        dead.messages.len(),
        source_dead + 1,
        host.log()
    );
    // Anything written late would show up now.
    out.poll(Duration::from_secs(1));
    dead.poll(Duration::from_millis(500));
    let status = host.terminate().expect("weft stops on SIGTERM");
    assert_eq!(
        status.code(),
        Some(130),
        "interrupted exit code; log:\n{}",
        host.log()
    );

    // The sink registered the output schema under its subject and framed every value with it.
    let (out_id, _) = client
        .latest("titles-out-value")
        .expect("the sink registered titles-out-value");
    let schema = titles();
    let ids: Vec<i64> = out
        .messages
        .iter()
        .map(|m| title_id(&schema, &m.value, Framing::Confluent(out_id)))
        .collect();
    let t = tally(ids, expected.iter().copied());
    println!("confluent: produced {N} (+{source_dead} undecodable), output {t:?}");
    assert!(t.missing.is_empty() && t.unexpected.is_empty(), "{t:?}");
    assert_eq!(t.duplicates, 0, "no fault, so no duplicates: {t:?}");

    // Keys, headers and partitions pass through; the source-position headers do not.
    let mut input = Collector::new(&brokers, "titles-in");
    assert!(input.wait_for(Duration::from_secs(30), |m| m.len() as u64 == N + 3));
    let position_of: HashMap<Vec<u8>, (i32, i64)> = input
        .messages
        .iter()
        .filter_map(|m| Some((m.key.clone()?, (m.partition, m.offset))))
        .collect();
    // Per output partition, the input offsets of its events: increasing if the chain kept
    // each partition's order.
    let mut last_input_offset: HashMap<i32, i64> = HashMap::new();
    for m in &out.messages {
        let id = title_id(&schema, &m.value, Framing::Confluent(out_id));
        let key = title_key(id as u64).into_bytes();
        assert_eq!(m.key.as_ref(), Some(&key), "key of title {id}");
        assert_eq!(
            m.header("trace"),
            Some(format!("t{id}")),
            "trace header of {id}"
        );
        assert!(
            !m.headers.keys().any(|k| k.starts_with("weft.")),
            "internal headers leaked: {:?}",
            m.headers.keys()
        );
        let (in_partition, in_offset) = position_of[&key];
        assert_eq!(
            m.partition, in_partition,
            "same key, same partition: title {id}"
        );
        let last = last_input_offset.insert(m.partition, in_offset);
        assert!(
            last.is_none_or(|last| last < in_offset),
            "partition {} out of order at title {id}",
            m.partition
        );
    }

    // Dead letters: the original bytes, with the reason and the source position.
    assert_eq!(dead.messages.len(), source_dead + 1, "{:#?}", dead.messages);
    let by_key: HashMap<String, _> = dead
        .messages
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.key.as_deref().unwrap_or_default()).into_owned(),
                m,
            )
        })
        .collect();
    let poison = by_key["title-7"];
    let original = input
        .messages
        .iter()
        .find(|m| m.key.as_deref() == Some(b"title-7".as_slice()))
        .expect("title 7 in the input");
    assert_eq!(
        poison.value,
        title_datum(&schema, 7),
        "value as the failing stage got it"
    );
    assert_eq!(poison.header("weft.stage").as_deref(), Some("2"));
    assert!(
        poison
            .header("weft.processor")
            .is_some_and(|p| p.starts_with("hostile@"))
    );
    assert!(
        poison
            .header("weft.reason")
            .is_some_and(|r| r.contains("id=7")),
        "{poison:?}"
    );
    assert_eq!(
        poison.header("weft.source.topic").as_deref(),
        Some("titles-in")
    );
    assert_eq!(
        poison.header("weft.source.partition"),
        Some(original.partition.to_string())
    );
    assert_eq!(
        poison.header("weft.source.offset"),
        Some(original.offset.to_string())
    );
    assert_eq!(poison.header("trace").as_deref(), Some("t7"));
    for (key, value, reason) in [
        ("bad-magic", &bad_magic, "magic byte 1"),
        ("unknown-id", &unknown_id, "schema id 9999"),
        (
            "not-avro",
            &b"\x00\x00\x00\x00\x01\xff\xff".to_vec(),
            "corrupt",
        ),
    ] {
        let m = by_key[key];
        assert_eq!(&m.value, value, "{key}: raw bytes kept");
        assert_eq!(m.header("weft.stage").as_deref(), Some("source"), "{key}");
        let why = m.header("weft.reason").unwrap_or_default();
        assert!(
            why.contains(reason),
            "{key}: reason {why:?} lacks {reason:?}"
        );
        assert_eq!(m.header("weft.source.topic").as_deref(), Some("titles-in"));
    }

    // Everything was acknowledged, so everything is committed: one past the last offset of
    // each partition (read back, as tansu's memory storage misreports high watermarks).
    let summary = host.summary();
    assert_eq!(summary["events_in"], N + 3, "{summary}");
    assert_eq!(summary["dead_letters"], source_dead as u64 + 1, "{summary}");
    let mut ends = vec![None; PARTITIONS as usize];
    for m in &input.messages {
        let end = &mut ends[m.partition as usize];
        *end = Some(end.unwrap_or(0).max(m.offset + 1));
    }
    assert_eq!(
        committed(&brokers, "confluent-e2e", "titles-in", PARTITIONS as i32),
        ends,
        "committed offsets after a clean stop"
    );
    println!("confluent test took {:?}", started.elapsed());
}

/// A raw-Avro pipeline (no registry) copying `input` to `output` through the filter
/// plugin, in consumer group `group`, with fast failure detection for the group.
fn raw_pipeline(dir: &Path, brokers: &str, group: &str) -> std::path::PathBuf {
    write(
        dir,
        "pipeline.toml",
        &format!(
            r#"
[[source]]
kind = "kafka"
brokers = "{brokers}"
topics = ["in"]
group = "{group}"
format = "avro"
schema = {schema}

[source.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500

[[processor]]
plugin = {filter}
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
batch_size = 200
linger_ms = 20
"#,
            schema = toml_path(&title_schema()),
            filter = toml_path(&plugin("filter")),
        ),
    )
}

/// A broker with `in` and `out` (three partitions each) and `dead`, and `n` raw titles in
/// `in` (keyed, without headers: see [`Storage::Sqlite`]).
fn raw_setup(n: u64, storage: Storage) -> Broker {
    let broker = Broker::start(storage);
    broker.create_topic("in", PARTITIONS);
    broker.create_topic("out", PARTITIONS);
    broker.create_topic("dead", 1);
    TestProducer::new(&broker.address()).titles("in", 1..=n, Framing::Raw, false);
    broker
}

/// Reads `out` until every id 1..=n is there; returns how many distinct ids arrived.
fn wait_for_ids(out: &mut Collector, n: u64, timeout: Duration) -> usize {
    distinct_after(out, timeout, |distinct| distinct as u64 >= n)
}

fn distinct_after(
    out: &mut Collector,
    timeout: Duration,
    mut done: impl FnMut(usize) -> bool,
) -> usize {
    let schema = titles();
    let mut seen = std::collections::HashSet::new();
    let mut read = 0;
    out.wait_for(timeout, |messages| {
        for m in &messages[read..] {
            seen.insert(title_id(&schema, &m.value, Framing::Raw));
        }
        read = messages.len();
        done(seen.len())
    });
    seen.len()
}

/// Distinct ids in `out` once what has arrived is read.
fn distinct_now(out: &mut Collector) -> usize {
    out.poll(Duration::from_millis(200));
    let schema = titles();
    let ids: std::collections::HashSet<i64> = out
        .messages
        .iter()
        .map(|m| title_id(&schema, &m.value, Framing::Raw))
        .collect();
    ids.len()
}

/// Offsets and counts per partition, to explain a shortfall.
fn diagnose(brokers: &str, group: &str, out: &Collector) -> String {
    let mut read = [0usize; PARTITIONS as usize];
    for m in &out.messages {
        read[m.partition as usize] += 1;
    }
    format!(
        "in: end offsets {:?}, committed by {group} {:?}; out: end offsets {:?}, read {:?}",
        end_offsets(brokers, "in", PARTITIONS as i32),
        committed(brokers, group, "in", PARTITIONS as i32),
        end_offsets(brokers, "out", PARTITIONS as i32),
        read
    )
}

/// Every id 1..=n exactly once or more; prints and returns the duplicates.
fn check_no_loss(label: &str, out: &Collector, n: u64) -> usize {
    let schema = titles();
    let t = tally(
        out.messages
            .iter()
            .map(|m| title_id(&schema, &m.value, Framing::Raw)),
        1..=n as i64,
    );
    println!(
        "{label}: produced {n}, consumed {} ({} distinct), duplicates {}",
        t.received, t.distinct, t.duplicates
    );
    assert!(
        t.missing.is_empty(),
        "{label}: {} ids lost, first {:?}",
        t.missing.len(),
        &t.missing[..t.missing.len().min(10)]
    );
    assert!(
        t.unexpected.is_empty(),
        "{label}: unexpected ids {:?}",
        t.unexpected
    );
    t.duplicates
}

/// SIGKILL mid-stream (no flush, no commit, no leave), then a restart in the same group:
/// it resumes from the committed offsets and nothing is lost.
#[test]
fn host_killed_mid_stream_resumes_from_committed_offsets() {
    const N: u64 = 30_000;
    let broker = raw_setup(N, Storage::Sqlite);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = raw_pipeline(work.path(), &brokers, "kill-test");
    let started = Instant::now();

    let mut first = Host::start(work.path(), "first", &pipeline, &[]);
    let mut out = Collector::new(&brokers, "out");
    let at_kill = distinct_after(&mut out, Duration::from_secs(90), |d| d as u64 >= N / 5);
    first.kill();
    assert!(
        at_kill as u64 >= N / 5 && (at_kill as u64) < N,
        "the kill must land mid-stream: {at_kill} of {N} written\nlog:\n{}",
        first.log()
    );

    let mut second = Host::start(work.path(), "second", &pipeline, &[]);
    let distinct = wait_for_ids(&mut out, N, Duration::from_secs(120));
    out.poll(Duration::from_secs(1));
    assert_eq!(
        distinct as u64,
        N,
        "after the restart only {distinct} of {N} arrived; {}\nlog:\n{}",
        diagnose(&brokers, "kill-test", &out),
        second.log()
    );
    assert_eq!(second.terminate().and_then(|s| s.code()), Some(130));
    let duplicates = check_no_loss("host killed", &out, N);
    println!(
        "host killed: {at_kill} distinct written before SIGKILL, {duplicates} duplicates after the restart, {:?}",
        started.elapsed()
    );
}

/// The broker killed mid-stream and started again on its data a few seconds later: the host
/// waits, retries and resumes without exiting, and nothing is lost.
///
/// Killed rather than stopped: a graceful tansu 0.6 shutdown in the middle of a group update
/// can leave its sqlite group state such that the restarted broker panics on every update of
/// that group ("more or less than one row").
#[test]
fn broker_restarted_mid_stream_the_host_waits_and_resumes() {
    // tansu 0.6's sqlite storage sometimes panics after a restart ("more or less than one
    // row" on a group update): a broker bug, not a weft fault. Such a run says nothing about
    // weft, so the scenario starts over on a fresh broker, a bounded number of times; every
    // weft failure (host exit, loss, duplicates beyond a fault) fails at once.
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match broker_restart_scenario() {
            Ok(()) => return,
            Err(broker_log) => println!(
                "attempt {attempt} of {ATTEMPTS}: tansu panicked after its restart (its own bug); starting over on a fresh broker\n{broker_log}"
            ),
        }
    }
    panic!(
        "tansu panicked in all {ATTEMPTS} attempts: the broker-restart scenario could not be run"
    );
}

/// One run of the broker-restart scenario; `Err` with the broker's log when tansu itself
/// panicked, so the run proves nothing either way.
fn broker_restart_scenario() -> Result<(), String> {
    const N: u64 = 30_000;
    let mut broker = raw_setup(N, Storage::Sqlite);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = raw_pipeline(work.path(), &brokers, "broker-restart-test");
    let started = Instant::now();

    let mut host = Host::start(work.path(), "host", &pipeline, &[]);
    let mut out = Collector::new(&brokers, "out");
    let before = distinct_after(&mut out, Duration::from_secs(90), |d| d as u64 >= N / 5);
    assert!(
        (before as u64) < N,
        "the restart must land mid-stream: {before} of {N}"
    );
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        host.exited().is_none(),
        "the host died while the broker was down:\n{}",
        host.log()
    );
    broker.restart();

    let deadline = Instant::now() + Duration::from_secs(150);
    let mut distinct = 0;
    while Instant::now() < deadline {
        distinct = distinct_after(&mut out, Duration::from_secs(5), |d| d as u64 >= N);
        if distinct as u64 >= N {
            break;
        }
        if broker.panicked() {
            return Err(broker.log());
        }
    }
    out.poll(Duration::from_secs(1));
    if distinct as u64 != N && broker.panicked() {
        return Err(broker.log());
    }
    assert_eq!(
        distinct as u64,
        N,
        "after the broker restart only {distinct} of {N} arrived\nhost log:\n{}\nbroker log:\n{}",
        host.log(),
        broker.log()
    );
    assert_eq!(
        host.terminate().and_then(|s| s.code()),
        Some(130),
        "the host kept running through the outage"
    );
    let duplicates = check_no_loss("broker restarted", &out, N);
    println!(
        "broker restarted: {before} distinct written before the stop, {duplicates} duplicates, {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Produces titles `ids` to `in` on a thread, in slices of 500 with a short pause between
/// them, so a fault injected once the first ones come out lands while the hosts still have
/// events coming (the pipelined hosts wrote a whole unpaced half before the collector saw a
/// tenth of it).
fn produce_paced(brokers: &str, ids: std::ops::RangeInclusive<u64>) -> std::thread::JoinHandle<()> {
    const SLICE: u64 = 500;
    let brokers = brokers.to_string();
    std::thread::spawn(move || {
        let producer = TestProducer::new(&brokers);
        let (mut from, last) = (*ids.start(), *ids.end());
        while from <= last {
            let to = (from + SLICE - 1).min(last);
            producer.titles("in", from..=to, Framing::Raw, false);
            from = to + 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Starts a host and waits (bounded) until the group gave it partitions.
fn join(work: &Path, name: &str, pipeline: &Path, out: &mut Collector) -> Host {
    let host = Host::start(work, name, pipeline, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !host.has_partitions() && Instant::now() < deadline {
        out.poll(Duration::from_millis(200));
    }
    assert!(
        host.has_partitions(),
        "{name} got no partitions:\n{}",
        host.log()
    );
    host
}

/// Hosts in one group share the partitions. One is killed (SIGKILL) mid-stream and a
/// replacement resumes its partitions from the committed offsets; then one is stopped
/// (SIGTERM: commit, leave the group) and the last one takes all partitions over. Nothing
/// is lost.
///
/// Why a replacement after the SIGKILL: tansu 0.6 evicts a member whose session expired
/// without starting a new generation, so the survivor's SyncGroup answers its old
/// assignment and the dead member's partitions stay orphaned until a member joins or
/// leaves. With Kafka the survivor takes them over after `session.timeout.ms`.
#[test]
fn hosts_in_a_group_share_partitions_and_take_over_from_killed_and_stopped_ones() {
    // Half the events once both hosts hold partitions, half once the replacement has joined,
    // so both faults land mid-stream however fast the hosts are (a host can write a whole
    // half while another one is still joining).
    const N: u64 = 30_000;
    const FIRST_HALF: u64 = N / 2;
    let broker = raw_setup(0, Storage::Sqlite);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = raw_pipeline(work.path(), &brokers, "scale-out-test");
    let started = Instant::now();
    let mut out = Collector::new(&brokers, "out");

    let mut first = join(work.path(), "first", &pipeline, &mut out);
    let mut second = join(work.path(), "second", &pipeline, &mut out);
    let producing = produce_paced(&brokers, 1..=FIRST_HALF);
    let at_kill = distinct_after(&mut out, Duration::from_secs(90), |d| d as u64 >= N / 10);
    let rebalances = first.rebalances();
    second.kill();
    assert!(
        (at_kill as u64) < FIRST_HALF,
        "the kill must land mid-stream: {at_kill} of {FIRST_HALF}"
    );
    producing.join().expect("the producing thread");
    // The group notices the dead member after session.timeout.ms (6 s here).
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.rebalances() == rebalances && Instant::now() < deadline {
        out.poll(Duration::from_millis(200));
    }
    assert!(
        first.rebalances() > rebalances,
        "the group never noticed the killed host"
    );

    let mut replacement = join(work.path(), "replacement", &pipeline, &mut out);
    let producing = produce_paced(&brokers, FIRST_HALF + 1..=N);
    let at_stop = distinct_after(&mut out, Duration::from_secs(90), |d| {
        d as u64 >= FIRST_HALF + N / 10
    });
    assert!(
        (at_stop as u64) < N,
        "the stop must land mid-stream: {at_stop} of {N}"
    );
    producing.join().expect("the producing thread");
    assert_eq!(
        replacement.terminate().and_then(|s| s.code()),
        Some(130),
        "a stopped host exits 130:\n{}",
        replacement.log()
    );

    let distinct = wait_for_ids(&mut out, N, Duration::from_secs(120));
    out.poll(Duration::from_secs(1));
    assert_eq!(
        distinct as u64,
        N,
        "only {distinct} of {N} arrived; {}\nfirst:\n{}",
        diagnose(&brokers, "scale-out-test", &out),
        first.log()
    );
    assert_eq!(first.terminate().and_then(|s| s.code()), Some(130));
    let duplicates = check_no_loss("scale-out", &out, N);
    println!(
        "scale-out: SIGKILL at {at_kill} and SIGTERM at {at_stop} distinct written, {duplicates} duplicates, {:?}",
        started.elapsed()
    );
}

/// A planned scale-out and scale-in, no fault at all: two more hosts join the group one
/// after the other, later they are stopped with SIGTERM one after the other, while events
/// keep coming faster than the hosts write them. Each of those rebalances revokes partitions
/// from busy hosts, often in the middle of a batch; the events of revoked partitions already
/// taken into it are dropped (their next owner reads them from the offsets committed on
/// revoke), so an independent reader finds every id exactly once. Everything written is
/// committed by the end.
///
/// tansu 0.6 sometimes completes a rebalance before every member has rejoined, and hands a
/// partition to a new owner while the old one still holds it (seen under load: 330 ms of
/// two owners, 3,157 duplicates); Kafka waits for every member's revoke first. An attempt in
/// which the hosts' own logs show such an overlap proves nothing about weft and is run
/// again, up to three times; an attempt without one must write no event twice.
#[test]
fn hosts_joining_and_leaving_mid_stream_write_every_event_exactly_once() {
    let mut overlapped = Vec::new();
    for attempt in 1..=3 {
        match join_leave_attempt(attempt) {
            Ok(()) => return,
            Err(overlap) => {
                println!("attempt {attempt}: {overlap}; running it again");
                overlapped.push(overlap);
            }
        }
    }
    panic!(
        "in every attempt the broker gave a partition to two hosts at once, so zero duplicates \
         could not be checked:\n{}",
        overlapped.join("\n")
    );
}

/// One join/leave run against a broker of its own. Loss, commits and (when no partition
/// had two owners at once) duplicates are asserted here; `Err` names the overlap.
fn join_leave_attempt(attempt: u32) -> Result<(), String> {
    const FIRST: u64 = 20_000;
    // Produced in slices while the hosts join and leave, up to this many in all.
    const SLICE: u64 = 1_000;
    const MAX: u64 = 400_000;
    let group = format!("join-leave-test-{attempt}");
    let broker = raw_setup(FIRST, Storage::Sqlite);
    let brokers = broker.address();
    let produced = Arc::new(AtomicU64::new(FIRST));
    let stop = Arc::new(AtomicBool::new(false));
    let work = tempfile::tempdir().expect("temp dir");
    let text =
        std::fs::read_to_string(raw_pipeline(work.path(), &brokers, &group)).expect("pipeline");
    // Large batches and no processor: a host spends much of its time taking events into the
    // batch being built, so a rebalance often lands in the middle of one.
    let limits = "batch_size = 200\nlinger_ms = 20";
    let processor = format!(
        "[[processor]]\nplugin = {}\nparams = {{ condition = \"id > 0\" }}\n",
        toml_path(&plugin("filter"))
    );
    assert!(text.contains(limits) && text.contains(&processor), "{text}");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &text
            .replace(limits, "batch_size = 2000\nlinger_ms = 20")
            .replace(&processor, ""),
    );
    let started = Instant::now();
    let mut out = Collector::new(&brokers, "out");

    let mut first = join(work.path(), "first", &pipeline, &mut out);
    distinct_after(&mut out, Duration::from_secs(90), |d| {
        d as u64 >= FIRST / 10
    });
    let producing = {
        let (brokers, produced, stop) = (brokers.clone(), produced.clone(), stop.clone());
        std::thread::spawn(move || {
            let producer = TestProducer::new(&brokers);
            let mut next = FIRST;
            while !stop.load(Ordering::Relaxed) && next < MAX {
                producer.titles("in", next + 1..=next + SLICE, Framing::Raw, false);
                next += SLICE;
                produced.store(next, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // (what happened, distinct ids written once it was over, ids produced by then)
    let mut moments: Vec<(&str, usize, u64)> = Vec::new();
    let mut hosts = Vec::new();
    for name in ["second", "third"] {
        hosts.push(join(work.path(), name, &pipeline, &mut out));
        moments.push((
            name,
            distinct_now(&mut out),
            produced.load(Ordering::Relaxed),
        ));
    }
    for (host, name) in hosts.iter_mut().zip(["second left", "third left"]) {
        let rebalances = first.rebalances();
        assert_eq!(
            host.terminate().and_then(|s| s.code()),
            Some(130),
            "a stopped host exits 130:\n{}",
            host.log()
        );
        // The group moves the leaver's partitions to the hosts left.
        let deadline = Instant::now() + Duration::from_secs(30);
        while first.rebalances() == rebalances && Instant::now() < deadline {
            out.poll(Duration::from_millis(200));
        }
        assert!(
            first.rebalances() > rebalances,
            "a host left and the first saw no rebalance:\n{}",
            first.log()
        );
        moments.push((
            name,
            distinct_now(&mut out),
            produced.load(Ordering::Relaxed),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    producing.join().expect("the producer thread");
    let n = produced.load(Ordering::Relaxed);
    let distinct = wait_for_ids(&mut out, n, Duration::from_secs(180));
    // Anything written twice late would show up now.
    out.poll(Duration::from_secs(2));
    assert_eq!(
        distinct as u64,
        n,
        "only {distinct} of {n} arrived; {}\nfirst:\n{}",
        diagnose(&brokers, &group, &out),
        first.log()
    );
    assert_eq!(first.terminate().and_then(|s| s.code()), Some(130));
    let duplicates = check_no_loss("join and leave", &out, n);
    println!(
        "join and leave: (rebalance, distinct written after it, produced by then) {moments:?}, {duplicates} duplicates, {:?}",
        started.elapsed()
    );
    assert!(
        moments
            .iter()
            .all(|(_, written, by_then)| (*written as u64) < *by_then),
        "every rebalance must land mid-stream: {moments:?} of {n}"
    );
    let logs = || {
        std::iter::once(&first)
            .chain(&hosts)
            .map(|h| h.log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    if duplicates > 0 {
        let host_logs: Vec<String> = std::iter::once(&first)
            .chain(&hosts)
            .map(|h| h.log())
            .collect();
        let overlaps = ownership_overlaps(&host_logs);
        if !overlaps.is_empty() {
            return Err(format!(
                "{duplicates} duplicates, and the broker gave a partition to two hosts at once: {}",
                overlaps.join("; ")
            ));
        }
        panic!(
            "planned joins and leaves wrote {duplicates} events twice\n{}",
            logs()
        );
    }
    let ends: Vec<Option<i64>> = end_offsets(&brokers, "in", PARTITIONS as i32)
        .into_iter()
        .map(Some)
        .collect();
    assert_eq!(
        committed(&brokers, &group, "in", PARTITIONS as i32),
        ends,
        "after every host stopped cleanly, everything they wrote is committed"
    );
    Ok(())
}

/// Partitions two hosts held at the same time, from the `assigned …` and `revoked …` lines
/// of their logs (RFC 3339 timestamps of one clock, compared as text).
fn ownership_overlaps(logs: &[String]) -> Vec<String> {
    // Per host: (partition, from, until) with until = None while still held.
    let mut held: Vec<Vec<(String, String, Option<String>)>> = Vec::new();
    for log in logs {
        let mut spans: Vec<(String, String, Option<String>)> = Vec::new();
        for line in log.lines() {
            let Some(time) = line.split_whitespace().next() else {
                continue;
            };
            let change = [(": assigned ", true), (": revoked ", false)]
                .into_iter()
                .find_map(|(marker, assigned)| {
                    let rest = &line[line.find(marker)? + marker.len()..];
                    Some((rest.split(" client=").next().unwrap_or(rest), assigned))
                });
            let Some((list, assigned)) = change else {
                continue;
            };
            for partition in list.split(", ").filter(|p| p.contains('/')) {
                if assigned {
                    spans.push((partition.to_string(), time.to_string(), None));
                } else if let Some(open) = spans
                    .iter_mut()
                    .rev()
                    .find(|(p, _, until)| p == partition && until.is_none())
                {
                    open.2 = Some(time.to_string());
                }
            }
        }
        held.push(spans);
    }
    let mut overlaps = Vec::new();
    for (a, spans_a) in held.iter().enumerate() {
        for spans_b in &held[a + 1..] {
            for (p, from_a, until_a) in spans_a {
                for (q, from_b, until_b) in spans_b {
                    let ends_after = |until: &Option<String>, from: &String| {
                        until.as_ref().is_none_or(|u| u > from)
                    };
                    if p == q && ends_after(until_a, from_b) && ends_after(until_b, from_a) {
                        overlaps.push(format!(
                            "{p} held from {from_a} to {} and from {from_b} to {}",
                            until_a.as_deref().unwrap_or("the end"),
                            until_b.as_deref().unwrap_or("the end")
                        ));
                    }
                }
            }
        }
    }
    overlaps
}

/// The text of `raw_pipeline` for consumer group `group`, its source committing every
/// `interval_ms` (`commit_interval_ms`).
fn committing_every(work: &Path, brokers: &str, group: &str, interval_ms: u64) -> String {
    let text = std::fs::read_to_string(raw_pipeline(work, brokers, group)).expect("pipeline");
    let line = format!("group = \"{group}\"");
    assert!(text.contains(&line), "{text}");
    text.replace(
        &line,
        &format!("{line}\ncommit_interval_ms = {interval_ms}"),
    )
}

/// Acknowledged offsets are committed on a timer (`commit_interval_ms`), not after every
/// batch, and at once when the host stops: with a ten-minute interval nothing is committed
/// while every event is already written, and everything is once SIGTERM stopped the host.
#[test]
fn offsets_are_committed_on_a_timer_and_at_once_on_stop() {
    const N: u64 = 3000;
    let broker = raw_setup(N, Storage::Sqlite);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &committing_every(work.path(), &brokers, "timer-test", 600_000),
    );
    let mut host = Host::start(work.path(), "host", &pipeline, &[]);
    let mut out = Collector::new(&brokers, "out");
    let distinct = wait_for_ids(&mut out, N, Duration::from_secs(90));
    assert_eq!(distinct as u64, N, "log:\n{}", host.log());
    assert_eq!(
        committed(&brokers, "timer-test", "in", PARTITIONS as i32),
        vec![None; PARTITIONS as usize],
        "committed before the interval was over\nlog:\n{}",
        host.log()
    );
    assert_eq!(host.terminate().and_then(|s| s.code()), Some(130));
    let ends: Vec<Option<i64>> = end_offsets(&brokers, "in", PARTITIONS as i32)
        .into_iter()
        .map(Some)
        .collect();
    assert_eq!(
        committed(&brokers, "timer-test", "in", PARTITIONS as i32),
        ends,
        "a stopped host commits everything it wrote\nlog:\n{}",
        host.log()
    );
    check_no_loss("commit timer", &out, N);
}

/// The run loop keeps one batch in flight: a step writes its batch and the next step
/// flushes and acknowledges it. Driven step by step through the library, with offsets
/// committed after every acknowledgement (`commit_interval_ms = 0`): after each step the
/// group has committed exactly the batches the steps completed (their counts), never the
/// one in flight; closing completes and commits that one too. The run's summary counts every
/// event once, and the output topic holds each exactly once.
#[test]
fn the_batch_in_flight_is_committed_after_the_next_step_and_on_close() {
    const N: u64 = 900;
    let broker = raw_setup(N, Storage::Sqlite);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let text = committing_every(work.path(), &brokers, "in-flight", 0);
    let committed_sum = || committed_total(&brokers, "in-flight", "in");
    // Until two batches were completed and a third is in flight (the first polls wait for
    // the group to form).
    step_checking_commits(work.path(), &text, &brokers, N, &committed_sum, |steps| {
        steps.iter().filter(|s| s.events_in > 0).count() >= 2
    });
}

/// A union of two Kafka sources hands each member its own tickets: a member is polled only
/// while the batch has room, so after a few polls the members have counted different
/// numbers of polls, and the union's acknowledgement must reach each as that member's
/// ticket. Two topics, each read by its own group, one batch of 200 at a time: after every
/// step the two groups together have committed exactly what the steps completed, both
/// topics take part, and closing commits the batch in flight; nothing is written twice.
#[test]
fn a_union_of_two_topics_commits_each_member_what_the_steps_completed() {
    const N: u64 = 900;
    let broker = raw_setup(N, Storage::Sqlite);
    let brokers = broker.address();
    broker.create_topic("in2", PARTITIONS);
    TestProducer::new(&brokers).titles("in2", N + 1..=2 * N, Framing::Raw, false);
    let work = tempfile::tempdir().expect("temp dir");
    let text = committing_every(work.path(), &brokers, "union-a", 0);
    let second = format!(
        r#"[[source]]
kind = "kafka"
brokers = "{brokers}"
topics = ["in2"]
group = "union-b"
commit_interval_ms = 0
format = "avro"
schema = {schema}

[[processor]]"#,
        schema = toml_path(&title_schema()),
    );
    assert_eq!(text.matches("[[processor]]").count(), 1, "{text}");
    let text = text.replace("[[processor]]", &second);
    let first = || committed_total(&brokers, "union-a", "in");
    let other = || committed_total(&brokers, "union-b", "in2");
    let committed_sum = || first() + other();
    // Until each topic has had events committed (the steps fail on running out of patience
    // otherwise) and a batch is in flight.
    step_checking_commits(work.path(), &text, &brokers, 2 * N, &committed_sum, |_| {
        first() > 0 && other() > 0
    });
}

/// The offsets group `group` has committed on the partitions of `topic`, added up (an
/// offset is the count of events read before it, from a topic's start).
fn committed_total(brokers: &str, group: &str, topic: &str) -> i64 {
    committed(brokers, group, topic, PARTITIONS as i32)
        .into_iter()
        .flatten()
        .sum()
}

/// Runs the pipeline `text` (raw titles to `out`, every one kept) step by step through the
/// library until `enough` says so of the steps taken and a batch is in flight, checking after
/// every step that `committed_sum` is exactly what the steps completed, never the batch in
/// flight. Then closes it, and checks that closing completed and committed that batch, that
/// the summary counts each event once, and that `out` holds each exactly once.
fn step_checking_commits(
    dir: &Path,
    text: &str,
    brokers: &str,
    produced: u64,
    committed_sum: &(dyn Fn() -> i64 + Sync),
    enough: impl Fn(&[weft_host::pipeline::Step]) -> bool + Sync,
) {
    use weft_host::pipeline::{LocalOnly, Pipeline, Step, on_run_thread};
    use weft_runtime::{Runtime, RuntimeOptions};

    let config = weft_host::config::parse_str(text, &dir.join("pipeline.toml"), dir)
        .expect("a valid pipeline");
    let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).expect("runtime");
    let (steps, last, summary) = on_run_thread(|| {
        let mut running = Pipeline::build(config, &runtime, &LocalOnly)
            .expect("builds")
            .open()
            .expect("opens");
        let mut steps: Vec<Step> = Vec::new();
        let patience = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < patience, "not enough after {steps:?}");
            let step = running.step().expect("a step");
            steps.push(step);
            let completed: u64 = steps.iter().map(|s| s.events_in).sum();
            // The commit of the acknowledged batches is asynchronous: wait for it, then
            // nothing of the batch in flight may be committed.
            let deadline = Instant::now() + Duration::from_secs(30);
            while committed_sum() < completed as i64 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(
                committed_sum(),
                completed as i64,
                "after {} steps ({steps:?}), the committed offsets must cover the completed batches, not the one in flight",
                steps.len()
            );
            if step.in_flight > 0 && enough(&steps) {
                break;
            }
        }
        let last = steps.last().map_or(0, |s| s.in_flight);
        (steps, last, running.close().expect("closes"))
    })
    .expect("run thread");
    let completed: u64 = steps.iter().map(|s| s.events_in).sum();
    assert!(completed + last <= produced, "{steps:?}");
    assert_eq!(
        committed_sum(),
        (completed + last) as i64,
        "closing completes and commits the batch that was in flight"
    );
    assert_eq!(summary.events_in, completed + last, "{summary:?}");
    assert_eq!(
        summary.events_out, summary.events_in,
        "the filter keeps every id > 0"
    );
    assert!(summary.interrupted, "a Kafka source is never exhausted");
    let mut out = Collector::new(brokers, "out");
    let distinct = distinct_after(&mut out, Duration::from_secs(60), |d| {
        d as u64 >= summary.events_in
    });
    assert_eq!(
        distinct as u64, summary.events_in,
        "every event the run moved is in `out`"
    );
    assert_eq!(
        out.messages.len() as u64,
        summary.events_in,
        "and none twice"
    );
}

/// `topic_pattern` picks up every matching topic and `start = "latest"` skips what was
/// there before the host started: only the events produced afterwards come out.
#[test]
fn pattern_subscription_from_latest_reads_only_new_events() {
    let broker = Broker::start(Storage::Sqlite);
    let brokers = broker.address();
    for topic in ["events-a", "events-b", "other"] {
        broker.create_topic(topic, 2);
    }
    broker.create_topic("out", PARTITIONS);
    let producer = TestProducer::new(&brokers);
    for topic in ["events-a", "events-b", "other"] {
        producer.titles(topic, 1..=100, Framing::Raw, false);
    }
    let work = tempfile::tempdir().expect("temp dir");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &format!(
            r#"
[[source]]
kind = "kafka"
brokers = "{brokers}"
topic_pattern = "events-.*"
group = "latest-test"
start = "latest"
format = "avro"
schema = {schema}

[sink]
kind = "kafka"
brokers = "{brokers}"
topic = "out"
format = "avro"
"#,
            schema = toml_path(&title_schema()),
        ),
    );
    let mut out = Collector::new(&brokers, "out");
    let host = join(work.path(), "host", &pipeline, &mut out);
    assert!(
        host.log().contains("events-a/1") && host.log().contains("events-b/1"),
        "both matching topics assigned:\n{}",
        host.log()
    );
    // The end offsets are looked up once the partitions start fetching.
    out.poll(Duration::from_secs(2));
    for topic in ["events-a", "events-b", "other"] {
        producer.titles(topic, 101..=150, Framing::Raw, false);
    }
    out.wait_for(Duration::from_secs(60), |m| m.len() >= 100);
    out.poll(Duration::from_secs(2));
    let schema = titles();
    let t = tally(
        out.messages
            .iter()
            .map(|m| title_id(&schema, &m.value, Framing::Raw)),
        101..=150,
    );
    println!("pattern from latest: 300 before, 150 after (100 matching), output {t:?}");
    assert!(t.missing.is_empty() && t.unexpected.is_empty(), "{t:?}");
    assert_eq!(
        t.received, 100,
        "each new title once per matching topic: {t:?}"
    );
}

/// The sink's broker dies mid-stream while the source's broker stays up, so the source could
/// commit: nothing is acknowledged or committed that the sink's broker did not take. While it
/// is down the committed offsets stand still; the host is then killed (librdkafka's queue of
/// unsent messages dies with it), the sink's broker comes back and a second host resumes
/// from the committed offsets: every id arrives. A flush that returned before its deliveries
/// were reported would have let the source commit past events that never reached `out`.
#[test]
fn sink_broker_down_nothing_is_committed_that_was_not_delivered() {
    const N: u64 = 30_000;
    let source = raw_setup(N, Storage::Sqlite);
    let mut sink = Broker::start(Storage::Sqlite);
    sink.create_topic("out", PARTITIONS);
    let (brokers, sink_brokers) = (source.address(), sink.address());
    let work = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(raw_pipeline(work.path(), &brokers, "sink-down-test"))
        .expect("pipeline");
    // Only the sink moves to the other broker; the dead letters stay with the source.
    let sink_table = format!("[sink]\nkind = \"kafka\"\nbrokers = \"{brokers}\"");
    assert!(text.contains(&sink_table), "{text}");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &text.replace(
            &sink_table,
            &format!("[sink]\nkind = \"kafka\"\nbrokers = \"{sink_brokers}\""),
        ),
    );

    let mut first = Host::start(work.path(), "first", &pipeline, &[]);
    let mut out = Collector::new(&sink_brokers, "out");
    let before = distinct_after(&mut out, Duration::from_secs(90), |d| d as u64 >= N / 5);
    assert!(
        (before as u64) < N,
        "the sink's broker must die mid-stream: {before} of {N}"
    );
    sink.kill();
    // What was in flight when it died settles (acknowledged and committed, or not).
    std::thread::sleep(Duration::from_secs(3));
    let at_outage = committed(&brokers, "sink-down-test", "in", PARTITIONS as i32);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        first.exited().is_none(),
        "the host gave up while the sink's broker was down:\n{}",
        first.log()
    );
    let later = committed(&brokers, "sink-down-test", "in", PARTITIONS as i32);
    assert_eq!(
        later,
        at_outage,
        "offsets were committed while no write could be acknowledged\nlog:\n{}",
        first.log()
    );
    first.kill();

    sink.restart();
    let mut second = Host::start(work.path(), "second", &pipeline, &[]);
    let distinct = wait_for_ids(&mut out, N, Duration::from_secs(150));
    out.poll(Duration::from_secs(1));
    assert_eq!(
        distinct as u64,
        N,
        "after the sink's broker came back only {distinct} of {N} arrived; committed {:?} at the outage\nfirst:\n{}\nsecond:\n{}",
        at_outage,
        first.log(),
        second.log()
    );
    assert_eq!(second.terminate().and_then(|s| s.code()), Some(130));
    let duplicates = check_no_loss("sink broker down", &out, N);
    println!("sink broker down: {before} distinct before the outage, {duplicates} duplicates");
}

/// A batch goes as soon as the consumer has handed over what it had: a few events reach the
/// sink long before a 10-minute linger is over (the source used to wait for a full batch or
/// the whole linger).
#[test]
fn a_few_events_go_through_without_waiting_out_the_linger() {
    const N: u64 = 10;
    let broker = raw_setup(N, Storage::Memory);
    let brokers = broker.address();
    let work = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(raw_pipeline(work.path(), &brokers, "linger-test"))
        .expect("pipeline");
    let limits = "batch_size = 200\nlinger_ms = 20";
    assert!(text.contains(limits), "{text}");
    let pipeline = write(
        work.path(),
        "pipeline.toml",
        &text.replace(limits, "batch_size = 1000\nlinger_ms = 600000"),
    );
    let mut host = Host::start(work.path(), "host", &pipeline, &[]);
    let mut out = Collector::new(&brokers, "out");
    let distinct = wait_for_ids(&mut out, N, Duration::from_secs(60));
    assert_eq!(
        distinct as u64,
        N,
        "{distinct} of {N} came out within a minute\nlog:\n{}",
        host.log()
    );
    host.kill();
    check_no_loss("long linger", &out, N);
}

/// The overlap check reads the hosts' logs as weft writes them: the CI run where tansu gave
/// in/1 to the first host 330 ms before the third had given it up, and one clean handover.
#[test]
fn ownership_overlaps_are_read_from_the_hosts_logs() {
    let line = |time: &str, what: &str| {
        format!(
            "2026-11-30T{time}Z  INFO weft_host::io::kafka::source::group: {what} client=kafka in (group g)\n"
        )
    };
    let first = [
        line("15:44:49.957139", "assigned in/0"),
        line("15:44:53.483584", "revoked in/0"),
        line("15:44:53.496215", "assigned in/0, in/1"),
        line("15:45:00.196703", "revoked in/0, in/1"),
    ]
    .concat();
    let third = [
        line("15:44:52.749810", "assigned in/1"),
        line("15:44:53.823819", "revoked in/1"),
    ]
    .concat();
    let overlaps = ownership_overlaps(&[first.clone(), third]);
    assert_eq!(
        overlaps,
        [
            "in/1 held from 2026-11-30T15:44:53.496215Z to 2026-11-30T15:45:00.196703Z \
          and from 2026-11-30T15:44:52.749810Z to 2026-11-30T15:44:53.823819Z"
        ],
        "{overlaps:?}"
    );
    let handed_over = [
        line("15:44:52.749810", "assigned in/1"),
        line("15:44:53.400000", "revoked in/1"),
    ]
    .concat();
    assert!(ownership_overlaps(&[first, handed_over]).is_empty());
}
