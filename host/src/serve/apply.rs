//! Automatic upgrades, the applying half, on the pipeline's own thread: swaps in a chain the
//! upgrade check built (with the source's new reader schema, and the sink re-opened when the
//! output schema changes, which registers it under the sink's subject), then watches a canary
//! window over each stage whose plugin version changed. A version that traps on more than
//! `canary_max_traps` of its first `canary_events` events is swapped back out, excluded for
//! this pipeline and annotated in the registry. Its trapped events went to the dead-letter
//! sink with the trap's reason, as every trap's do: nothing is lost.

use std::sync::Mutex;
use std::time::Instant;

use super::build::problems;
use super::decide::Pins;
use super::history::HistoryKind;
use super::metrics::{Metrics, UpgradeLabels};
use super::shared::{Context, Outcome, Prepared, Shared, block, is_file, lock, unblock};
use crate::config::PipelineConfig;
use crate::pipeline::{Replaced, RunningPipeline, Swap};
use crate::registry::client::{Annotation, Client};

/// The window after an upgrade that changed plugin versions.
pub(super) struct Canary {
    /// Watched stages (0-based) with the `name@version` under watch.
    stages: Vec<(usize, String)>,
    /// Trap counts of each watched stage seen so far, and trapped events counted.
    traps_seen: Vec<u64>,
    trapped: Vec<u64>,
    /// Events each watched stage has received since the upgrade.
    events: Vec<u64>,
    /// What the upgrade replaced: swapped back on a rollback.
    previous: Replaced,
    /// The upgrade re-opened the sink (its output schema changed): a rollback does too.
    sink_reopened: bool,
    from: Pins,
    to: Pins,
    /// The batch size to go back to once the watched stages have seen enough events to
    /// show they do not trap on everything (or when the window ends).
    batch_size: usize,
    small: bool,
}

/// What applying an upgrade needs of the pipeline's worker, which implements it: the worker
/// calls down into this module (its provided methods), never the other way round.
pub(super) trait Pipe {
    fn name(&self) -> &str;
    fn ctx(&self) -> &Context;
    fn shared(&self) -> &Mutex<Shared>;
    fn canary(&self) -> Option<&Canary>;
    fn canary_mut(&mut self) -> &mut Option<Canary>;
    /// The config of the version running (or to run).
    fn config(&self) -> Option<PipelineConfig>;
    /// A new chain runs: its stages, and stats that start again from zero.
    fn chain_changed(&mut self, running: &RunningPipeline);
    /// Runs the change hooks with the pipeline's config.
    fn changed(&self, config: &PipelineConfig);

    /// Swaps in a prepared upgrade between two steps. A refusal (the sink's subject refuses
    /// the new output schema) blocks it; the pipeline runs on as it was.
    fn upgrade(&mut self, running: &mut RunningPipeline, prepared: Prepared) -> Option<Outcome> {
        let (version, now) = {
            let mut shared = lock(self.shared());
            shared.pending = false;
            (shared.version.clone(), shared.pins())
        };
        let Some(version) = version.filter(|v| v.key == prepared.key) else {
            tracing::info!(pipeline = %self.name(), "dropping an upgrade built for an earlier version of the file");
            return None;
        };
        if now != prepared.from {
            tracing::info!(pipeline = %self.name(), "dropping an upgrade built for what ran before ({})", prepared.from);
            return None;
        }
        let config = version.config;
        let paused = Instant::now();
        let what = prepared.describe();
        let stages = prepared.plugin_stages();
        let schema_changed = prepared.reader.is_some();
        let input = match &prepared.reader {
            Some((_, schema)) => schema.clone(),
            None => running.source_schema(),
        };
        let output = prepared.chain.output_schema().unwrap_or(input);
        let sink_reopened = *output != *running.output_schema();
        if sink_reopened && is_file(&config.sink) {
            let reason = format!(
                "{what}: sink: the output schema changes and the sink is a file; a restart starts a new file with it"
            );
            block(
                self.ctx(),
                self.name(),
                self.shared(),
                &prepared.from,
                &prepared.to,
                reason,
            );
            return None;
        }
        let swap = Swap {
            chain: Some((prepared.chain, prepared.digests)),
            reader: prepared.reader,
            sink: sink_reopened.then(|| config.sink.clone()),
            ..Swap::default()
        };
        let replaced = match running.swap(swap) {
            Ok(replaced) => replaced,
            Err(e) => {
                let reason = format!("{what}: {}", problems(&e).join("; "));
                block(
                    self.ctx(),
                    self.name(),
                    self.shared(),
                    &prepared.from,
                    &prepared.to,
                    reason,
                );
                return None;
            }
        };
        // A canary of an earlier upgrade ends here: what it would swap back is gone.
        let batch_size = match self.canary_mut().take() {
            Some(earlier) => earlier.batch_size,
            None => running.batch_size(),
        };
        running.set_batch_size(batch_size);
        let pause = paused.elapsed();
        tracing::info!(pipeline = %self.name(), pause_ms = pause.as_secs_f64() * 1e3, "upgraded: {what}");
        let m = &self.ctx().metrics;
        let labels = Metrics::pipeline(self.name());
        m.swap_pause
            .get_or_create(&labels)
            .observe(pause.as_secs_f64());
        for (kind, changed) in [("plugin", !stages.is_empty()), ("schema", schema_changed)] {
            if changed {
                m.upgrades
                    .get_or_create(&UpgradeLabels {
                        pipeline: self.name().to_string(),
                        kind: kind.into(),
                    })
                    .inc();
            }
        }
        self.chain_changed(running);
        {
            let mut shared = lock(self.shared());
            let to = shared.pins();
            shared.ledger.record(
                HistoryKind::Upgrade,
                &prepared.from.to_string(),
                &to.to_string(),
                &what,
            );
            unblock(self.ctx(), self.name(), &mut shared);
        }
        self.changed(&config);
        let settings = self.ctx().daemon.upgrades;
        if !stages.is_empty() && settings.canary_events > 0 {
            // Small batches while the window lasts: a version that traps on every event
            // fails at most `canary_max_traps + 1` of them before it is swapped back out.
            let small = usize::try_from(settings.canary_max_traps + 1).unwrap_or(usize::MAX);
            running.set_batch_size(batch_size.min(small));
            *self.canary_mut() = Some(Canary {
                stages: stages
                    .iter()
                    .map(|&i| (i, prepared.to.stages.get(i).cloned().unwrap_or_default()))
                    .collect(),
                traps_seen: vec![0; stages.len()],
                trapped: vec![0; stages.len()],
                events: vec![0; stages.len()],
                previous: replaced,
                sink_reopened,
                from: prepared.from,
                to: prepared.to,
                batch_size,
                small: true,
            });
        }
        self.show_canary();
        None
    }

    /// After each step: counts the trapped events of the stages under watch; rolls back
    /// when one has more than `canary_max_traps`, ends the window once each has seen
    /// `canary_events` events.
    fn watch_canary(&mut self, running: &mut RunningPipeline) -> Option<Outcome> {
        let settings = self.ctx().daemon.upgrades;
        let canary = self.canary_mut().as_mut()?;
        let stats = running.summary().stages;
        let mut failed = Vec::new();
        let mut done = true;
        // Small batches only until each watched stage has seen twice what may trap: a stage
        // behind a filter that drops most events must not keep the pipeline slow for long.
        let mut shown = true;
        for (k, (stage, version)) in canary.stages.iter().enumerate() {
            let Some(s) = stats.get(*stage) else { continue };
            shown &= s.events_in >= 2 * (settings.canary_max_traps + 1);
            // A trapping batch call counts one trap before its events are isolated one by
            // one (each poison event another): the events are the traps after the first.
            let new = s.traps.saturating_sub(canary.traps_seen[k]);
            canary.traps_seen[k] = s.traps;
            canary.trapped[k] += new.saturating_sub(1);
            canary.events[k] = s.events_in;
            if canary.trapped[k] > settings.canary_max_traps {
                failed.push((version.clone(), canary.trapped[k], s.events_in));
            }
            done &= s.events_in >= settings.canary_events;
        }
        if shown && canary.small && failed.is_empty() {
            canary.small = false;
            running.set_batch_size(canary.batch_size);
        }
        if !failed.is_empty() {
            return self.roll_back(running, failed);
        }
        if done {
            let canary = self.canary_mut().take()?;
            running.set_batch_size(canary.batch_size);
            tracing::info!(pipeline = %self.name(), "canary passed: {}", canary.to);
        }
        self.show_canary();
        None
    }

    /// Puts the canary window's progress in the status (or clears it).
    fn show_canary(&self) {
        let settings = self.ctx().daemon.upgrades;
        let text = self.canary().map(|c| {
            c.stages
                .iter()
                .enumerate()
                .map(|(k, (stage, version))| {
                    format!(
                        "{version} (stage {}): {} of its first {} events seen, {} trapped (more than {} rolls it back)",
                        stage + 1,
                        c.events[k].min(settings.canary_events),
                        settings.canary_events,
                        c.trapped[k],
                        settings.canary_max_traps
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        lock(self.shared()).canary = text;
    }

    /// Swaps the chain (and reader schema, and sink) the canary kept back in; excludes and
    /// annotates the versions that failed. If even that swap fails, the pipeline is rebuilt,
    /// which resolves without the excluded versions.
    fn roll_back(
        &mut self,
        running: &mut RunningPipeline,
        failed: Vec<(String, u64, u64)>,
    ) -> Option<Outcome> {
        let canary = self.canary_mut().take()?;
        self.show_canary();
        let settings = self.ctx().daemon.upgrades;
        let reason = failed
            .iter()
            .map(|(version, trapped, events)| {
                format!(
                    "{version} trapped on {trapped} of its first {events} events (canary: at most {} of {})",
                    settings.canary_max_traps, settings.canary_events
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let reason = format!(
            "{reason}; its trapped events went to the dead-letter sink with the trap's reason; excluded for this pipeline"
        );
        {
            let mut shared = lock(self.shared());
            for (version, _, _) in &failed {
                shared.ledger.exclude(version);
            }
        }
        running.set_batch_size(canary.batch_size);
        let config = self.config();
        let swap = Swap {
            chain: canary.previous.chain,
            reader: canary.previous.reader,
            sink: match &config {
                Some(c) if canary.sink_reopened => Some(c.sink.clone()),
                _ => None,
            },
            ..Swap::default()
        };
        let swapped = running.swap(swap);
        self.ctx()
            .metrics
            .rollbacks
            .get_or_create(&Metrics::pipeline(self.name()))
            .inc();
        self.annotate(&failed, &reason);
        if let Err(e) = swapped {
            let why = format!("rolling back ({reason}): {e}");
            lock(self.shared()).ledger.record(
                HistoryKind::Rollback,
                &canary.to.to_string(),
                &canary.from.to_string(),
                &format!("{reason}; swapping back failed ({e}): rebuilding"),
            );
            return Some(Outcome::Failed(why));
        }
        tracing::warn!(pipeline = %self.name(), "rolled back: {reason}");
        self.chain_changed(running);
        {
            let mut shared = lock(self.shared());
            let now = shared.pins();
            shared.ledger.record(
                HistoryKind::Rollback,
                &canary.to.to_string(),
                &now.to_string(),
                &reason,
            );
        }
        if let Some(config) = &config {
            self.changed(config);
        }
        None
    }

    /// Tells the registry (`rolled-back`), off this thread: a slow registry must not hold
    /// the stream. A failure is logged; the exclusion here does not depend on it.
    fn annotate(&self, failed: &[(String, u64, u64)], reason: &str) {
        let Some(access) = self.config().and_then(|c| c.settings.registry()) else {
            return;
        };
        let pipeline = self.name().to_string();
        let reason = reason.to_string();
        let versions: Vec<String> = failed.iter().map(|(v, _, _)| v.clone()).collect();
        let spawned = std::thread::Builder::new()
            .name("weft-annotate".into())
            .spawn(move || {
                let client = match Client::new(&access.url, access.token) {
                    Ok(client) => client,
                    Err(e) => return tracing::warn!(%pipeline, "annotating the rollback: {e}"),
                };
                for id in versions {
                    let Some((name, version)) = id.rsplit_once('@') else {
                        continue;
                    };
                    let note = Annotation {
                        kind: Annotation::ROLLED_BACK.into(),
                        pipeline: Some(pipeline.clone()),
                        reason: reason.clone(),
                        at: None,
                    };
                    if let Err(e) = client.annotate(name, version, &note) {
                        tracing::warn!(%pipeline, "annotating {id} as rolled back in the registry: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(pipeline = %self.name(), "annotating the rollback: {e}");
        }
    }
}
