//! An idempotent producer for one topic (`acks=all`) that keeps every message until a flush
//! saw it acknowledged, so a delivery that failed for a transient reason (a broker stopping
//! mid-request answers "unknown error", which librdkafka does not retry) is sent again
//! instead of failing the run. A flush fails only on a permanent error, a fatal producer
//! error, or when the messages could not be delivered for [`RESEND_WINDOW`].
//!
//! Delivery reports are served by the producer's own polling thread ([`ThreadedProducer`]),
//! which counts them as they come; a flush sleeps on a condition variable until the count of
//! messages without a report is zero. The same counters answer a [`DeliveryGate`], so another
//! thread (a source's revoke callback) can wait for the deliveries without flushing. Polling from the flush itself spun: rust-rdkafka's
//! `poll` turns a sub-millisecond remainder into a zero-timeout poll and loops to its
//! deadline, so a 1 ms poll per turn kept a core busy on `clock_gettime`.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use super::{Diagnostics, client_config, show_key};
use crate::config::ParamValue;
use crate::io::Stall;
use crate::io::stream::DeliveryGate;
use crate::{Error, Result};

/// Producer settings weft relies on; `properties` go over them.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    // Java clients' key hashing, so a key lands on the same partition whoever produced it.
    ("partitioner", "murmur2_random"),
    ("client.id", "weft"),
    // A flush follows every batch, so librdkafka's 5 ms of linger delayed each batch's
    // acknowledgement (rust-rdkafka's zero-timeout flush lifts linger only for the instant
    // of the call). Not 0: messages were then sent while the batch was still being queued,
    // in many small requests (measured at 2,000 events/s: the broker's CPU doubled, weft's
    // rose by a fifth, latency was no better).
    ("linger.ms", "1"),
];

/// How often a flush that is still waiting says so. librdkafka itself retries each
/// message until `message.timeout.ms` (5 minutes by default).
const FLUSH_REPORT_EVERY: Duration = Duration::from_secs(10);
/// How often a waiting flush looks for a fatal producer error (librdkafka also fails every
/// queued message with it, which wakes the flush sooner).
const FATAL_CHECK_EVERY: Duration = Duration::from_millis(250);
/// Longest wait for room when librdkafka's queue is full, before trying again.
const ROOM_WAIT: Duration = Duration::from_millis(50);
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

/// What the delivery reports said since the last flush.
#[derive(Default)]
struct Deliveries {
    /// Messages handed to librdkafka whose report has not come yet. librdkafka reports
    /// every message it accepted exactly once (delivered, failed, timed out or purged).
    outstanding: usize,
    /// Messages sent whose delivery has not succeeded yet: a failed one stays counted while
    /// it waits to be sent again, and for good once a flush gave up on it.
    undelivered: usize,
    failures: Vec<Failure>,
    /// The sending thread waits for room in a full queue: wake it at the next report.
    room_wanted: bool,
}

/// The delivery counters, shared by the polling thread that reports, the flush, and every
/// [`DeliveryGate`] handed out.
#[derive(Default)]
struct Tracker {
    deliveries: Mutex<Deliveries>,
    /// Signalled when `outstanding` reaches zero, or at a report while room is wanted.
    reported: Condvar,
}

impl Tracker {
    fn deliveries(&self) -> MutexGuard<'_, Deliveries> {
        // The counters stay meaningful whatever panicked while holding the lock.
        self.deliveries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(
        &self,
        deliveries: MutexGuard<'a, Deliveries>,
        timeout: Duration,
    ) -> MutexGuard<'a, Deliveries> {
        self.reported
            .wait_timeout(deliveries, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }
}

impl DeliveryGate for Tracker {
    fn wait_delivered(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut deliveries = self.deliveries();
        while deliveries.outstanding > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            deliveries = self.wait(deliveries, left);
        }
        deliveries.undelivered == 0
    }
}

struct DeliveryContext {
    diagnostics: Diagnostics,
    tracker: Arc<Tracker>,
}

impl DeliveryContext {
    fn deliveries(&self) -> MutexGuard<'_, Deliveries> {
        self.tracker.deliveries()
    }
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

    /// Runs on the producer's polling thread.
    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let mut deliveries = self.deliveries();
        deliveries.outstanding = deliveries.outstanding.saturating_sub(1);
        match result {
            Ok(_) => deliveries.undelivered = deliveries.undelivered.saturating_sub(1),
            Err((error, message)) => deliveries.failures.push(Failure {
                index,
                partition: message.partition(),
                error: error.clone(),
            }),
        }
        // Not on every report: a wake-up is a system call, and most reports have no waiter.
        if deliveries.outstanding == 0 || deliveries.room_wanted {
            deliveries.room_wanted = false;
            self.tracker.reported.notify_all();
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
    producer: ThreadedProducer<DeliveryContext>,
    /// Everything sent since the last successful flush.
    unacked: Vec<Record>,
    /// Says why a flush is still waiting, for `weft serve`'s status; cleared when it returns.
    stall: Stall,
}

impl TopicProducer {
    pub fn new(
        name: String,
        topic: &str,
        brokers: Option<&str>,
        properties: &BTreeMap<String, ParamValue>,
        stall: &Stall,
    ) -> Result<Self> {
        let fail = |reason: String| Error::Sink {
            sink: name.clone(),
            reason,
        };
        let config = client_config(brokers, PRODUCER_DEFAULTS, properties).map_err(fail)?;
        let context = DeliveryContext {
            diagnostics: Diagnostics::new(name.clone()),
            tracker: Arc::default(),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| fail(format!("creating the producer: {e}")))?;
        Ok(Self {
            name,
            topic: topic.to_string(),
            producer,
            unacked: Vec::new(),
            stall: stall.clone(),
        })
    }

    pub fn fail(&self, reason: String) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            reason,
        }
    }

    /// Waits for this producer's deliveries from another thread.
    pub fn gate(&self) -> Arc<dyn DeliveryGate> {
        self.producer.context().tracker.clone()
    }

    /// Queues a message; it is kept until a flush sees it acknowledged.
    pub fn send(&mut self, record: Record) -> Result<()> {
        self.unacked.push(record);
        self.enqueue(self.unacked.len() - 1, true)
    }

    /// Hands record `index` to librdkafka, waiting for room when its queue is full; `fresh`
    /// when it is sent for the first time rather than again.
    fn enqueue(&self, index: usize, mut fresh: bool) -> Result<()> {
        let record = &self.unacked[index];
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, index).payload(record.payload.as_slice());
        // librdkafka allocates a header list even for none.
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(KafkaHeader {
                    key,
                    value: Some(value),
                });
            }
            base = base.headers(headers);
        }
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        let context = self.producer.context();
        loop {
            // Counted before librdkafka has it: its report may come at once, on the
            // polling thread.
            {
                let mut deliveries = context.deliveries();
                deliveries.outstanding += 1;
                if fresh {
                    deliveries.undelivered += 1;
                    fresh = false;
                }
            }
            let (error, back) = match self.producer.send(base) {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            let mut deliveries = context.deliveries();
            deliveries.outstanding -= 1;
            match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    base = back;
                    deliveries.room_wanted = true;
                    // A report frees room; none may come if the queue emptied meanwhile,
                    // hence the bound.
                    drop(context.tracker.wait(deliveries, ROOM_WAIT));
                }
                e => {
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
    /// ones again while their errors are transient. While it waits, the stall says why.
    pub fn flush(&mut self) -> Result<()> {
        let flushed = self.deliver();
        // An uncontended lock per batch; the sinks of a pipeline flush one after the other,
        // so this clears only what this flush set.
        self.stall.clear();
        flushed
    }

    fn stall(&self, why: String) {
        self.stall.set(format!("sink {}: {why}", self.name));
    }

    fn deliver(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut backoff = RESEND_BACKOFF;
        loop {
            self.wait_for_deliveries()?;
            let mut failures = std::mem::take(&mut self.producer.context().deliveries().failures);
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
            let why = format!(
                "{} message(s) not acknowledged for {:.0}s, sending them again (last error: {})",
                failures.len(),
                started.elapsed().as_secs_f64(),
                describe(&failures[0])
            );
            self.stall(why);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(RESEND_BACKOFF_MAX);
            // In their original order, so a partition keeps the order it was written in.
            failures.sort_by_key(|f| f.index);
            failures.dedup_by_key(|f| f.index);
            for failure in &failures {
                self.enqueue(failure.index, false)?;
            }
        }
    }

    /// Sleeps until librdkafka has reported on every message handed to it.
    ///
    /// Not `Producer::flush(timeout)`: it polls in 100 ms steps that each last their whole
    /// 100 ms, so every batch took at least 100 ms.
    fn wait_for_deliveries(&self) -> Result<()> {
        let context = self.producer.context();
        let started = Instant::now();
        let mut reported = started;
        let mut deliveries = context.deliveries();
        while deliveries.outstanding > 0 {
            deliveries = context.tracker.wait(deliveries, FATAL_CHECK_EVERY);
            if deliveries.outstanding == 0 {
                break;
            }
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                return Err(self.fail(format!(
                    "fatal producer error ({code:?}): {reason}; the source is not committed, so a restart writes the batch again"
                )));
            }
            if reported.elapsed() >= FLUSH_REPORT_EVERY {
                reported = Instant::now();
                let why = format!(
                    "{} message(s) without an acknowledgement for {:.0}s, librdkafka retrying",
                    deliveries.outstanding,
                    started.elapsed().as_secs_f64()
                );
                tracing::warn!(sink = %self.name, "still waiting: {why} (topic {})", self.topic);
                self.stall(why);
            }
        }
        Ok(())
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
