//! The Kafka sink and the Kafka dead-letter sink, over [`TopicProducer`]: `flush` returns
//! only when every message was acknowledged, and fails if one cannot be.

use std::sync::Arc;

use apache_avro::Schema;
use weft_runtime::{DeadLetter, Event};

use super::producer::{Outgoing, TopicProducer, headers};
use super::wire::{Fetch, frame, with_retries};
use super::{HEADER_PROCESSOR, HEADER_REASON, HEADER_STAGE, registry};
use crate::config::{KafkaDeadLetterConfig, KafkaSinkConfig, WireFormat};
use crate::io::Stall;
use crate::io::stream::{DeliveryGate, Refused, Sink};
use crate::{Error, Result};

/// Events to a topic, in the Confluent wire format or as bare datums; keys, headers and
/// timestamps passed through. No event carries a `weft.source.*` position header (the source
/// keeps positions beside the batch and drops incoming ones, the chain drops a processor's),
/// so headers go out as they are, unfiltered.
///
/// Events are not checked against the output schema here: every event reaching a sink
/// already was, against this very schema (the chain checks each datum a stage emits against
/// the stage's output schema, the last of which is the sink's; every source checks or
/// builds its datums against its schema, which is the sink's when there is no processor;
/// `weft serve` reopens the sink when the output schema changes). Checking again cost a
/// tenth of a passthrough's CPU.
pub struct KafkaSink {
    producer: TopicProducer,
    /// The output schema's id under the sink's subject; `None` for bare datums.
    schema_id: Option<u32>,
    /// The framed value being sent, reused from event to event (librdkafka copies it).
    framed: Vec<u8>,
}

impl KafkaSink {
    /// Connects, and registers or looks up the output schema under the sink's subject. A
    /// flush that waits for the broker says so in `stall`.
    pub fn open(config: &KafkaSinkConfig, schema: Arc<Schema>, stall: &Stall) -> Result<Self> {
        let name = format!("kafka {}", config.topic);
        let fail = |reason: String| Error::Sink {
            sink: name.clone(),
            reason,
        };
        let schema_id = match config.format {
            WireFormat::Avro => None,
            WireFormat::Confluent => {
                let client = registry(config.registry.as_ref()).map_err(fail)?;
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
            stall,
        )?;
        if let Some(id) = schema_id {
            tracing::info!(sink = %producer.name, subject = %config.subject(), id, "output schema id");
        }
        Ok(Self {
            producer,
            schema_id,
            framed: Vec::new(),
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        self.producer.name.clone()
    }

    fn write(&mut self, events: &[Event]) -> Result<Vec<Refused>> {
        for event in events {
            let payload = match self.schema_id {
                Some(id) => {
                    self.framed.clear();
                    frame(id, &event.value, &mut self.framed);
                    self.framed.as_slice()
                }
                None => event.value.as_slice(),
            };
            self.producer.send(Outgoing {
                key: event.key.as_deref(),
                payload,
                headers: headers(
                    event
                        .headers
                        .iter()
                        .map(|h| (h.key.as_str(), h.value.as_slice())),
                ),
                timestamp: event.timestamp,
            })?;
        }
        Ok(Vec::new())
    }

    fn flush(&mut self) -> Result<()> {
        self.producer.flush()
    }

    fn close(&mut self) -> Result<()> {
        self.producer.flush()
    }

    fn delivery_gate(&self) -> Option<Arc<dyn DeliveryGate>> {
        Some(self.producer.gate())
    }
}

/// Dead letters to a topic: the value as it was where it failed (the raw message for
/// values the source could not decode), the key, the event's headers (with its source
/// topic, partition and offset, which the source or the chain put on the dead letter), and
/// `weft.reason`, `weft.processor`, `weft.stage`.
pub struct KafkaDeadLetters {
    producer: TopicProducer,
}

impl KafkaDeadLetters {
    pub fn open(config: &KafkaDeadLetterConfig, stall: &Stall) -> Result<Self> {
        Ok(Self {
            producer: TopicProducer::new(
                format!("kafka {}", config.topic),
                &config.topic,
                config.brokers.as_deref(),
                &config.properties,
                stall,
            )?,
        })
    }

    pub fn name(&self) -> &str {
        &self.producer.name
    }

    pub fn delivery_gate(&self) -> Arc<dyn DeliveryGate> {
        self.producer.gate()
    }

    pub fn write(&mut self, dead: &[DeadLetter]) -> Result<()> {
        for d in dead {
            let stage = match d.stage {
                Some(index) => (index + 1).to_string(),
                None => "source".to_string(),
            };
            let weft = [
                (HEADER_REASON, d.reason.as_bytes()),
                (HEADER_PROCESSOR, d.processor.as_bytes()),
                (HEADER_STAGE, stage.as_bytes()),
            ];
            let own = d.event.headers.iter();
            self.producer.send(Outgoing {
                key: d.event.key.as_deref(),
                payload: &d.event.value,
                headers: headers(
                    own.map(|h| (h.key.as_str(), h.value.as_slice()))
                        .chain(weft),
                ),
                timestamp: d.event.timestamp,
            })?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.producer.flush()
    }
}
