//! Sources and sinks: where events come from and where they go.
//!
//! Sources yield Avro datums with their writer schema; sinks receive the chain's output.
//! Every source and sink is synchronous: the run loop reads a batch, runs the chain, writes,
//! flushes, and only then commits the source, so nothing is acknowledged before it is safe.

pub mod container;
pub mod dead_letter;
pub mod generate;
pub mod json;
pub mod kafka;
pub mod sink;
pub mod source;

use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;

pub use dead_letter::{DeadLetterSink, open_dead_letter};
pub use sink::{Refused, Sink, open_sink};
pub use source::{Batch, Source, open_sources};

use crate::{Error, Result};

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
