//! Sources and sinks: where events come from and where they go.
//!
//! Sources yield Avro datums with their writer schema; sinks receive the chain's output.
//! Every source and sink is synchronous: the run loop reads a batch, runs the chain, flushes
//! the batch before (still in flight since the last step) and acknowledges it to the source,
//! then writes this one; so nothing is acknowledged before it is safe, and one batch's
//! deliveries overlap the next poll.
//!
//! Modules depend one way: `stream` (the `Source`/`Sink` traits, `Batch`) ← `json`,
//! `container` ← the concrete sources and sinks (`generate`, `kafka`) ← `source`, `sink` and
//! `dead_letter`, whose opening functions pick the concrete kind a pipeline configures.

pub mod container;
pub mod dead_letter;
pub mod generate;
pub mod json;
pub mod kafka;
pub mod sink;
pub mod source;
pub mod stall;
pub mod stream;

pub use dead_letter::{DeadLetterSink, open_dead_letter};
pub use sink::open_sink;
pub use source::open_sources;
pub use stall::Stall;
pub use stream::{Batch, DeliveryGate, PartitionLag, Refused, Sink, Source, Ticket, read_schema};
