//! Driving a pipeline batch by batch, as the CLI does (and a daemon will).

use std::path::Path;

use weft_runtime::{Runtime, RuntimeOptions};

use super::*;
use crate::config;

const SCHEMA: &str = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"}]}"#;

/// Five JSON lines, the third of which does not fit the schema, read in batches of two,
/// with no processor: the sink gets what the source decoded.
const PIPELINE: &str = r#"
[[source]]
kind = "jsonl"
path = "in.jsonl"
schema = "row.avsc"

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
batch_size = 2
"#;

fn open(dir: &Path) -> RunningPipeline {
    std::fs::write(dir.join("row.avsc"), SCHEMA).expect("write schema");
    let input = "{\"id\":1}\n{\"id\":2}\n{\"id\":\"three\"}\n{\"id\":4}\n{\"id\":5}\n";
    std::fs::write(dir.join("in.jsonl"), input).expect("write input");
    let config = config::parse_str(PIPELINE, &dir.join("pipeline.toml"), dir).expect("valid");
    let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).expect("runtime starts");
    Pipeline::build(config, &runtime, &LocalOnly)
        .expect("builds")
        .open()
        .expect("opens")
}

/// Lines of a file the run writes (none before it exists).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn each_step_moves_one_batch_and_has_written_it_when_it_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut running = open(dir.path());
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));

    let first = running.step().expect("first batch");
    let expected = Step {
        events_in: 2,
        events_out: 2,
        ..Step::default()
    };
    assert_eq!(first, expected);
    assert_eq!((lines(&out).len(), lines(&dead).len()), (2, 0));

    let second = running.step().expect("second batch");
    let expected = Step {
        events_in: 2,
        events_out: 1,
        source_rejected: 1,
        dead_letters: 1,
        ..Step::default()
    };
    assert_eq!(second, expected);
    assert_eq!((lines(&out).len(), lines(&dead).len()), (3, 1));
    assert!(lines(&dead)[0].contains("line 3"), "{:?}", lines(&dead));

    let third = running.step().expect("last batch");
    let expected = Step {
        events_in: 1,
        events_out: 1,
        exhausted: true,
        ..Step::default()
    };
    assert_eq!(third, expected);
    let after = running.step().expect("a step after the end");
    let expected = Step {
        exhausted: true,
        ..Step::default()
    };
    assert_eq!(after, expected);

    let summary = running.close().expect("closes");
    assert_eq!(
        (
            summary.events_in,
            summary.events_out,
            summary.dead_letters,
            summary.source_rejected,
            summary.batches
        ),
        (5, 4, 1, 1, 3)
    );
    assert!(!summary.interrupted);
    assert_eq!(
        lines(&out),
        ["{\"id\":1}", "{\"id\":2}", "{\"id\":4}", "{\"id\":5}"]
    );
}

#[test]
fn a_run_closed_before_its_source_ends_is_interrupted_and_counts_what_it_moved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut running = open(dir.path());
    running.step().expect("first batch");
    let summary = running.close().expect("closes");
    assert!(summary.interrupted);
    assert_eq!((summary.events_in, summary.events_out), (2, 2));
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 2);
}

#[test]
fn the_summary_says_how_many_batches_and_how_full_they_were() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut running = open(dir.path());
    while !running.step().expect("a batch").exhausted {}
    let summary = running.close().expect("closes");
    // Five events in batches of two: 2, 2 and the last one.
    let text = summary.to_string();
    let last = text.lines().last().expect("a summary line");
    assert!(
        last.contains("3 batches of 1.7 events on average"),
        "{last}"
    );
    let json = summary.to_json();
    assert_eq!(json["batches"], 3);
    let mean = json["events_per_batch"].as_f64().expect("a mean");
    assert!((mean - 5.0 / 3.0).abs() < 1e-9, "{mean}");
}
