//! The two versions of the processor contract: components built against
//! `weft:processor@0.1.0` (`wit01`, a raw guest of the kept 0.1.0 WIT) load and run beside
//! the 0.2.0 plugins, are taken to read every field, and keep every limit; 0.2.0 plugins
//! report the input fields their `configure` found they read.

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use weft_runtime::{Chain, ChainLimits, ContractVersion, Event, Plugin, Runtime, StageSpec};
use weft_tests::{Workdir, plugin, runtime, title_schema, titles_jsonl, toml_path, weft_command};

fn title() -> Arc<Schema> {
    let text = std::fs::read_to_string(title_schema()).expect("title schema");
    Arc::new(Schema::parse_str(&text).expect("parse the title schema"))
}

fn stage(plugin: &Plugin, params: &[(&str, &str)]) -> StageSpec {
    StageSpec {
        plugin: plugin.clone(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn load(runtime: &Runtime, name: &str) -> Plugin {
    runtime
        .load_file(&plugin(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn owned(fields: &[&str]) -> Option<Vec<String>> {
    Some(fields.iter().map(|f| (*f).to_owned()).collect())
}

/// `n` titles as the source would hand them to the chain.
fn title_events(schema: &Schema, n: u64) -> Vec<Event> {
    titles_jsonl(n)
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("json");
            let value = weft_schema_value(schema, &json);
            Event {
                key: None,
                value: apache_avro::to_avro_datum(schema, value).expect("encode a title"),
                headers: Vec::new(),
                timestamp: None,
            }
        })
        .collect()
}

/// The title record of `json` (the fixed shape `titles_jsonl` writes).
fn weft_schema_value(schema: &Schema, json: &serde_json::Value) -> apache_avro::types::Value {
    use apache_avro::types::Value;
    let s = |k: &str| Value::String(json[k].as_str().expect("string").to_owned());
    let value = Value::Record(vec![
        ("id".into(), Value::Long(json["id"].as_i64().expect("id"))),
        ("title".into(), s("title")),
        ("kind".into(), s("kind")),
        (
            "year".into(),
            Value::Int(json["year"].as_i64().expect("year") as i32),
        ),
        (
            "rating".into(),
            Value::Union(
                1,
                Box::new(Value::Double(json["rating"].as_f64().expect("rating"))),
            ),
        ),
        (
            "genres".into(),
            Value::Array(vec![Value::String("drama".into())]),
        ),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Ada".into())),
                (
                    "email".into(),
                    Value::String(json["owner"]["email"].as_str().expect("email").to_owned()),
                ),
            ]),
        ),
    ]);
    value.resolve(schema).expect("a title of the schema")
}

#[test]
fn each_component_says_which_contract_it_exports() {
    let runtime = runtime();
    // `raw` is a wit-bindgen guest without the SDK, naming every type of the package.
    for name in ["filter", "project", "mask", "enrich", "hostile", "raw"] {
        assert_eq!(
            load(&runtime, name).contract(),
            ContractVersion::V0_2,
            "{name}"
        );
    }
    let old = load(&runtime, "wit01");
    assert_eq!(old.contract(), ContractVersion::V0_1);
    assert_eq!(old.manifest().name, "wit01");
}

#[test]
fn a_0_2_0_chain_reports_the_fields_each_configure_found_it_reads() {
    let runtime = runtime();
    let (filter, project, mask, enrich) = (
        load(&runtime, "filter"),
        load(&runtime, "project"),
        load(&runtime, "mask"),
        load(&runtime, "enrich"),
    );
    let specs = vec![
        stage(
            &filter,
            &[(
                "condition",
                "year >= 2000 and owner.email ends_with '@example.com'",
            )],
        ),
        stage(&mask, &[("fields", "owner.email, title")]),
        stage(&enrich, &[]),
        stage(&project, &[("keep", "id, decade, owner.name")]),
    ];
    let chain = Chain::build(&runtime, specs, title(), ChainLimits::default()).expect("build");
    assert_eq!(
        chain.stage_reads(),
        vec![
            owned(&["owner.email", "year"]),
            owned(&["owner.email", "title"]),
            owned(&["genres", "id", "kind", "owner", "rating", "title", "year"]),
            owned(&["decade", "id", "owner.name"]),
        ]
    );
    // Each stage's reads are fields of the schema that stage receives.
    let inputs = chain.stage_input_schemas();
    assert_eq!(inputs.len(), 4);
    assert_eq!(inputs[0].canonical_form(), title().canonical_form());
    let enriched = chain.stage_schemas()[2].1.clone();
    assert_eq!(inputs[3].canonical_form(), enriched.canonical_form());
    assert!(enriched.canonical_form().contains("\"decade\""));
}

#[test]
fn a_0_1_0_component_runs_in_a_fused_chain_and_reads_every_field() {
    let runtime = runtime();
    let (filter, old, mask) = (
        load(&runtime, "filter"),
        load(&runtime, "wit01"),
        load(&runtime, "mask"),
    );
    let specs = vec![
        stage(&filter, &[("condition", "kind == 'book'")]),
        stage(&old, &[]),
        stage(&mask, &[("fields", "owner.email")]),
    ];
    let schema = title();
    let mut chain =
        Chain::build(&runtime, specs, schema.clone(), ChainLimits::default()).expect("build");
    assert_eq!(
        chain.stage_reads(),
        vec![owned(&["kind"]), None, owned(&["owner.email"])]
    );
    let output = chain.process(title_events(&schema, 9)).expect("process");
    assert!(output.dead.is_empty(), "{:?}", output.dead);
    assert_eq!(output.events.len(), 3, "the books 3, 6 and 9");
    assert_eq!(chain.stats()[1].events_in, 3);
    assert_eq!(chain.stats()[1].events_out, 3);
}

/// The one event `wit01` in `mode` was given, dead-lettered, and why.
fn wit01_dead_letter(mode: &str, limits: ChainLimits) -> String {
    let runtime = runtime();
    let old = load(&runtime, "wit01");
    let schema = title();
    let mut chain = Chain::build(
        &runtime,
        vec![stage(&old, &[("mode", mode)])],
        schema.clone(),
        limits,
    )
    .expect("build");
    let output = chain.process(title_events(&schema, 1)).expect("process");
    assert!(output.events.is_empty(), "{mode}");
    assert_eq!(output.dead.len(), 1, "{mode}");
    assert_eq!(
        chain.stats()[0].traps,
        2,
        "{mode}: the batch, then the event alone"
    );
    output.dead[0].reason.clone()
}

#[test]
fn a_0_1_0_component_is_held_to_every_limit_and_its_trap_reason_is_its_last_error_line() {
    let limits = ChainLimits {
        memory_bytes: 16 << 20,
        deadline: Duration::from_millis(200),
        ..ChainLimits::default()
    };
    let panic = wit01_dead_letter("panic", limits);
    assert!(
        panic.starts_with("trap: wit01 gives up on event of "),
        "{panic}"
    );
    assert!(
        panic.contains("(stderr: "),
        "the panic's stderr follows: {panic}"
    );
    assert_eq!(
        wit01_dead_letter("loop", limits),
        "deadline of 200 ms per batch exceeded"
    );
    assert_eq!(
        wit01_dead_letter("grow", limits),
        "memory limit of 16 MiB per processor exceeded"
    );
}

fn weft(args: &[&str], work: &Workdir) -> Output {
    weft_command()
        .args(args)
        .current_dir(work.dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run weft")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn weft_runs_a_0_1_0_component_between_shipped_plugins_and_shows_what_each_stage_reads() {
    let work = Workdir::new();
    let input = work.write("titles.jsonl", &titles_jsonl(12));
    work.write(
        "pipeline.toml",
        &format!(
            r#"[[source]]
kind = "jsonl"
path = {input}
schema = {schema}

[[processor]]
plugin = {filter}
params = {{ condition = "kind == 'book' and year >= 1995" }}

[[processor]]
plugin = {old}

[[processor]]
plugin = {mask}
params = {{ fields = "owner.email" }}

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"
"#,
            input = toml_path(&input),
            schema = toml_path(&title_schema()),
            filter = toml_path(&plugin("filter")),
            old = toml_path(&plugin("wit01")),
            mask = toml_path(&plugin("mask")),
        ),
    );

    let run = weft(&["run", "--quiet", "pipeline.toml"], &work);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = work.read_jsonl("out.jsonl");
    let ids: Vec<i64> = out.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert_eq!(
        ids,
        [6, 9, 12],
        "books from 1995 on, through the 0.1.0 stage"
    );
    assert!(out.iter().all(|e| e["owner"]["email"] == "***"), "{out:?}");
    assert!(work.read_jsonl("dead.jsonl").is_empty());

    let validate = weft(&["validate", "pipeline.toml"], &work);
    assert!(validate.status.success(), "{}", text(&validate.stderr));
    let stdout = text(&validate.stdout);
    let reads: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("reads "))
        .collect();
    assert_eq!(
        reads,
        ["kind, year", "every field", "owner.email"],
        "{stdout}"
    );
}

#[test]
fn weft_inspect_names_the_contract_a_component_exports() {
    let work = Workdir::new();
    for (name, version) in [("wit01", "0.1.0"), ("filter", "0.2.0")] {
        let path = plugin(name);
        let path = path.to_str().expect("utf-8 path");
        let out = weft(&["inspect", path], &work);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let expected = format!("wit     weft:processor@{version}");
        assert!(
            text(&out.stdout).lines().any(|l| l == expected),
            "{name}: {}",
            text(&out.stdout)
        );
        let out = weft(&["inspect", "--json", path], &work);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["contract"], version, "{name}");
    }
}

#[test]
fn weft_wit_serves_the_contract_guests_build_against() {
    let work = Workdir::new();
    let package = std::fs::read_to_string(weft_tests::workspace().join("wit/processor.wit"))
        .expect("wit/processor.wit");
    assert!(package.contains("package weft:processor@0.2.0;"));

    let printed = weft(&["wit"], &work);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    assert_eq!(text(&printed.stdout), package);

    let written = weft(&["wit", "--out", "guest/wit"], &work);
    assert!(written.status.success(), "{}", text(&written.stderr));
    let copy = std::fs::read_to_string(work.path("guest/wit/processor.wit")).expect("written");
    assert_eq!(copy, package);
}
