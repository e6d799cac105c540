//! End to end: the real plugins chained in one store over real files, exact outputs.

use serde_json::json;
use weft_tests::{Workdir, plugin, title_schema, titles_jsonl, toml_path};

fn source(work: &Workdir, n: u64) -> String {
    let input = work.write("titles.jsonl", &titles_jsonl(n));
    format!(
        "[[source]]\nkind = \"jsonl\"\npath = {}\nschema = {}\n",
        toml_path(&input),
        toml_path(&title_schema())
    )
}

#[test]
fn filter_then_enrich_emits_exactly_the_matching_titles_enriched() {
    let work = Workdir::new();
    let pipeline = format!(
        r#"{source}
[[processor]]
plugin = {filter}
params = {{ condition = "kind == 'book' and year >= 2000" }}

[[processor]]
plugin = {enrich}
params = {{ reference_year = 2030 }}

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"
"#,
        source = source(&work, 30),
        filter = toml_path(&plugin("filter")),
        enrich = toml_path(&plugin("enrich")),
    );
    let summary = work.run(&pipeline).expect("pipeline runs");
    let out = work.read_jsonl("out.jsonl");
    // Books are ids divisible by 3; year = 1990 + id >= 2000 means id >= 10.
    let ids: Vec<i64> = out.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, vec![12, 15, 18, 21, 24, 27, 30]);
    assert_eq!(
        out[0],
        json!({
            "id": 12, "title": "Title 12", "kind": "book", "year": 2002, "rating": 2.0,
            "genres": ["drama"], "owner": {"name": "Ada", "email": "ada12@example.com"},
            "decade": 2000, "title_slug": "title-12", "age_years": 28, "rating_band": "low",
        })
    );
    assert_eq!(summary.events_in, 30);
    assert_eq!(summary.events_out, 7);
    assert_eq!(summary.dead_letters, 0);
    assert_eq!(summary.stages[0].events_in, 30);
    assert_eq!(summary.stages[0].events_out, 7);
    assert_eq!(summary.stages[1].events_in, 7);
    assert_eq!(summary.stages[1].events_out, 7);
    assert!(work.read_jsonl("dead.jsonl").is_empty());
}

#[test]
fn rejected_and_undecodable_events_reach_the_dead_letter_sink() {
    let work = Workdir::new();
    let mut lines = titles_jsonl(5);
    // Line 6: a year enrich rejects; line 7: not the schema; line 8: not JSON.
    lines.push_str(
        &json!({"id": 6, "title": "Old", "kind": "book", "year": 1500, "rating": null,
        "genres": [], "owner": {"name": "A", "email": "a@b"}})
        .to_string(),
    );
    lines.push_str("\n{\"id\": \"seven\"}\nnot json\n");
    let input = work.write("titles.jsonl", &lines);
    let pipeline = format!(
        r#"[[source]]
kind = "jsonl"
path = {input}
schema = {schema}

[[processor]]
plugin = {enrich}

[sink]
kind = "avro-file"
path = "out.avro"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"
"#,
        input = toml_path(&input),
        schema = toml_path(&title_schema()),
        enrich = toml_path(&plugin("enrich")),
    );
    let summary = work.run(&pipeline).expect("pipeline runs");
    assert_eq!(summary.events_in, 8);
    assert_eq!(summary.events_out, 5);
    assert_eq!(summary.dead_letters, 3);
    assert_eq!(summary.source_rejected, 2);

    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(dead.len(), 3);
    let by_stage: Vec<_> = dead
        .iter()
        .map(|d| {
            (
                d["stage"].clone(),
                d["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        by_stage.contains(&(json!(1), "title 6 has year 1500, before 1800".to_string())),
        "{by_stage:?}"
    );
    let source_reasons: Vec<_> = dead
        .iter()
        .filter(|d| d["stage"].is_null())
        .map(|d| d["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(source_reasons.len(), 2);
    assert!(
        source_reasons[0].starts_with("line 7: field `id`"),
        "{source_reasons:?}"
    );
    assert!(
        source_reasons[1].starts_with("line 8: not JSON"),
        "{source_reasons:?}"
    );
    let enrich_dead = dead
        .iter()
        .find(|d| d["stage"] == json!(1))
        .expect("enrich rejection");
    assert_eq!(
        enrich_dead["processor"],
        json!(format!("enrich@{}", "0.1.0"))
    );
    assert_eq!(enrich_dead["value"]["id"], json!(6));

    // The Avro file holds the five good titles, enriched, readable by any Avro reader.
    let file = std::fs::File::open(work.path("out.avro")).expect("avro output");
    let reader = apache_avro::Reader::new(file).expect("container file");
    assert_eq!(
        reader.writer_schema().name().map(|n| n.fullname(None)),
        Some("weft.demo.TitleEnriched".to_string())
    );
    let ids: Vec<i64> = reader
        .map(|v| match v.expect("record") {
            apache_avro::types::Value::Record(fields) => match &fields[0].1 {
                apache_avro::types::Value::Long(id) => *id,
                other => panic!("id is {other:?}"),
            },
            other => panic!("not a record: {other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
}
