//! Sinks: Avro container file, JSON lines (file or stdout), null.
//!
//! A sink refuses an event it cannot write (not a datum of its schema, nested too deep)
//! and hands it back as a dead letter; only a failure of the sink itself (I/O, the broker)
//! is an error that stops the run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::{Schema, Writer};
use weft_runtime::Event;
use weft_schema::datum::DatumCheck;

use super::Stall;
use super::json::avro_to_json;
use super::stream::{Refused, Sink, create, decode, not_a_datum};
use crate::config::SinkConfig;
use crate::{Error, Result};

/// Opens the configured sink for events written with `schema`, nested at most `max_depth`
/// levels deep. A sink that waits while it retries (Kafka) says why in `stall`.
pub fn open_sink(
    config: &SinkConfig,
    schema: Arc<Schema>,
    max_depth: usize,
    stall: &Stall,
) -> Result<Box<dyn Sink>> {
    let check = DatumCheck::new(&schema, max_depth).map_err(|reason| Error::Sink {
        sink: config.describe(),
        reason,
    })?;
    Ok(match config {
        SinkConfig::AvroFile { path } => Box::new(AvroFileSink::create(path, schema, check)?),
        SinkConfig::Jsonl { path } => Box::new(JsonLinesSink {
            name: format!("jsonl {}", path.display()),
            out: Box::new(BufWriter::new(create(path)?)),
            schema,
            check,
            path: Some(path.clone()),
        }),
        SinkConfig::Stdout => Box::new(JsonLinesSink {
            name: "stdout".into(),
            out: Box::new(BufWriter::new(std::io::stdout())),
            schema,
            check,
            path: None,
        }),
        SinkConfig::Null => Box::new(NullSink { check }),
        SinkConfig::Kafka(kafka) => Box::new(super::kafka::KafkaSink::open(kafka, schema, stall)?),
    })
}

/// Writes each event with `write`, collecting the events it refuses.
fn write_each(
    events: &[Event],
    mut write: impl FnMut(&Event) -> Result<std::result::Result<(), String>>,
) -> Result<Vec<Refused>> {
    let mut refused = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if let Err(reason) = write(event)? {
            refused.push(Refused { index, reason });
        }
    }
    Ok(refused)
}

struct AvroFileSink {
    path: PathBuf,
    schema: Arc<Schema>,
    check: DatumCheck,
    writer: Option<Writer<'static, BufWriter<File>>>,
}

impl AvroFileSink {
    fn create(path: &Path, schema: Arc<Schema>, check: DatumCheck) -> Result<Self> {
        let file = BufWriter::new(create(path)?);
        // The writer borrows its schema for its whole life; the sink lives for the run, so
        // one leaked schema per opened file is the simplest sound way to give it `'static`.
        let leaked: &'static Schema = Box::leak(Box::new((*schema).clone()));
        Ok(Self {
            path: path.to_path_buf(),
            schema,
            check,
            writer: Some(Writer::new(leaked, file)),
        })
    }

    fn fail(&self, reason: String) -> Error {
        fail_at(&self.path, reason)
    }
}

fn fail_at(path: &Path, reason: String) -> Error {
    Error::Sink {
        sink: format!("avro-file {}", path.display()),
        reason,
    }
}

impl Sink for AvroFileSink {
    fn name(&self) -> String {
        format!("avro-file {}", self.path.display())
    }

    fn write(&mut self, events: &[Event]) -> Result<Vec<Refused>> {
        let Self {
            path,
            schema,
            check,
            writer,
        } = self;
        let writer = writer
            .as_mut()
            .ok_or_else(|| fail_at(path, "already closed".into()))?;
        write_each(events, |event| {
            let value = match decode(schema, check, &event.value) {
                Ok(value) => value,
                Err(reason) => return Ok(Err(reason)),
            };
            // The value was decoded with this schema, so apache-avro refusing it here is a
            // failure of the writer, not of the event.
            writer
                .append(value)
                .map(|_| Ok(()))
                .map_err(|e| fail_at(path, e.to_string()))
        })
    }

    fn flush(&mut self) -> Result<()> {
        let path = &self.path;
        if let Some(writer) = self.writer.as_mut() {
            writer.flush().map_err(|e| fail_at(path, e.to_string()))?;
            writer.get_mut().flush().map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.flush()?;
        if let Some(writer) = self.writer.take() {
            let mut file = writer.into_inner().map_err(|e| self.fail(e.to_string()))?;
            file.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

struct JsonLinesSink {
    name: String,
    out: Box<dyn Write + Send>,
    schema: Arc<Schema>,
    check: DatumCheck,
    path: Option<PathBuf>,
}

impl JsonLinesSink {
    fn io_error(&self, e: std::io::Error) -> Error {
        match &self.path {
            Some(path) => Error::io(path, e),
            None => Error::Sink {
                sink: self.name.clone(),
                reason: e.to_string(),
            },
        }
    }
}

impl Sink for JsonLinesSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, events: &[Event]) -> Result<Vec<Refused>> {
        let mut refused = Vec::new();
        let mut line = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let value = match decode(&self.schema, &self.check, &event.value) {
                Ok(value) => value,
                Err(reason) => {
                    refused.push(Refused { index, reason });
                    continue;
                }
            };
            // Serialised to memory first, so a line is written whole or not at all.
            line.clear();
            serde_json::to_writer(&mut line, &avro_to_json(&value))
                .map_err(|e| self.io_error(std::io::Error::other(e)))?;
            line.push(b'\n');
            self.out.write_all(&line).map_err(|e| self.io_error(e))?;
        }
        Ok(refused)
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.io_error(e))
    }

    fn close(&mut self) -> Result<()> {
        self.flush()
    }
}

/// Discards events, but only those that are datums of the output schema count as written.
struct NullSink {
    check: DatumCheck,
}

impl Sink for NullSink {
    fn name(&self) -> String {
        "null".into()
    }
    fn write(&mut self, events: &[Event]) -> Result<Vec<Refused>> {
        write_each(events, |event| {
            Ok(self.check.check(&event.value).map_err(not_a_datum))
        })
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: Vec<u8>) -> Event {
        Event {
            key: None,
            value,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A good event, garbage, a good event with trailing junk, a good event.
    fn events() -> Vec<Event> {
        vec![
            event(vec![2]),
            event(vec![0xff; 7]),
            event(vec![4, 0]),
            event(vec![6]),
        ]
    }

    #[test]
    fn every_sink_refuses_bad_events_and_writes_the_rest() {
        let schema = Arc::new(Schema::parse_str(r#""long""#).expect("schema"));
        let dir = tempfile::tempdir().expect("tempdir");
        let configs = [
            SinkConfig::Jsonl {
                path: dir.path().join("out.jsonl"),
            },
            SinkConfig::AvroFile {
                path: dir.path().join("out.avro"),
            },
            SinkConfig::Null,
        ];
        for config in &configs {
            let mut sink = open_sink(config, schema.clone(), 64, &Stall::default()).expect("opens");
            let refused = sink.write(&events()).expect("no sink failure");
            let indices: Vec<_> = refused.iter().map(|r| r.index).collect();
            assert_eq!(indices, [1, 2], "{}", config.describe());
            assert!(
                refused[1]
                    .reason
                    .starts_with("event is not a datum of the output schema: 1 bytes after"),
                "{}",
                refused[1].reason
            );
            sink.close().expect("closes");
        }
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("written");
        assert_eq!(text, "1\n3\n");
    }
}
