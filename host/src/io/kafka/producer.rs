//! An idempotent producer for one topic (`acks=all`) that keeps every message until a flush
//! saw it acknowledged, so a delivery that failed for a transient reason (a broker stopping
//! mid-request answers "unknown error", which librdkafka does not retry) is sent again
//! instead of failing the run. A flush fails only on a permanent error, a fatal producer
//! error, or when the messages could not be delivered for [`RESEND_WINDOW`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::{Diagnostics, client_config, show_key};
use crate::config::ParamValue;
use crate::{Error, Result};

/// Producer settings weft relies on; `properties` go over them.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    // Java clients' key hashing, so a key lands on the same partition whoever produced it.
    ("partitioner", "murmur2_random"),
    ("client.id", "weft"),
];

/// How often a flush that is still waiting says so. librdkafka itself retries each
/// message until `message.timeout.ms` (5 minutes by default).
const FLUSH_REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long failed deliveries are sent again before the flush gives up.
pub const RESEND_WINDOW: Duration = Duration::from_secs(300);
const RESEND_BACKOFF: Duration = Duration::from_millis(500);
const RESEND_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One message, kept until acknowledged.
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

/// A failed delivery: which record, where, why.
struct Failure {
    index: usize,
    partition: i32,
    error: KafkaError,
}

struct DeliveryContext {
    diagnostics: Diagnostics,
    failures: Mutex<Vec<Failure>>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.diagnostics.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    /// The record's index among those not yet acknowledged.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        if let Err((error, message)) = result {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures.push(Failure {
                index,
                partition: message.partition(),
                error: error.clone(),
            });
        }
    }
}

/// Errors that sending again cannot fix.
fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::UnsupportedForMessageFormat
                | RDKafkaErrorCode::PolicyViolation
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::Fatal
        )
    )
}

/// A producer for one topic, shared by the sink and the dead-letter sink.
pub struct TopicProducer {
    pub name: String,
    pub topic: String,
    producer: BaseProducer<DeliveryContext>,
    /// Everything sent since the last successful flush.
    unacked: Vec<Record>,
}

impl TopicProducer {
    pub fn new(
        name: String,
        topic: &str,
        brokers: Option<&str>,
        properties: &BTreeMap<String, ParamValue>,
    ) -> Result<Self> {
        let fail = |reason: String| Error::Sink {
            sink: name.clone(),
            reason,
        };
        let config = client_config(brokers, PRODUCER_DEFAULTS, properties).map_err(fail)?;
        let context = DeliveryContext {
            diagnostics: Diagnostics::new(name.clone()),
            failures: Mutex::new(Vec::new()),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| fail(format!("creating the producer: {e}")))?;
        Ok(Self {
            name,
            topic: topic.to_string(),
            producer,
            unacked: Vec::new(),
        })
    }

    pub fn fail(&self, reason: String) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            reason,
        }
    }

    /// Queues a message; it is kept until a flush sees it acknowledged.
    pub fn send(&mut self, record: Record) -> Result<()> {
        self.unacked.push(record);
        self.enqueue(self.unacked.len() - 1)?;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Hands record `index` to librdkafka, waiting for room when its queue is full.
    fn enqueue(&self, index: usize) -> Result<()> {
        let record = &self.unacked[index];
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(KafkaHeader {
                key,
                value: Some(value),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, index)
                .payload(record.payload.as_slice())
                .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    return Err(self.fail(format!(
                        "producing to {} (key {}): {e}",
                        self.topic,
                        show_key(record.key.as_deref())
                    )));
                }
            }
        }
    }

    /// Waits until every message sent since the last flush is acknowledged, sending failed
    /// ones again while their errors are transient.
    pub fn flush(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut backoff = RESEND_BACKOFF;
        loop {
            self.wait_for_deliveries()?;
            let mut failures = std::mem::take(
                &mut *self
                    .producer
                    .context()
                    .failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            );
            if failures.is_empty() {
                self.unacked.clear();
                return Ok(());
            }
            let describe = |f: &Failure| {
                format!(
                    "partition {} key {}: {}",
                    f.partition,
                    show_key(self.unacked[f.index].key.as_deref()),
                    f.error
                )
            };
            if let Some(permanent) = failures.iter().find(|f| is_permanent(&f.error)) {
                return Err(self.fail(format!(
                    "{} message(s) to {} were not acknowledged; the source is not committed, so a restart writes them again. First permanent error: {}",
                    failures.len(),
                    self.topic,
                    describe(permanent)
                )));
            }
            if started.elapsed() >= RESEND_WINDOW {
                return Err(self.fail(format!(
                    "{} message(s) to {} still not acknowledged after {}s of sending them again; the source is not committed. Last error: {}",
                    failures.len(),
                    self.topic,
                    RESEND_WINDOW.as_secs(),
                    describe(&failures[0])
                )));
            }
            tracing::warn!(
                sink = %self.name,
                "{} message(s) to {} failed ({}); sending them again in {:?}",
                failures.len(),
                self.topic,
                describe(&failures[0]),
                backoff
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(RESEND_BACKOFF_MAX);
            // In their original order, so a partition keeps the order it was written in.
            failures.sort_by_key(|f| f.index);
            failures.dedup_by_key(|f| f.index);
            for failure in &failures {
                self.enqueue(failure.index)?;
            }
        }
    }

    /// Blocks until librdkafka has a delivery report for every queued message.
    ///
    /// Not `Producer::flush(timeout)`: it serves delivery reports in 100 ms polls and lets
    /// queued messages wait out `linger.ms` meanwhile, so every batch took at least 100 ms. A
    /// zero-timeout flush sends what is queued at once; short polls then collect the reports
    /// as they come (about 2 ms for 1024 messages to a local broker).
    fn wait_for_deliveries(&self) -> Result<()> {
        let started = Instant::now();
        let mut reported = started;
        loop {
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                return Err(self.fail(format!(
                    "fatal producer error ({code:?}): {reason}; the source is not committed, so a restart writes the batch again"
                )));
            }
            match self.producer.flush(Duration::ZERO) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
                Err(e) => return Err(self.fail(format!("flushing {}: {e}", self.topic))),
            }
            // Fine-grained while acknowledgements are due, coarser once the broker is slow.
            let waited = started.elapsed();
            self.producer.poll(if waited < Duration::from_secs(1) {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(50)
            });
            if reported.elapsed() >= FLUSH_REPORT_EVERY {
                reported = Instant::now();
                tracing::warn!(
                    sink = %self.name,
                    "still waiting for {} message(s) to be acknowledged by {} after {:.0}s",
                    self.producer.in_flight_count(),
                    self.topic,
                    waited.as_secs_f64()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_errors_are_told_apart() {
        let production = |code| KafkaError::MessageProduction(code);
        assert!(!is_permanent(&production(RDKafkaErrorCode::Unknown)));
        assert!(!is_permanent(&production(
            RDKafkaErrorCode::MessageTimedOut
        )));
        assert!(!is_permanent(&production(
            RDKafkaErrorCode::NotLeaderForPartition
        )));
        assert!(is_permanent(&production(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert!(is_permanent(&production(
            RDKafkaErrorCode::TopicAuthorizationFailed
        )));
    }
}
