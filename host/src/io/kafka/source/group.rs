//! The Kafka source's side of the consumer group: the state librdkafka's callbacks share with
//! the polling code, the rebalance callback (commit what was delivered for revoked
//! partitions, then give them up) and the synchronous commit it and `close` use.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::offsets::{Offsets, Partition, Start, Taken};
use crate::io::kafka::Diagnostics;
use crate::io::stream::{Batch, DeliveryGate, PartitionLag};

/// Longest a revoke waits for the batch in flight to be delivered before it gives the
/// partitions up without committing that batch (its next owner then reads it again). The
/// whole group waits for this member meanwhile; a healthy broker answers in milliseconds.
pub(super) const REVOKE_DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// State the rebalance callback shares with the polling code (both run on the polling
/// thread, inside `poll`, so the locks are never contended).
pub(super) struct SourceContext {
    pub diagnostics: Diagnostics,
    /// Where a partition assigned for the first time in this process starts; `None` for the
    /// group's committed offset.
    pub initial: Option<Offset>,
    pub started: Mutex<HashSet<(String, i32)>>,
    pub offsets: Mutex<Offsets>,
    /// Set by a revoke, so the polling code looks at `offsets` only after one.
    pub revoked: AtomicBool,
    /// Assignments received (`weft serve` counts rebalances: a chain swap must add none).
    pub assignments: AtomicU64,
    /// Lag per partition from librdkafka's last statistics.
    pub lag: Mutex<Vec<PartitionLag>>,
    /// The sinks' delivery gates (`Source::watch_deliveries`): a revoke waits on them.
    pub gates: Mutex<Vec<Arc<dyn DeliveryGate>>>,
}

impl SourceContext {
    /// Whether every sink delivered everything written to it, waiting at most
    /// [`REVOKE_DELIVERY_WAIT`] in all.
    fn delivered(&self) -> bool {
        let gates = lock(&self.gates).clone();
        let deadline = Instant::now() + REVOKE_DELIVERY_WAIT;
        gates
            .iter()
            .all(|gate| gate.wait_delivered(deadline.saturating_duration_since(Instant::now())))
    }

    /// The batch in flight (written, not flushed) may hold events of `revoked` partitions:
    /// once the sinks delivered it, its offsets of those partitions are acknowledged, so the
    /// commit on revoke covers them and the next owner does not read them again.
    fn acknowledge_delivered(&self, revoked: &[Partition]) {
        if !lock(&self.offsets).written_on(revoked) {
            return;
        }
        let waited = Instant::now();
        if self.delivered() {
            lock(&self.offsets).acknowledge_delivered(revoked);
            tracing::info!(
                client = %self.diagnostics.label,
                "the batch in flight was delivered (waited {:.1} ms): committing it with the revoked partitions",
                waited.elapsed().as_secs_f64() * 1e3
            );
        } else {
            self.diagnostics.warn(&format!(
                "the batch in flight was not delivered within {:.1}s of a revoke; its events of revoked partitions are not committed, and their next owner reads them again",
                waited.elapsed().as_secs_f64()
            ));
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
    /// An asynchronous commit's answer (served by `poll`): confirmed offsets are not sent
    /// again; a failed commit is retried at the next interval, as its offsets stay due.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                let mut tracked = lock(&self.offsets);
                for e in offsets.elements() {
                    if let (Offset::Offset(offset), Ok(())) = (e.offset(), e.error()) {
                        tracked.confirm(&(e.topic().to_string(), e.partition()), offset);
                    }
                }
            }
            Err(e) => self.diagnostics.warn(&format!(
                "committing {} failed (retried at the next interval): {e}",
                partitions(offsets)
            )),
        }
    }

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
                let revoked: Vec<Partition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                // Before unassigning, so the next owner starts right after what this host
                // wrote; the batch being built drops the rest (see `Source::poll`).
                self.acknowledge_delivered(&revoked);
                if let Err(e) = commit_now(consumer, Some(&revoked)) {
                    self.diagnostics.warn(&format!(
                        "committing the acknowledged offsets of revoked partitions failed: {e}; the next owner reads them again"
                    ));
                }
                lock(&self.offsets).revoke(&revoked);
                self.revoked.store(true, Ordering::Relaxed);
                tracing::info!(client = %label, "revoked {}", partitions(tpl));
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(client = %label, "rebalance failed: {other:?}; dropping the assignment");
                let held: Vec<Partition> = consumer
                    .assignment()
                    .map(|tpl| {
                        tpl.elements()
                            .iter()
                            .map(|e| (e.topic().to_string(), e.partition()))
                            .collect()
                    })
                    .unwrap_or_default();
                lock(&self.offsets).revoke(&held);
                self.revoked.store(true, Ordering::Relaxed);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.diagnostics.error(e, "applying a rebalance");
        }
    }
}

pub(super) fn partitions(tpl: &TopicPartitionList) -> String {
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

/// Drops the items of partitions revoked since the last look from the batch being built
/// (those `poll` appended after `start`) and forgets what was taken from them.
pub(super) fn drop_revoked(
    context: &SourceContext,
    taken: &mut Taken,
    name: &str,
    start: Start,
    batch: &mut Batch,
) {
    if !context.revoked.swap(false, Ordering::Relaxed) {
        return;
    }
    let revoked = lock(&context.offsets).take_revoked();
    let dropped = taken.drop_revoked(
        &revoked,
        start,
        &mut batch.events,
        &mut batch.positions,
        &mut batch.dead,
    );
    if dropped > 0 {
        tracing::info!(
            source = %name,
            "{dropped} event(s) of revoked partitions left the batch unwritten: their next owner reads them"
        );
    }
}

/// Commits the acknowledged offsets not yet confirmed, on `only` these partitions (all when
/// `None`), synchronously: on revoke and on close, where what follows (another owner, a
/// restart) must find them.
pub(super) fn commit_now(
    consumer: &BaseConsumer<SourceContext>,
    only: Option<&[Partition]>,
) -> std::result::Result<(), String> {
    let context = consumer.context();
    let due = lock(&context.offsets).uncommitted(only);
    if due.is_empty() {
        return Ok(());
    }
    let tpl = partition_list(&due)?;
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| format!("committing {}: {e}", partitions(&tpl)))?;
    let mut offsets = lock(&context.offsets);
    for (partition, offset) in &due {
        offsets.confirm(partition, *offset);
    }
    Ok(())
}

pub(super) fn partition_list(
    due: &[(Partition, i64)],
) -> std::result::Result<TopicPartitionList, String> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in due {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| format!("{topic}/{partition}: {e}"))?;
    }
    Ok(tpl)
}
