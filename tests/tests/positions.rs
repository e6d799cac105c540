//! Where an event was read (its position) travels beside the batch: it never reaches a
//! processor, one cannot forge it, every output keeps its input's in `ChainOutput::positions`,
//! and every dead letter shows its input's as `weft.source.*` headers, whatever the stage did:
//! kept, emitted, fanned out, trapped on, rejected or refused as a contract violation.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use weft_runtime::{
    Chain, ChainLimits, ChainOutput, Event, Header, Position, Runtime, StageSpec, position_at,
};
use weft_tests::{plugin, runtime};

fn schema() -> Schema {
    Schema::parse_str(r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#)
        .expect("schema")
}

fn header(key: &str, value: String) -> Header {
    Header {
        key: key.into(),
        value: value.into_bytes(),
    }
}

/// Event `id` as a Kafka source hands it over: a header of its own, no position header.
fn event(id: i64) -> Event {
    Event {
        key: None,
        value: apache_avro::to_avro_datum(
            &schema(),
            Value::Record(vec![("id".into(), Value::Long(id))]),
        )
        .expect("encode"),
        headers: vec![header("trace", format!("t{id}"))],
        timestamp: None,
    }
}

/// Where event `id` was read: one topic name shared by the batch, as the source does it.
fn position(topic: &Arc<str>, id: i64) -> Option<Position> {
    Some(Position {
        topic: topic.clone(),
        partition: 0,
        offset: 100 + id,
    })
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

fn chain(runtime: &Runtime, stages: Vec<StageSpec>) -> Chain {
    Chain::build(runtime, stages, Arc::new(schema()), ChainLimits::default()).expect("build")
}

/// Runs events `ids` read at their positions; with `known` of them only (the rest read from
/// a source without positions).
fn run(runtime: &Runtime, stages: Vec<StageSpec>, ids: &[i64], known: usize) -> ChainOutput {
    let topic: Arc<str> = Arc::from("titles-in");
    let positions = ids
        .iter()
        .take(known)
        .map(|&id| position(&topic, id))
        .collect();
    chain(runtime, stages)
        .process_at(ids.iter().map(|&id| event(id)).collect(), positions)
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

fn position_headers(id: i64) -> Vec<String> {
    vec![
        "weft.source.topic=titles-in".into(),
        "weft.source.partition=0".into(),
        format!("weft.source.offset={}", 100 + id),
    ]
}

#[test]
fn processors_never_see_positions_and_every_output_keeps_its_inputs() {
    let runtime = runtime();
    let output = run(
        &runtime,
        vec![
            // Reports the headers it was given, and forges a `weft.source.offset`.
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
        3,
    );
    assert!(output.dead.is_empty(), "{:?}", output.dead);
    let ids: Vec<i64> = output.events.iter().map(id_of).collect();
    assert_eq!(ids, [1, 2, 2, 3]);
    assert_eq!(output.positions.len(), 4);
    for (index, event) in output.events.iter().enumerate() {
        let id = id_of(event);
        // The forged position is gone; no output carries one as a header.
        assert_eq!(
            headers(event),
            [format!("trace=t{id}"), "seen=trace".into()],
            "event {id}"
        );
        let at = position_at(&output.positions, index).expect("a position");
        assert_eq!(
            (&*at.topic, at.partition, at.offset),
            ("titles-in", 0, 100 + id)
        );
        // A copy of it for a dead letter (what the sink refused) says where it was read.
        let mut expected = vec![format!("trace=t{id}"), "seen=trace".into()];
        expected.extend(position_headers(id));
        assert_eq!(headers(&output.dead_event(index)), expected, "event {id}");
    }
}

#[test]
fn dead_letters_show_their_inputs_positions_whatever_the_stage_did() {
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
        4,
    );
    assert!(output.events.is_empty());
    assert!(output.positions.is_empty());
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
        expected.extend(position_headers(id));
        assert_eq!(
            headers(&letter.event),
            expected,
            "dead letter of event {id}"
        );
    }
}

#[test]
fn a_dead_letter_shows_the_hosts_position_not_one_the_event_carried() {
    let runtime = runtime();
    let mut stale = event(6);
    stale
        .headers
        .push(header("weft.source.offset", "from an earlier hop".into()));
    let topic: Arc<str> = Arc::from("titles-in");
    let output = chain(
        &runtime,
        vec![stage(
            &runtime,
            "hostile",
            &[("mode", "open-file"), ("when", "id=6")],
        )],
    )
    .process_at(vec![stale], vec![position(&topic, 6)])
    .expect("process");
    let mut expected = vec!["trace=t6".to_string()];
    expected.extend(position_headers(6));
    assert_eq!(headers(&output.dead[0].event), expected);
}

#[test]
fn events_without_a_position_get_none_and_the_others_keep_theirs() {
    let runtime = runtime();
    // Events 7 and 8 were read at a position, 9 was not (a file source beside Kafka); the
    // stage rejects 8 and 9.
    let output = run(
        &runtime,
        vec![
            stage(
                &runtime,
                "hostile",
                &[("mode", "open-file"), ("when", "id=8")],
            ),
            stage(
                &runtime,
                "hostile",
                &[("mode", "open-file"), ("when", "id=9")],
            ),
        ],
        &[7, 8, 9],
        2,
    );
    let ids: Vec<i64> = output.events.iter().map(id_of).collect();
    assert_eq!(ids, [7]);
    assert_eq!(
        position_at(&output.positions, 0).map(|p| p.offset),
        Some(107)
    );
    let mut eight = vec!["trace=t8".to_string()];
    eight.extend(position_headers(8));
    let dead: Vec<Vec<String>> = output.dead.iter().map(|d| headers(&d.event)).collect();
    assert_eq!(dead, [eight, vec!["trace=t9".to_string()]]);
}

#[test]
fn a_chain_without_processors_hands_positions_through_unchanged() {
    let runtime = runtime();
    let output = run(&runtime, Vec::new(), &[5], 1);
    assert_eq!(headers(&output.events[0]), ["trace=t5"]);
    assert_eq!(
        position_at(&output.positions, 0).map(|p| p.offset),
        Some(105)
    );
}
