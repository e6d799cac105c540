use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::testing::{TestOutcome, configure_record};

use super::Project;

const TITLE: &str = include_str!("../../enrich/schemas/title.avsc");

fn title() -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(7)),
        ("title".into(), Value::String("Heat".into())),
        ("kind".into(), Value::String("movie".into())),
        ("year".into(), Value::Int(1995)),
        (
            "rating".into(),
            Value::Union(1, Box::new(Value::Double(8.3))),
        ),
        (
            "genres".into(),
            Value::Array(vec![Value::String("crime".into())]),
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

/// Configures, processes one value and reads the derived schema back through
/// apache-avro, as the host does.
fn run(params: &[(&str, &str)], input_schema: &str, input: Value) -> (Schema, Value) {
    let mut stage = configure_record::<Project>(params, input_schema).expect("configure");
    let schema = Schema::parse_str(stage.output_schema()).expect("the derived schema parses");
    match stage.process_one(input).expect("process") {
        TestOutcome::Emit(mut values) if values.len() == 1 => (schema, values.remove(0)),
        other => panic!("expected one record, got {other:?}"),
    }
}

fn field_names(schema: &Schema) -> Vec<String> {
    match schema {
        Schema::Record(r) => r.fields.iter().map(|f| f.name.clone()).collect(),
        other => panic!("not a record: {other:?}"),
    }
}

fn config_error(params: &[(&str, &str)]) -> String {
    configure_record::<Project>(params, TITLE)
        .map(|_| ())
        .expect_err("configuration error")
        .to_string()
}

#[test]
fn keep_selects_fields_in_input_order() {
    let (schema, value) = run(&[("keep", "year, id, owner.email")], TITLE, title());
    assert_eq!(field_names(&schema), ["id", "year", "owner"]);
    assert_eq!(
        schema.name().map(|n| n.fullname(None)),
        Some("weft.demo.Title".to_owned())
    );
    assert_eq!(
        value,
        Value::Record(vec![
            ("id".into(), Value::Long(7)),
            ("year".into(), Value::Int(1995)),
            (
                "owner".into(),
                Value::Record(vec![(
                    "email".into(),
                    Value::String("ada@example.com".into())
                )])
            ),
        ])
    );
}

#[test]
fn drop_and_rename_with_docs_defaults_and_aliases() {
    let mut stage = configure_record::<Project>(
        &[
            ("drop", "genres, owner.email"),
            ("rename", "title:name, owner.name:who"),
        ],
        TITLE,
    )
    .expect("configure");
    let schema = Schema::parse_str(stage.output_schema()).expect("the derived schema parses");
    assert_eq!(
        field_names(&schema),
        ["id", "name", "kind", "year", "rating", "owner"]
    );
    assert!(
        stage.output_schema().contains(r#""doc":"Display title.""#),
        "{}",
        stage.output_schema()
    );
    assert!(
        stage.output_schema().contains(r#""aliases":["title"]"#),
        "{}",
        stage.output_schema()
    );
    assert!(
        stage
            .output_schema()
            .contains(r#""name":"rating","type":["null","double"],"default":null"#)
    );
    let out = stage.process_one(title()).expect("process");
    assert_eq!(
        out,
        TestOutcome::Emit(vec![Value::Record(vec![
            ("id".into(), Value::Long(7)),
            ("name".into(), Value::String("Heat".into())),
            ("kind".into(), Value::String("movie".into())),
            ("year".into(), Value::Int(1995)),
            (
                "rating".into(),
                Value::Union(1, Box::new(Value::Double(8.3)))
            ),
            (
                "owner".into(),
                Value::Record(vec![("who".into(), Value::String("Ada".into()))])
            ),
        ])])
    );
}

#[test]
fn optional_nested_records_are_reshaped_and_null_stays_null() {
    let schema = r#"{"type": "record", "name": "R", "fields": [
        {"name": "id", "type": "long"},
        {"name": "owner", "type": ["null", {"type": "record", "name": "Owner", "fields": [
            {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}], "default": null}
    ]}"#;
    let owner = |v: Value| Value::Record(vec![("id".into(), Value::Long(1)), ("owner".into(), v)]);
    let present = owner(Value::Union(
        1,
        Box::new(Value::Record(vec![
            ("name".into(), Value::String("Ada".into())),
            ("email".into(), Value::String("a@b".into())),
        ])),
    ));
    let null = owner(Value::Union(0, Box::new(Value::Null)));
    let mut stage =
        configure_record::<Project>(&[("drop", "owner.email")], schema).expect("configure");
    let outcomes = stage.process(vec![present, null.clone()]).expect("process");
    assert_eq!(
        outcomes,
        [
            TestOutcome::Emit(vec![owner(Value::Union(
                1,
                Box::new(Value::Record(vec![(
                    "name".into(),
                    Value::String("Ada".into())
                )]))
            ))]),
            TestOutcome::Emit(vec![null]),
        ]
    );
}

#[test]
fn unknown_fields_are_named_with_the_available_ones() {
    assert_eq!(
        config_error(&[("keep", "id, tittle")]),
        "parameter 'keep': unknown field 'tittle': no field 'tittle'; available: id, title, kind, year, rating, genres, owner"
    );
    assert_eq!(
        config_error(&[("drop", "owner.mail")]),
        "parameter 'drop': unknown field 'owner.mail': no field 'mail' in 'owner'; available: name, email"
    );
    assert_eq!(
        config_error(&[("rename", "titel:name")]),
        "parameter 'rename': unknown field 'titel': no field 'titel'; available: id, title, kind, year, rating, genres, owner"
    );
}

#[test]
fn invalid_parameter_combinations() {
    assert_eq!(
        config_error(&[]),
        "give at least one of keep, drop or rename"
    );
    assert_eq!(
        config_error(&[("keep", "id"), ("drop", "title")]),
        "parameter 'drop': give either keep or drop, not both"
    );
    assert_eq!(
        config_error(&[("rename", "title")]),
        "parameter 'rename': 'title' is not of the form old:new"
    );
    assert_eq!(
        config_error(&[("rename", "title:new name")]),
        "parameter 'rename': 'new name' is not a valid Avro field name"
    );
    assert_eq!(
        config_error(&[("rename", "title:kind")]),
        "parameter 'rename': two fields would be named 'kind'"
    );
    assert_eq!(
        config_error(&[("drop", "title.x")]),
        "parameter 'drop': 'title' is not a record, so it has no fields to select"
    );
    assert_eq!(
        config_error(&[("drop", "id, title, kind, year, rating, genres, owner")]),
        "no field of the record would be left"
    );
}

#[test]
fn shared_named_types_are_not_reshaped() {
    let schema = r#"{"type": "record", "name": "R", "fields": [
        {"name": "a", "type": {"type": "record", "name": "P", "fields": [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]}},
        {"name": "b", "type": "P"}
    ]}"#;
    let err = configure_record::<Project>(&[("drop", "a.x")], schema)
        .map(|_| ())
        .expect_err("shared type");
    assert_eq!(
        err.to_string(),
        "parameter 'drop': 'a' is of type P, which the schema uses in several places; project only reshapes records used once"
    );
    // Whole fields of a shared type can still be kept, dropped or renamed.
    let (out, value) = run(
        &[("drop", "a"), ("rename", "b:c")],
        schema,
        Value::Record(vec![
            (
                "a".into(),
                Value::Record(vec![
                    ("x".into(), Value::Int(1)),
                    ("y".into(), Value::Int(2)),
                ]),
            ),
            (
                "b".into(),
                Value::Record(vec![
                    ("x".into(), Value::Int(3)),
                    ("y".into(), Value::Int(4)),
                ]),
            ),
        ]),
    );
    assert_eq!(field_names(&out), ["c"]);
    assert_eq!(
        value,
        Value::Record(vec![(
            "c".into(),
            Value::Record(vec![
                ("x".into(), Value::Int(3)),
                ("y".into(), Value::Int(4))
            ])
        )])
    );
}

#[test]
fn project_reads_the_fields_its_parameters_name() {
    let reads = |params: &[(&str, &str)]| {
        configure_record::<Project>(params, TITLE)
            .expect("configure")
            .reads()
            .expect("project says what it reads")
            .to_vec()
    };
    assert_eq!(reads(&[("keep", "id, owner.email")]), ["id", "owner.email"]);
    assert_eq!(
        reads(&[
            ("drop", "genres"),
            ("rename", "title:name, owner.email:contact")
        ]),
        ["genres", "title", "owner.email"]
    );
}
