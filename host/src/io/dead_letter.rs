//! The dead-letter sink: every rejected or poison event, with the processor and the reason.
//!
//! One JSON object per line:
//! `{"processor":"filter@0.1.0","stage":1,"reason":"...","value":{...},"key":null,"headers":{},"timestamp":null}`.
//! `value` is the event decoded with the schema it had when it failed, or the raw input text
//! when the source could not decode it (`stage` is then `null`); `{"base64": ...}` when the
//! bytes are not a datum of that schema (or are nested too deep to decode safely).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use apache_avro::Schema;
use base64::Engine as _;
use serde_json::{Value as Json, json};
use weft_runtime::DeadLetter;
use weft_schema::datum::DatumCheck;

use super::Stall;
use super::json::avro_to_json;
use super::kafka::KafkaDeadLetters;
use super::stream::{DeliveryGate, create, decode};
use crate::config::DeadLetterConfig;
use crate::{Error, Result};

/// Where dead letters go.
pub struct DeadLetterSink {
    name: String,
    out: Output,
    path: Option<PathBuf>,
    checks: Checks,
}

/// The datum checks of the few schemas dead letters carry (one per stage), compiled once.
#[derive(Default)]
pub struct Checks {
    max_depth: usize,
    compiled: Vec<(Arc<Schema>, Option<DatumCheck>)>,
}

impl Checks {
    pub fn new(max_depth: usize) -> Self {
        Self {
            max_depth,
            compiled: Vec::new(),
        }
    }

    fn get(&mut self, schema: &Arc<Schema>) -> Option<&DatumCheck> {
        let at = match self
            .compiled
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, schema))
        {
            Some(at) => at,
            None => {
                let check = DatumCheck::new(schema, self.max_depth).ok();
                self.compiled.push((schema.clone(), check));
                self.compiled.len() - 1
            }
        };
        self.compiled[at].1.as_ref()
    }
}

enum Output {
    /// JSON lines.
    Lines(Box<dyn Write + Send>),
    /// A Kafka topic: the original bytes with `weft.*` headers.
    Kafka(KafkaDeadLetters),
}

impl std::fmt::Debug for DeadLetterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterSink")
            .field("name", &self.name)
            .finish()
    }
}

/// Opens the configured dead-letter sink; values nested deeper than `max_depth` are
/// written as base64. A Kafka topic's flush that waits for the broker says so in `stall`.
pub fn open_dead_letter(
    config: &DeadLetterConfig,
    max_depth: usize,
    stall: &Stall,
) -> Result<DeadLetterSink> {
    let checks = Checks::new(max_depth);
    Ok(match config {
        DeadLetterConfig::Jsonl { path } => DeadLetterSink {
            name: format!("jsonl {}", path.display()),
            out: Output::Lines(Box::new(BufWriter::new(create(path)?))),
            path: Some(path.clone()),
            checks,
        },
        DeadLetterConfig::Stderr => DeadLetterSink {
            name: "stderr".into(),
            out: Output::Lines(Box::new(std::io::stderr())),
            path: None,
            checks,
        },
        DeadLetterConfig::Kafka(kafka) => {
            let sink = KafkaDeadLetters::open(kafka, stall)?;
            DeadLetterSink {
                name: sink.name().to_string(),
                out: Output::Kafka(sink),
                path: None,
                checks,
            }
        }
    })
}

/// The JSON form of a dead letter.
pub fn to_json(dead: &DeadLetter, checks: &mut Checks) -> Json {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let value = match &dead.schema {
        Some(schema) => match checks
            .get(schema)
            .ok_or_else(String::new)
            .and_then(|check| decode(schema, check, &dead.event.value))
        {
            Ok(v) => avro_to_json(&v),
            Err(_) => json!({ "base64": b64(&dead.event.value) }),
        },
        None => Json::String(String::from_utf8_lossy(&dead.event.value).into_owned()),
    };
    let headers: serde_json::Map<String, Json> = dead
        .event
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                Json::String(String::from_utf8_lossy(&h.value).into_owned()),
            )
        })
        .collect();
    json!({
        "processor": dead.processor,
        "stage": dead.stage.map(|s| s + 1),
        "reason": dead.reason,
        "value": value,
        "key": dead.event.key.as_deref().map(b64),
        "headers": headers,
        "timestamp": dead.event.timestamp,
    })
}

impl DeadLetterSink {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for a Kafka topic's deliveries from another thread; `None` for JSON lines,
    /// which a flush makes durable.
    pub fn delivery_gate(&self) -> Option<Arc<dyn DeliveryGate>> {
        match &self.out {
            Output::Lines(_) => None,
            Output::Kafka(kafka) => Some(kafka.delivery_gate()),
        }
    }

    pub fn write(&mut self, dead: &[DeadLetter]) -> Result<()> {
        let out = match &mut self.out {
            Output::Lines(out) => out,
            Output::Kafka(kafka) => return kafka.write(dead),
        };
        for d in dead {
            let line = to_json(d, &mut self.checks).to_string();
            let written = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                return Err(self.io_error(e));
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        let flushed = match &mut self.out {
            Output::Lines(out) => out.flush(),
            Output::Kafka(kafka) => return kafka.flush(),
        };
        flushed.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        match &self.path {
            Some(path) => Error::io(path, e),
            None => Error::Sink {
                sink: format!("dead-letter {}", self.name),
                reason: e.to_string(),
            },
        }
    }
}
