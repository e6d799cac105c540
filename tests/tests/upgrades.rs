//! Automatic upgrades of `weft serve` (issue 11) through the real binaries: a tansu broker,
//! the `weft-registry` and the `weft` daemon, an independent producer and an independent
//! consumer (rdkafka, no consumer group) that never touch the daemon.
//!
//! - The source's schema evolves: v2 (a new optional field) is registered and written while
//!   the pipeline runs; the pipeline switches its reader schema by itself, the new field
//!   reaches the sink, whose subject gets a new version, and every event arrives, in order per
//!   partition. v3 then drops a field the filter's condition reads: the pipeline keeps running
//!   on v2, its status names the field and the stage, its history records the block.
//! - A stage named `stamp@^1` follows the registry: 1.1.0 pushed is in use a few poll
//!   intervals later; 1.2.0, which panics on every event, is rolled back (its events
//!   re-processed by 1.1.0 or dead-lettered with the reason, the version annotated in the
//!   registry); yanking 1.1.0 moves the pipeline back to 1.0.0. No event is lost.
//!
//! Each waits on what the daemon reports (its status, its history), never on a fixed sleep,
//! and prints how long each upgrade took. Needs tansu (scripts/setup.sh --kafka) and the
//! plugins; a missing one fails the test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use serde_json::{Value, json};
use weft_host::io::json::json_to_avro;
use weft_tests::kafka::{
    Broker, Collector, REGISTRY_TOKEN, Received, Registry, Storage, TestProducer, title_datum,
    title_key, titles,
};
use weft_tests::serve::{Daemon, wait_until};
use weft_tests::stream::{SinkReader, Stream, assert_in_order_per_partition, missing};
use weft_tests::{plugin, title_schema, toml_path};

/// How often the daemon polls the registry in these tests (the documented default).
const POLL_MS: u64 = 1000;
/// How long any one upgrade may take before the test gives up: generous, as plugin compiles
/// on a loaded two-core machine are slow; the measured times are printed.
const UPGRADE_BOUND: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 2;

/// The daemon's `[registry]`, `[kafka]` and `[upgrades]` tables.
fn weftd(registry: &Registry, brokers: &str, canary: &str) -> String {
    format!(
        "[registry]\nurl = \"{}\"\ntoken = \"{REGISTRY_TOKEN}\"\n\n[kafka]\nbrokers = \"{brokers}\"\n\n\
         [upgrades]\nenabled = true\ninterval_ms = {POLL_MS}\n{canary}\n",
        registry.url
    )
}

/// The pipeline's `upgrade` report: the contract allows a field of its own or `last_error`.
fn upgrade_report(status: &Value) -> String {
    [&status["upgrade"], &status["last_error"]]
        .into_iter()
        .map(|v| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The history of a pipeline (oldest first).
fn history(daemon: &Daemon, name: &str) -> Vec<Value> {
    let (code, body) = daemon.get(&format!("/v1/pipelines/{name}/history"));
    assert_eq!(code, 200, "GET history of {name}: {body}");
    assert_eq!(body["pipeline"], name, "{body}");
    body["entries"].as_array().cloned().unwrap_or_default()
}

fn entries_of<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind).collect()
}

/// `GET` on the registry, parsed.
fn registry_get(registry: &Registry, path: &str) -> Value {
    reqwest::blocking::get(format!("{}{path}", registry.url))
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("GET {path} on the registry: {e}"))
}

/// `POST` on the registry with the write token; must succeed.
fn registry_post(registry: &Registry, path: &str) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}{path}", registry.url))
        .bearer_auth(REGISTRY_TOKEN)
        .send()
        .unwrap_or_else(|e| panic!("POST {path} on the registry: {e}"));
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.text().unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------
// The source's schema evolves.
// ---------------------------------------------------------------------------------------

const V1: &str = r#"{"type": "record", "name": "Title", "namespace": "weft.upgrades", "fields": [
    {"name": "id", "type": "long"},
    {"name": "title", "type": "string"},
    {"name": "kind", "type": "string"},
    {"name": "year", "type": "int"}]}"#;

/// v1 and a new optional field with a default.
const V2: &str = r#"{"type": "record", "name": "Title", "namespace": "weft.upgrades", "fields": [
    {"name": "id", "type": "long"},
    {"name": "title", "type": "string"},
    {"name": "kind", "type": "string"},
    {"name": "year", "type": "int"},
    {"name": "lang", "type": ["null", "string"], "default": null}]}"#;

/// v2 without `year`, the field the pipeline's filter condition reads.
const V3: &str = r#"{"type": "record", "name": "Title", "namespace": "weft.upgrades", "fields": [
    {"name": "id", "type": "long"},
    {"name": "title", "type": "string"},
    {"name": "kind", "type": "string"},
    {"name": "lang", "type": ["null", "string"], "default": null}]}"#;

/// Title `id` in the Confluent wire format with `schema` (registered as `schema_id`); v2 and
/// later carry `lang = "fr"`.
fn confluent_title(schema: &Schema, schema_id: u32, id: u64) -> Vec<u8> {
    let json = json!({
        "id": id, "title": format!("Title {id}"), "kind": "movie",
        "year": 1990 + (id % 40) as i64, "lang": "fr",
    });
    let Schema::Record(record) = schema else {
        panic!("not a record schema");
    };
    let fields: serde_json::Map<String, Value> = record
        .fields
        .iter()
        .map(|f| (f.name.clone(), json[&f.name].clone()))
        .collect();
    let value = json_to_avro(&Value::Object(fields), schema).expect("title fits the schema");
    let mut bytes = vec![0];
    bytes.extend_from_slice(&schema_id.to_be_bytes());
    bytes.extend(to_avro_datum(schema, value).expect("encode"));
    bytes
}

#[test]
fn a_source_schema_change_upgrades_the_pipeline_and_a_dropped_field_blocks_it() {
    let broker = Broker::start(Storage::Sqlite);
    let registry = Registry::start();
    let brokers = broker.address();
    for topic in ["up-in", "up-out"] {
        broker.create_topic(topic, PARTITIONS as u32);
    }
    broker.create_topic("up-dead", 1);
    let client = registry.client();
    let [v1, v2, v3] = [V1, V2, V3].map(|s| Schema::parse_str(s).expect("schema parses"));
    let v1_id = client.register("up-in-value", V1).expect("register v1");

    // v1 events, before the daemon starts.
    let producer = TestProducer::new(&brokers);
    for id in 1..=100 {
        producer.send(
            "up-in",
            Some(title_key(id).as_bytes()),
            &confluent_title(&v1, v1_id, id),
            &[],
        );
    }
    producer.flush();

    let work = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(work.path(), &weftd(&registry, &brokers, ""));
    daemon.put_pipeline(
        "titles",
        &format!(
            r#"
[[source]]
kind = "kafka"
topics = ["up-in"]
group = "upgrades"
start = "committed"
# format = "confluent" and no schema: the reader schema is the latest of up-in-value.

[[processor]]
plugin = {filter}
params = {{ condition = "year > 1000" }}

[sink]
kind = "kafka"
topic = "up-out"
register_schema = true

[dead_letter]
kind = "kafka"
topic = "up-dead"

[limits]
batch_size = 50
"#,
            filter = toml_path(&plugin("filter"))
        ),
    );
    let mut out = Collector::new(&brokers, "up-out");
    let mut reader = SinkReader::new(&registry);
    assert!(
        out.wait_for(Duration::from_secs(120), |m| m.len() >= 100),
        "{} of 100 v1 events reached the sink\nlog:\n{}",
        out.messages.len(),
        daemon.log()
    );
    let reader_schema = |daemon: &Daemon| daemon.status("titles")["reader_schema_id"].as_u64();
    assert_eq!(
        reader_schema(&daemon),
        Some(u64::from(v1_id)),
        "the status names the reader schema: {}",
        daemon.status("titles")
    );

    // v2 registered, then written continuously while the daemon notices it.
    let v2_id = client.register("up-in-value", V2).expect("register v2");
    let registered = Instant::now();
    let stream = Stream::start(&brokers, "up-in", 101, Duration::from_millis(20), {
        let v2 = v2.clone();
        move |id| confluent_title(&v2, v2_id, id)
    });
    daemon.wait_for("the reader schema to switch to v2", UPGRADE_BOUND, || {
        reader_schema(&daemon) == Some(u64::from(v2_id))
    });
    let switched = registered.elapsed();
    let mut first_lang = None;
    let arrived = out.wait_for(UPGRADE_BOUND, |messages| {
        first_lang = messages
            .iter()
            .any(|m| reader.read(m).1["lang"] == "fr")
            .then(|| registered.elapsed());
        first_lang.is_some()
    });
    assert!(
        arrived,
        "no event with lang reached the sink\nlog:\n{}",
        daemon.log()
    );
    let first_lang = first_lang.expect("set when arrived");
    // Some more v2 events after the switch, then everything written must arrive.
    let more = stream.last() + 50;
    assert!(wait_until(Duration::from_secs(60), || stream.last() >= more));
    let last_v2 = stream.stop();
    println!(
        "upgrades: schema v2 registered -> reader schema switched {switched:?}, -> first event \
         with the new field in the sink {first_lang:?} (poll every {POLL_MS} ms)"
    );

    // The sink registered the new output schema as a new version of its subject.
    let versions = registry_get(&registry, "/subjects/up-out-value/versions");
    assert_eq!(versions, json!([1, 2]), "versions of up-out-value");
    let (out_v2_id, out_v2) = client.latest("up-out-value").expect("latest sink schema");
    assert!(
        out_v2.contains("\"lang\""),
        "the sink's new schema: {out_v2}"
    );
    let upgrades = entries_of(&history(&daemon, "titles"), "upgrade").len();
    assert!(upgrades >= 1, "history: {:?}", history(&daemon, "titles"));
    assert_eq!(
        daemon.metric("weft_pipeline_upgrades_total{pipeline=\"titles\",kind=\"schema\"}"),
        Some(upgrades as f64)
    );

    // v3 drops `year`, which the filter's condition reads: blocked, v2 stays the reader.
    let v3_id = client
        .register("up-in-value", V3)
        .expect("register v3 (BACKWARD allows it)");
    daemon.wait_for(
        "the upgrade to v3 to be reported blocked",
        UPGRADE_BOUND,
        || upgrade_report(&daemon.status("titles")).contains("blocked"),
    );
    let report = upgrade_report(&daemon.status("titles"));
    assert!(
        report.contains("year") && report.contains("filter"),
        "the block names the field and the stage: {report}"
    );
    assert_eq!(reader_schema(&daemon), Some(u64::from(v2_id)));
    assert_eq!(daemon.state("titles"), "RUNNING");
    assert_eq!(
        daemon.metric("weft_pipeline_upgrade_blocked{pipeline=\"titles\"}"),
        Some(1.0)
    );

    // Still running on v2: v2 events keep flowing; v3 events, which v2 cannot read (no
    // `year`, no default), are dead-lettered with the reason rather than lost.
    for id in last_v2 + 1..=last_v2 + 50 {
        producer.send(
            "up-in",
            Some(title_key(id).as_bytes()),
            &confluent_title(&v2, v2_id, id),
            &[],
        );
    }
    let v3_ids = last_v2 + 51..=last_v2 + 60;
    for id in v3_ids.clone() {
        producer.send(
            "up-in",
            Some(title_key(id).as_bytes()),
            &confluent_title(&v3, v3_id, id),
            &[],
        );
    }
    producer.flush();
    let last = last_v2 + 50;
    let mut ids = BTreeSet::new();
    let complete = out.wait_for(Duration::from_secs(120), |messages| {
        ids = messages
            .iter()
            .map(|m| reader.read(m).1["id"].as_i64().expect("id"))
            .collect();
        missing(&ids, last).is_empty()
    });
    assert!(
        complete,
        "missing from the sink: {:?}\nlog:\n{}",
        missing(&ids, last),
        daemon.log()
    );
    let mut dead = Collector::new(&brokers, "up-dead");
    let v3_keys: BTreeSet<Vec<u8>> = v3_ids.map(|id| title_key(id).into_bytes()).collect();
    let v3_dead = |messages: &[Received]| {
        messages
            .iter()
            .filter(|m| m.key.as_ref().is_some_and(|k| v3_keys.contains(k)))
            .map(|m| (m.key.clone(), m.header("weft.reason").unwrap_or_default()))
            .collect::<BTreeMap<_, _>>()
    };
    let all_dead = dead.wait_for(Duration::from_secs(60), |m| {
        v3_dead(m).len() == v3_keys.len()
    });
    let reasons = v3_dead(&dead.messages);
    assert!(
        all_dead && reasons.values().all(|r| !r.is_empty()),
        "the v3 events in the dead letters, with a reason: {reasons:?}\nlog:\n{}",
        daemon.log()
    );
    println!(
        "upgrades: a v3 event read as v2 is dead-lettered: {:?}",
        reasons.values().next()
    );
    // Blocked once: the daemon does not retry (and record) the same refusal every poll.
    let entries = history(&daemon, "titles");
    let blocked = entries_of(&entries, "blocked");
    assert_eq!(blocked.len(), 1, "one blocked entry: {entries:?}");
    assert!(
        blocked[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("year")),
        "{blocked:?}"
    );
    out.poll(Duration::from_millis(500));
    let events: HashMap<(i32, i64), Value> = out
        .messages
        .iter()
        .map(|m| ((m.partition, m.offset), reader.read(m).1))
        .collect();
    let event = |m: &Received| &events[&(m.partition, m.offset)];
    assert_in_order_per_partition(
        &out.messages,
        &BTreeSet::new(),
        |m| event(m)["id"].as_i64().expect("id"),
        |m| event(m).to_string(),
    );
    // Every event read after the switch carries the field, framed with the sink's v2 id.
    let after: Vec<(u32, Value)> = out
        .messages
        .iter()
        .map(|m| reader.read(m))
        .filter(|(_, e)| e["id"].as_i64() > Some(last_v2 as i64))
        .collect();
    assert!(
        after
            .iter()
            .all(|(id, e)| *id == out_v2_id && e["lang"] == "fr"),
        "events written after the block: {after:?}"
    );
    println!(
        "upgrades: schema evolution: produced {last}, sink {} ({} distinct), upgrades {upgrades}",
        out.messages.len(),
        ids.len()
    );
}

// ---------------------------------------------------------------------------------------
// New plugin versions.
// ---------------------------------------------------------------------------------------

/// The id and title of a title event written as a bare Avro datum.
fn id_and_title(schema: &Schema, value: &[u8]) -> (i64, String) {
    let Avro::Record(fields) = from_avro_datum(schema, &mut &value[..], None).expect("decodes")
    else {
        panic!("not a record");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    match (field("id"), field("title")) {
        (Some(Avro::Long(id)), Some(Avro::String(title))) => (id, title),
        other => panic!("no id and title: {other:?}"),
    }
}

/// The stamp (`1.1.0`) the title of an output event carries.
fn stamp_of(title: &str) -> &str {
    title.rsplit_once(" @").map_or("", |(_, version)| version)
}

/// Whether the pipeline's stages pin `stamp@version`.
fn pins(daemon: &Daemon, version: &str) -> bool {
    let status = daemon.status("plugins");
    let pins = match status["pins"].as_array() {
        Some(pins) if !pins.is_empty() => &status["pins"],
        _ => &status["stages"],
    };
    let wanted = format!("stamp@{version}@");
    pins.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|pin| pin.starts_with(&wanted))
}

#[test]
fn plugin_versions_are_followed_rolled_back_and_yanked_without_losing_an_event() {
    let broker = Broker::start(Storage::Sqlite);
    let registry = Registry::start();
    let brokers = broker.address();
    for topic in ["pl-in", "pl-out"] {
        broker.create_topic(topic, PARTITIONS as u32);
    }
    broker.create_topic("pl-dead", 1);
    let client = registry.client();
    let push = |version: &str| {
        // stamp_1_1 is the build of 1.1.0.
        let file = plugin(&format!("stamp_{}", &version.replace('.', "_")[..3]));
        client
            .push(std::fs::read(&file).expect("read stamp"))
            .unwrap_or_else(|e| panic!("push stamp {version}: {e}"));
    };
    push("1.0.0");

    let work = tempfile::tempdir().expect("temp dir");
    let mut daemon = Daemon::start(
        work.path(),
        &weftd(
            &registry,
            &brokers,
            "canary_events = 50\ncanary_max_traps = 5\n",
        ),
    );
    daemon.put_pipeline(
        "plugins",
        &format!(
            r#"
[[source]]
kind = "kafka"
topics = ["pl-in"]
group = "plugins"
# From the group's commits: a restarted daemon replays only what it had not committed.
start = "committed"
format = "avro"
schema = {schema}

# The group notices the killed daemon's member after 6 s, not librdkafka's 45.
[source.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500

[[processor]]
plugin = "stamp@^1"
params = {{ field = "title" }}

[sink]
kind = "kafka"
topic = "pl-out"
format = "avro"

[dead_letter]
kind = "kafka"
topic = "pl-dead"

[limits]
batch_size = 20
"#,
            schema = toml_path(&title_schema())
        ),
    );
    let schema = titles();
    let stream = Stream::start(&brokers, "pl-in", 1, Duration::from_millis(10), {
        let schema = schema.clone();
        move |id| title_datum(&schema, id)
    });
    let mut out = Collector::new(&brokers, "pl-out");
    let mut dead = Collector::new(&brokers, "pl-dead");
    // Progress on stderr (shown with --nocapture or on failure): when each step happened.
    let started = Instant::now();
    let phase = |what: &str, produced: u64| {
        eprintln!(
            "upgrades: {:>5.1}s {what} ({produced} produced)",
            started.elapsed().as_secs_f64()
        );
    };
    let stamped = |out: &mut Collector, version: &str| {
        let schema = &schema;
        out.wait_for(UPGRADE_BOUND, |messages| {
            messages
                .iter()
                .any(|m| stamp_of(&id_and_title(schema, &m.value).1) == version)
        })
    };
    assert!(
        stamped(&mut out, "1.0.0"),
        "no event stamped 1.0.0\nlog:\n{}",
        daemon.log()
    );
    assert!(pins(&daemon, "1.0.0"), "{}", daemon.status("plugins"));
    phase("stamped by 1.0.0", stream.last());

    // 1.1.0 pushed while events flow.
    push("1.1.0");
    let pushed = Instant::now();
    daemon.wait_for("stamp 1.1.0 to be pinned", UPGRADE_BOUND, || {
        pins(&daemon, "1.1.0")
    });
    let in_use = pushed.elapsed();
    assert!(
        stamped(&mut out, "1.1.0"),
        "no event stamped 1.1.0\nlog:\n{}",
        daemon.log()
    );
    let first_stamped = pushed.elapsed();
    println!(
        "upgrades: plugin 1.1.0 pushed -> pinned {in_use:?}, -> first event it processed in \
         the sink {first_stamped:?} (poll every {POLL_MS} ms)"
    );

    // 1.2.0 panics on every event: rolled back to 1.1.0, annotated in the registry.
    phase("stamped by 1.1.0", stream.last());
    push("1.2.0");
    let pushed = Instant::now();
    daemon.wait_for("a rollback in the history", UPGRADE_BOUND, || {
        !entries_of(&history(&daemon, "plugins"), "rollback").is_empty()
    });
    let rolled_back = pushed.elapsed();
    let entries = history(&daemon, "plugins");
    let rollback = entries_of(&entries, "rollback")[0].clone();
    assert!(
        rollback["from"]
            .as_str()
            .is_some_and(|f| f.contains("1.2.0"))
            && rollback["to"].as_str().is_some_and(|t| t.contains("1.1.0"))
            && rollback["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "rollback entry: {rollback}"
    );
    assert!(pins(&daemon, "1.1.0"), "{}", daemon.status("plugins"));
    let annotations =
        registry_get(&registry, "/v1/plugins/stamp/versions/1.2.0")["annotations"].clone();
    assert!(
        annotations
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["kind"] == "rolled-back" && a["pipeline"] == "plugins"),
        "registry annotations of stamp 1.2.0: {annotations}"
    );
    assert!(
        daemon
            .metric("weft_pipeline_rollbacks_total{pipeline=\"plugins\"}")
            .is_some_and(|n| n >= 1.0),
        "rollbacks metric"
    );
    println!("upgrades: plugin 1.2.0 pushed -> rolled back {rolled_back:?}");

    // A crash (SIGKILL) and a restart: the exclusion and the history are on disk, so the
    // restarted daemon builds stamp@^1 as 1.1.0, not the rolled-back 1.2.0.
    phase("rolled back", stream.last());
    daemon.restart();
    daemon.wait_state("plugins", "RUNNING", UPGRADE_BOUND);
    phase("restarted, RUNNING", stream.last());
    assert!(
        pins(&daemon, "1.1.0"),
        "after a restart: {}",
        daemon.status("plugins")
    );
    assert_eq!(
        entries_of(&history(&daemon, "plugins"), "rollback").len(),
        1,
        "the history survives a restart"
    );

    // Yanking the running 1.1.0 moves the pipeline back to 1.0.0 (1.2.0 stays excluded).
    let before_yank = stream.last() as i64;
    registry_post(&registry, "/v1/plugins/stamp/versions/1.1.0/yank");
    let yanked = Instant::now();
    daemon.wait_for("stamp 1.0.0 to be pinned again", UPGRADE_BOUND, || {
        pins(&daemon, "1.0.0")
    });
    println!(
        "upgrades: plugin 1.1.0 yanked -> 1.0.0 pinned {:?}",
        yanked.elapsed()
    );
    let back = out.wait_for(UPGRADE_BOUND, |messages| {
        messages.iter().any(|m| {
            let (id, title) = id_and_title(&schema, &m.value);
            id > before_yank && stamp_of(&title) == "1.0.0"
        })
    });
    assert!(
        back,
        "no event after the yank stamped 1.0.0\nlog:\n{}",
        daemon.log()
    );

    // Nothing lost: every id is in the sink or, with the reason, in the dead letters.
    let last = stream.stop();
    phase("stamped by 1.0.0 after the yank; producer stopped", last);
    let mut found = BTreeSet::new();
    let complete = wait_until(Duration::from_secs(120), || {
        out.poll(Duration::from_millis(200));
        dead.poll(Duration::from_millis(50));
        found = out
            .messages
            .iter()
            .chain(&dead.messages)
            .map(|m| id_and_title(&schema, &m.value).0)
            .collect();
        missing(&found, last).is_empty()
    });
    assert!(
        complete,
        "lost: {:?}\nlog:\n{}",
        missing(&found, last),
        daemon.log()
    );
    phase("every event found", last);
    // Only 1.2.0's traps are dead letters, each with the panic's message.
    for m in &dead.messages {
        let reason = m.header("weft.reason").unwrap_or_default();
        let processor = m.header("weft.processor").unwrap_or_default();
        assert!(
            processor.contains("1.2.0") && reason.contains("broken"),
            "a dead letter not from 1.2.0's trap: {processor:?} {reason:?}"
        );
    }
    let mut by_stamp: BTreeMap<String, usize> = BTreeMap::new();
    for m in &out.messages {
        let (id, title) = id_and_title(&schema, &m.value);
        assert_eq!(
            title.matches(" @").count(),
            1,
            "title {id} was stamped once, by one version: {title:?}"
        );
        *by_stamp.entry(stamp_of(&title).to_string()).or_default() += 1;
    }
    assert!(!by_stamp.contains_key("1.2.0"), "{by_stamp:?}");
    let dead_ids: BTreeSet<i64> = dead
        .messages
        .iter()
        .map(|m| id_and_title(&schema, &m.value).0)
        .collect();
    assert_in_order_per_partition(
        &out.messages,
        &dead_ids,
        |m| id_and_title(&schema, &m.value).0,
        |m| id_and_title(&schema, &m.value).1,
    );
    let entries = history(&daemon, "plugins");
    assert_eq!(entries_of(&entries, "rollback").len(), 1, "{entries:?}");
    // Counted since the restart: the yank's move to 1.0.0.
    assert_eq!(
        daemon.metric("weft_pipeline_upgrades_total{pipeline=\"plugins\",kind=\"plugin\"}"),
        Some(1.0),
        "plugin upgrades since the restart"
    );
    let distinct: BTreeSet<i64> = out
        .messages
        .iter()
        .map(|m| id_and_title(&schema, &m.value).0)
        .collect();
    println!(
        "upgrades: plugins: produced {last}, sink {} ({} distinct) by version {by_stamp:?}, \
         dead letters {}, history {:?}",
        out.messages.len(),
        distinct.len(),
        dead.messages.len(),
        entries
            .iter()
            .map(|e| e["kind"].clone())
            .collect::<Vec<_>>()
    );
}
