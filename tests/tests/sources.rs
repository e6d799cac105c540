//! Sources end to end: Avro container files, JSON lines with an older schema, the
//! generator, and their union resolved to one schema.

use apache_avro::types::Value;
use apache_avro::{Reader, Schema, Writer};
use weft_tests::{Workdir, title_schema, toml_path};

fn title(id: i64) -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(id)),
        ("title".into(), Value::String(format!("Avro {id}"))),
        ("kind".into(), Value::String("movie".into())),
        ("year".into(), Value::Int(2001)),
        (
            "rating".into(),
            Value::Union(1, Box::new(Value::Double(6.5))),
        ),
        (
            "genres".into(),
            Value::Array(vec![Value::String("drama".into())]),
        ),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Ada".into())),
                ("email".into(), Value::String("ada@x".into())),
            ]),
        ),
    ])
}

/// The title schema of an older producer: no `genres` and no `rating` (the current schema
/// gives both defaults, so these events resolve).
const OLD_TITLE: &str = r#"{"type":"record","name":"Title","namespace":"weft.demo","fields":[
    {"name":"id","type":"long"},{"name":"title","type":"string"},{"name":"kind","type":"string"},
    {"name":"year","type":"int"},
    {"name":"owner","type":{"type":"record","name":"Owner","fields":[
        {"name":"name","type":"string"},{"name":"email","type":"string"}]}}]}"#;

#[test]
fn a_union_of_avro_file_jsonl_and_generator_sources_resolves_to_one_schema() {
    let work = Workdir::new();
    let schema = Schema::parse_str(&std::fs::read_to_string(title_schema()).expect("title schema"))
        .expect("schema");
    let avro_path = work.path("titles.avro");
    let mut writer = Writer::new(&schema, std::fs::File::create(&avro_path).expect("create"));
    for id in 1..=3 {
        writer.append(title(id)).expect("append");
    }
    writer.flush().expect("flush");
    drop(writer);
    let old_schema = work.write("old-title.avsc", OLD_TITLE);
    let jsonl = work.write(
        "old.jsonl",
        "{\"id\":101,\"title\":\"Old 101\",\"kind\":\"book\",\"year\":1999,\"owner\":{\"name\":\"B\",\"email\":\"b@x\"}}\n\
         {\"id\":102,\"title\":\"Old 102\",\"kind\":\"book\",\"year\":1998,\"owner\":{\"name\":\"B\",\"email\":\"b@x\"}}\n",
    );
    let pipeline = format!(
        r#"[[source]]
kind = "avro-file"
path = {avro}

[[source]]
kind = "jsonl"
path = {jsonl}
schema = {old}

[[source]]
kind = "generate"
schema = {schema}
count = 5
seed = 1

[sink]
kind = "avro-file"
path = "out.avro"

[limits]
batch_size = 2
"#,
        avro = toml_path(&avro_path),
        jsonl = toml_path(&jsonl),
        old = toml_path(&old_schema),
        schema = toml_path(&title_schema()),
    );
    let summary = work.run(&pipeline).expect("runs");
    assert_eq!(summary.events_in, 10);
    assert_eq!(summary.events_out, 10);

    let reader = Reader::new(std::fs::File::open(work.path("out.avro")).expect("output"))
        .expect("container");
    assert_eq!(
        reader.writer_schema().canonical_form(),
        schema.canonical_form()
    );
    let records: Vec<Value> = reader.map(|r| r.expect("record")).collect();
    let field = |r: &Value, name: &str| match r {
        Value::Record(fields) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("field"),
        other => panic!("not a record: {other:?}"),
    };
    let mut ids: Vec<i64> = records
        .iter()
        .map(|r| match field(r, "id") {
            Value::Long(id) => id,
            other => panic!("id {other:?}"),
        })
        .collect();
    ids.sort();
    // The generator numbers its events from 0.
    assert_eq!(ids, vec![0, 1, 1, 2, 2, 3, 3, 4, 101, 102]);
    // Old events got the reader's defaults.
    let old = records
        .iter()
        .find(|r| field(r, "id") == Value::Long(101))
        .expect("event 101");
    assert_eq!(field(old, "genres"), Value::Array(vec![]));
    assert_eq!(field(old, "rating"), Value::Union(0, Box::new(Value::Null)));
}

#[test]
fn a_source_whose_schema_cannot_be_resolved_is_refused_before_running() {
    let work = Workdir::new();
    let other = work.write(
        "other.avsc",
        r#"{"type":"record","name":"Title","namespace":"weft.demo","fields":[{"name":"id","type":"string"}]}"#,
    );
    let jsonl = work.write("o.jsonl", "{\"id\":\"x\"}\n");
    let pipeline = format!(
        r#"[[source]]
kind = "generate"
schema = {schema}
count = 1

[[source]]
kind = "jsonl"
path = {jsonl}
schema = {other}

[sink]
kind = "null"
"#,
        schema = toml_path(&title_schema()),
        jsonl = toml_path(&jsonl),
        other = toml_path(&other),
    );
    let err = work
        .run(&pipeline)
        .expect_err("incompatible union")
        .to_string();
    assert!(err.contains("union of sources"), "{err}");
    assert!(err.contains("id"), "{err}");
}
