//! The Kafka sink and the Kafka dead-letter sink: an idempotent producer (`acks=all`) whose
//! `flush` returns only when every message was acknowledged, and fails if any was not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apache_avro::{Schema, from_avro_datum};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::wire::{Fetch, frame, with_retries};
use super::{
    Diagnostics, HEADER_PROCESSOR, HEADER_REASON, HEADER_STAGE, SOURCE_HEADER_PREFIX,
    client_config, registry, show_key,
};
use crate::config::{KafkaDeadLetterConfig, KafkaSinkConfig, ParamValue, WireFormat};
use crate::io::sink::Sink;
use crate::runtime::{DeadLetter, Event};
use crate::{Error, Result};

/// Producer settings weft relies on; `properties` go over them.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    // Java clients' key hashing, so a key lands on the same partition whoever produced it.
    ("partitioner", "murmur2_random"),
    ("client.id", "weft"),
];

/// How long a flush waits between progress lines while deliveries are outstanding. Each
/// message is retried by librdkafka until `message.timeout.ms` (5 minutes by default), after
/// which its delivery fails and so does the flush.
const FLUSH_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Counts deliveries and remembers the first failures.
struct DeliveryContext {
    diagnostics: Diagnostics,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

const KEEP_FAILURES: usize = 5;

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.diagnostics.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if failures.len() < KEEP_FAILURES {
                failures.push(format!(
                    "partition {} key {}: {error}",
                    message.partition(),
                    show_key(message.key())
                ));
            }
        }
    }
}

/// A producer for one topic, shared by the sink and the dead-letter sink.
struct TopicProducer {
    name: String,
    topic: String,
    producer: BaseProducer<DeliveryContext>,
}

impl TopicProducer {
    fn new(
        name: String,
        topic: &str,
        brokers: Option<&str>,
        properties: &std::collections::BTreeMap<String, ParamValue>,
    ) -> Result<Self> {
        let fail = |reason: String| Error::Sink {
            sink: name.clone(),
            reason,
        };
        let config = client_config(brokers, PRODUCER_DEFAULTS, properties).map_err(fail)?;
        let context = DeliveryContext {
            diagnostics: Diagnostics::new(name.clone()),
            failed: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| fail(format!("creating the producer: {e}")))?;
        Ok(Self {
            name,
            topic: topic.to_string(),
            producer,
        })
    }

    fn fail(&self, reason: String) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            reason,
        }
    }

    /// Queues one message, waiting for room when librdkafka's queue is full.
    fn send(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: OwnedHeaders,
        timestamp: Option<i64>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(timestamp) = timestamp {
            record = record.timestamp(timestamp);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    return Err(self.fail(format!(
                        "producing to {} (key {}): {e}",
                        self.topic,
                        show_key(key)
                    )));
                }
            }
        }
    }

    /// Waits until every queued message is acknowledged; fails if any delivery failed.
    fn flush(&self) -> Result<()> {
        let started = Instant::now();
        let mut reported = started;
        loop {
            match self.producer.flush(Duration::from_secs(1)) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                    if let Some(fatal) = self.producer.context().diagnostics.fatal() {
                        return Err(self.fail(format!("fatal producer error: {fatal}")));
                    }
                    if reported.elapsed() >= FLUSH_REPORT_EVERY {
                        reported = Instant::now();
                        tracing::warn!(
                            sink = %self.name,
                            "still waiting for {} message(s) to be acknowledged by {} after {:.0}s",
                            self.producer.in_flight_count(),
                            self.topic,
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                Err(e) => return Err(self.fail(format!("flushing {}: {e}", self.topic))),
            }
        }
        let context = self.producer.context();
        let failed = context.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let failures = context.failures.lock().unwrap_or_else(|p| p.into_inner());
            return Err(self.fail(format!(
                "{failed} message(s) to {} were not acknowledged; the source is not committed, so a restart writes them again. First: {}",
                self.topic,
                failures.join("; ")
            )));
        }
        Ok(())
    }
}

/// Events to a topic, in the Confluent wire format or as bare datums; keys, headers and
/// timestamps passed through (without the source-position headers).
pub struct KafkaSink {
    producer: TopicProducer,
    schema: Arc<Schema>,
    /// The output schema's id under the sink's subject; `None` for bare datums.
    schema_id: Option<u32>,
    buffer: Vec<u8>,
}

impl KafkaSink {
    /// Connects, and registers or looks up the output schema under the sink's subject.
    pub fn open(config: &KafkaSinkConfig, schema: Arc<Schema>) -> Result<Self> {
        let name = format!("kafka {}", config.topic);
        let fail = |reason: String| Error::Sink {
            sink: name.clone(),
            reason,
        };
        let schema_id = match config.format {
            WireFormat::Avro => None,
            WireFormat::Confluent => {
                let client = registry(config.registry_url.as_deref()).map_err(fail)?;
                let subject = config.subject();
                // The full JSON (with defaults and docs): the parsing canonical form would drop
                // the defaults the subject's compatibility checks need.
                let text = serde_json::to_string(&*schema)
                    .map_err(|e| fail(format!("serializing the output schema: {e}")))?;
                let (what, id) = if config.register_schema {
                    let what = format!("registering the output schema under subject {subject:?}");
                    let id = with_retries(&what, || client.register(&subject, &text));
                    (what, id)
                } else {
                    let what = format!("looking up the output schema under subject {subject:?}");
                    let id = with_retries(&what, || client.lookup(&subject, &text));
                    (what, id)
                };
                Some(id.map_err(|e| {
                    fail(match e {
                        Fetch::Rejected(e)
                            if !config.register_schema
                                && matches!(e.error_code(), Some(40401 | 40403)) =>
                        {
                            format!("{what}: {e}. Register it first, or set register_schema = true")
                        }
                        Fetch::Rejected(e) => format!("{what}: {e}"),
                        Fetch::Unavailable(r) => format!("{what}: {r}"),
                    })
                })?)
            }
        };
        let producer = TopicProducer::new(
            name,
            &config.topic,
            config.brokers.as_deref(),
            &config.properties,
        )?;
        if let Some(id) = schema_id {
            tracing::info!(sink = %producer.name, subject = %config.subject(), id, "output schema id");
        }
        Ok(Self {
            producer,
            schema,
            schema_id,
            buffer: Vec::new(),
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        self.producer.name.clone()
    }

    fn write(&mut self, events: &[Event]) -> Result<()> {
        for event in events {
            // A datum that does not match the output schema would poison every consumer of
            // the topic; the file sinks refuse it the same way.
            from_avro_datum(&self.schema, &mut event.value.as_slice(), None).map_err(|e| {
                self.producer.fail(format!(
                    "event with key {} does not match the output schema: {e}",
                    show_key(event.key.as_deref())
                ))
            })?;
            let payload = match self.schema_id {
                Some(id) => {
                    self.buffer.clear();
                    frame(id, &event.value, &mut self.buffer);
                    self.buffer.as_slice()
                }
                None => event.value.as_slice(),
            };
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len());
            for h in &event.headers {
                if !h.key.starts_with(SOURCE_HEADER_PREFIX) {
                    headers = headers.insert(KafkaHeader {
                        key: &h.key,
                        value: Some(&h.value),
                    });
                }
            }
            self.producer
                .send(event.key.as_deref(), payload, headers, event.timestamp)?;
        }
        self.producer.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.producer.flush()
    }

    fn close(&mut self) -> Result<()> {
        self.producer.flush()
    }
}

/// Dead letters to a topic: the value as it was where it failed (the raw message for
/// values the source could not decode), the key, the event's headers (with its source
/// topic, partition and offset), and `weft.reason`, `weft.processor`, `weft.stage`.
pub struct KafkaDeadLetters {
    producer: TopicProducer,
}

impl KafkaDeadLetters {
    pub fn open(config: &KafkaDeadLetterConfig) -> Result<Self> {
        Ok(Self {
            producer: TopicProducer::new(
                format!("kafka {}", config.topic),
                &config.topic,
                config.brokers.as_deref(),
                &config.properties,
            )?,
        })
    }

    pub fn name(&self) -> &str {
        &self.producer.name
    }

    pub fn write(&mut self, dead: &[DeadLetter]) -> Result<()> {
        for d in dead {
            let stage = match d.stage {
                Some(index) => (index + 1).to_string(),
                None => "source".to_string(),
            };
            let mut headers = OwnedHeaders::new_with_capacity(d.event.headers.len() + 3);
            for h in &d.event.headers {
                headers = headers.insert(KafkaHeader {
                    key: &h.key,
                    value: Some(&h.value),
                });
            }
            for (key, value) in [
                (HEADER_REASON, d.reason.as_str()),
                (HEADER_PROCESSOR, d.processor.as_str()),
                (HEADER_STAGE, stage.as_str()),
            ] {
                headers = headers.insert(KafkaHeader {
                    key,
                    value: Some(value),
                });
            }
            self.producer.send(
                d.event.key.as_deref(),
                &d.event.value,
                headers,
                d.event.timestamp,
            )?;
        }
        self.producer.producer.poll(Duration::ZERO);
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.producer.flush()
    }
}
