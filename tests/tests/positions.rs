//! The source's position headers (`weft.source.*`) never reach a processor, cannot be forged
//! by one, and come back on every output and every dead letter: kept, emitted, fanned out,
//! trapped on, rejected or refused as a contract violation.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use weft_runtime::{Chain, ChainLimits, ChainOutput, Event, Header, Runtime, StageSpec};
use weft_tests::{plugin, runtime};

fn schema() -> Schema {
    Schema::parse_str(r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#)
        .expect("schema")
}

/// Event `id` as a Kafka source hands it over: a header of its own, then its position.
fn event(id: i64) -> Event {
    let header = |key: &str, value: String| Header {
        key: key.into(),
        value: value.into_bytes(),
    };
    Event {
        key: None,
        value: apache_avro::to_avro_datum(
            &schema(),
            Value::Record(vec![("id".into(), Value::Long(id))]),
        )
        .expect("encode"),
        headers: vec![
            header("trace", format!("t{id}")),
            header("weft.source.topic", "titles-in".into()),
            header("weft.source.partition", "0".into()),
            header("weft.source.offset", (100 + id).to_string()),
        ],
        timestamp: None,
    }
}

fn stage(runtime: &Runtime, name: &str, params: &[(&str, &str)]) -> StageSpec {
    StageSpec {
        plugin: runtime.load_file(&plugin(name)).expect("plugin loads"),
        params: params
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    }
}

fn run(runtime: &Runtime, stages: Vec<StageSpec>, ids: &[i64]) -> ChainOutput {
    let mut chain =
        Chain::build(runtime, stages, Arc::new(schema()), ChainLimits::default()).expect("build");
    chain
        .process(ids.iter().map(|&id| event(id)).collect())
        .expect("process")
}

fn id_of(event: &Event) -> i64 {
    match apache_avro::from_avro_datum(&schema(), &mut event.value.as_slice(), None) {
        Ok(Value::Record(fields)) => match fields[0].1 {
            Value::Long(id) => id,
            ref other => panic!("id is {other:?}"),
        },
        other => panic!("not a record: {other:?}"),
    }
}

/// Every header as `key=value`, in order.
fn headers(event: &Event) -> Vec<String> {
    event
        .headers
        .iter()
        .map(|h| format!("{}={}", h.key, String::from_utf8_lossy(&h.value)))
        .collect()
}

fn position(id: i64) -> Vec<String> {
    vec![
        "weft.source.topic=titles-in".into(),
        "weft.source.partition=0".into(),
        format!("weft.source.offset={}", 100 + id),
    ]
}

#[test]
fn processors_never_see_positions_and_every_output_gets_its_inputs_back() {
    let runtime = runtime();
    let output = run(
        &runtime,
        vec![
            // Reports the headers it was given, and tries to move the event elsewhere.
            stage(&runtime, "raw", &[("mode", "headers")]),
            // Every second event twice.
            stage(
                &runtime,
                "raw",
                &[("mode", "fanout"), ("count", "2"), ("every", "2")],
            ),
            // Keeps every event (it misbehaves on none of a batch this small).
            stage(&runtime, "raw", &[("every", "1000")]),
        ],
        &[1, 2, 3],
    );
    assert!(output.dead.is_empty(), "{:?}", output.dead);
    let ids: Vec<i64> = output.events.iter().map(id_of).collect();
    assert_eq!(ids, [1, 2, 2, 3]);
    for event in &output.events {
        let id = id_of(event);
        let mut expected = vec![format!("trace=t{id}"), "seen=trace".into()];
        expected.extend(position(id));
        assert_eq!(headers(event), expected, "event {id}");
    }
}

#[test]
fn dead_letters_keep_their_inputs_positions_whatever_the_stage_did() {
    let runtime = runtime();
    let output = run(
        &runtime,
        vec![
            stage(&runtime, "raw", &[("mode", "headers")]),
            // Traps on event 2 (the batch is then retried one event at a time).
            stage(&runtime, "hostile", &[("mode", "panic"), ("when", "id=2")]),
            // Rejects event 3: there is no filesystem to read.
            stage(
                &runtime,
                "hostile",
                &[("mode", "open-file"), ("when", "id=3")],
            ),
            // Emits a value that is no datum for every event left (1 and 4).
            stage(&runtime, "raw", &[("mode", "garbage")]),
        ],
        &[1, 2, 3, 4],
    );
    assert!(output.events.is_empty());
    let dead: Vec<(i64, Option<usize>, String)> = output
        .dead
        .iter()
        .map(|d| (id_of(&d.event), d.stage, d.reason.clone()))
        .collect();
    let stages: Vec<(i64, Option<usize>)> = dead.iter().map(|d| (d.0, d.1)).collect();
    assert_eq!(
        stages,
        [(2, Some(1)), (3, Some(2)), (1, Some(3)), (4, Some(3))],
        "{dead:?}"
    );
    assert!(dead[0].2.contains("id=2"), "a trap: {:?}", dead[0].2);
    assert!(
        dead[1].2.starts_with("open-file"),
        "a reject: {:?}",
        dead[1].2
    );
    assert!(
        dead[2].2.contains("not a datum"),
        "a violation: {:?}",
        dead[2].2
    );
    for letter in &output.dead {
        let id = id_of(&letter.event);
        let mut expected = vec![format!("trace=t{id}"), "seen=trace".into()];
        expected.extend(position(id));
        assert_eq!(
            headers(&letter.event),
            expected,
            "dead letter of event {id}"
        );
    }
}

#[test]
fn a_chain_without_processors_hands_positions_through_unchanged() {
    let runtime = runtime();
    let output = run(&runtime, Vec::new(), &[5]);
    let mut expected = vec!["trace=t5".to_string()];
    expected.extend(position(5));
    assert_eq!(headers(&output.events[0]), expected);
}
