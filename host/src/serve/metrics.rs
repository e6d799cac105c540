//! The daemon's Prometheus metrics (prometheus-client): one registry, one family per metric,
//! labelled by pipeline (and stage). Workers feed them after every step from the step's counts
//! and the chain's stage stats; the status API reads the same numbers from the workers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    pub pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub pipeline: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub pipeline: String,
    /// 1-based position in the chain.
    pub stage: String,
    /// `name@version`.
    pub processor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    pub pipeline: String,
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpgradeLabels {
    pub pipeline: String,
    /// `plugin` (a stage's version changed) or `schema` (the source's reader schema).
    pub kind: String,
}

type HistogramFamily = Family<PipelineLabels, Histogram, fn() -> Histogram>;

/// Every family the daemon exports. Names are the contract's (`_total` is added to counters
/// by the encoder).
pub struct Metrics {
    registry: Registry,
    pub state: Family<StateLabels, Gauge>,
    pub restarts: Family<PipelineLabels, Counter>,
    pub events_in: Family<PipelineLabels, Counter>,
    pub events_out: Family<PipelineLabels, Counter>,
    pub dead_letters: Family<PipelineLabels, Counter>,
    pub commits: Family<PipelineLabels, Counter>,
    pub swaps: Family<PipelineLabels, Counter>,
    pub rebalances: Family<PipelineLabels, Counter>,
    pub batch_duration: HistogramFamily,
    pub swap_pause: HistogramFamily,
    pub stage_in: Family<StageLabels, Counter>,
    pub stage_out: Family<StageLabels, Counter>,
    pub stage_rejected: Family<StageLabels, Counter>,
    pub stage_traps: Family<StageLabels, Counter>,
    pub stage_busy: Family<StageLabels, Counter<f64, AtomicU64>>,
    pub lag: Family<LagLabels, Gauge>,
    pub upgrade_blocked: Family<PipelineLabels, Gauge>,
    pub upgrades: Family<UpgradeLabels, Counter>,
    pub rollbacks: Family<PipelineLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Batch durations from 100 µs to about 100 s.
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            state: Family::default(),
            restarts: Family::default(),
            events_in: Family::default(),
            events_out: Family::default(),
            dead_letters: Family::default(),
            commits: Family::default(),
            swaps: Family::default(),
            rebalances: Family::default(),
            batch_duration: Family::new_with_constructor(batch_histogram as fn() -> Histogram),
            swap_pause: Family::new_with_constructor(batch_histogram as fn() -> Histogram),
            stage_in: Family::default(),
            stage_out: Family::default(),
            stage_rejected: Family::default(),
            stage_traps: Family::default(),
            stage_busy: Family::default(),
            lag: Family::default(),
            upgrade_blocked: Family::default(),
            upgrades: Family::default(),
            rollbacks: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "weft_pipeline_state",
            "1 for the state a pipeline is in, 0 for the others",
            m.state.clone(),
        );
        r.register(
            "weft_pipeline_restarts",
            "Builds of a pipeline after its first: retries after a failure, restarts on request",
            m.restarts.clone(),
        );
        r.register(
            "weft_pipeline_events_in",
            "Events read from the source (including undecodable ones)",
            m.events_in.clone(),
        );
        r.register(
            "weft_pipeline_events_out",
            "Events written to the sink",
            m.events_out.clone(),
        );
        r.register(
            "weft_pipeline_dead_letters",
            "Events sent to the dead-letter sink",
            m.dead_letters.clone(),
        );
        r.register(
            "weft_pipeline_commits",
            "Source commits (one per batch, after the sink acknowledged it)",
            m.commits.clone(),
        );
        r.register(
            "weft_pipeline_swaps",
            "New versions of a pipeline applied at a batch boundary without a restart",
            m.swaps.clone(),
        );
        r.register(
            "weft_kafka_rebalances",
            "Partition assignments a Kafka source received (a swap adds none)",
            m.rebalances.clone(),
        );
        r.register(
            "weft_pipeline_batch_duration_seconds",
            "Time to poll, process, write, flush and commit one batch",
            m.batch_duration.clone(),
        );
        r.register(
            "weft_pipeline_swap_pause_seconds",
            "How long a swap held the stream between two batches: building the new chain and \
             switching to it (and its sinks)",
            m.swap_pause.clone(),
        );
        r.register(
            "weft_stage_events_in",
            "Events a processor received",
            m.stage_in.clone(),
        );
        r.register(
            "weft_stage_events_out",
            "Events a processor emitted",
            m.stage_out.clone(),
        );
        r.register(
            "weft_stage_rejected",
            "Events a processor rejected",
            m.stage_rejected.clone(),
        );
        r.register(
            "weft_stage_traps",
            "Traps of a processor (each one isolated its poison event)",
            m.stage_traps.clone(),
        );
        r.register(
            "weft_stage_busy_seconds",
            "Time spent in a processor's calls",
            m.stage_busy.clone(),
        );
        r.register(
            "weft_kafka_consumer_lag",
            "Messages between a partition's committed position and its end",
            m.lag.clone(),
        );
        r.register(
            "weft_pipeline_upgrade_blocked",
            "1 while a pipeline's automatic upgrade is blocked (it runs on as it was; the \
             status's `upgrade` says why), else 0",
            m.upgrade_blocked.clone(),
        );
        r.register(
            "weft_pipeline_upgrades",
            "Automatic upgrades applied, by what changed: kind=plugin (a stage's version), \
             kind=schema (the source's reader schema); an upgrade of both counts in both",
            m.upgrades.clone(),
        );
        r.register(
            "weft_pipeline_rollbacks",
            "Plugin versions rolled back after trapping in their canary window",
            m.rollbacks.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the state gauges of `pipeline`: 1 for `state`, 0 for the others.
    pub fn set_state(&self, pipeline: &str, state: State) {
        for s in State::ALL {
            self.state
                .get_or_create(&StateLabels {
                    pipeline: pipeline.to_string(),
                    state: s.as_str().to_string(),
                })
                .set(i64::from(s == state));
        }
    }

    pub fn pipeline(pipeline: &str) -> PipelineLabels {
        PipelineLabels {
            pipeline: pipeline.to_string(),
        }
    }

    /// The Prometheus text exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_contract_suffixes_and_states_are_one_hot() {
        let m = Metrics::new();
        m.set_state("orders", State::Running);
        m.events_in
            .get_or_create(&Metrics::pipeline("orders"))
            .inc_by(3);
        m.batch_duration
            .get_or_create(&Metrics::pipeline("orders"))
            .observe(0.002);
        let text = m.encode();
        assert!(
            text.contains("weft_pipeline_events_in_total{pipeline=\"orders\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("weft_pipeline_state{pipeline=\"orders\",state=\"RUNNING\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("weft_pipeline_state{pipeline=\"orders\",state=\"FAILED\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("weft_pipeline_batch_duration_seconds_count{pipeline=\"orders\"} 1"),
            "{text}"
        );
    }
}
