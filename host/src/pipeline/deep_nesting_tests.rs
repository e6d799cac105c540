//! The host's whole path of one deeply nested event (JSON conversion, Avro encoding, the
//! datum check, decoding, JSON output) measured against the run thread's stack.

use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use weft_schema::datum::{DatumCheck, MAX_DEPTH_LIMIT};

use super::RUN_STACK_BYTES;
use crate::io::json::{avro_to_json, json_to_avro};

const LIST: &str = r#"{"type":"record","name":"Node","namespace":"t","fields":[
    {"name":"name","type":"string"},
    {"name":"next","type":["null","Node"]}]}"#;

fn list_schema() -> Schema {
    Schema::parse_str(LIST).expect("valid schema")
}

/// The Avro bytes of a linked list `depth` nodes long, built without recursion.
fn list_bytes(depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..depth {
        out.extend_from_slice(&[2, b'n']); // name: "n"
        out.push(if i + 1 == depth { 0 } else { 2 }); // next: null, or the next node
    }
    out
}

/// The host's whole path of one event (JSON conversion, Avro encoding, checking, decoding,
/// JSON output, dropping every value) at the deepest `max_depth` allowed fits the run
/// thread's stack with room to spare: on half of it here.
#[test]
fn the_deepest_allowed_nesting_fits_the_run_stack() {
    let depth = MAX_DEPTH_LIMIT;
    let run = std::thread::Builder::new()
        .stack_size(RUN_STACK_BYTES / 2)
        .spawn(move || {
            let schema = list_schema();
            // Built, not parsed: serde_json's parser stops at 128 levels by itself.
            let mut json = serde_json::Value::Null;
            for _ in 0..depth {
                json = serde_json::json!({"name": "n", "next": json});
            }
            let value = json_to_avro(&json, &schema).expect("converts");
            let bytes = to_avro_datum(&schema, value).expect("encodes");
            assert_eq!(bytes, list_bytes(depth), "the list encodes node by node");
            DatumCheck::new(&schema, depth)
                .expect("compiles")
                .check(&bytes)
                .expect("valid");
            let value = from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("decodes");
            let back = avro_to_json(&value);
            drop(value);
            drop(json);
            drop(back);
        })
        .expect("thread");
    run.join()
        .expect("no stack overflow at 4x the default depth");
}
