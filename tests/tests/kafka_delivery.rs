//! A Kafka sink's delivery gate, as a source's revoke callback uses it: waited on from
//! another thread than the one that writes, without a flush, it returns only once the broker
//! holds every message written so far, and says false when a message could not be delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_host::config::{KafkaSinkConfig, ParamValue, SinkConfig, WireFormat};
use weft_host::io::{Sink, Stall, open_sink};
use weft_runtime::{Event, Header};
use weft_tests::kafka::{Broker, Storage, end_offsets, free_port, title_datum, title_key, titles};

/// Generous: the gate returns as soon as the reports are in; this only bounds a broken run.
const PATIENCE: Duration = Duration::from_secs(120);

fn kafka_sink(brokers: &str, topic: &str, properties: &[(&str, &str)]) -> Box<dyn Sink> {
    let config = SinkConfig::Kafka(KafkaSinkConfig {
        brokers: Some(brokers.to_string()),
        topic: topic.to_string(),
        subject: None,
        register_schema: false,
        format: WireFormat::Avro,
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::String(v.to_string())))
            .collect::<BTreeMap<_, _>>(),
        registry: None,
    });
    open_sink(&config, Arc::new(titles()), 64, &Stall::default()).expect("open the Kafka sink")
}

fn events(count: u64) -> Vec<Event> {
    let schema = titles();
    (0..count)
        .map(|id| Event {
            key: Some(title_key(id).into_bytes()),
            value: title_datum(&schema, id),
            headers: vec![Header {
                key: "trace".into(),
                value: format!("t{id}").into_bytes(),
            }],
            timestamp: None,
        })
        .collect()
}

#[test]
fn the_gate_returns_once_the_broker_holds_every_message_written() {
    let broker = Broker::start(Storage::Sqlite);
    broker.create_topic("gated", 1);
    let mut sink = kafka_sink(&broker.address(), "gated", &[]);
    let gate = sink
        .delivery_gate()
        .expect("a Kafka sink has a delivery gate");

    let mut written = 0;
    for round in 0..3 {
        let batch = events(2_000);
        let refused = sink.write(&batch).expect("write");
        assert!(refused.is_empty(), "round {round}: refused {refused:?}");
        written += batch.len() as i64;
        // From another thread, as the revoke callback waits, and with no flush in between.
        let waiter = std::thread::spawn({
            let gate = gate.clone();
            move || gate.wait_delivered(PATIENCE)
        });
        assert!(
            waiter.join().expect("the waiting thread"),
            "round {round}: the gate said some message was not delivered"
        );
        assert_eq!(
            end_offsets(&broker.address(), "gated", 1),
            vec![written],
            "round {round}: the gate returned before the broker had every message"
        );
    }
    sink.close().expect("close");
}

#[test]
fn the_gate_says_false_when_a_message_cannot_be_delivered() {
    // Nothing listens there; librdkafka gives up on the messages after their timeout.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let sink = {
        let mut sink = kafka_sink(&nowhere, "lost", &[("message.timeout.ms", "1000")]);
        let refused = sink.write(&events(10)).expect("write queues the messages");
        assert!(refused.is_empty());
        sink
    };
    let gate = sink
        .delivery_gate()
        .expect("a Kafka sink has a delivery gate");
    assert!(!gate.wait_delivered(PATIENCE));
    // Still false later: a failed message stays undelivered until it is sent again.
    assert!(!gate.wait_delivered(Duration::ZERO));
}

#[test]
fn file_sinks_have_no_gate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = open_sink(
        &SinkConfig::Jsonl {
            path: dir.path().join("out.jsonl"),
        },
        Arc::new(titles()),
        64,
        &Stall::default(),
    )
    .expect("open the file sink");
    assert!(sink.delivery_gate().is_none());
}
