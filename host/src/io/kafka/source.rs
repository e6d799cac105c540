//! The Kafka source: a consumer group whose offsets are committed only in `commit()`, i.e.
//! only for messages handed over before the sinks acknowledged everything.
//!
//! Offsets are tracked per partition as "one past the last message handed over". A revoked
//! partition's tracked offset is dropped in the rebalance callback: its messages in the batch
//! being built are not acknowledged yet, so the next owner must read them again (duplicates,
//! never loss). Nothing is committed on revoke or on close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use weft_runtime::{DeadLetter, Event, Header};
use weft_schema::parse_schema;

use super::wire::{DecodeError, Decoder, Fetch, with_retries};
use super::{
    Diagnostics, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
    SOURCE_HEADER_PREFIX, client_config, is_fatal, registry,
};
use crate::config::{KafkaSourceConfig, StartPosition, WireFormat};
use crate::io::stream::{Batch, PartitionLag, Source, read_schema};
use crate::{Error, Result};

/// Next offset to commit, by topic and partition.
type Offsets = HashMap<String, HashMap<i32, i64>>;

/// A consumer group reading topics (by list or pattern) into events of one schema.
pub struct KafkaSource {
    name: String,
    consumer: BaseConsumer<SourceContext>,
    schema: Arc<Schema>,
    /// Registry id of `schema` when it is the subject's latest (no pinned `schema`).
    schema_id: Option<u32>,
    decoder: Decoder,
    /// Topics, or `^pattern`; subscribed at the first poll, so building a pipeline (or
    /// `weft validate`) never joins the group and rebalances the hosts running it.
    subscription: Option<Vec<String>>,
}

/// State the rebalance callback shares with the polling code (both run on the polling
/// thread, inside `poll`, so the locks are never contended).
struct SourceContext {
    diagnostics: Diagnostics,
    /// Where a partition assigned for the first time in this process starts; `None` for the
    /// group's committed offset.
    initial: Option<Offset>,
    started: Mutex<HashSet<(String, i32)>>,
    pending: Mutex<Offsets>,
    /// Assignments received (`weft serve` counts rebalances: a chain swap must add none).
    assignments: AtomicU64,
    /// Lag per partition from librdkafka's last statistics.
    lag: Mutex<Vec<PartitionLag>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the maps half-updated in a way that
    // matters more than losing the process, so a poisoned lock is still used.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ClientContext for SourceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.diagnostics.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.error(error, reason);
    }

    /// Keeps the consumer lag of each assigned partition (`statistics.interval.ms`).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag: Vec<PartitionLag> = statistics
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .into_values()
                    // -1 is librdkafka's internal unassigned partition; a lag of -1 is unknown.
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                    .map(move |p| PartitionLag {
                        topic: topic.clone(),
                        partition: p.partition,
                        lag: p.consumer_lag,
                    })
            })
            .collect();
        lag.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        *lock(&self.lag) = lag;
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let label = &self.diagnostics.label;
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assignments.fetch_add(1, Ordering::Relaxed);
                if let Some(offset) = self.initial {
                    let mut started = lock(&self.started);
                    let fresh: Vec<_> = tpl
                        .elements()
                        .iter()
                        .map(|e| (e.topic().to_string(), e.partition()))
                        .filter(|tp| started.insert(tp.clone()))
                        .collect();
                    for (topic, partition) in fresh {
                        if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                            tracing::error!(client = %label, "{topic}/{partition}: cannot set the start offset: {e}");
                        }
                    }
                }
                tracing::info!(client = %label, "assigned {}", partitions(tpl));
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let mut pending = lock(&self.pending);
                let mut dropped = 0;
                for e in tpl.elements() {
                    if let Some(parts) = pending.get_mut(e.topic()) {
                        dropped += usize::from(parts.remove(&e.partition()).is_some());
                    }
                }
                tracing::info!(
                    client = %label,
                    "revoked {}{}",
                    partitions(tpl),
                    if dropped > 0 {
                        format!("; {dropped} partition(s) had events not yet acknowledged: not committed, the next owner reads them again")
                    } else {
                        String::new()
                    }
                );
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(client = %label, "rebalance failed: {other:?}; dropping the assignment");
                lock(&self.pending).clear();
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.diagnostics.error(e, "applying a rebalance");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> String {
    let mut names: Vec<_> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect();
    names.sort();
    if names.is_empty() {
        "no partitions".into()
    } else {
        names.join(", ")
    }
}

/// Default `fetch.wait.max.ms`: how long the broker may hold a fetch that has no data.
pub const FETCH_WAIT_MAX_MS: &str = "10";

/// Consumer settings weft relies on; `[source.properties]` go over them (except the ones
/// the config check refuses).
fn defaults(config: &KafkaSourceConfig) -> Vec<(&'static str, &'static str)> {
    vec![
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("client.id", "weft"),
        // Statistics every 5 s carry each partition's consumer lag (`Source::lag`).
        ("statistics.interval.ms", "5000"),
        // librdkafka's 500 ms let a broker hold a fetch that long, and some (tansu) hold it
        // whole even when data arrives: half a second per hop at low rates. 10 ms costs an
        // idle consumer about 100 small fetches a second per broker.
        ("fetch.wait.max.ms", FETCH_WAIT_MAX_MS),
        (
            "auto.offset.reset",
            match config.start {
                StartPosition::Latest => "latest",
                StartPosition::Earliest | StartPosition::Committed => "earliest",
            },
        ),
    ]
}

impl KafkaSource {
    /// Connects to the group and subscribes; with the Confluent format and no pinned schema,
    /// the reader schema is the latest one of the subject.
    pub fn open(config: &KafkaSourceConfig, max_depth: usize) -> Result<Self> {
        let name = format!("kafka {} (group {})", config.topics_label(), config.group);
        let fail = |reason: String| Error::Source {
            source_name: name.clone(),
            reason,
        };
        let (schema, schema_id, decoder) = match config.format {
            WireFormat::Avro => {
                let path = config
                    .schema
                    .as_ref()
                    .ok_or_else(|| fail("format = \"avro\" needs schema = \"x.avsc\"".into()))?;
                let schema = read_schema(path)?;
                let decoder = Decoder::raw(schema.clone(), max_depth).map_err(fail)?;
                (schema, None, decoder)
            }
            WireFormat::Confluent => {
                let client = registry(config.registry.as_ref()).map_err(fail)?;
                let (schema, id) = match (&config.schema, config.reader_subject()) {
                    (Some(path), _) => (read_schema(path)?, None),
                    (None, Some(subject)) => {
                        let (id, text) =
                            reader_schema(&client, &subject, config.reader_id).map_err(fail)?;
                        let schema = parse_schema(&text).map_err(|e| Error::Schema {
                            origin: format!("subject {subject}"),
                            reason: e.to_string(),
                        })?;
                        (Arc::new(schema), Some(id))
                    }
                    (None, None) => {
                        return Err(fail(
                            "with several topics or a pattern, give schema or subject".into(),
                        ));
                    }
                };
                let decoder =
                    Decoder::confluent(schema.clone(), client, max_depth).map_err(fail)?;
                (schema, id, decoder)
            }
        };
        let mut client = client_config(
            config.brokers.as_deref(),
            &defaults(config),
            &config.properties,
        )
        .map_err(fail)?;
        client.set("group.id", &config.group);
        let context = SourceContext {
            diagnostics: Diagnostics::new(name.clone()),
            initial: match config.start {
                StartPosition::Earliest => Some(Offset::Beginning),
                StartPosition::Latest => Some(Offset::End),
                StartPosition::Committed => None,
            },
            started: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            assignments: AtomicU64::new(0),
            lag: Mutex::new(Vec::new()),
        };
        let consumer: BaseConsumer<SourceContext> = client
            .create_with_context(context)
            .map_err(|e| fail(format!("creating the consumer: {e}")))?;
        let subscription = match &config.topic_pattern {
            // librdkafka treats a subscription starting with `^` as a regular expression.
            Some(pattern) if pattern.starts_with('^') => vec![pattern.clone()],
            Some(pattern) => vec![format!("^{pattern}")],
            None => config.topics.clone(),
        };
        Ok(Self {
            name,
            consumer,
            schema,
            schema_id,
            decoder,
            subscription: Some(subscription),
        })
    }

    fn subscribe(&mut self) -> Result<()> {
        if let Some(subscription) = self.subscription.take() {
            let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
            self.consumer
                .subscribe(&topics)
                .map_err(|e| self.fatal(format!("subscribing to {}: {e}", topics.join(", "))))?;
            tracing::info!(source = %self.name, "subscribed");
        }
        Ok(())
    }

    fn fatal(&self, reason: String) -> Error {
        Error::Source {
            source_name: self.name.clone(),
            reason,
        }
    }
}

impl Source for KafkaSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn lag(&self) -> Vec<PartitionLag> {
        lock(&self.consumer.context().lag).clone()
    }

    fn assignments(&self) -> u64 {
        self.consumer.context().assignments.load(Ordering::Relaxed)
    }

    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn reader_schema_id(&self) -> Option<u32> {
        self.schema_id
    }

    /// Only a source that follows its subject's latest schema switches: a pinned `schema`
    /// file stays what the pipeline reads with.
    fn set_reader(&mut self, id: u32, schema: Arc<Schema>) -> Result<()> {
        if self.schema_id.is_none() {
            return Err(self.fatal(format!(
                "reads with a pinned schema; cannot switch to schema id {id}"
            )));
        }
        // Built before anything changes, so a refusal leaves the source as it was.
        let decoder = self
            .decoder
            .with_reader(schema.clone())
            .map_err(|e| self.fatal(format!("reading with schema id {id}: {e}")))?;
        tracing::info!(source = %self.name, from = ?self.schema_id, to = id, "reader schema switched");
        self.decoder = decoder;
        self.schema = schema;
        self.schema_id = Some(id);
        Ok(())
    }

    /// Never exhausted: runs until the pipeline is stopped. Transient consumer errors (a
    /// broker down, a rebalance) are logged and librdkafka retries; fatal ones end the run.
    ///
    /// Waits up to `linger` for the first message only, then takes what the consumer has
    /// already fetched and returns: the linger bounds a batch's wait, it is not a target, so
    /// at a low rate an event does not sit out the linger before it is processed.
    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        self.subscribe()?;
        let deadline = Instant::now() + linger;
        let mut took = false;
        while batch.len() < max {
            if let Some(fatal) = self.consumer.context().diagnostics.fatal() {
                return Err(self.fatal(format!("fatal consumer error: {fatal}")));
            }
            let wait = if took {
                Duration::ZERO
            } else {
                whole_millis(deadline.saturating_duration_since(Instant::now()))
            };
            let Some(polled) = self.consumer.poll(wait) else {
                break;
            };
            match polled {
                Ok(message) => {
                    took = true;
                    take(&self.name, &mut self.decoder, &message, batch)?;
                    let context = self.consumer.context();
                    let mut pending = lock(&context.pending);
                    let next = message.offset() + 1;
                    match pending.get_mut(message.topic()) {
                        Some(parts) => {
                            let offset = parts.entry(message.partition()).or_insert(next);
                            *offset = (*offset).max(next);
                        }
                        None => {
                            pending.insert(
                                message.topic().to_string(),
                                HashMap::from([(message.partition(), next)]),
                            );
                        }
                    }
                }
                Err(e) if is_fatal(&e) => {
                    return Err(self.fatal(format!("fatal consumer error: {e}")));
                }
                Err(e) => self
                    .consumer
                    .context()
                    .diagnostics
                    .warn(&format!("consumer error (retrying): {e}")),
            }
        }
        Ok(true)
    }

    /// Commits, synchronously, one past the last message handed over on each partition
    /// not revoked since. A failed commit is retried with the next one: until then the group
    /// only restarts further back (duplicates, never loss).
    fn commit(&mut self) -> Result<()> {
        let context = self.consumer.context();
        let pending = std::mem::take(&mut *lock(&context.pending));
        let mut tpl = TopicPartitionList::new();
        for (topic, parts) in &pending {
            for (partition, offset) in parts {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(|e| self.fatal(format!("{topic}/{partition}: {e}")))?;
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(e) if is_fatal(&e) => {
                Err(self.fatal(format!("committing {}: {e}", partitions(&tpl))))
            }
            Err(e) => {
                context.diagnostics.warn(&format!(
                    "committing {} failed (retried with the next batch): {e}",
                    partitions(&tpl)
                ));
                let mut current = lock(&context.pending);
                for (topic, parts) in pending {
                    let entry = current.entry(topic).or_default();
                    for (partition, offset) in parts {
                        let slot = entry.entry(partition).or_insert(offset);
                        *slot = (*slot).max(offset);
                    }
                }
                Ok(())
            }
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // Dropping the consumer leaves the group (its partitions move to the others at once)
        // without committing: everything safe was committed after the last flushed batch.
        tracing::info!(source = %self.name, "closing the consumer and leaving the group");
    }
}

/// The reader schema of a source that follows `subject`: the schema `pinned` names (what a
/// daemon's pipeline last ran with), else — and when that id is gone — the latest.
fn reader_schema(
    client: &crate::registry::client::Client,
    subject: &str,
    pinned: Option<u32>,
) -> std::result::Result<(u32, String), String> {
    if let Some(id) = pinned {
        let what =
            format!("reading schema id {id} (the reader schema of subject {subject:?} last run)");
        match with_retries(&what, || client.schema_by_id(id)) {
            Ok(text) => return Ok((id, text)),
            Err(Fetch::Unavailable(r)) => return Err(format!("{what}: {r}")),
            Err(Fetch::Rejected(e)) => {
                tracing::warn!("{what}: {e}; reading the latest instead");
            }
        }
    }
    let what = format!("reading the latest schema of subject {subject:?}");
    with_retries(&what, || client.latest(subject)).map_err(|e| match e {
        Fetch::Unavailable(r) => format!("{what}: {r}"),
        Fetch::Rejected(e) => format!("{what}: {e}"),
    })
}

/// `wait` rounded up to whole milliseconds: rust-rdkafka's poll turns a sub-millisecond
/// remainder into zero-timeout polls until its deadline, a busy loop.
fn whole_millis(wait: Duration) -> Duration {
    Duration::from_millis(wait.as_micros().div_ceil(1000) as u64)
}

/// Turns one message into an event, or a dead letter when its value cannot be decoded.
fn take(
    name: &str,
    decoder: &mut Decoder,
    message: &BorrowedMessage<'_>,
    batch: &mut Batch,
) -> Result<()> {
    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
    let mut headers = Vec::new();
    if let Some(incoming) = message.headers() {
        headers.reserve(incoming.count() + 3);
        for h in incoming.iter() {
            // Positions from an earlier hop are replaced by this one.
            if !h.key.starts_with(SOURCE_HEADER_PREFIX) {
                headers.push(Header {
                    key: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                });
            }
        }
    }
    for (key, value) in [
        (HEADER_SOURCE_TOPIC, topic.to_string()),
        (HEADER_SOURCE_PARTITION, partition.to_string()),
        (HEADER_SOURCE_OFFSET, offset.to_string()),
    ] {
        headers.push(Header {
            key: key.to_string(),
            value: value.into_bytes(),
        });
    }
    let payload = message.payload();
    let decoded = match payload {
        None => Err(DecodeError::Bad("no value (a tombstone)".into())),
        Some(bytes) => decoder.decode(bytes),
    };
    let mut event = Event {
        key: message.key().map(<[u8]>::to_vec),
        value: Vec::new(),
        headers,
        timestamp: message.timestamp().to_millis(),
    };
    match decoded {
        Ok(value) => {
            event.value = value;
            batch.events.push(event);
        }
        Err(DecodeError::Bad(reason)) => {
            event.value = payload.map(<[u8]>::to_vec).unwrap_or_default();
            batch.dead.push(DeadLetter {
                event,
                stage: None,
                processor: name.to_string(),
                reason: format!("{topic}/{partition}@{offset}: {reason}"),
                schema: None,
            });
        }
        Err(DecodeError::Unavailable(reason)) => {
            return Err(Error::Source {
                source_name: name.to_string(),
                reason: format!("{topic}/{partition}@{offset}: {reason}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(properties: &str) -> KafkaSourceConfig {
        toml::from_str(&format!(
            "topics = [\"t\"]\ngroup = \"g\"\n[properties]\n{properties}"
        ))
        .expect("a Kafka source table")
    }

    fn consumer_config(config: &KafkaSourceConfig) -> rdkafka::ClientConfig {
        client_config(Some("127.0.0.1:1"), &defaults(config), &config.properties)
            .expect("brokers given")
    }

    #[test]
    fn a_fetch_waits_briefly_unless_the_pipeline_says_otherwise() {
        let default = consumer_config(&source(""));
        assert_eq!(default.get("fetch.wait.max.ms"), Some(FETCH_WAIT_MAX_MS));
        let tuned = consumer_config(&source("\"fetch.wait.max.ms\" = 250"));
        assert_eq!(tuned.get("fetch.wait.max.ms"), Some("250"));
    }

    #[test]
    fn waits_are_whole_milliseconds_rounded_up() {
        assert_eq!(whole_millis(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            whole_millis(Duration::from_micros(300)),
            Duration::from_millis(1)
        );
        assert_eq!(
            whole_millis(Duration::from_micros(99_001)),
            Duration::from_millis(100)
        );
        assert_eq!(
            whole_millis(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
