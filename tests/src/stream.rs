//! Helpers of the tests that watch a pipeline change under a steady stream (tests/upgrades.rs):
//! a paced producer on its own thread, the per-partition order check that tolerates replays,
//! and a reader of Confluent-framed output that fetches each writer schema by its id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use apache_avro::{Schema, from_avro_datum};
use serde_json::Value;
use weft_host::io::json::avro_to_json;

use crate::kafka::{Received, Registry, TestProducer, title_key};

/// A producer on its own thread writing one event every `every` until stopped: ids counting
/// up from `first`, each encoded by `encode`. Stopping returns the last id written (every one
/// acknowledged).
pub struct Stream {
    stop: Arc<AtomicBool>,
    last: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    pub fn start(
        brokers: &str,
        topic: &str,
        first: u64,
        every: Duration,
        encode: impl Fn(u64) -> Vec<u8> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicU64::new(first - 1));
        let (brokers, topic) = (brokers.to_string(), topic.to_string());
        let thread = std::thread::spawn({
            let (stop, last) = (stop.clone(), last.clone());
            move || {
                let producer = TestProducer::new(&brokers);
                let mut id = first;
                while !stop.load(Ordering::Relaxed) {
                    producer.send(&topic, Some(title_key(id).as_bytes()), &encode(id), &[]);
                    last.store(id, Ordering::Relaxed);
                    id += 1;
                    std::thread::sleep(every);
                }
                producer.flush();
            }
        });
        Self {
            stop,
            last,
            thread: Some(thread),
        }
    }

    /// The last id written so far.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Stops and waits for every event to be acknowledged; the last id written.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the producer thread finished");
        }
        self.last()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Per partition, the first arrival of each id must come in increasing id order: the
/// producer wrote each partition's ids in increasing order, and a replay after a swap or a
/// crash may repeat events but never reorder the new ones. Ids in `dead_lettered` are left
/// out: an event a trap sent to the dead letters arrives in the sink only if a replay from an
/// older commit processes it again, after later events. `label` describes a message.
pub fn assert_in_order_per_partition(
    messages: &[Received],
    dead_lettered: &BTreeSet<i64>,
    mut id_of: impl FnMut(&Received) -> i64,
    mut label: impl FnMut(&Received) -> String,
) {
    let mut seen = BTreeSet::new();
    let mut last: HashMap<i32, i64> = HashMap::new();
    for (index, m) in messages.iter().enumerate() {
        let id = id_of(m);
        if dead_lettered.contains(&id) || !seen.insert(id) {
            continue;
        }
        if let Some(before) = last.insert(m.partition, id)
            && before > id
        {
            let around: Vec<String> = messages[..=index]
                .iter()
                .rev()
                .filter(|o| o.partition == m.partition)
                .take(30)
                .map(|o| format!("@{} {}", o.offset, label(o)))
                .collect();
            panic!(
                "partition {} out of order: {id} first arrived after {before}; newest first:\n{}",
                m.partition,
                around.join("\n")
            );
        }
    }
}

/// Ids missing from `found` among `1..=last`.
pub fn missing(found: &BTreeSet<i64>, last: u64) -> Vec<i64> {
    (1..=last as i64).filter(|id| !found.contains(id)).collect()
}

/// Decodes what the sink wrote (Confluent framing) with the writer schema its id names.
pub struct SinkReader<'a> {
    registry: &'a Registry,
    schemas: BTreeMap<u32, Schema>,
}

impl<'a> SinkReader<'a> {
    pub fn new(registry: &'a Registry) -> Self {
        Self {
            registry,
            schemas: BTreeMap::new(),
        }
    }

    /// The schema id and the event as JSON.
    pub fn read(&mut self, m: &Received) -> (u32, Value) {
        assert_eq!(m.value.first(), Some(&0), "magic byte of a sink value");
        let id = u32::from_be_bytes(m.value[1..5].try_into().expect("4 bytes"));
        let schema = self.schemas.entry(id).or_insert_with(|| {
            let text = self
                .registry
                .client()
                .schema_by_id(id)
                .unwrap_or_else(|e| panic!("the sink framed with schema id {id}: {e}"));
            Schema::parse_str(&text).expect("the registry's schema parses")
        });
        let datum = from_avro_datum(schema, &mut &m.value[5..], None).expect("sink value decodes");
        (id, avro_to_json(&datum))
    }
}
