use weft_guest::avro::types::Value;
use weft_guest::testing::{TestOutcome, WireEvent, WireOutcome, configure_typed};
use weft_guest::{Header, Processor};

use super::*;

fn title(id: i64, name: &str, year: i32, rating: Option<f64>) -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(id)),
        ("title".into(), Value::String(name.into())),
        ("kind".into(), Value::String("movie".into())),
        ("year".into(), Value::Int(year)),
        (
            "rating".into(),
            match rating {
                Some(r) => Value::Union(1, Box::new(Value::Double(r))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        (
            "genres".into(),
            Value::Array(vec![Value::String("drama".into())]),
        ),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Ada".into())),
                ("email".into(), Value::String("ada@example.com".into())),
            ]),
        ),
    ])
}

fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    match value {
        Value::Record(fields) => {
            &fields
                .iter()
                .find(|(n, _)| n == name)
                .expect("field exists")
                .1
        }
        other => panic!("not a record: {other:?}"),
    }
}

fn emitted_one(outcome: TestOutcome) -> Value {
    match outcome {
        TestOutcome::Emit(mut values) if values.len() == 1 => values.remove(0),
        other => panic!("expected one emitted value, got {other:?}"),
    }
}

#[test]
fn derives_fields_and_keeps_the_input_ones() {
    let mut stage = configure_typed::<Enrich>(&[], Enrich::INPUT_SCHEMA).expect("configure");
    assert_eq!(stage.output_schema(), Enrich::OUTPUT_SCHEMA);
    let out = emitted_one(
        stage
            .process_one(title(7, "The Third Man", 1949, Some(8.1)))
            .expect("process"),
    );
    assert_eq!(field(&out, "id"), &Value::Long(7));
    assert_eq!(field(&out, "decade"), &Value::Int(1940));
    assert_eq!(
        field(&out, "title_slug"),
        &Value::String("the-third-man".into())
    );
    assert_eq!(field(&out, "age_years"), &Value::Int(77));
    assert_eq!(field(&out, "rating_band"), &Value::String("high".into()));
    assert_eq!(
        field(&out, "rating"),
        &Value::Union(1, Box::new(Value::Double(8.1)))
    );
    assert_eq!(field(&out, "owner"), field(&title(7, "", 0, None), "owner"));
}

#[test]
fn reference_year_and_unrated_titles() {
    let mut stage = configure_typed::<Enrich>(&[("reference_year", "2000")], Enrich::INPUT_SCHEMA)
        .expect("configure");
    let out = emitted_one(
        stage
            .process_one(title(1, "Upcoming", 2003, None))
            .expect("process"),
    );
    assert_eq!(field(&out, "age_years"), &Value::Int(-3));
    assert_eq!(field(&out, "decade"), &Value::Int(2000));
    assert_eq!(field(&out, "rating_band"), &Value::String("unrated".into()));
    assert_eq!(
        field(&out, "rating"),
        &Value::Union(0, Box::new(Value::Null))
    );
}

#[test]
fn rejects_old_and_untitled_titles_with_a_reason() {
    let mut stage = configure_typed::<Enrich>(&[], Enrich::INPUT_SCHEMA).expect("configure");
    let outcomes = stage
        .process(vec![
            title(1, "Old", 1799, None),
            title(2, "  ", 1999, None),
            title(3, "Fine", 1800, Some(4.0)),
        ])
        .expect("process");
    assert_eq!(
        outcomes[0],
        TestOutcome::Reject("title 1 has year 1799, before 1800".into())
    );
    assert_eq!(
        outcomes[1],
        TestOutcome::Reject("title 2 has an empty title".into())
    );
    assert_eq!(
        field(&emitted_one(outcomes[2].clone()), "rating_band"),
        &Value::String("low".into())
    );
}

#[test]
fn rating_bands() {
    assert_eq!(rating_band(None), "unrated");
    assert_eq!(rating_band(Some(4.99)), "low");
    assert_eq!(rating_band(Some(5.0)), "medium");
    assert_eq!(rating_band(Some(7.49)), "medium");
    assert_eq!(rating_band(Some(7.5)), "high");
}

#[test]
fn key_headers_and_timestamp_are_carried_over() {
    let mut stage = configure_typed::<Enrich>(&[], Enrich::INPUT_SCHEMA).expect("configure");
    let schema = weft_guest::avro::Schema::parse_str(Enrich::INPUT_SCHEMA).expect("schema");
    let value = weft_guest::avro::to_avro_datum(&schema, title(5, "Heat", 1995, Some(8.3)))
        .expect("encode");
    let event = WireEvent {
        key: Some(b"5".to_vec()),
        value,
        headers: vec![Header {
            key: "trace".into(),
            value: b"abc".to_vec(),
        }],
        timestamp: Some(1_700_000_000_000),
    };
    let outcomes = stage.process_events(vec![event]).expect("process");
    let [WireOutcome::Emit(events)] = outcomes.as_slice() else {
        panic!("expected emit, got {outcomes:?}")
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key.as_deref(), Some(&b"5"[..]));
    assert_eq!(
        events[0].headers,
        vec![Header {
            key: "trace".into(),
            value: b"abc".to_vec()
        }]
    );
    assert_eq!(events[0].timestamp, Some(1_700_000_000_000));
}

#[test]
fn an_evolved_writer_schema_is_resolved() {
    // Fields reordered, `genres` missing (the reader has a default), an extra field.
    let writer = r#"{"type": "record", "name": "Title", "namespace": "weft.demo", "fields": [
        {"name": "year", "type": "int"},
        {"name": "id", "type": "long"},
        {"name": "title", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "rating", "type": ["null", "double"], "default": null},
        {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
            {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}},
        {"name": "studio", "type": "string"}
    ]}"#;
    let mut stage = configure_typed::<Enrich>(&[], writer).expect("configure");
    let value = Value::Record(vec![
        ("year".into(), Value::Int(1984)),
        ("id".into(), Value::Long(9)),
        ("title".into(), Value::String("Brazil".into())),
        ("kind".into(), Value::String("movie".into())),
        ("rating".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Sam".into())),
                ("email".into(), Value::String("sam@example.com".into())),
            ]),
        ),
        ("studio".into(), Value::String("Embassy".into())),
    ]);
    let out = emitted_one(stage.process_one(value).expect("process"));
    assert_eq!(field(&out, "genres"), &Value::Array(vec![]));
    assert_eq!(field(&out, "title_slug"), &Value::String("brazil".into()));
    assert_eq!(field(&out, "id"), &Value::Long(9));
}

#[test]
fn an_unreadable_writer_schema_names_the_field() {
    let writer = Enrich::INPUT_SCHEMA.replace(
        r#""name": "year", "type": "int""#,
        r#""name": "year", "type": "string""#,
    );
    let err = configure_typed::<Enrich>(&[], &writer)
        .map(|_| ())
        .expect_err("year as string cannot be read");
    assert_eq!(err.param, None);
    assert!(
        err.message.starts_with(
            "the input schema cannot be read as enrich's input schema weft.demo.Title: \
             Incompatible schemata! Field 'year' in reader schema does not match the type in the writer schema"
        ),
        "{}",
        err.message
    );
}

#[test]
fn bad_params_are_config_errors() {
    let err = configure_typed::<Enrich>(&[("reference_year", "soon")], Enrich::INPUT_SCHEMA)
        .map(|_| ())
        .expect_err("not a year");
    assert_eq!(
        err.to_string(),
        "parameter 'reference_year': invalid value 'soon': invalid digit found in string"
    );
    let err = configure_typed::<Enrich>(&[("year", "2000")], Enrich::INPUT_SCHEMA)
        .map(|_| ())
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "parameter 'year': unknown parameter; expected one of: reference_year, min_year"
    );
}

#[test]
fn enrich_reads_the_stream_fields_its_declared_schema_takes() {
    let stage = configure_typed::<Enrich>(&[], Enrich::INPUT_SCHEMA).expect("configure");
    assert_eq!(
        stage.reads().expect("a typed processor says what it reads"),
        ["id", "title", "kind", "year", "rating", "genres", "owner"]
    );
    // A field the stream adds is skipped by the decoder (not read); one the declared
    // schema fills with its default is not in the stream to be read.
    let writer = r#"{"type": "record", "name": "Title", "namespace": "weft.demo", "fields": [
        {"name": "studio", "type": "string"},
        {"name": "year", "type": "int"},
        {"name": "id", "type": "long"},
        {"name": "title", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "rating", "type": ["null", "double"], "default": null},
        {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
            {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}}
    ]}"#;
    let stage = configure_typed::<Enrich>(&[], writer).expect("configure");
    assert_eq!(
        stage.reads().expect("reads"),
        ["year", "id", "title", "kind", "rating", "owner"]
    );
}
