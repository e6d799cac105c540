//! Hostile data through the real `weft` binary: events nested deeper than `limits.max_depth`,
//! processors that emit bytes that are not datums of their output schema, and processors
//! that fan out without bound, JSON lines past 16 MiB. Each must end as a dead letter naming
//! who caused it and why, with the run finishing (exit code 0) and every other event
//! delivered. A compression bomb in an Avro file fails the run, naming the file and block.

use std::process::Output;

use serde_json::Value;
use weft_host::io::container::{ContainerReader, Record};
use weft_tests::{Workdir, plugin, title_schema, titles_jsonl, toml_path, weft_command};

const LIST: &str = r#"{"type":"record","name":"Node","namespace":"t","fields":[
    {"name":"name","type":"string"},
    {"name":"next","type":["null","Node"]}]}"#;

/// A linked list `depth` nodes long as one JSON line, built without recursion.
fn list_json(name: &str, depth: usize) -> String {
    let mut text = String::new();
    for _ in 0..depth {
        text.push_str(&format!(r#"{{"name":"{name}","next":"#));
    }
    text.push_str("null");
    text.push_str(&"}".repeat(depth));
    text
}

/// The Avro bytes of the same list.
fn list_datum(name: &str, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..depth {
        out.push((name.len() * 2) as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(if i + 1 == depth { 0 } else { 2 });
    }
    out
}

fn zigzag(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7f {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An Avro object container file of `datums` (one block, no compression), written by hand:
/// apache-avro's writer recurses per level and could not write the deep ones.
fn container(schema: &str, datums: &[Vec<u8>]) -> Vec<u8> {
    container_with("null", schema, datums.len() as i64, &datums.concat())
}

/// A container file with `codec` and one block of `count` records stored as `block`.
fn container_with(codec: &str, schema: &str, count: i64, block: &[u8]) -> Vec<u8> {
    let sync = [7u8; 16];
    let mut out = b"Obj\x01".to_vec();
    zigzag(2, &mut out);
    for (key, value) in [("avro.schema", schema), ("avro.codec", codec)] {
        zigzag(key.len() as i64, &mut out);
        out.extend_from_slice(key.as_bytes());
        zigzag(value.len() as i64, &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    zigzag(0, &mut out);
    out.extend_from_slice(&sync);
    zigzag(count, &mut out);
    zigzag(block.len() as i64, &mut out);
    out.extend_from_slice(block);
    out.extend_from_slice(&sync);
    out
}

/// Runs `weft run --json` on `pipeline` in `work`; returns the process output and summary.
fn weft_run(work: &Workdir, pipeline: &str) -> (Output, Value) {
    let path = work.write("pipeline.toml", pipeline);
    let output = weft_command()
        .args(["run", "--json"])
        .arg(&path)
        .output()
        .expect("weft starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "weft run failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = serde_json::from_str(&stdout).expect("the summary is JSON");
    (output, summary)
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect()
}

fn list_lines(work: &Workdir) -> std::path::PathBuf {
    let lines = [
        list_json("a", 3),
        list_json("deep", 100),
        list_json("b", 5),
        list_json("deeper", 10_000),
        list_json("c", 64),
    ];
    work.write("lists.jsonl", &(lines.join("\n") + "\n"))
}

/// A `[[source]]` reading JSON lines of linked lists from `input`.
fn jsonl_list_source(work: &Workdir, input: &std::path::Path) -> String {
    let schema = work.write("list.avsc", LIST);
    format!(
        "[[source]]\nkind = \"jsonl\"\npath = {}\nschema = {}",
        toml_path(input),
        toml_path(&schema)
    )
}

fn copy_pipeline(source: &str, sink: &str, limits: &str) -> String {
    format!(
        r#"{source}

[sink]
{sink}

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
{limits}
"#
    )
}

#[test]
fn deeply_nested_json_lines_are_dead_letters_and_the_rest_is_delivered() {
    let work = Workdir::new();
    let input = list_lines(&work);
    let source = jsonl_list_source(&work, &input);
    let (_, summary) = weft_run(
        &work,
        &copy_pipeline(&source, "kind = \"jsonl\"\npath = \"out.jsonl\"", ""),
    );
    assert_eq!(summary["events_out"], 3);
    assert_eq!(names(&work.read_jsonl("out.jsonl")), ["a", "b", "c"]);
    let dead = work.read_jsonl("dead.jsonl");
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| d["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(
        reasons,
        [
            "line 2: nested deeper than 64 levels (limits.max_depth)",
            "line 4: nested deeper than 64 levels (limits.max_depth)",
        ]
    );
    assert!(
        dead[0]["value"]
            .as_str()
            .expect("raw line")
            .starts_with(r#"{"name":"deep""#)
    );

    // Within a raised limit, the list of 100 flows through the JSON sink whole.
    let work = Workdir::new();
    let input = list_lines(&work);
    let source = jsonl_list_source(&work, &input);
    let (_, summary) = weft_run(
        &work,
        &copy_pipeline(
            &source,
            "kind = \"jsonl\"\npath = \"out.jsonl\"",
            "max_depth = 120",
        ),
    );
    assert_eq!(summary["events_out"], 4);
    let out = work.read_jsonl("out.jsonl");
    assert_eq!(names(&out), ["a", "deep", "b", "c"]);
    let mut node = &out[1];
    let mut depth = 1;
    while !node["next"].is_null() {
        node = &node["next"];
        depth += 1;
    }
    assert_eq!(depth, 100);
}

#[test]
fn deeply_nested_avro_records_are_dead_letters_through_avro_files() {
    let work = Workdir::new();
    let file = container(
        LIST,
        &[
            list_datum("a", 3),
            list_datum("deep", 100),
            list_datum("b", 5),
            list_datum("deeper", 10_000),
            list_datum("c", 64),
        ],
    );
    let input = work.path("lists.avro");
    std::fs::write(&input, file).expect("write the file");
    let source = format!(
        "[[source]]\nkind = \"avro-file\"\npath = {}",
        toml_path(&input)
    );
    let (_, summary) = weft_run(
        &work,
        &copy_pipeline(&source, "kind = \"avro-file\"\npath = \"out.avro\"", ""),
    );
    assert_eq!(summary["events_out"], 3);
    assert_eq!(summary["source_rejected"], 2);
    // Read without decoding: apache-avro's reader needs ~100 KiB of stack per level in a
    // debug build, more than a test thread has for the 64-deep list.
    let mut out = ContainerReader::open(&work.path("out.avro"), 64).expect("an Avro file");
    let mut names = Vec::new();
    while let Some(record) = out.next_record().expect("readable") {
        let Record::Datum(bytes) = record else {
            panic!("bad record in the output: {record:?}")
        };
        // The first field, `name`: a one-byte length (twice the length, zigzag), the text.
        let len = usize::from(bytes[0] / 2);
        names.push(String::from_utf8(bytes[1..=len].to_vec()).expect("a name"));
    }
    assert_eq!(names, ["a", "b", "c"]);
    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(dead.len(), 2);
    assert_eq!(
        dead[0]["reason"],
        "record 2: nested deeper than 64 levels (limits.max_depth)"
    );
    assert_eq!(
        dead[1]["reason"],
        "record 4: nested deeper than 64 levels (limits.max_depth)"
    );
    assert!(
        dead[0]["value"]["base64"].is_string(),
        "too deep to show as JSON: {}",
        dead[0]["value"]
    );
}

/// Titles 1..=10 in batches of 4 through `raw(params)`, then `project`.
fn run_raw(params: &str, sink: &str, limits: &str) -> (Workdir, Value) {
    let work = Workdir::new();
    let input = work.write("titles.jsonl", &titles_jsonl(10));
    let pipeline = format!(
        r#"[[source]]
kind = "jsonl"
path = {input}
schema = {schema}

[[processor]]
plugin = {raw}
params = {{ {params} }}

[[processor]]
plugin = {project}
params = {{ keep = "id,title" }}

[sink]
{sink}

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
batch_size = 4
{limits}
"#,
        input = toml_path(&input),
        schema = toml_path(&title_schema()),
        raw = toml_path(&plugin("raw")),
        project = toml_path(&plugin("project")),
    );
    let (_, summary) = weft_run(&work, &pipeline);
    (work, summary)
}

fn ids(events: &[Value], at: &str) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.pointer(at).and_then(Value::as_i64).expect("id"))
        .collect()
}

#[test]
fn emitted_garbage_is_dead_lettered_naming_the_processor() {
    for (mode, why) in [
        (
            "garbage",
            "emitted an event that is not a datum of its output schema: event 1 of 1: ",
        ),
        ("junk", "bytes after the end of the datum"),
    ] {
        let (work, summary) = run_raw(
            &format!("mode = \"{mode}\", every = 3"),
            "kind = \"jsonl\"\npath = \"out.jsonl\"",
            "",
        );
        // Events 3 and 7 (the third of the first two batches of 4) are the bad ones.
        assert_eq!(
            ids(&work.read_jsonl("out.jsonl"), "/id"),
            [1, 2, 4, 5, 6, 8, 9, 10],
            "{mode}"
        );
        assert_eq!(summary["events_out"], 8, "{mode}");
        let dead = work.read_jsonl("dead.jsonl");
        assert_eq!(
            ids(&dead, "/value/id"),
            [3, 7],
            "{mode}: the input event is kept"
        );
        for d in &dead {
            assert_eq!(
                d["processor"], "raw@0.1.0",
                "{mode}: not blamed on the next stage"
            );
            assert_eq!(d["stage"], 1);
            let reason = d["reason"].as_str().expect("reason");
            assert!(reason.contains(why), "{mode}: {reason}");
        }
    }
}

#[test]
fn a_null_sink_does_not_count_garbage_as_delivered() {
    let (work, summary) = run_raw("mode = \"garbage\", every = 3", "kind = \"null\"", "");
    assert_eq!(summary["events_out"], 8);
    assert_eq!(summary["dead_letters"], 2);
    assert_eq!(work.read_jsonl("dead.jsonl").len(), 2);
}

#[test]
fn fan_out_past_the_limits_is_dead_lettered() {
    let (work, summary) = run_raw(
        "mode = \"fanout\", count = 1001, every = 3",
        "kind = \"jsonl\"\npath = \"out.jsonl\"",
        "",
    );
    assert_eq!(
        ids(&work.read_jsonl("out.jsonl"), "/id"),
        [1, 2, 4, 5, 6, 8, 9, 10]
    );
    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(ids(&dead, "/value/id"), [3, 7]);
    assert_eq!(
        dead[0]["reason"],
        "emitted 1001 events, over limits.max_emit_per_event = 1000"
    );
    assert_eq!(summary["events_out"], 8);

    // Within the per-event limit but past the batch's output bytes: a fan-out of 4500
    // copies of a title takes about 0.6 MiB of host memory (value and bookkeeping), so with
    // a 1 MiB budget the second fan-out of each batch (events 4 and 8) does not fit.
    let (work, summary) = run_raw(
        "mode = \"fanout\", count = 4500, every = 2",
        "kind = \"null\"",
        "max_emit_per_event = 5000\nmax_batch_output_mb = 1",
    );
    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(ids(&dead, "/value/id"), [4, 8]);
    for d in &dead {
        assert_eq!(d["processor"], "raw@0.1.0");
        let reason = d["reason"].as_str().expect("reason");
        assert!(
            reason.contains("would take this batch's output past limits.max_batch_output_mb = 1"),
            "{reason}"
        );
    }
    // Events 1, 3, 5, 7, 9 pass; 2, 6 and 10 fan out.
    assert_eq!(summary["events_out"], 5 + 3 * 4500);
}

#[test]
fn deep_schemas_are_refused_with_a_clear_error() {
    let work = Workdir::new();
    let mut schema = String::from(r#""int""#);
    for _ in 0..100 {
        schema = format!(r#"{{"type":"array","items":{schema}}}"#);
    }
    let schema_path = work.write("deep.avsc", &schema);
    let input = work.write("in.jsonl", "[]\n");
    let pipeline = work.write(
        "pipeline.toml",
        &format!(
            "[[source]]\nkind = \"jsonl\"\npath = {}\nschema = {}\n\n[sink]\nkind = \"null\"\n",
            toml_path(&input),
            toml_path(&schema_path)
        ),
    );
    let output = weft_command()
        .args(["run"])
        .arg(&pipeline)
        .output()
        .expect("weft starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("deep.avsc") && stderr.contains("types nest deeper than 64 levels"),
        "{stderr}"
    );
}

#[test]
fn a_json_line_longer_than_16_mib_is_a_dead_letter_and_the_rest_is_delivered() {
    let work = Workdir::new();
    let long = format!(r#"{{"name":"{}","next":null}}"#, "x".repeat(16 << 20));
    let input = work.write(
        "lines.jsonl",
        &format!("{}\n{long}\n{}\n", list_json("a", 1), list_json("b", 1)),
    );
    let source = jsonl_list_source(&work, &input);
    let (_, summary) = weft_run(
        &work,
        &copy_pipeline(&source, "kind = \"jsonl\"\npath = \"out.jsonl\"", ""),
    );
    assert_eq!(summary["events_out"], 2);
    assert_eq!(names(&work.read_jsonl("out.jsonl")), ["a", "b"]);
    let dead = work.read_jsonl("dead.jsonl");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0]["reason"],
        format!(
            "line 2: longer than 16 MiB ({} bytes); skipped, its first 1024 bytes kept",
            long.len()
        )
    );
    assert_eq!(dead[0]["value"].as_str(), Some(&long[..1024]));
}

/// A raw deflate stream of `n` zero bytes with fixed Huffman codes, written bit by bit: a
/// literal zero, then copies of 258 bytes at distance 1 (13 bits each), so the test never
/// holds the `n` bytes it describes.
fn zeros_deflated(n: usize) -> Vec<u8> {
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        byte: u8,
        used: u32,
    }
    impl Bits {
        /// `count` bits of a Huffman code, most significant first; deflate packs each
        /// byte from its least significant bit.
        fn code(&mut self, value: u32, count: u32) {
            for i in (0..count).rev() {
                self.byte |= (((value >> i) & 1) as u8) << self.used;
                self.used += 1;
                if self.used == 8 {
                    self.out.push(self.byte);
                    (self.byte, self.used) = (0, 0);
                }
            }
        }
    }
    const LITERAL_ZERO: (u32, u32) = (0b0011_0000, 8);
    let mut bits = Bits::default();
    // Header: last block (1), fixed codes (type 01, low bit first).
    bits.code(0b1, 1);
    bits.code(0b1, 1);
    bits.code(0b0, 1);
    bits.code(LITERAL_ZERO.0, LITERAL_ZERO.1);
    let mut left = n - 1;
    while left >= 258 {
        bits.code(0b1100_0101, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(LITERAL_ZERO.0, LITERAL_ZERO.1);
    }
    bits.code(0, 7); // end of block
    if bits.used > 0 {
        bits.out.push(bits.byte);
    }
    bits.out
}

#[test]
fn a_deflate_bomb_in_an_avro_file_fails_the_run_naming_the_file_and_block() {
    let mut check = zeros_deflated(1000);
    apache_avro::Codec::Deflate(Default::default())
        .decompress(&mut check)
        .expect("the hand-made stream is valid deflate");
    assert_eq!(check, vec![0u8; 1000]);

    // 1.7 MB that inflates to 257 MiB of `long` zeros, one record claimed: past the
    // reader's 256 MiB cap on a block.
    let bomb = zeros_deflated(257 << 20);
    let work = Workdir::new();
    let input = work.path("bomb.avro");
    std::fs::write(&input, container_with("deflate", r#""long""#, 1, &bomb)).expect("write");
    let pipeline = work.write(
        "pipeline.toml",
        &format!(
            "[[source]]\nkind = \"avro-file\"\npath = {}\n\n[sink]\nkind = \"null\"\n",
            toml_path(&input)
        ),
    );
    let output = weft_command()
        .arg("run")
        .arg(&pipeline)
        .output()
        .expect("weft starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "source avro-file {}: after record 0: block 1: inflates to more than 256 MiB \
             (a compression bomb?)",
            input.display()
        )),
        "{stderr}"
    );
}
