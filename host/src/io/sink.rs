//! Sinks: Avro container file, JSON lines (file or stdout), null.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::{Schema, Writer, from_avro_datum};

use super::json::avro_to_json;
use crate::config::SinkConfig;
use crate::runtime::Event;
use crate::{Error, Result};

/// Where the chain's output goes. `flush` returns once everything written is durable (or
/// acknowledged), so the source may commit.
pub trait Sink: Send {
    fn name(&self) -> String;
    fn write(&mut self, events: &[Event]) -> Result<()>;
    fn flush(&mut self) -> Result<()>;
    /// Flushes and finishes the output (e.g. the container file's last block).
    fn close(&mut self) -> Result<()>;
}

/// Opens the configured sink for events written with `schema`.
pub fn open_sink(config: &SinkConfig, schema: Arc<Schema>) -> Result<Box<dyn Sink>> {
    Ok(match config {
        SinkConfig::AvroFile { path } => Box::new(AvroFileSink::create(path, schema)?),
        SinkConfig::Jsonl { path } => Box::new(JsonLinesSink {
            name: format!("jsonl {}", path.display()),
            out: Box::new(BufWriter::new(create(path)?)),
            schema,
            path: Some(path.clone()),
        }),
        SinkConfig::Stdout => Box::new(JsonLinesSink {
            name: "stdout".into(),
            out: Box::new(BufWriter::new(std::io::stdout())),
            schema,
            path: None,
        }),
        SinkConfig::Null => Box::new(NullSink),
        SinkConfig::Kafka(kafka) => Box::new(super::kafka::KafkaSink::open(kafka, schema)?),
    })
}

/// Creates a file and its folder.
pub(crate) fn create(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    File::create(path).map_err(|e| Error::io(path, e))
}

fn decode(
    schema: &Schema,
    event: &Event,
) -> std::result::Result<apache_avro::types::Value, String> {
    from_avro_datum(schema, &mut event.value.as_slice(), None)
        .map_err(|e| format!("event does not match the output schema: {e}"))
}

struct AvroFileSink {
    path: PathBuf,
    schema: Arc<Schema>,
    writer: Option<Writer<'static, BufWriter<File>>>,
}

impl AvroFileSink {
    fn create(path: &Path, schema: Arc<Schema>) -> Result<Self> {
        let file = BufWriter::new(create(path)?);
        // The writer borrows its schema for its whole life; the sink lives for the run, so
        // one leaked schema per opened file is the simplest sound way to give it `'static`.
        let leaked: &'static Schema = Box::leak(Box::new((*schema).clone()));
        Ok(Self {
            path: path.to_path_buf(),
            schema,
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

    fn write(&mut self, events: &[Event]) -> Result<()> {
        for event in events {
            let value = decode(&self.schema, event).map_err(|e| self.fail(e))?;
            let path = &self.path;
            let writer = self
                .writer
                .as_mut()
                .ok_or_else(|| fail_at(path, "already closed".into()))?;
            writer
                .append(value)
                .map_err(|e| fail_at(path, e.to_string()))?;
        }
        Ok(())
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

    fn write(&mut self, events: &[Event]) -> Result<()> {
        for event in events {
            let value = decode(&self.schema, event).map_err(|reason| Error::Sink {
                sink: self.name.clone(),
                reason,
            })?;
            let json = avro_to_json(&value);
            serde_json::to_writer(&mut self.out, &json)
                .map_err(|e| self.io_error(std::io::Error::other(e)))?;
            self.out.write_all(b"\n").map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.io_error(e))
    }

    fn close(&mut self) -> Result<()> {
        self.flush()
    }
}

struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> String {
        "null".into()
    }
    fn write(&mut self, _events: &[Event]) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
