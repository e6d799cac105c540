//! The Kafka source: a consumer group that commits only offsets the sinks acknowledged.
//!
//! Each poll's offsets are kept apart under its ticket (`Source::acknowledge`): the run loop
//! polls batch k while batch k-1 is written but not flushed, then acknowledges k-1 alone.
//! Acknowledged offsets are committed asynchronously every `commit_interval_ms` (1 s by
//! default) instead of once per batch, which at low rates cost a broker round trip per
//! handful of events. They are also committed synchronously:
//! - when partitions are revoked (a host joins or leaves the group), inside the rebalance
//!   callback and before unassigning, so the next owner starts exactly after them. The batch
//!   in flight counts as acknowledged there once the sinks' delivery gates confirm that
//!   every message written was delivered (waiting up to a few seconds; if not, those
//!   partitions' part of it is not committed: duplicates around a fault). The events of
//!   revoked partitions already taken into the batch being built (none is written yet) leave
//!   it, so nobody writes them twice — a planned scale-out or scale-in makes no duplicates;
//! - on close (`RunningPipeline::close`, SIGTERM or Ctrl-C, `weft serve` stopping or
//!   rebuilding a pipeline) and when the source is dropped.
//!
//! What a host killed with SIGKILL (or a machine lost) re-reads: the batch it was writing
//! plus at most the last `commit_interval_ms` of acknowledged events — duplicates, never
//! loss. `commit_interval_ms = 0` commits after every batch.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use weft_runtime::{DeadLetter, Event, Header, Position};
use weft_schema::parse_schema;

use self::offsets::{Offsets, Start, Taken};
use super::wire::{DecodeError, Decoder, Fetch, with_retries};
use super::{Diagnostics, client_config, is_fatal, registry};
use crate::config::{KafkaSourceConfig, StartPosition, WireFormat};
use crate::io::stream::{Batch, DeliveryGate, PartitionLag, Source, Ticket, read_schema};
use crate::{Error, Result};

mod group;
mod offsets;

use self::group::{SourceContext, commit_now, drop_revoked, lock, partition_list, partitions};

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
    /// Taken by the current poll, and where each item of its batch came from.
    taken: Taken,
    /// The ticket of the last poll (the number of polls so far).
    polls: Ticket,
    /// Acknowledged offsets are committed at most this often (on revoke and close at once).
    commit_interval: Duration,
    last_commit: Instant,
}

pub use super::FETCH_WAIT_MAX_MS;

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
        // Latency per hop against idle fetches: why this value, in `super::FETCH_WAIT_MAX_MS`.
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
            offsets: Mutex::new(Offsets::default()),
            revoked: AtomicBool::new(false),
            assignments: AtomicU64::new(0),
            lag: Mutex::new(Vec::new()),
            gates: Mutex::new(Vec::new()),
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
            taken: Taken::default(),
            polls: Ticket::default(),
            commit_interval: Duration::from_millis(config.commit_interval_ms),
            last_commit: Instant::now(),
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

    /// One poll; see `Source::poll`.
    fn take_batch(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        self.subscribe()?;
        let deadline = Instant::now() + linger;
        let start = Start {
            events: batch.events.len(),
            dead: batch.dead.len(),
        };
        self.taken.begin();
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
            let polled = self.consumer.poll(wait);
            drop_revoked(
                self.consumer.context(),
                &mut self.taken,
                &self.name,
                start,
                batch,
            );
            let polled = match polled {
                Some(polled) => polled,
                None if took || wait.is_zero() => break,
                // A rebalance or a commit's answer was served: the first message may
                // still come within the linger.
                None => continue,
            };
            match polled {
                Ok(message) => {
                    took = true;
                    let dead = take(&self.name, &mut self.decoder, &message, batch)?;
                    self.taken
                        .take(message.topic(), message.partition(), message.offset(), dead);
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
    ///
    /// A rebalance runs inside the consumer's poll: the events of partitions it revoked
    /// leave the batch before anything else is taken (the next owner reads them).
    ///
    /// Polling again says the last poll's batch was written: its offsets wait, under its
    /// ticket, for the run loop's acknowledgement (or a revoke's delivery check).
    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        self.taken
            .hand_over(self.polls, &mut lock(&self.consumer.context().offsets));
        self.polls = self.polls.next();
        let polled = self.take_batch(max, linger, batch);
        if polled.is_err() {
            self.taken.discard();
        }
        polled
    }

    /// Polls up to `through` are acknowledged; commits what is acknowledged, asynchronously,
    /// once `commit_interval` has passed since the last commit. A failed commit is retried at
    /// the next interval: until then the group only restarts further back (duplicates, never
    /// loss).
    fn acknowledge(&mut self, through: Ticket) -> Result<()> {
        let context = self.consumer.context();
        {
            let mut offsets = lock(&context.offsets);
            if through >= self.polls {
                // The last poll's batch (the run is ending): written and flushed too.
                self.taken.hand_over(self.polls, &mut offsets);
            }
            offsets.acknowledge(through);
        }
        if self.last_commit.elapsed() < self.commit_interval {
            return Ok(());
        }
        self.last_commit = Instant::now();
        let due = lock(&context.offsets).uncommitted(None);
        if due.is_empty() {
            return Ok(());
        }
        let tpl = partition_list(&due).map_err(|e| self.fatal(e))?;
        match self.consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => Ok(()),
            Err(e) if is_fatal(&e) => {
                Err(self.fatal(format!("committing {}: {e}", partitions(&tpl))))
            }
            Err(e) => {
                context.diagnostics.warn(&format!(
                    "committing {} failed (retried at the next interval): {e}",
                    partitions(&tpl)
                ));
                Ok(())
            }
        }
    }

    fn watch_deliveries(&mut self, gates: Vec<Arc<dyn DeliveryGate>>) {
        *lock(&self.consumer.context().gates) = gates;
    }

    /// Commits what is acknowledged, synchronously; polls after the last acknowledged
    /// ticket are not committed.
    fn close(&mut self) -> Result<()> {
        commit_now(&self.consumer, None)
            .map_err(|e| self.fatal(format!("committing on close: {e}")))
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // A source dropped without `close` (a run that failed, `weft serve` rebuilding a
        // pipeline) still commits what the sinks acknowledged; then dropping the consumer
        // leaves the group and its partitions move to the others at once.
        if let Err(e) = commit_now(&self.consumer, None) {
            tracing::warn!(source = %self.name, "{e}; the next owner reads those events again");
        }
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

/// Turns one message into an event, with where it was read beside it in `batch.positions`,
/// or into a dead letter when its value cannot be decoded (then returns true; a dead letter
/// carries its position as headers).
fn take(
    name: &str,
    decoder: &mut Decoder,
    message: &BorrowedMessage<'_>,
    batch: &mut Batch,
) -> Result<bool> {
    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
    let mut headers = Vec::new();
    if let Some(incoming) = message.headers() {
        headers.reserve(incoming.count());
        for h in incoming.iter() {
            // An earlier hop's position (a dead-letter topic read back) is not this one.
            if !weft_runtime::is_position(h.key) {
                headers.push(Header {
                    key: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                });
            }
        }
    }
    let position = Position {
        topic: shared_topic(&batch.positions, topic),
        partition,
        offset,
    };
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
            push_event(batch, event, position);
            Ok(false)
        }
        Err(DecodeError::Bad(reason)) => {
            event.value = payload.map(<[u8]>::to_vec).unwrap_or_default();
            position.put_on(&mut event.headers);
            batch.dead.push(DeadLetter {
                event,
                stage: None,
                processor: name.to_string(),
                reason: format!("{topic}/{partition}@{offset}: {reason}"),
                schema: None,
            });
            Ok(true)
        }
        Err(DecodeError::Unavailable(reason)) => Err(Error::Source {
            source_name: name.to_string(),
            reason: format!("{topic}/{partition}@{offset}: {reason}"),
        }),
    }
}

/// Appends `event` read at `position`. Events already in the batch without a position
/// (another source of a union polled first) get none, so each position stays beside its event.
fn push_event(batch: &mut Batch, event: Event, position: Position) {
    batch.positions.resize(batch.events.len(), None);
    batch.events.push(event);
    batch.positions.push(Some(position));
}

/// `topic`, shared with the batch's last position when that is the same topic (a consumer
/// hands messages over in runs of one partition): an allocation per run, not per event.
fn shared_topic(positions: &[Option<Position>], topic: &str) -> Arc<str> {
    match positions.last() {
        Some(Some(last)) if *last.topic == *topic => last.topic.clone(),
        _ => Arc::from(topic),
    }
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
        // 5 ms: the measured trade-off between latency on tansu and idle fetches (mod.rs).
        assert_eq!(default.get("fetch.wait.max.ms"), Some("5"));
        let tuned = consumer_config(&source("\"fetch.wait.max.ms\" = 250"));
        assert_eq!(tuned.get("fetch.wait.max.ms"), Some("250"));
    }

    fn at(topic: &Arc<str>, partition: i32, offset: i64) -> Option<Position> {
        Some(Position {
            topic: topic.clone(),
            partition,
            offset,
        })
    }

    #[test]
    fn an_event_after_events_without_a_position_keeps_its_own() {
        let event = |id: u8| Event {
            key: Some(vec![id]),
            value: Vec::new(),
            headers: Vec::new(),
            timestamp: None,
        };
        let orders: Arc<str> = Arc::from("orders");
        let mut batch = Batch::default();
        // A file source of the same union read two events first.
        batch.events.extend([event(1), event(2)]);
        for (id, offset) in [(3, 30), (4, 31)] {
            let position = Position {
                topic: orders.clone(),
                partition: 0,
                offset,
            };
            push_event(&mut batch, event(id), position);
        }
        let offsets: Vec<Option<i64>> = (0..batch.events.len())
            .map(|i| weft_runtime::position_at(&batch.positions, i).map(|p| p.offset))
            .collect();
        assert_eq!(offsets, [None, None, Some(30), Some(31)]);
    }

    #[test]
    fn a_run_of_one_topic_shares_one_name() {
        let orders: Arc<str> = Arc::from("orders");
        let positions = vec![at(&orders, 0, 1)];
        assert!(Arc::ptr_eq(&shared_topic(&positions, "orders"), &orders));
        assert_eq!(&*shared_topic(&positions, "refunds"), "refunds");
        assert_eq!(&*shared_topic(&[], "orders"), "orders");
    }

    #[test]
    fn a_revoke_takes_this_polls_positions_of_the_revoked_partitions_only() {
        let t: Arc<str> = Arc::from("t");
        let u: Arc<str> = Arc::from("u");
        // Two items of an earlier poll (one without a position), then this poll's.
        let mut positions = vec![at(&t, 1, 5), None];
        let mut taken = Taken::default();
        for (topic, partition, offset) in [(&t, 0, 7), (&t, 1, 8), (&u, 1, 9), (&t, 1, 9)] {
            taken.take(topic.as_ref(), partition, offset, false);
            positions.push(at(topic, partition, offset));
        }
        let mut events = vec![(); positions.len()];
        let start = Start { events: 2, dead: 0 };
        taken.drop_revoked(
            &[("t".into(), 1)],
            start,
            &mut events,
            &mut positions,
            &mut Vec::<()>::new(),
        );
        assert_eq!(events.len(), positions.len());
        let left: Vec<_> = positions
            .iter()
            .map(|p| {
                p.as_ref()
                    .map(|p| (p.topic.to_string(), p.partition, p.offset))
            })
            .collect();
        assert_eq!(
            left,
            [
                Some(("t".into(), 1, 5)),
                None,
                Some(("t".into(), 0, 7)),
                Some(("u".into(), 1, 9)),
            ]
        );
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
