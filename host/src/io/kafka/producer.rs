//! An idempotent producer for one topic (`acks=all`) whose flush sends a message again when
//! its delivery failed for a transient reason (a broker stopping mid-request answers "unknown
//! error", which librdkafka does not retry) instead of failing the run. A flush fails only on
//! a permanent error, a fatal producer error, or when the messages could not be delivered for
//! [`RESEND_WINDOW`].
//!
//! Nothing is kept per message on the way: librdkafka copies each message when it is queued
//! and hands a failed one back in its delivery report, where it is copied for sending again
//! (keeping a copy of every message until acknowledged cost three allocations and copies per
//! event for the rare failure).
//!
//! Delivery reports are counted as they are served. A flush first serves those already
//! there itself (in the pipelined run loop a batch is flushed a whole poll after it was
//! written, so its reports usually are), then, if some are still to come, sleeps on a
//! condition variable until the count of messages without a report is zero while a thread of
//! the producer's own ([`serve_reports`]) serves them. That thread blocks on librdkafka's
//! queue only while someone waits for reports: blocked there, it was woken for every report
//! (a third of a point of a core at 2,000 events/s, for batches nobody was waiting on). The same counters answer a [`DeliveryGate`], so another
//! thread (a source's revoke callback) can wait for the deliveries without flushing. Polling
//! from the flush itself spun: rust-rdkafka's `poll` turns a sub-millisecond remainder into a
//! zero-timeout poll and loops to its deadline, so a 1 ms poll per turn kept a core busy on
//! `clock_gettime`. rust-rdkafka's `ThreadedProducer` has the same spin in small: its thread
//! polls for 100 ms at a time, and each turn in which a report came ends in up to a
//! millisecond of it (about 1% of a core at 2,000 events/s, most of that thread's CPU).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{
    DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders, OwnedMessage,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::{Diagnostics, client_config, show_key};
use crate::config::ParamValue;
use crate::io::Stall;
use crate::io::stream::DeliveryGate;
use crate::{Error, Result};

/// Producer settings weft relies on; `properties` go over them.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    // Java clients' key hashing, so a key lands on the same partition whoever produced it.
    ("partitioner", "murmur2_random"),
    ("client.id", "weft"),
    // Each batch's acknowledgement waits out the linger: why this value, in
    // `super::LINGER_MS`.
    ("linger.ms", super::LINGER_MS),
];

/// How often a flush that is still waiting says so. librdkafka itself retries each
/// message until `message.timeout.ms` (5 minutes by default).
const FLUSH_REPORT_EVERY: Duration = Duration::from_secs(10);
/// How often a waiting flush looks for a fatal producer error (librdkafka also fails every
/// queued message with it, which wakes the flush sooner).
const FATAL_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long the reports thread polls at a time while someone waits for reports. Each poll
/// that served a report ends in up to a millisecond of zero-timeout polls (see the module's
/// doc), so the longer the fewer; it is also how long the thread, and with it the producer,
/// may outlive the sink dropping it.
const REPORTS_POLL: Duration = Duration::from_millis(200);
/// How often the reports thread serves what is there when nobody waits (errors, reports of
/// a sink that is not flushed for a while).
const REPORTS_IDLE: Duration = Duration::from_secs(1);
/// Longest wait for room when librdkafka's queue is full, before trying again.
const ROOM_WAIT: Duration = Duration::from_millis(50);
/// How long failed deliveries are sent again before the flush gives up.
pub const RESEND_WINDOW: Duration = Duration::from_secs(300);
const RESEND_BACKOFF: Duration = Duration::from_millis(500);
const RESEND_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One message to send, borrowed: librdkafka copies it when it is queued.
pub struct Outgoing<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// From [`headers`]; `None` for none.
    pub headers: Option<OwnedHeaders>,
    pub timestamp: Option<i64>,
}

/// A message's headers as librdkafka takes them; `None` when there are none (librdkafka
/// would allocate an empty list).
pub fn headers<'h>(pairs: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> Option<OwnedHeaders> {
    let mut headers: Option<OwnedHeaders> = None;
    for (key, value) in pairs {
        let list = headers
            .take()
            .unwrap_or_else(|| OwnedHeaders::new_with_capacity(4));
        headers = Some(list.insert(KafkaHeader {
            key,
            value: Some(value),
        }));
    }
    headers
}

/// A failed delivery: the message as librdkafka handed it back, where, why.
struct Failure {
    /// Its place among the messages sent, so failures are sent again in their order.
    sequence: usize,
    message: OwnedMessage,
    error: KafkaError,
}

/// What the delivery reports said: counters updated without a lock (two atomic operations
/// per message on each side; a lock per message made the sending and the reporting threads
/// wake each other up), and the rare failures under a lock.
#[derive(Default)]
struct Tracker {
    /// Messages handed to librdkafka whose report has not come yet. librdkafka reports
    /// every message it accepted exactly once (delivered, failed, timed out or purged).
    outstanding: AtomicUsize,
    /// Messages sent whose delivery has not succeeded yet: a failed one stays counted while
    /// it waits to be sent again, and for good once a flush gave up on it.
    undelivered: AtomicUsize,
    /// The sending thread waits for room in a full queue: wake it at the next report.
    room_wanted: AtomicBool,
    /// Threads waiting for reports (a flush, a revoke's gate, a full queue): while there are
    /// any, the reports thread blocks on librdkafka's queue to serve them.
    waiting: AtomicUsize,
    /// Reports and errors served so far, so a poll that served nothing is told apart.
    served: AtomicUsize,
    /// The reports thread stops (its producer was dropped).
    stop: AtomicBool,
    /// Failed deliveries since the last flush took them; waiters sleep on this lock.
    failures: Mutex<Vec<Failure>>,
    /// Signalled when `outstanding` reaches zero, or at a report while room is wanted.
    reported: Condvar,
    /// Signalled when a thread starts waiting for reports, or the reports thread must stop.
    wanted: Condvar,
}

impl Tracker {
    fn failures(&self) -> MutexGuard<'_, Vec<Failure>> {
        // A list of whole failures whatever panicked while holding the lock.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// Sleeps until `outstanding` is zero, at most `timeout`; says whether it is. A report
    /// that brings it to zero notifies under the lock, so it cannot slip between the look
    /// and the sleep.
    fn wait_reported(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut failures = self.failures();
        if self.outstanding() == 0 {
            return true;
        }
        let _waiting = self.want_reports();
        while self.outstanding() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            failures = self
                .reported
                .wait_timeout(failures, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Counts the caller among the threads waiting for reports until the guard drops, and
    /// wakes the reports thread to serve them. Called with the lock held, so the reports
    /// thread, which looks under the lock before it sleeps, cannot miss it.
    fn want_reports(&self) -> Waiting<'_> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) == 0 {
            self.wanted.notify_all();
        }
        Waiting(self)
    }

    /// Wakes every waiter; taking the lock first orders it after a waiter's look.
    fn notify(&self) {
        drop(self.failures());
        self.reported.notify_all();
    }

    /// One message is being handed to librdkafka; `fresh` when not a resend.
    fn sent(&self, fresh: bool) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if fresh {
            self.undelivered.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// librdkafka refused the message just counted by `sent`: it will have no report.
    fn refused(&self) {
        if self.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.notify();
        }
    }
}

/// One thread waiting for reports ([`Tracker::want_reports`]).
struct Waiting<'a>(&'a Tracker);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DeliveryGate for Tracker {
    fn wait_delivered(&self, timeout: Duration) -> bool {
        self.wait_reported(timeout) && self.undelivered.load(Ordering::SeqCst) == 0
    }
}

struct DeliveryContext {
    diagnostics: Diagnostics,
    tracker: Arc<Tracker>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.diagnostics.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.tracker.served.fetch_add(1, Ordering::Relaxed);
        self.diagnostics.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    /// The message's sequence number (see [`Failure::sequence`]).
    type DeliveryOpaque = usize;

    /// Runs on the producer's polling thread.
    fn delivery(&self, result: &DeliveryResult<'_>, sequence: usize) {
        let tracker = &self.tracker;
        tracker.served.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {
                tracker.undelivered.fetch_sub(1, Ordering::SeqCst);
            }
            // The only copy weft makes of a message, and only of a failed one. Recorded
            // before `outstanding` drops, so a flush that sees zero sees the failure too.
            Err((error, message)) => tracker.failures().push(Failure {
                sequence,
                message: message.detach(),
                error: error.clone(),
            }),
        }
        let last = tracker.outstanding.fetch_sub(1, Ordering::SeqCst) == 1;
        // Not on every report: a wake-up is a system call, and most reports have no waiter.
        let room = tracker.room_wanted.load(Ordering::SeqCst)
            && tracker.room_wanted.swap(false, Ordering::SeqCst);
        if last || room {
            tracker.notify();
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
    producer: Arc<BaseProducer<DeliveryContext>>,
    /// Numbers the messages sent (see [`Failure::sequence`]).
    sent: usize,
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
        let producer: Arc<BaseProducer<DeliveryContext>> = Arc::new(
            config
                .create_with_context(context)
                .map_err(|e| fail(format!("creating the producer: {e}")))?,
        );
        serve_reports(producer.clone())
            .map_err(|e| fail(format!("starting the delivery reports thread: {e}")))?;
        Ok(Self {
            name,
            topic: topic.to_string(),
            producer,
            sent: 0,
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

    /// Queues a message; a flush waits for its delivery and sends it again if it failed.
    pub fn send(&mut self, message: Outgoing<'_>) -> Result<()> {
        self.sent = self.sent.wrapping_add(1);
        self.enqueue(self.sent, message, true)
    }

    /// Hands a message to librdkafka, waiting for room when its queue is full; `fresh` when
    /// it is sent for the first time rather than again.
    fn enqueue(&self, sequence: usize, message: Outgoing<'_>, mut fresh: bool) -> Result<()> {
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, sequence).payload(message.payload);
        if let Some(headers) = message.headers {
            base = base.headers(headers);
        }
        if let Some(key) = message.key {
            base = base.key(key);
        }
        if let Some(timestamp) = message.timestamp {
            base = base.timestamp(timestamp);
        }
        let tracker = &self.producer.context().tracker;
        loop {
            // Counted before librdkafka has it: its report may come at once, on the
            // polling thread.
            tracker.sent(fresh);
            fresh = false;
            let (error, back) = match self.producer.send(base) {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            tracker.refused();
            match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    base = back;
                    // A report frees room; none may come if the queue emptied meanwhile,
                    // hence the bound.
                    serve_ready(&self.producer);
                    let failures = tracker.failures();
                    let _waiting = tracker.want_reports();
                    tracker.room_wanted.store(true, Ordering::SeqCst);
                    drop(tracker.reported.wait_timeout(failures, ROOM_WAIT));
                }
                e => {
                    return Err(self.fail(format!(
                        "producing to {} (key {}): {e}",
                        self.topic,
                        show_key(message.key)
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
            let mut failures = std::mem::take(&mut *self.producer.context().tracker.failures());
            if failures.is_empty() {
                return Ok(());
            }
            let describe = |f: &Failure| {
                format!(
                    "partition {} key {}: {}",
                    f.message.partition(),
                    show_key(f.message.key()),
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
            failures.sort_by_key(|f| f.sequence);
            failures.dedup_by_key(|f| f.sequence);
            for failure in &failures {
                let message = &failure.message;
                // The timestamp librdkafka reported: the one it was first sent with (or
                // stamped with, for a message sent without one).
                let outgoing = Outgoing {
                    key: message.key(),
                    payload: message.payload().unwrap_or_default(),
                    headers: message.headers().cloned(),
                    timestamp: message.timestamp().to_millis(),
                };
                self.enqueue(failure.sequence, outgoing, false)?;
            }
        }
    }

    /// Sleeps until librdkafka has reported on every message handed to it.
    ///
    /// Not `Producer::flush(timeout)`: it polls in 100 ms steps that each last their whole
    /// 100 ms, so every batch took at least 100 ms.
    fn wait_for_deliveries(&self) -> Result<()> {
        let tracker = &self.producer.context().tracker;
        serve_ready(&self.producer);
        let started = Instant::now();
        let mut reported = started;
        while !tracker.wait_reported(FATAL_CHECK_EVERY) {
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                return Err(self.fail(format!(
                    "fatal producer error ({code:?}): {reason}; the source is not committed, so a restart writes the batch again"
                )));
            }
            if reported.elapsed() >= FLUSH_REPORT_EVERY {
                reported = Instant::now();
                let why = format!(
                    "{} message(s) without an acknowledgement for {:.0}s, librdkafka retrying",
                    tracker.outstanding(),
                    started.elapsed().as_secs_f64()
                );
                tracing::warn!(sink = %self.name, "still waiting: {why} (topic {})", self.topic);
                self.stall(why);
            }
        }
        Ok(())
    }
}

impl Drop for TopicProducer {
    /// Not joined: the reports thread sees `stop` at once, or within [`REPORTS_POLL`] when it
    /// is serving a waiter, and drops the last handle, which destroys the producer (every
    /// message was flushed or is abandoned with the failed run). Joining could hold a run's
    /// exit, or a daemon's rebuild, that long per producer.
    fn drop(&mut self) {
        let tracker = &self.producer.context().tracker;
        let _lock = tracker.failures();
        tracker.stop.store(true, Ordering::SeqCst);
        tracker.wanted.notify_all();
    }
}

/// Serves the reports and errors librdkafka already has for `producer`, without waiting.
fn serve_ready(producer: &BaseProducer<DeliveryContext>) {
    let served = &producer.context().tracker.served;
    loop {
        let before = served.load(Ordering::Relaxed);
        // A zero timeout serves at most one event and returns.
        producer.poll(Duration::ZERO);
        if served.load(Ordering::Relaxed) == before {
            return;
        }
    }
}

/// Starts the thread that serves `producer`'s delivery reports and errors until it is
/// dropped: blocked on librdkafka's queue while a thread waits for reports, else asleep and
/// serving what is there every [`REPORTS_IDLE`].
fn serve_reports(producer: Arc<BaseProducer<DeliveryContext>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("kafka-reports".into())
        .spawn(move || {
            let tracker = producer.context().tracker.clone();
            loop {
                let mut lock = tracker.failures();
                if tracker.waiting.load(Ordering::SeqCst) == 0
                    && !tracker.stop.load(Ordering::SeqCst)
                {
                    lock = tracker
                        .wanted
                        .wait_timeout(lock, REPORTS_IDLE)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                let wanted = tracker.waiting.load(Ordering::SeqCst) > 0;
                drop(lock);
                if tracker.stop.load(Ordering::SeqCst) {
                    return;
                }
                if wanted {
                    producer.poll(REPORTS_POLL);
                } else {
                    serve_ready(&producer);
                }
            }
        })
        .map(drop)
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
