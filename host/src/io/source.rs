//! Sources: Avro container files, JSON lines (file or stdin), the synthetic generator, and
//! the union of several.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use weft_runtime::{DeadLetter, Event};
use weft_schema::check_can_read;
use weft_schema::datum::json_depth;

use super::container::{ContainerReader, Record, describe_bytes};
use super::generate::Generator;
use super::json::json_to_avro;
use super::stream::{Batch, DeliveryGate, PartitionLag, Source, Ticket, read_schema};
use crate::config::SourceConfig;
use crate::{Error, Result};

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
                MAX_LINE_BYTES,
            ))
        }
        SourceConfig::Stdin { schema } => Box::new(JsonLines::new(
            "stdin".into(),
            read_schema(schema)?,
            LineInput::stdin(MAX_LINE_BYTES),
            max_depth,
            MAX_LINE_BYTES,
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

/// Longest JSON line (newline excluded) read into memory: one event, and far above any
/// event the processors' default 64 MiB memory could take in several copies. A longer line
/// becomes a dead letter and is read on to its newline without being held.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// How much of a line past [`MAX_LINE_BYTES`] its dead letter keeps, to show what it was.
const LONG_LINE_KEPT: usize = 1024;

/// One line of input, without its newline.
#[derive(Debug, PartialEq)]
enum Line {
    Bytes(Vec<u8>),
    /// Longer than the cap: its first bytes and its length.
    TooLong {
        start: Vec<u8>,
        len: u64,
    },
}

/// Reads the next line, holding at most `max` bytes of it; the rest of a longer line is
/// read and dropped. `None` at the end of the input.
fn read_line(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut len = 0u64;
    let mut any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        let room = max.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        len += chunk.len() as u64;
        let used = newline.map_or(buf.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    Ok(any.then(|| {
        if len > max as u64 {
            line.truncate(LONG_LINE_KEPT);
            Line::TooLong { start: line, len }
        } else {
            Line::Bytes(line)
        }
    }))
}

/// Where JSON lines come from. Standard input is read on a thread so a partial batch can
/// leave after `linger` even while the writer is silent.
enum LineInput {
    File(BufReader<File>),
    Channel(Receiver<std::io::Result<Line>>),
}

impl LineInput {
    fn stdin(max_line: usize) -> Self {
        let (tx, rx) = sync_channel(4096);
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            loop {
                let line = match read_line(&mut input, max_line) {
                    Ok(Some(line)) => Ok(line),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = line.is_err();
                if tx.send(line).is_err() || failed {
                    break;
                }
            }
        });
        LineInput::Channel(rx)
    }

    /// The next line; `Ok(None)` at the end, `Err(Timeout)` when none came in time.
    fn next_line(
        &mut self,
        deadline: Instant,
        max_line: usize,
    ) -> std::io::Result<Option<Option<Line>>> {
        match self {
            LineInput::File(reader) => Ok(Some(read_line(reader, max_line)?)),
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
    max_line: usize,
}

impl JsonLines {
    fn new(
        name: String,
        schema: Arc<Schema>,
        input: LineInput,
        max_depth: usize,
        max_line: usize,
    ) -> Self {
        Self {
            name,
            schema,
            input,
            line: 0,
            max_depth,
            max_line,
        }
    }

    fn dead(&self, bytes: Vec<u8>, reason: String) -> DeadLetter {
        DeadLetter {
            event: event(bytes),
            stage: None,
            processor: self.name.clone(),
            reason: format!("line {}: {reason}", self.line),
            schema: None,
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
            let line = match self.input.next_line(deadline, self.max_line) {
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
            let bytes = match line {
                Line::Bytes(bytes) => bytes,
                Line::TooLong { start, len } => {
                    let reason = format!(
                        "longer than {} ({len} bytes); skipped, its first {} bytes kept",
                        describe_bytes(self.max_line as u64),
                        start.len()
                    );
                    batch.dead.push(self.dead(start, reason));
                    continue;
                }
            };
            let text = match std::str::from_utf8(&bytes) {
                Ok(text) => text.trim(),
                Err(e) => {
                    let reason = format!("not UTF-8 ({e})");
                    batch.dead.push(self.dead(bytes, reason));
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            match self.encode(text) {
                Ok(encoded) => batch.events.push(event(encoded)),
                Err(reason) => {
                    let raw = text.as_bytes().to_vec();
                    batch.dead.push(self.dead(raw, reason));
                }
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
    /// Each member's ticket after each of the union's polls not yet acknowledged (a member
    /// counts only the polls it was given), so an acknowledgement reaches each member as
    /// that member's own ticket.
    handed: VecDeque<(Ticket, Vec<Ticket>)>,
    polls: Ticket,
    /// Each member's ticket: the polls it was given so far.
    member_polls: Vec<Ticket>,
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
            handed: VecDeque::new(),
            polls: Ticket::default(),
            member_polls: vec![Ticket::default(); exhausted.len()],
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
            self.member_polls[index] = self.member_polls[index].next();
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
        self.polls = self.polls.next();
        self.handed
            .push_back((self.polls, self.member_polls.clone()));
        Ok(self.exhausted.iter().any(|e| !e))
    }

    fn lag(&self) -> Vec<PartitionLag> {
        self.sources.iter().flat_map(|(s, _)| s.lag()).collect()
    }

    fn assignments(&self) -> u64 {
        self.sources.iter().map(|(s, _)| s.assignments()).sum()
    }

    fn acknowledge(&mut self, through: Ticket) -> Result<()> {
        let mut members = None;
        while let Some((ticket, _)) = self.handed.front()
            && *ticket <= through
        {
            members = self.handed.pop_front().map(|(_, t)| t);
        }
        for ((source, _), ticket) in self.sources.iter_mut().zip(members.unwrap_or_default()) {
            source.acknowledge(ticket)?;
        }
        Ok(())
    }

    fn watch_deliveries(&mut self, gates: Vec<Arc<dyn DeliveryGate>>) {
        for (source, _) in &mut self.sources {
            source.watch_deliveries(gates.clone());
        }
    }

    fn close(&mut self) -> Result<()> {
        for (source, _) in &mut self.sources {
            source.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use proptest::prelude::*;

    use super::*;

    fn lines(text: &[u8], max: usize, buffer: usize) -> Vec<Line> {
        let mut input = BufReader::with_capacity(buffer, Cursor::new(text));
        std::iter::from_fn(|| read_line(&mut input, max).expect("in memory")).collect()
    }

    #[test]
    fn a_line_past_the_cap_is_cut_and_the_next_one_is_whole() {
        assert_eq!(
            lines(b"ab\nabcdefgh\n\ncd", 4, 3),
            [
                Line::Bytes(b"ab".to_vec()),
                Line::TooLong {
                    start: b"abcd".to_vec(),
                    len: 8
                },
                Line::Bytes(Vec::new()),
                Line::Bytes(b"cd".to_vec()),
            ]
        );
    }

    proptest! {
        /// Whatever the lines and however the input is buffered, a line within the cap
        /// comes back as it was and a longer one as its start and its true length.
        #[test]
        fn lines_are_split_as_written_and_capped(
            written in prop::collection::vec(prop::collection::vec(1u8..=255, 0..40), 0..8),
            max in 0usize..24,
            buffer in 1usize..16,
        ) {
            let written: Vec<Vec<u8>> = written
                .into_iter()
                .map(|l| l.into_iter().map(|b| if b == b'\n' { b'x' } else { b }).collect())
                .collect();
            let text = written.join(&b'\n');
            // A newline ends a line: an empty last piece is no line of its own.
            let pieces = match written.split_last() {
                Some((last, rest)) if last.is_empty() => rest,
                _ => &written[..],
            };
            let expected: Vec<Line> = pieces
                .iter()
                .map(|l| if l.len() > max {
                    Line::TooLong { start: l[..max].to_vec(), len: l.len() as u64 }
                } else {
                    Line::Bytes(l.clone())
                })
                .collect();
            prop_assert_eq!(lines(&text, max, buffer), expected);
        }
    }

    #[test]
    fn an_over_long_or_non_utf8_line_is_a_dead_letter_and_the_rest_flows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.jsonl");
        let long = format!(r#"{{"s":"{}"}}"#, "x".repeat(100));
        let mut text = format!("{{\"s\":\"a\"}}\n{long}\n").into_bytes();
        text.extend_from_slice(b"{\"s\":\"\xff\"}\n{\"s\":\"b\"}");
        std::fs::write(&path, text).expect("write");
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"T","fields":[{"name":"s","type":"string"}]}"#,
        )
        .expect("schema");
        let file = File::open(&path).expect("open");
        let mut source = JsonLines::new(
            "jsonl in.jsonl".into(),
            Arc::new(schema),
            LineInput::File(BufReader::new(file)),
            64,
            64,
        );
        let mut batch = Batch::default();
        while source
            .poll(10, Duration::ZERO, &mut batch)
            .expect("no source error")
        {}
        assert_eq!(batch.events.len(), 2);
        let reasons: Vec<_> = batch.dead.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "line 2: longer than 64 bytes (108 bytes); skipped, its first 64 bytes kept",
                "line 3: not UTF-8 (invalid utf-8 sequence of 1 bytes from index 6)",
            ]
        );
        assert_eq!(batch.dead[0].event.value, long.as_bytes()[..64]);
    }
}
