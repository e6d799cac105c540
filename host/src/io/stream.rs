//! The bottom of `io`: what the run loop drives and every source and sink shares — the
//! `Source` and `Sink` traits, the `Batch` a poll fills, and the few helpers their
//! implementations have in common. Concrete sources and sinks (files, the generator, Kafka)
//! depend on this module; the opening functions depend on them, so nothing points back up.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::{Schema, from_avro_datum};
use weft_runtime::{DeadLetter, Event};
use weft_schema::datum::DatumCheck;

use crate::{Error, Result};

/// What one poll of a source produced: events, and input it could not turn into events.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub dead: Vec<DeadLetter>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.events.clear();
        self.dead.clear();
    }

    /// Everything the source handed over in this batch, good or bad.
    pub fn len(&self) -> usize {
        self.events.len() + self.dead.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stream of Avro events with one writer schema.
pub trait Source: Send {
    /// How the source is named in errors and summaries.
    fn name(&self) -> String;
    /// The schema every event's value is written with.
    fn schema(&self) -> Arc<Schema>;
    /// Appends up to `max` items to `batch`, waiting at most `linger` for a partial batch.
    /// Returns `false` once the source is exhausted.
    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool>;
    /// Everything polled so far has been written and flushed downstream: safe to commit.
    /// A source may commit later (a Kafka source commits on a timer), never more than this.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    /// The run is over: commit, now, whatever `commit` acknowledged and the source has not
    /// committed yet; nothing polled after the last `commit` is.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
    /// How far behind each partition's end the source is (Kafka); empty for sources
    /// without partitions.
    fn lag(&self) -> Vec<PartitionLag> {
        Vec::new()
    }
    /// Partition assignments received so far (a Kafka group's rebalances); 0 for others.
    fn assignments(&self) -> u64 {
        0
    }
    /// The registry id of the reader schema, when the source follows a subject's latest
    /// schema (a Confluent Kafka source without a pinned `schema`); `None` otherwise.
    fn reader_schema_id(&self) -> Option<u32> {
        None
    }
    /// Reads every later event as `schema` (registry id `id`), e.g. the subject's new latest
    /// version: `weft serve` calls it between two steps, with a chain built against it. On an
    /// error nothing changed. Sources whose schema is fixed refuse.
    fn set_reader(&mut self, id: u32, schema: Arc<Schema>) -> Result<()> {
        let _ = schema;
        Err(Error::Source {
            source_name: self.name(),
            reason: format!("reads with a fixed schema; cannot switch to schema id {id}"),
        })
    }
}

/// How far a consumer is behind one partition's end: messages between its committed
/// position and the partition's high watermark.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// An event a sink did not write: `events[index]` of the call, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub reason: String,
}

/// Where the chain's output goes. `flush` returns once everything written is durable (or
/// acknowledged), so the source may commit.
pub trait Sink: Send {
    fn name(&self) -> String;
    /// Writes every event it can; returns those it refused, for the dead-letter sink.
    fn write(&mut self, events: &[Event]) -> Result<Vec<Refused>>;
    fn flush(&mut self) -> Result<()>;
    /// Flushes and finishes the output (e.g. the container file's last block).
    fn close(&mut self) -> Result<()>;
    /// A handle that waits for this sink's deliveries from another thread; `None` for sinks
    /// whose `write` is already durable once `flush` returns (files, stdout).
    fn delivery_gate(&self) -> Option<Arc<dyn DeliveryGate>> {
        None
    }
}

/// Waits for a sink's deliveries from another place than the run loop (a Kafka
/// source's revoke callback, which must not commit what is not delivered).
pub trait DeliveryGate: Send + Sync {
    /// Blocks until every message handed to the sink so far has a delivery report, at
    /// most `timeout`; true when all of them were delivered successfully.
    fn wait_delivered(&self, timeout: Duration) -> bool;
}

/// Reads and parses an Avro schema file (`.avsc`).
pub fn read_schema(path: &Path) -> Result<Arc<Schema>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    weft_schema::parse_schema(&text)
        .map(Arc::new)
        .map_err(|e| Error::Schema {
            origin: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Creates a file and its folder.
pub(crate) fn create(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    File::create(path).map_err(|e| Error::io(path, e))
}

/// Decodes an event for a sink that needs the value, checked first so apache-avro's
/// recursion stays within the depth limit.
pub(crate) fn decode(
    schema: &Schema,
    check: &DatumCheck,
    value: &[u8],
) -> std::result::Result<apache_avro::types::Value, String> {
    check.check(value).map_err(not_a_datum)?;
    from_avro_datum(schema, &mut &value[..], None).map_err(not_a_datum)
}

/// The reason a sink gives for an event that is not a datum of its schema.
pub(crate) fn not_a_datum(e: impl std::fmt::Display) -> String {
    format!("event is not a datum of the output schema: {e}")
}
