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
use super::decide::{Decision, Pins, Target, decide, describe};
use super::shared::{
    Context, Control, Prepared, Shared, block, followed_source, is_file, lock, processor_name,
    unblock,
};
use crate::config::{PipelineConfig, is_local_plugin, parse_plugin_ref};
use crate::pipeline::{RUN_STACK_BYTES, build_chain};
use crate::registry::client::{Client, ClientError};

/// The pipelines to check: the supervisor's workers. A trait, so the check stands below the
/// supervisor that starts it (as the folder watch does with its callback).
pub(super) trait Workers {
    /// Every pipeline with a worker: its name, status and control channel.
    fn workers(&self) -> Vec<(String, Arc<Mutex<Shared>>, Sender<Control>)>;
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
    pub fn start<S: Workers + Send + Sync + 'static>(
        supervisor: Weak<S>,
        ctx: Arc<Context>,
    ) -> anyhow::Result<Option<Self>> {
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
            // Said once per distinct failure: a registry down for an hour is one line.
            let e = e.to_string();
            let mut s = lock(shared);
            if s.check_error.as_ref() != Some(&e) {
                tracing::warn!(pipeline = %name, "upgrade check: asking the registry failed (retried every interval): {e}");
                s.check_error = Some(e);
            }
            return;
        }
    };
    if lock(shared).check_error.take().is_some() {
        tracing::info!(pipeline = %name, "upgrade check: the registry answers again");
    }
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
    .map_err(|e| refusal(&e, &target.pins.stages))?;
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

/// Why a chain did not build, naming the link: a processor's `configure` refusing its new
/// input (a field its parameters name is gone, its type changed) is that link's failure,
/// whose upstream is the source or the stage before. `pins` are the target's stages.
fn refusal(e: &crate::Error, pins: &[String]) -> String {
    let crate::Error::Plugin(weft_runtime::Error::Configure { processor, reason }) = e else {
        return problems(e).join("; ");
    };
    let position = processor
        .rsplit_once(" (#")
        .and_then(|(_, n)| n.trim_end_matches(')').parse::<usize>().ok());
    let upstream = match position {
        Some(n) if n >= 2 => pins
            .get(n - 2)
            .map_or_else(|| "source".to_string(), |id| format!("{id} (#{})", n - 1)),
        _ => "source".to_string(),
    };
    format!("link {upstream} → {processor}: its configure refused the new input: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configure_refusal_names_its_link_stage_and_field() {
        let stages = ["filter@0.1.0".to_string(), "mask@1.1.0".to_string()];
        let refused = |processor: &str| {
            crate::Error::Plugin(weft_runtime::Error::Configure {
                processor: processor.into(),
                reason: "parameter `condition`: unknown field 'year'".into(),
            })
        };
        assert_eq!(
            refusal(&refused("filter@0.1.0 (#1)"), &stages),
            "link source → filter@0.1.0 (#1): its configure refused the new input: parameter `condition`: unknown field 'year'"
        );
        assert!(
            refusal(&refused("mask@1.1.0 (#2)"), &stages)
                .starts_with("link filter@0.1.0 (#1) → mask@1.1.0 (#2): "),
        );
        // Other errors keep their own words (a typed link names itself already).
        let link = crate::Error::Link {
            link: "source → t@1.0.0 (#1)".into(),
            reason: "field year removed".into(),
        };
        assert_eq!(
            refusal(&link, &stages),
            "link source → t@1.0.0 (#1): field year removed"
        );
    }
}
