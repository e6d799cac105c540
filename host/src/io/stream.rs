//! The bottom of `io`: what the run loop drives and every source and sink shares — the
//! `Source` and `Sink` traits, the `Batch` a poll fills, and the few helpers their
//! implementations have in common. Concrete sources and sinks (files, the generator, Kafka)
//! depend on this module; the opening functions depend on them, so nothing points back up.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::{Schema, from_avro_datum};
use weft_runtime::{DeadLetter, Event, Position};
use weft_schema::datum::DatumCheck;

use crate::{Error, Result};

/// What one poll of a source produced: events, and input it could not turn into events.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub dead: Vec<DeadLetter>,
    /// Where each of `events` was read (a Kafka source's topic, partition, offset), beside
    /// them instead of as headers: only a dead letter shows it. One per event, or fewer: the
    /// events past its end have none (every event of a source without positions).
    pub positions: Vec<Option<Position>>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.events.clear();
        self.dead.clear();
        self.positions.clear();
    }

    /// Everything the source handed over in this batch, good or bad.
    pub fn len(&self) -> usize {
        self.events.len() + self.dead.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Names what one poll handed over: the n-th call of a source's `poll` hands over ticket n
/// (counting from 1), so the run loop and the source count alike without passing it around.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

impl Ticket {
    /// The ticket of the poll after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// A stream of Avro events with one writer schema.
///
/// The run loop keeps one batch in flight: it polls batch k while batch k-1 is written but
/// not yet flushed, then flushes k-1 and acknowledges it. So a source sees, in order:
/// `poll` (ticket k), `acknowledge(k - 1)`, `poll` (ticket k + 1), ... Calling `poll` again
/// says that everything handed over before was written downstream (in flight, maybe not
/// delivered yet); only `acknowledge` says it was delivered.
pub trait Source: Send {
    /// How the source is named in errors and summaries.
    fn name(&self) -> String;
    /// The schema every event's value is written with.
    fn schema(&self) -> Arc<Schema>;
    /// Appends up to `max` items to `batch`, waiting at most `linger` for a partial batch.
    /// Returns `false` once the source is exhausted. After an error, what this poll appended
    /// is never written and the source must not be polled again.
    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool>;
    /// Everything the polls up to ticket `through` handed over has been written and flushed
    /// downstream: safe to commit. Later polls are not covered (the batch still in flight).
    /// A source may commit later (a Kafka source commits on a timer), never more than this.
    fn acknowledge(&mut self, through: Ticket) -> Result<()> {
        let _ = through;
        Ok(())
    }
    /// The sinks' delivery gates, handed over when the pipeline opens and whenever its sinks
    /// change: a source that must give up part of its input mid-poll (a Kafka group's revoke)
    /// waits on them to commit the batch in flight, instead of leaving it for the next owner
    /// to read again.
    fn watch_deliveries(&mut self, gates: Vec<Arc<dyn DeliveryGate>>) {
        let _ = gates;
    }
    /// The run is over: commit, now, whatever `acknowledge` covered and the source has not
    /// committed yet; nothing after the last acknowledged ticket is.
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
