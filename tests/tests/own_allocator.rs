//! A plugin can bring its own global allocator: with the SDK's `allocator` feature off
//! (`tests/plugins/own-alloc`), the plugin builds, and its allocator — not the SDK's —
//! serves the SDK's decoding and encoding.

use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use weft_runtime::{Chain, ChainLimits, Event, StageSpec};
use weft_tests::{plugin, runtime};

#[test]
fn a_plugin_with_its_own_allocator_runs_and_its_allocator_serves_the_sdk() {
    let runtime = runtime();
    let own_alloc = runtime
        .load_file(&plugin("own_alloc"))
        .expect("load own_alloc");
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#,
    )
    .expect("schema");
    let events: Vec<Event> = (0..3)
        .map(|id| Event {
            key: None,
            value: apache_avro::to_avro_datum(
                &schema,
                Value::Record(vec![
                    ("id".into(), Value::Long(id)),
                    ("name".into(), Value::String(format!("title {id}"))),
                ]),
            )
            .expect("encode"),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect();
    let specs = vec![StageSpec {
        plugin: own_alloc,
        params: Vec::new(),
    }];
    let limits = ChainLimits {
        memory_bytes: 64 << 20,
        deadline: Duration::from_secs(5),
        ..ChainLimits::default()
    };
    let mut chain = Chain::build(&runtime, specs, Arc::new(schema), limits).expect("build");
    let output = chain.process(events.clone()).expect("process");
    assert!(output.dead.is_empty(), "{:?}", output.dead);

    // Every event comes out unchanged, each with the plugin allocator's count so far.
    assert_eq!(output.events.len(), 3);
    let mut counts = Vec::new();
    for (out, input) in output.events.iter().zip(&events) {
        assert_eq!(out.value, input.value, "the record passes unchanged");
        let header = out
            .headers
            .iter()
            .find(|h| h.key == "own-alloc-allocations")
            .expect("the count header");
        let count: u64 = std::str::from_utf8(&header.value)
            .expect("utf-8")
            .parse()
            .expect("a number");
        counts.push(count);
    }
    // Decoding each event allocates (field names, strings, the record's Vec) through the
    // plugin's allocator: the count grows from one event to the next.
    assert!(counts[0] > 0, "{counts:?}");
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "the plugin's allocator served the SDK: {counts:?}"
    );
}
