//! Automatic upgrades, the checking half: every `[upgrades] interval_ms` one thread resolves
//! each running pipeline's registry references again (`mask@^1`: the newest match neither
//! yanked nor rolled back for that pipeline) and its source subject's latest schema (a
//! Confluent Kafka source without a pinned `schema`). When the answer differs from what runs,
//! it builds the new chain beside the running one, against the new reader schema, checking
//! every link, and hands it to the pipeline's worker, which swaps it in at its next batch
//! boundary (`apply.rs`). A check that fails is a blocked upgrade: the pipeline runs on as it
//! was, its status says why, and the same answer of the registry is not tried again.
//!
//! The building happens here, off the pipeline's thread, so compiling a new plugin version
//! never holds the stream; only the swap does.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use weft_runtime::Chain;
use weft_schema::{check_can_read, parse_schema};

use super::State;
use super::build::{panicked, problems, select, selecting, versions};
use super::history::HistoryKind;
use super::shared::{Context, Control, Shared, lock, processor_name};
use super::supervisor::Supervisor;
use crate::config::{KafkaSourceConfig, parse_plugin_ref};
use crate::config::{PipelineConfig, SinkConfig, SourceConfig, WireFormat, is_local_plugin};
use crate::pipeline::{RUN_STACK_BYTES, build_chain};
use crate::registry::client::{Client, ClientError};

/// What runs, or what the registry resolves to: each stage's `name@version` and the source's
/// reader schema id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pins {
    pub stages: Vec<String>,
    pub reader: Option<u32>,
}

impl std::fmt::Display for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.stages.join(", "))?;
        if let Some(id) = self.reader {
            if !self.stages.is_empty() {
                write!(f, "; ")?;
            }
            write!(f, "reader schema id {id}")?;
        }
        Ok(())
    }
}

/// One difference between what runs and what the registry resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    /// Stage `stage` (0-based) moves to another version.
    Plugin {
        stage: usize,
        from: String,
        to: String,
        why: String,
    },
    /// The source's subject has a new latest schema.
    Schema {
        subject: String,
        from: Option<u32>,
        to: u32,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Plugin {
                stage,
                from,
                to,
                why,
            } => write!(f, "stage {}: {from} → {to} ({why})", stage + 1),
            Change::Schema { subject, from, to } => match from {
                Some(from) => write!(f, "source subject {subject}: schema id {from} → {to}"),
                None => write!(f, "source subject {subject}: schema id {to}"),
            },
        }
    }
}

/// What the registry resolves a pipeline to, with why each stage moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Target {
    pub pins: Pins,
    /// Per stage: why its version is what it is (`newest match of ^1`, `1.2.0 was yanked`).
    pub why: Vec<String>,
    /// The source subject followed, if any.
    pub subject: Option<String>,
}

/// What to do about one pipeline after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// The registry resolves to what runs.
    Current,
    /// The registry resolves to what was already refused: not tried again until it changes.
    StillBlocked,
    /// Build and swap in these changes.
    Upgrade(Vec<Change>),
}

/// Compares what runs with what the registry resolves to. Pure: the whole policy of when an
/// upgrade is attempted.
pub(super) fn decide(running: &Pins, target: &Target, blocked: Option<&Pins>) -> Decision {
    if *running == target.pins {
        return Decision::Current;
    }
    if blocked == Some(&target.pins) {
        return Decision::StillBlocked;
    }
    let mut changes = Vec::new();
    for (stage, (from, to)) in running.stages.iter().zip(&target.pins.stages).enumerate() {
        if from != to {
            changes.push(Change::Plugin {
                stage,
                from: from.clone(),
                to: to.clone(),
                why: target.why.get(stage).cloned().unwrap_or_default(),
            });
        }
    }
    if let Some(to) = target.pins.reader
        && running.reader != Some(to)
    {
        changes.push(Change::Schema {
            subject: target.subject.clone().unwrap_or_default(),
            from: running.reader,
            to,
        });
    }
    Decision::Upgrade(changes)
}

/// A chain built and checked beside the running one, for the worker to swap in.
pub(super) struct Prepared {
    /// The pipeline version it was built for: a reload since makes it stale.
    pub key: String,
    pub from: Pins,
    pub to: Pins,
    pub changes: Vec<Change>,
    pub chain: Chain,
    pub digests: Vec<String>,
    /// The new reader schema with its id, when the source subject moved.
    pub reader: Option<(u32, Arc<Schema>)>,
}

impl Prepared {
    /// Stages whose plugin version changed (a canary watches them).
    pub fn plugin_stages(&self) -> Vec<usize> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Plugin { stage, .. } => Some(*stage),
                Change::Schema { .. } => None,
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        describe(&self.changes)
    }
}

pub(super) fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What `upgrade` in the status says while an upgrade is blocked.
pub(super) const BLOCKED: &str = "upgrade blocked: ";

/// Marks an upgrade to `to` as blocked: status, metric, history. The same target is not
/// tried again (see [`decide`]).
pub(super) fn block(
    ctx: &Context,
    name: &str,
    shared: &Mutex<Shared>,
    from: &Pins,
    to: &Pins,
    reason: String,
) {
    let message = format!("{BLOCKED}{reason}");
    tracing::warn!(pipeline = %name, "{message}");
    let mut s = lock(shared);
    s.upgrade = Some(message);
    s.blocked = Some(to.clone());
    s.ledger.record(
        HistoryKind::Blocked,
        &from.to_string(),
        &to.to_string(),
        &reason,
    );
    drop(s);
    ctx.metrics
        .upgrade_blocked
        .get_or_create(&super::metrics::Metrics::pipeline(name))
        .set(1);
}

/// Clears a blocked upgrade (it was applied, the registry moved back, the file changed).
pub(super) fn unblock(ctx: &Context, name: &str, s: &mut Shared) {
    if s.upgrade.take().is_some() || s.blocked.take().is_some() {
        ctx.metrics
            .upgrade_blocked
            .get_or_create(&super::metrics::Metrics::pipeline(name))
            .set(0);
    }
}

/// The checking thread; dropping it asks it to stop after the check in progress.
pub(super) struct Upgrader {
    stop: Arc<AtomicBool>,
}

impl Drop for Upgrader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Upgrader {
    /// Starts checking every pipeline of `supervisor` each `interval_ms`; `None` when
    /// `[upgrades] enabled = false`.
    pub fn start(supervisor: Weak<Supervisor>, ctx: Arc<Context>) -> anyhow::Result<Option<Self>> {
        let settings = ctx.daemon.upgrades;
        if !settings.enabled {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("weft-upgrades".into())
            // Chains are built here: deep schemas need a run's stack.
            .stack_size(RUN_STACK_BYTES)
            .spawn(move || {
                let interval = settings.interval();
                loop {
                    let next = Instant::now() + interval;
                    while Instant::now() < next {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20).min(interval));
                    }
                    let Some(supervisor) = supervisor.upgrade() else {
                        return;
                    };
                    for (name, shared, control) in supervisor.workers() {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        let checked = catch_unwind(AssertUnwindSafe(|| {
                            check(&ctx, &name, &shared, &control)
                        }));
                        if let Err(panic) = checked {
                            tracing::error!(pipeline = %name, "upgrade check {}", panicked(&*panic));
                        }
                    }
                }
            })?;
        Ok(Some(Self { stop }))
    }
}

/// One pipeline's check.
fn check(ctx: &Context, name: &str, shared: &Mutex<Shared>, control: &Sender<Control>) {
    let (config, key, running, (input, output), blocked, excluded) = {
        let s = lock(shared);
        let (Some(version), Some(input), Some(output)) =
            (&s.version, &s.source_schema, &s.output_schema)
        else {
            return;
        };
        if s.state != State::Running || s.pending {
            return;
        }
        (
            version.config.clone(),
            version.key.clone(),
            s.pins(),
            (input.clone(), output.clone()),
            s.blocked.clone(),
            s.ledger.excluded().clone(),
        )
    };
    if running.stages.len() != config.processors.len() {
        return;
    }
    let (target, reader_text) = match resolve(&config, &running, &excluded) {
        Ok(Some(resolved)) => resolved,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(pipeline = %name, "upgrade check: {e}");
            return;
        }
    };
    match decide(&running, &target, blocked.as_ref()) {
        Decision::Current => unblock(ctx, name, &mut lock(shared)),
        Decision::StillBlocked => {}
        Decision::Upgrade(changes) => {
            let what = describe(&changes);
            tracing::info!(pipeline = %name, "upgrade found: {what}");
            let schemas = (input, output);
            match prepare(
                ctx,
                &config,
                &running,
                &target,
                reader_text,
                schemas,
                &excluded,
            ) {
                Ok((chain, digests, reader)) => {
                    let prepared = Prepared {
                        key,
                        from: running,
                        to: target.pins,
                        changes,
                        chain,
                        digests,
                        reader,
                    };
                    lock(shared).pending = true;
                    if control.send(Control::Upgrade(Box::new(prepared))).is_err() {
                        lock(shared).pending = false;
                    }
                }
                Err(reason) => block(
                    ctx,
                    name,
                    shared,
                    &running,
                    &target.pins,
                    format!("{what}: {reason}"),
                ),
            }
        }
    }
}

/// The Confluent Kafka source that follows its subject's latest schema, if that is the
/// pipeline's only source.
pub(super) fn followed_source(config: &PipelineConfig) -> Option<(&KafkaSourceConfig, String)> {
    match config.sources.as_slice() {
        [SourceConfig::Kafka(k)] if k.format == WireFormat::Confluent && k.schema.is_none() => {
            k.reader_subject().map(|subject| (k, subject))
        }
        _ => None,
    }
}

/// Asks the registry what the pipeline should run. `Ok(None)`: nothing to follow.
fn resolve(
    config: &PipelineConfig,
    running: &Pins,
    excluded: &BTreeSet<String>,
) -> Result<Option<(Target, Option<String>)>, ClientError> {
    let mut target = Target {
        pins: running.clone(),
        why: vec![String::new(); running.stages.len()],
        subject: None,
    };
    let mut followed = false;
    if config
        .processors
        .iter()
        .any(|p| !is_local_plugin(&p.plugin))
        && let Some(access) = config.settings.registry()
    {
        followed = true;
        let client = Client::new(&access.url, access.token)?;
        let mut listed = BTreeMap::new();
        for (i, p) in config.processors.iter().enumerate() {
            if is_local_plugin(&p.plugin) {
                continue;
            }
            let Ok((name, req)) = parse_plugin_ref(&p.plugin) else {
                continue;
            };
            if !listed.contains_key(&name) {
                listed.insert(name.clone(), versions(&client, &name)?);
            }
            let all = &listed[&name];
            let Some(version) = select(&name, &req, all, excluded) else {
                // Nothing eligible (all yanked or rolled back): keep what runs.
                continue;
            };
            let pin = format!("{name}@{version}");
            let now = &running.stages[i];
            let running_version = now.rsplit_once('@').map(|(_, v)| v.to_string());
            target.why[i] = if excluded.contains(now) {
                format!("{now} was rolled back for this pipeline")
            } else if all
                .iter()
                .any(|(v, yanked)| *yanked && Some(v.to_string()) == running_version)
            {
                format!("{now} was yanked; newest match of {req}")
            } else {
                format!("newest match of {req}")
            };
            target.pins.stages[i] = pin;
        }
    }
    let mut reader_text = None;
    if running.reader.is_some()
        && let Some((source, subject)) = followed_source(config)
        && let Some(access) = &source.registry
    {
        followed = true;
        let client = Client::new(&access.url, access.token.clone())?;
        let (id, text) = client.latest(&subject)?;
        target.pins.reader = Some(id);
        target.subject = Some(subject);
        reader_text = Some(text);
    }
    Ok(followed.then_some((target, reader_text)))
}

type Built = (Chain, Vec<String>, Option<(u32, Arc<Schema>)>);

/// Builds the target's chain against its reader schema, checking every link.
fn prepare(
    ctx: &Context,
    config: &PipelineConfig,
    running: &Pins,
    target: &Target,
    reader_text: Option<String>,
    (current, current_output): (Arc<Schema>, Arc<Schema>),
    excluded: &BTreeSet<String>,
) -> Result<Built, String> {
    let mut reader = None;
    let mut input = current.clone();
    if let (Some(id), Some(text)) = (target.pins.reader, reader_text)
        && running.reader != Some(id)
    {
        let schema =
            parse_schema(&text).map_err(|e| format!("schema id {id} does not parse: {e}"))?;
        // Events already in the topic were written with the old schema: the new reader
        // must read them, or they would become dead letters.
        check_can_read(&current, &schema).map_err(|e| {
            format!(
                "link source → reader: schema id {id} cannot read events written with the running reader schema (id {}): {e}",
                running.reader.map_or("?".into(), |r| r.to_string())
            )
        })?;
        let schema = Arc::new(schema);
        input = schema.clone();
        reader = Some((id, schema));
    }
    let mut pins = BTreeMap::new();
    for (p, pin) in config.processors.iter().zip(&target.pins.stages) {
        if !is_local_plugin(&p.plugin)
            && let Some((_, version)) = pin.rsplit_once('@')
        {
            pins.insert(p.plugin.clone(), version.to_string());
        }
    }
    let resolver: Box<dyn crate::pipeline::PluginResolver> = if pins.is_empty() {
        Box::new(crate::pipeline::LocalOnly)
    } else {
        Box::new(selecting(ctx, config, excluded)?.pinned(pins))
    };
    let built = catch_unwind(AssertUnwindSafe(|| {
        build_chain(config, &ctx.runtime, resolver.as_ref(), input.clone())
    }))
    .map_err(|panic| panicked(&*panic))?
    .map_err(|e| problems(&e).join("; "))?;
    let (chain, digests) = built;
    let ids: Vec<String> = chain
        .stage_ids()
        .iter()
        .map(|id| processor_name(id))
        .collect();
    let expected: Vec<&String> = target.pins.stages.iter().collect();
    for (i, (id, p)) in ids.iter().zip(&config.processors).enumerate() {
        if !is_local_plugin(&p.plugin) && id != expected[i] {
            return Err(format!(
                "stage {}: the registry served {id} for {} (expected {})",
                i + 1,
                p.plugin,
                expected[i]
            ));
        }
    }
    let output = chain.output_schema().unwrap_or(input);
    if is_file(&config.sink) && *output != *current_output {
        // Reopening the file would truncate what it holds.
        return Err(
            "sink: the output schema changes and the sink is a file; a restart (POST /v1/pipelines/{name}/restart) starts a new file with it"
                .into(),
        );
    }
    Ok((chain, digests, reader))
}

fn is_file(sink: &SinkConfig) -> bool {
    matches!(sink, SinkConfig::Jsonl { .. } | SinkConfig::AvroFile { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(stages: &[&str], reader: Option<u32>) -> Pins {
        Pins {
            stages: stages.iter().map(|s| s.to_string()).collect(),
            reader,
        }
    }

    fn target(stages: &[&str], reader: Option<u32>) -> Target {
        Target {
            pins: pins(stages, reader),
            why: vec!["newest match of ^1".into(); stages.len()],
            subject: Some("orders-value".into()),
        }
    }

    #[test]
    fn what_runs_is_current() {
        let running = pins(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        let t = target(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        assert_eq!(decide(&running, &t, None), Decision::Current);
        // Even when something else was blocked before: the registry moved back.
        let blocked = pins(&["filter@0.1.0", "mask@1.1.0"], Some(4));
        assert_eq!(decide(&running, &t, Some(&blocked)), Decision::Current);
    }

    #[test]
    fn a_new_version_and_a_new_schema_are_one_upgrade_naming_both() {
        let running = pins(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        let t = target(&["filter@0.1.0", "mask@1.2.0"], Some(5));
        let Decision::Upgrade(changes) = decide(&running, &t, None) else {
            panic!("an upgrade");
        };
        assert_eq!(
            describe(&changes),
            "stage 2: mask@1.1.0 → mask@1.2.0 (newest match of ^1); source subject orders-value: schema id 3 → 5"
        );
    }

    #[test]
    fn a_refused_target_is_not_tried_again_until_the_registry_changes() {
        let running = pins(&["filter@0.1.0"], Some(3));
        let refused = target(&["filter@0.1.0"], Some(5));
        assert_eq!(
            decide(&running, &refused, Some(&refused.pins)),
            Decision::StillBlocked
        );
        // A newer schema (or plugin) is a new target: tried.
        let newer = target(&["filter@0.1.0"], Some(6));
        assert!(matches!(
            decide(&running, &newer, Some(&refused.pins)),
            Decision::Upgrade(_)
        ));
    }

    #[test]
    fn moving_back_from_a_yanked_version_is_an_upgrade_too() {
        let running = pins(&["mask@1.2.0"], None);
        let mut t = target(&["mask@1.1.0"], None);
        t.why = vec!["mask@1.2.0 was yanked; newest match of ^1".into()];
        let Decision::Upgrade(changes) = decide(&running, &t, None) else {
            panic!("an upgrade");
        };
        assert_eq!(
            changes,
            [Change::Plugin {
                stage: 0,
                from: "mask@1.2.0".into(),
                to: "mask@1.1.0".into(),
                why: "mask@1.2.0 was yanked; newest match of ^1".into(),
            }]
        );
    }

    #[test]
    fn pins_read_as_a_line() {
        assert_eq!(
            pins(&["filter@0.1.0", "mask@1.1.0"], Some(7)).to_string(),
            "filter@0.1.0, mask@1.1.0; reader schema id 7"
        );
        assert_eq!(pins(&[], Some(7)).to_string(), "reader schema id 7");
    }
}
