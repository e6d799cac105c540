//! The SDK's behaviour as a plugin author meets it: configure checks, metadata carried
//! to outputs, the record API's outcomes.

use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};
use serde::{Deserialize, Serialize};
use weft_guest::testing::{TestOutcome, WireEvent, WireOutcome, configure_record, configure_typed};
use weft_guest::{
    ConfigError, Configured, Event, EventMeta, FieldPath, Header, Manifest, Outcome, ParamSpec,
    Params, Record, RecordOutcome, RecordProcessor,
};

const POINT: &str = r#"{"type": "record", "name": "Point", "fields": [
    {"name": "x", "type": "int"}, {"name": "label", "type": ["null", "string"], "default": null}]}"#;

/// Output schema that names a type twice, so serde cannot encode it directly.
const PAIR: &str = r#"{"type": "record", "name": "Pair", "fields": [
    {"name": "a", "type": {"type": "record", "name": "P", "fields": [{"name": "x", "type": "int"}]}},
    {"name": "b", "type": "P"}]}"#;

#[derive(Deserialize)]
struct Point {
    x: i32,
    label: Option<String>,
}

#[derive(Serialize)]
struct P {
    x: i32,
}

#[derive(Serialize)]
struct Pair {
    a: P,
    b: P,
}

/// Emits `x` pairs and tags each with its index, or rejects negative points.
struct Splitter;

impl weft_guest::Processor for Splitter {
    type Input = Point;
    type Output = Pair;
    const MANIFEST: Manifest = Manifest {
        name: "splitter",
        version: "1.0.0",
        description: "test",
        params: &[],
    };
    const INPUT_SCHEMA: &'static str = POINT;
    const OUTPUT_SCHEMA: &'static str = PAIR;

    fn configure(_params: &Params) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    fn process(&mut self, input: Point, meta: &EventMeta<'_>) -> Outcome<Pair> {
        if input.x < 0 {
            return Outcome::reject(format!("negative x {}", input.x));
        }
        if input.label.as_deref() == Some("many") {
            return Outcome::EmitMany(
                (0..input.x)
                    .map(|i| Pair {
                        a: P { x: i },
                        b: P { x: -i },
                    })
                    .collect(),
            );
        }
        let tagged = Event::new(Pair {
            a: P { x: input.x },
            b: P { x: input.x },
        })
        .with_key(Some(b"new-key".to_vec()))
        .with_header("seen-key", meta.key().unwrap_or_default().to_vec());
        Outcome::EmitEvents(vec![tagged])
    }
}

/// Same schema as `Point` but a struct that misnames a field.
struct Misnamed;

#[derive(Deserialize)]
#[allow(dead_code)]
struct WrongPoint {
    y: i32,
}

impl weft_guest::Processor for Misnamed {
    type Input = WrongPoint;
    type Output = P;
    const MANIFEST: Manifest = Manifest {
        name: "misnamed",
        version: "1.0.0",
        description: "test",
        params: &[],
    };
    const INPUT_SCHEMA: &'static str = POINT;
    const OUTPUT_SCHEMA: &'static str =
        r#"{"type": "record", "name": "P", "fields": [{"name": "x", "type": "int"}]}"#;

    fn configure(_params: &Params) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    fn process(&mut self, input: WrongPoint, _meta: &EventMeta<'_>) -> Outcome<P> {
        Outcome::Emit(P { x: input.y })
    }
}

fn point(x: i32, label: Option<&str>) -> Value {
    Value::Record(vec![
        ("x".into(), Value::Int(x)),
        (
            "label".into(),
            match label {
                Some(l) => Value::Union(1, Box::new(Value::String(l.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
    ])
}

fn pair(a: i32, b: i32) -> Value {
    let p = |x| Value::Record(vec![("x".into(), Value::Int(x))]);
    Value::Record(vec![("a".into(), p(a)), ("b".into(), p(b))])
}

fn wire(value: Value, key: Option<&[u8]>) -> WireEvent {
    let schema = Schema::parse_str(POINT).expect("schema");
    WireEvent {
        key: key.map(<[u8]>::to_vec),
        value: to_avro_datum(&schema, value).expect("encode"),
        headers: vec![Header {
            key: "h".into(),
            value: b"1".to_vec(),
        }],
        timestamp: Some(42),
    }
}

#[test]
fn typed_outputs_with_named_references_are_encoded() {
    let mut stage = configure_typed::<Splitter>(&[], POINT).expect("configure");
    let outcomes = stage
        .process(vec![
            point(2, Some("many")),
            point(-1, None),
            point(0, Some("many")),
        ])
        .expect("process");
    assert_eq!(
        outcomes,
        [
            TestOutcome::Emit(vec![pair(0, 0), pair(1, -1)]),
            TestOutcome::Reject("negative x -1".into()),
            TestOutcome::Emit(vec![]),
        ]
    );
}

#[test]
fn metadata_is_carried_unless_overridden() {
    let mut stage = configure_typed::<Splitter>(&[], POINT).expect("configure");
    let outcomes = stage
        .process_events(vec![
            wire(point(2, Some("many")), Some(b"k")),
            wire(point(5, None), Some(b"k")),
        ])
        .expect("process");
    let [WireOutcome::Emit(many), WireOutcome::Emit(tagged)] = outcomes.as_slice() else {
        panic!("unexpected outcomes {outcomes:?}")
    };
    for event in many {
        assert_eq!(event.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            event.headers,
            [Header {
                key: "h".into(),
                value: b"1".to_vec()
            }]
        );
        assert_eq!(event.timestamp, Some(42));
    }
    assert_eq!(tagged[0].key.as_deref(), Some(&b"new-key"[..]));
    assert_eq!(
        tagged[0].headers,
        [
            Header {
                key: "h".into(),
                value: b"1".to_vec()
            },
            Header {
                key: "seen-key".into(),
                value: b"k".to_vec()
            }
        ]
    );
    assert_eq!(tagged[0].timestamp, Some(42));
}

#[test]
fn a_serde_type_that_does_not_match_its_schema_fails_configure() {
    let err = configure_typed::<Misnamed>(&[], POINT)
        .map(|_| ())
        .expect_err("y is not in the schema");
    assert_eq!(err.param, None);
    assert!(
        err.message.starts_with(
            "the processor's input type sdk::WrongPoint does not match its declared input schema:"
        ),
        "{}",
        err.message
    );
    assert!(err.message.contains("y"), "{}", err.message);
}

#[test]
fn undecodable_events_are_rejected_not_fatal() {
    let mut stage = configure_typed::<Splitter>(&[], POINT).expect("configure");
    let garbage = WireEvent {
        key: None,
        value: vec![0xff, 0xff, 0xff],
        headers: vec![],
        timestamp: None,
    };
    let outcomes = stage
        .process_events(vec![garbage])
        .expect("a batch with a bad event still succeeds");
    let [WireOutcome::Reject(reason)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert!(
        reason.starts_with("cannot decode the input event"),
        "{reason}"
    );
}

/// Keeps even points, doubles odd ones, drops zero; optionally with another schema.
struct Evens {
    x: FieldPath,
}

impl RecordProcessor for Evens {
    const MANIFEST: Manifest = Manifest {
        name: "evens",
        version: "1.0.0",
        description: "test",
        params: &[ParamSpec::with_default(
            "derive",
            "declare a derived schema",
            "no",
        )],
    };

    fn configure(params: &Params, input: &Schema) -> Result<Configured<Self>, ConfigError> {
        let x = FieldPath::resolve(input, "x")?;
        Ok(match params.get("derive") {
            Some("yes") => Configured::with_output_schema(Self { x }, input.clone()),
            _ => Configured::same_schema(Self { x }),
        })
    }

    fn process(&mut self, mut record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        match record.get(&self.x) {
            Some(Value::Int(0)) => RecordOutcome::Drop,
            Some(Value::Int(x)) if x % 2 == 0 => RecordOutcome::Keep,
            Some(Value::Int(x)) => {
                let doubled = Value::Int(x * 2);
                *record.get_mut(&self.x).expect("x exists") = doubled;
                RecordOutcome::Emit(record)
            }
            other => RecordOutcome::reject(format!("x is {other:?}")),
        }
    }
}

#[test]
fn record_outcomes() {
    let mut stage = configure_record::<Evens>(&[], POINT).expect("configure");
    assert_eq!(stage.output_schema(), POINT);
    let outcomes = stage
        .process(vec![point(2, None), point(3, Some("a")), point(0, None)])
        .expect("process");
    assert_eq!(
        outcomes,
        [
            TestOutcome::Keep,
            TestOutcome::Emit(vec![point(6, Some("a"))]),
            TestOutcome::Emit(vec![])
        ]
    );
}

#[test]
fn keep_with_a_derived_schema_is_a_reject() {
    let mut stage = configure_record::<Evens>(&[("derive", "yes")], POINT).expect("configure");
    assert_eq!(
        stage.process_one(point(2, None)).expect("process"),
        TestOutcome::Reject(
            "evens answered keep, but its output schema differs from its input schema".into()
        )
    );
}

#[test]
fn field_paths_follow_named_references() {
    let schema = Schema::parse_str(PAIR).expect("schema");
    let path = FieldPath::resolve(&schema, "b.x").expect("b refers to P");
    assert_eq!(path.value_schema(), (&Schema::Int, false));
    let record = Record::new(pair(1, 2)).expect("record");
    assert_eq!(record.get(&path), Some(&Value::Int(2)));
    let err = FieldPath::resolve(&schema, "b.y").expect_err("no y");
    assert_eq!(
        err.message,
        "unknown field 'b.y': no field 'y' in 'b'; available: x"
    );
}

/// Rejects points whose label is `bad`, keeps the others: reads `label` only.
struct Labels {
    label: FieldPath,
}

impl RecordProcessor for Labels {
    const MANIFEST: Manifest = Manifest {
        name: "labels",
        version: "1.0.0",
        description: "test",
        params: &[],
    };

    fn configure(_params: &Params, input: &Schema) -> Result<Configured<Self>, ConfigError> {
        let label = FieldPath::resolve(input, "label")?;
        Ok(Configured::same_schema(Self { label }).reading(["label"]))
    }

    fn process(&mut self, record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        match record.get(&self.label) {
            Some(Value::String(s)) if s == "bad" => RecordOutcome::reject("bad label"),
            _ => RecordOutcome::Keep,
        }
    }
}

/// A point whose label's two bytes are not UTF-8 (0xff 0xfe in place of "ab").
fn point_with_broken_label(x: i32) -> WireEvent {
    let mut event = wire(point(x, Some("ab")), None);
    let at = event.value.len() - 2;
    event.value[at..].copy_from_slice(&[0xff, 0xfe]);
    event
}

#[test]
fn a_string_that_is_not_utf8_is_rejected_when_read_and_not_paid_for_when_not() {
    // The host checks every datum in full before a stage sees it, so the SDK checks a
    // string's UTF-8 only when the processor reads it: a processor reading `label` rejects
    // the event with the decoder's reason...
    let mut reads_label = configure_record::<Labels>(&[], POINT).expect("configure");
    let outcomes = reads_label
        .process_events(vec![
            point_with_broken_label(2),
            wire(point(2, Some("bad")), None),
        ])
        .expect("process");
    let [WireOutcome::Reject(broken), WireOutcome::Reject(bad)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert!(
        broken.starts_with("cannot decode the input event: a string is not UTF-8"),
        "{broken}"
    );
    assert_eq!(bad, "bad label");
    // ...while one reading only `x` passes the event on without looking at the label.
    let mut reads_x = configure_record::<Evens>(&[], POINT).expect("configure");
    let outcomes = reads_x
        .process_events(vec![point_with_broken_label(2)])
        .expect("process");
    assert!(
        matches!(outcomes.as_slice(), [WireOutcome::Keep]),
        "{outcomes:?}"
    );
}
