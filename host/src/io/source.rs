//! Sources: Avro container files, JSON lines (file or stdin), the synthetic generator, and
//! the union of several.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use apache_avro::{Schema, from_avro_datum, to_avro_datum};

use super::container::{ContainerReader, Record};
use super::generate::Generator;
use super::json::json_to_avro;
use super::read_schema;
use crate::config::SourceConfig;
use crate::datum::json_depth;
use crate::runtime::{DeadLetter, Event};
use crate::schema::check_can_read;
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
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Opens every configured source; several are read as one union. An event nested deeper
/// than `max_depth` levels becomes a dead letter.
pub fn open_sources(configs: &[SourceConfig], max_depth: usize) -> Result<Box<dyn Source>> {
    let mut sources = Vec::with_capacity(configs.len());
    for config in configs {
        sources.push(open_source(config, max_depth)?);
    }
    if sources.len() == 1 {
        return Ok(sources.remove(0));
    }
    Ok(Box::new(Union::new(sources)?))
}

fn open_source(config: &SourceConfig, max_depth: usize) -> Result<Box<dyn Source>> {
    Ok(match config {
        SourceConfig::AvroFile { path } => Box::new(AvroFile::open(path, max_depth)?),
        SourceConfig::Jsonl { path, schema } => {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            Box::new(JsonLines::new(
                format!("jsonl {}", path.display()),
                read_schema(schema)?,
                LineInput::File(BufReader::new(file)),
                max_depth,
            ))
        }
        SourceConfig::Stdin { schema } => Box::new(JsonLines::new(
            "stdin".into(),
            read_schema(schema)?,
            LineInput::stdin(),
            max_depth,
        )),
        SourceConfig::Generate {
            schema,
            count,
            rate,
            seed,
        } => Box::new(Generator::new(read_schema(schema)?, *count, *rate, *seed)?),
        SourceConfig::Kafka(kafka) => Box::new(super::kafka::KafkaSource::open(kafka, max_depth)?),
    })
}

/// An Avro object container file; the schema comes from its header. A record that is not
/// a datum of it (corrupt, or nested too deep) becomes a dead letter.
pub struct AvroFile {
    path: PathBuf,
    reader: ContainerReader,
}

impl AvroFile {
    pub fn open(path: &Path, max_depth: usize) -> Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            reader: ContainerReader::open(path, max_depth)?,
        })
    }
}

impl Source for AvroFile {
    fn name(&self) -> String {
        format!("avro-file {}", self.path.display())
    }

    fn schema(&self) -> Arc<Schema> {
        self.reader.schema()
    }

    fn poll(&mut self, max: usize, _linger: Duration, batch: &mut Batch) -> Result<bool> {
        while batch.len() < max {
            match self.reader.next_record()? {
                None => return Ok(false),
                Some(Record::Datum(bytes)) => batch.events.push(event(bytes)),
                Some(Record::Bad { bytes, reason }) => batch.dead.push(DeadLetter {
                    event: event(bytes),
                    stage: None,
                    processor: self.name(),
                    reason,
                    // Shown as base64: the dead-letter sink's own check refuses it too.
                    schema: Some(self.reader.schema()),
                }),
            }
        }
        Ok(true)
    }
}

fn event(value: Vec<u8>) -> Event {
    Event {
        key: None,
        value,
        headers: Vec::new(),
        timestamp: None,
    }
}

/// Where JSON lines come from. Standard input is read on a thread so a partial batch can
/// leave after `linger` even while the writer is silent.
enum LineInput {
    File(BufReader<File>),
    Channel(Receiver<std::io::Result<String>>),
}

impl LineInput {
    fn stdin() -> Self {
        let (tx, rx) = sync_channel(4096);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let failed = line.is_err();
                if tx.send(line).is_err() || failed {
                    break;
                }
            }
        });
        LineInput::Channel(rx)
    }

    /// The next line; `Ok(None)` at the end, `Err(Timeout)` when none came in time.
    fn next_line(&mut self, deadline: Instant) -> std::io::Result<Option<Option<String>>> {
        match self {
            LineInput::File(reader) => {
                let mut line = String::new();
                match reader.read_line(&mut line)? {
                    0 => Ok(Some(None)),
                    _ => Ok(Some(Some(line))),
                }
            }
            LineInput::Channel(rx) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(line) => Ok(Some(Some(line?))),
                    Err(RecvTimeoutError::Timeout) => Ok(None),
                    Err(RecvTimeoutError::Disconnected) => Ok(Some(None)),
                }
            }
        }
    }
}

/// JSON objects, one per line, encoded with a given schema. A line that does not fit the
/// schema becomes a dead letter naming the line and the field; the rest flows on.
pub struct JsonLines {
    name: String,
    schema: Arc<Schema>,
    input: LineInput,
    line: u64,
    max_depth: usize,
}

impl JsonLines {
    fn new(name: String, schema: Arc<Schema>, input: LineInput, max_depth: usize) -> Self {
        Self {
            name,
            schema,
            input,
            line: 0,
            max_depth,
        }
    }

    fn encode(&self, line: &str) -> std::result::Result<Vec<u8>, String> {
        // Measured before parsing: JSON parsing, conversion and Avro encoding all recurse
        // once per level, and an Avro value is never nested deeper than its JSON.
        if json_depth(line) > self.max_depth {
            return Err(format!(
                "nested deeper than {} levels (limits.max_depth)",
                self.max_depth
            ));
        }
        let json: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let value = json_to_avro(&json, &self.schema)?;
        to_avro_datum(&self.schema, value).map_err(|e| e.to_string())
    }
}

impl Source for JsonLines {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        let deadline = Instant::now() + linger;
        while batch.len() < max {
            let line = match self.input.next_line(deadline) {
                Ok(Some(Some(line))) => line,
                Ok(Some(None)) => return Ok(false),
                Ok(None) => return Ok(true),
                Err(e) => {
                    return Err(Error::Source {
                        source_name: self.name.clone(),
                        reason: format!("line {}: {e}", self.line + 1),
                    });
                }
            };
            self.line += 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            match self.encode(trimmed) {
                Ok(bytes) => batch.events.push(event(bytes)),
                Err(reason) => batch.dead.push(DeadLetter {
                    event: event(trimmed.as_bytes().to_vec()),
                    stage: None,
                    processor: self.name.clone(),
                    reason: format!("line {}: {reason}", self.line),
                    schema: None,
                }),
            }
        }
        Ok(true)
    }
}

/// Several sources read as one stream, in turn. Events of a source whose schema differs
/// from the first source's are resolved to it (Avro schema resolution), which the union
/// checks when it is opened.
pub struct Union {
    sources: Vec<Member>,
    schema: Arc<Schema>,
    current: usize,
    exhausted: Vec<bool>,
}

/// A source of a union, with its writer schema when its events need resolving.
type Member = (Box<dyn Source>, Option<Arc<Schema>>);

impl Union {
    fn new(sources: Vec<Box<dyn Source>>) -> Result<Self> {
        let schema = sources[0].schema();
        let canonical = schema.canonical_form();
        let mut members = Vec::with_capacity(sources.len());
        for source in sources {
            let writer = source.schema();
            let resolve = if writer.canonical_form() == canonical {
                None
            } else {
                check_can_read(&writer, &schema).map_err(|e| Error::Link {
                    link: format!("{} → union of sources", source.name()),
                    reason: format!(
                        "its events cannot be read with the first source's schema: {e}"
                    ),
                })?;
                Some(writer)
            };
            members.push((source, resolve));
        }
        let exhausted = vec![false; members.len()];
        Ok(Self {
            sources: members,
            schema,
            current: 0,
            exhausted,
        })
    }
}

impl Source for Union {
    fn name(&self) -> String {
        let names: Vec<_> = self.sources.iter().map(|(s, _)| s.name()).collect();
        format!("union({})", names.join(", "))
    }

    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        let n = self.sources.len();
        for _ in 0..n {
            if batch.len() >= max {
                break;
            }
            let index = self.current;
            self.current = (self.current + 1) % n;
            if self.exhausted[index] {
                continue;
            }
            let (source, resolve) = &mut self.sources[index];
            let start = batch.events.len();
            let more = source.poll(max - batch.len(), linger / n as u32, batch)?;
            if let Some(writer) = resolve {
                for event in &mut batch.events[start..] {
                    let value =
                        from_avro_datum(writer, &mut event.value.as_slice(), Some(&self.schema))
                            .and_then(|v| to_avro_datum(&self.schema, v))
                            .map_err(|e| Error::Source {
                                source_name: source.name(),
                                reason: format!("resolving to the union schema: {e}"),
                            })?;
                    event.value = value;
                }
            }
            self.exhausted[index] = !more;
        }
        Ok(self.exhausted.iter().any(|e| !e))
    }

    fn commit(&mut self) -> Result<()> {
        for (source, _) in &mut self.sources {
            source.commit()?;
        }
        Ok(())
    }
}
