//! The Kafka variants, against a tansu broker started for the run (in-memory storage):
//!
//! - `unfused-kafka`: one `weft run` process per processor, topics between them — the
//!   design weft's fusion replaces;
//! - `fused-kafka`: one `weft run` process with the whole chain, Kafka in and out;
//! - `passthrough-kafka`: one `weft run` process, no processor: weft's own Kafka cost;
//! - `relay-kafka`: no weft, a hand-written consume → produce relay (`relay.rs`): the two
//!   hops any pipeline pays, with nothing else in them;
//! - `floor-kafka`: no weft at all, the bench's producer to its reader through the broker:
//!   the latency any pipeline starts from.
//!
//! Each variant gets fresh topics (3 partitions) and bare Avro datums (`format = "avro"`, no
//! registry). Its processes are started, a warm-up of events is sent through until it comes
//! out at the end (so every consumer group has joined), then the timed events are produced
//! and the clock stops when the last expected event reaches the output topic (several runs,
//! all through the same processes). Then, for each steady rate asked for and at the variant's
//! own median throughput ("saturation"), events stamped with their send time are produced at
//! that rate and timed as they come out. The floor runs the same phases with no weft between
//! the bench's producer and reader. Between the warm-up and the timed events, nothing is
//! produced for a while: the idle cost. Peak RSS of each process is sampled from
//! `/proc/<pid>/status` while the processes run; CPU time of every `weft run` (or relay)
//! process and of the broker is read from `/proc/<pid>/stat` around each phase.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use crate::broker::{Broker, PARTITIONS};
use crate::clients::{Counter, EventProducer};
use crate::measure::{
    CpuFigures, IdleFigures, LatencyFigures, SaturationRun, Spread, VariantResult, cpu_seconds_of,
};
use crate::native::{self, NativeChain};
use crate::processes::{Launch, Processes, RssSampler, batch_counts, events_per_batch, log_tails};
use crate::progress;
use crate::relay::RelaySpec;
use crate::stages::{STAGES, StageDef, plugin_path};
use crate::workload::{DISTINCT, TITLE_SCHEMA, Workload};

/// Events sent through before timing, so that every consumer has joined its group.
const WARM_UP: u64 = 2_000;
/// Longest wait for the events of one phase to come out.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// `weft` beside this binary (both are built into the same target folder).
pub fn default_weft_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    Ok(exe.with_file_name("weft"))
}

/// What to run over Kafka besides the timed events.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Only these variants (`fused`, `unfused`, `passthrough`, `relay`, `floor`); all when
    /// empty.
    pub only: Vec<String>,
    /// Timed runs at saturation per variant (their median and range are reported).
    pub runs: usize,
    /// Steady rates (events/s) at which latency is measured after the timed events.
    pub rates: Vec<u64>,
    /// Seconds of latency at the variant's own median throughput at saturation (0: none).
    pub saturation_seconds: u64,
    /// How long each steady rate is produced.
    pub rate_seconds: u64,
    /// Seconds with nothing produced after the warm-up, for the idle cost (0: none).
    pub idle_seconds: u64,
    /// `[source.properties]` and `[sink.properties]` of every pipeline, to try settings.
    pub source_properties: Vec<(String, String)>,
    pub sink_properties: Vec<(String, String)>,
}

impl KafkaOptions {
    fn wants(&self, variant: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| variant.trim_end_matches("-kafka") == o.trim_end_matches("-kafka"))
    }
}

/// One Kafka variant: its processes (one `weft run` per pipeline, or the relay; none for
/// the floor) and its topics.
struct Plan {
    variant: &'static str,
    stages: usize,
    input: String,
    output: String,
    launches: Vec<Launch>,
}

/// Writes a pipeline file into `dir`: `topic_in` → `stages` (components in `plugins`) →
/// `topic_out`, bare Avro both ways.
fn pipeline(
    (dir, plugins): (&Path, &Path),
    name: &str,
    broker: &str,
    (topic_in, schema): (&str, &Path),
    stages: &[StageDef],
    topic_out: &str,
    options: &KafkaOptions,
) -> anyhow::Result<PathBuf> {
    let mut toml = format!(
        "[pipeline]\nname = {name:?}\n\n[[source]]\nkind = \"kafka\"\nbrokers = {broker:?}\n\
         topics = [{topic_in:?}]\ngroup = {name:?}\nstart = \"earliest\"\nformat = \"avro\"\n\
         schema = {:?}\n\n",
        schema.display().to_string()
    );
    for stage in stages {
        let path = plugin_path(plugins, stage.plugin)?;
        let params: Vec<String> = stage
            .params
            .iter()
            .map(|(k, v)| format!("{k} = {v:?}"))
            .collect();
        let _ = write!(
            toml,
            "[[processor]]\nplugin = {:?}\nparams = {{ {} }}\n\n",
            path.display().to_string(),
            params.join(", ")
        );
    }
    let _ = write!(
        toml,
        "[sink]\nkind = \"kafka\"\nbrokers = {broker:?}\ntopic = {topic_out:?}\nformat = \"avro\"\n"
    );
    for (table, properties) in [
        ("sink", &options.sink_properties),
        ("source", &options.source_properties),
    ] {
        if !properties.is_empty() {
            let _ = writeln!(toml, "\n[{table}.properties]");
            for (key, value) in properties {
                let _ = writeln!(toml, "{key:?} = {value:?}");
            }
        }
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs the Kafka variants; a failure to start the broker fails them all with the reason.
pub fn run_all(
    weft: &Path,
    plugins: &Path,
    events: u64,
    options: &KafkaOptions,
) -> anyhow::Result<Vec<VariantResult>> {
    anyhow::ensure!(
        weft.is_file(),
        "{} is missing: build it with cargo build --release -p weft-host",
        weft.display()
    );
    let dir = tempfile::tempdir().context("creating a work dir")?;
    // With WEFT_BENCH_KEEP set, pipelines, schemas and each process's log (progress lines,
    // summary) stay for a look.
    let (dir, _cleanup) = if std::env::var_os("WEFT_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("Kafka work dir kept: {}", kept.display());
        (kept, None)
    } else {
        (dir.path().to_path_buf(), Some(dir))
    };
    let broker = Broker::start(&dir.as_path().join("tansu.log"))?;
    let address = broker.address();

    // The schema of each topic of the unfused chain: what the stage before it emits.
    let native = NativeChain::build(TITLE_SCHEMA)?;
    let mut schemas = vec![dir.as_path().join("schema-0.avsc")];
    std::fs::write(&schemas[0], TITLE_SCHEMA)?;
    for (i, json) in native.output_schemas().iter().enumerate() {
        let path = dir.as_path().join(format!("schema-{}.avsc", i + 1));
        std::fs::write(&path, json)?;
        schemas.push(path);
    }

    let mut plans = Vec::new();
    let unfused_topics: Vec<String> = (0..=STAGES.len()).map(|i| format!("unfused-{i}")).collect();
    let mut unfused = Vec::new();
    for (i, stage) in STAGES.iter().enumerate() {
        unfused.push(pipeline(
            (dir.as_path(), plugins),
            &format!("unfused-{}", stage.plugin),
            &address,
            (&unfused_topics[i], &schemas[i]),
            std::slice::from_ref(stage),
            &unfused_topics[i + 1],
            options,
        )?);
    }
    plans.push(Plan {
        variant: "unfused-kafka",
        stages: STAGES.len(),
        input: unfused_topics[0].clone(),
        output: unfused_topics[STAGES.len()].clone(),
        launches: unfused.into_iter().map(Launch::Weft).collect(),
    });
    plans.push(Plan {
        variant: "fused-kafka",
        stages: STAGES.len(),
        input: "fused-in".into(),
        output: "fused-out".into(),
        launches: vec![Launch::Weft(pipeline(
            (dir.as_path(), plugins),
            "fused",
            &address,
            ("fused-in", &schemas[0]),
            STAGES,
            "fused-out",
            options,
        )?)],
    });
    plans.push(Plan {
        variant: "passthrough-kafka",
        stages: 0,
        input: "passthrough-in".into(),
        output: "passthrough-out".into(),
        launches: vec![Launch::Weft(pipeline(
            (dir.as_path(), plugins),
            "passthrough",
            &address,
            ("passthrough-in", &schemas[0]),
            &[],
            "passthrough-out",
            options,
        )?)],
    });
    plans.push(Plan {
        variant: "relay-kafka",
        stages: 0,
        input: "relay-in".into(),
        output: "relay-out".into(),
        launches: vec![Launch::Relay(
            RelaySpec {
                broker: address.clone(),
                from: "relay-in".into(),
                to: "relay-out".into(),
                group: "relay".into(),
                source_properties: options.source_properties.clone(),
                sink_properties: options.sink_properties.clone(),
            },
            dir.as_path().join("relay.log"),
        )],
    });
    plans.push(Plan {
        variant: "floor-kafka",
        stages: 0,
        input: "floor".into(),
        output: "floor".into(),
        launches: Vec::new(),
    });
    plans.retain(|p| options.wants(p.variant));
    for topic in unfused_topics.iter().map(String::as_str).chain([
        "fused-in",
        "fused-out",
        "passthrough-in",
        "passthrough-out",
        "relay-in",
        "relay-out",
        "floor",
    ]) {
        broker.create_topic(topic)?;
    }

    let workload = Workload::generate(DISTINCT)?;
    let mut chain = NativeChain::build(TITLE_SCHEMA)?;
    let mut results = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        progress(format_args!(
            "over Kafka {}/{}: {}",
            i + 1,
            plans.len(),
            plan.variant
        ));
        let mut expected = |n: u64| -> anyhow::Result<u64> {
            if plan.stages == 0 {
                Ok(n)
            } else {
                expected_output(&mut chain, &workload, n)
            }
        };
        let run = Run {
            weft,
            broker: &broker,
            workload: &workload,
            events,
            options,
        };
        let result = run_plan(plan, &run, &mut expected).unwrap_or_else(|e| VariantResult {
            variant: plan.variant.into(),
            batch: 1024,
            stages: plan.stages,
            note: Some(format!("failed: {e:#}{}", log_tails(&plan.launches))),
            ..VariantResult::default()
        });
        results.push(result);
    }
    Ok(results)
}

/// How many of the workload's first `n` events come out of the chain (each phase produces
/// from the workload's start).
fn expected_output(chain: &mut NativeChain, workload: &Workload, n: u64) -> anyhow::Result<u64> {
    let mut source = workload.source(n);
    let mut out = 0;
    while source.remaining() > 0 {
        out += chain.process(source.next_batch(4096, native::event))?.len() as u64;
    }
    Ok(out)
}

/// What every plan runs with.
struct Run<'a> {
    weft: &'a Path,
    broker: &'a Broker,
    workload: &'a Workload,
    events: u64,
    options: &'a KafkaOptions,
}

/// CPU seconds so far of the variant's processes together, and of the broker.
fn cpu_now(processes: &Processes, broker: &Broker) -> (f64, f64) {
    (
        processes.cpu_seconds(),
        cpu_seconds_of(broker.pid()).unwrap_or(0.0),
    )
}

/// The `q` quantile (0..=1) of `samples` (µs) in milliseconds; sorts them.
fn quantile_ms(samples: &mut [u64], q: f64) -> f64 {
    // `quantile_us` takes nanoseconds: µs in, ms out.
    crate::measure::quantile_us(samples, q).unwrap_or(0.0)
}

/// [`batch_counts`] once the weft processes printed a progress line covering what was read
/// so far (one a second; a phase ends when its last event came out). Waits only when there
/// is a weft process, after the phase's CPU was read.
fn settled_batch_counts(launches: &[Launch]) -> Option<(u64, u64)> {
    if !launches.iter().any(|l| matches!(l, Launch::Weft(_))) {
        return None;
    }
    thread::sleep(PROGRESS_EVERY + Duration::from_millis(300));
    batch_counts(launches)
}

/// How often `weft run` prints its progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn run_plan(
    plan: &Plan,
    run: &Run<'_>,
    expected: &mut dyn FnMut(u64) -> anyhow::Result<u64>,
) -> anyhow::Result<VariantResult> {
    let address = run.broker.address();
    let mut counter = Counter::new(&address, &plan.output)?;
    let mut processes = Processes::start(&plan.launches, run.weft)?;
    let sampler = RssSampler::start(processes.pids());
    let producer = EventProducer::new(&address)?;

    producer.send(&plan.input, run.workload, WARM_UP)?;
    let mut total = expected(WARM_UP)?;
    counter.wait_for(total, PHASE_TIMEOUT, || processes.check_running())?;
    let mut batches = settled_batch_counts(&plan.launches);

    let floor = plan.launches.is_empty();
    let relay = matches!(plan.launches.as_slice(), [Launch::Relay(..)]);
    let mut result = VariantResult {
        variant: plan.variant.into(),
        batch: 1024,
        stages: plan.stages,
        note: Some(if floor {
            "no weft: the bench's producer to its reader through the broker".into()
        } else if relay {
            "no weft: a hand-written rdkafka consume → produce relay with weft's client defaults"
                .into()
        } else {
            format!(
                "{} weft run process(es), tansu in-memory broker, {PARTITIONS} partitions, bare Avro; \
                 from the first event produced to the last consumed at the end",
                plan.launches.len()
            )
        }),
        ..VariantResult::default()
    };
    if run.options.idle_seconds > 0 {
        progress(format_args!(
            "  {}: idle for {} s",
            plan.variant, run.options.idle_seconds
        ));
        let (process0, broker0) = cpu_now(&processes, run.broker);
        let started = Instant::now();
        thread::sleep(Duration::from_secs(run.options.idle_seconds));
        processes.check_running()?;
        let (process1, broker1) = cpu_now(&processes, run.broker);
        let wall = started.elapsed().as_secs_f64();
        result.idle = Some(IdleFigures {
            seconds: wall,
            process_core_pct: (!floor).then_some((process1 - process0) / wall * 100.0),
            broker_core_pct: (broker1 - broker0) / wall * 100.0,
        });
    }
    let per_run = expected(run.events)?;
    for i in 0..run.options.runs {
        progress(format_args!(
            "  {}: saturation run {}/{}, {} events",
            plan.variant,
            i + 1,
            run.options.runs,
            run.events
        ));
        let started = Instant::now();
        let (weft0, broker0) = cpu_now(&processes, run.broker);
        producer.send(&plan.input, run.workload, run.events)?;
        total += per_run;
        let last = counter.wait_for(total, PHASE_TIMEOUT, || processes.check_running())?;
        let (weft1, broker1) = cpu_now(&processes, run.broker);
        let per_million = 1e6 / run.events as f64;
        let elapsed_s = last.duration_since(started).as_secs_f64();
        let batches_after = settled_batch_counts(&plan.launches);
        result.runs.push(SaturationRun {
            events: run.events,
            elapsed_s,
            events_per_s: run.events as f64 / elapsed_s.max(1e-9),
            weft_cpu_s_per_million: (weft1 - weft0) * per_million,
            broker_cpu_s_per_million: (broker1 - broker0) * per_million,
            events_per_batch: events_per_batch(batches, batches_after),
        });
        batches = batches_after;
    }
    let median = |f: fn(&SaturationRun) -> f64| {
        Spread::of(result.runs.iter().map(f)).map_or(0.0, |s| s.median)
    };
    let (elapsed, events_per_s) = (median(|r| r.elapsed_s), median(|r| r.events_per_s));
    let cpu = CpuFigures {
        weft_s_per_million: median(|r| r.weft_cpu_s_per_million),
        broker_s_per_million: median(|r| r.broker_cpu_s_per_million),
    };
    if !result.runs.is_empty() {
        result.events_in = run.events;
        result.events_out = per_run;
        result.elapsed_s = elapsed;
        result.finish_rates();
        result.events_per_s = events_per_s;
        result.cpu = Some(cpu);
    }

    let paced = EventProducer::new(&address)?;
    let mut rates: Vec<(u64, bool)> = run.options.rates.iter().map(|&r| (r, false)).collect();
    if run.options.saturation_seconds > 0 && result.events_per_s >= 1.0 {
        rates.push((result.events_per_s.round() as u64, true));
    }
    for (rate, at_saturation) in rates {
        let seconds = if at_saturation {
            run.options.saturation_seconds
        } else {
            run.options.rate_seconds
        };
        progress(format_args!(
            "  {}: {} events/s for {} s{}",
            plan.variant,
            rate,
            seconds,
            if at_saturation { " (saturation)" } else { "" }
        ));
        let n = rate * seconds;
        counter.latencies_us.clear();
        let started = Instant::now();
        let (weft0, broker0) = cpu_now(&processes, run.broker);
        total += expected(n)?;
        // Read while producing: an event is timed when it arrives, not after the phase.
        thread::scope(|scope| -> anyhow::Result<()> {
            let sending =
                scope.spawn(|| paced.send_paced(&plan.input, run.workload, rate, seconds));
            let read = counter.wait_for(total, PHASE_TIMEOUT, || processes.check_running());
            sending
                .join()
                .map_err(|_| anyhow::anyhow!("the paced producer panicked"))??;
            read.map(drop)
        })?;
        let (weft1, broker1) = cpu_now(&processes, run.broker);
        let wall = started.elapsed().as_secs_f64();
        let batches_after = settled_batch_counts(&plan.launches);
        let samples = &mut counter.latencies_us;
        let rss = processes.peak_rss_mib();
        result.latency.push(LatencyFigures {
            rate,
            at_saturation,
            samples: samples.len(),
            p50_ms: quantile_ms(samples, 0.5),
            p99_ms: quantile_ms(samples, 0.99),
            max_ms: quantile_ms(samples, 1.0),
            weft_core_pct: (weft1 - weft0) / wall * 100.0,
            broker_core_pct: (broker1 - broker0) / wall * 100.0,
            weft_peak_rss_mib: rss,
            events_per_batch: events_per_batch(batches, batches_after),
        });
        batches = batches_after;
    }
    drop(processes);
    let peaks = sampler.finish();
    if !floor {
        result.peak_rss_mib = Some(peaks.iter().copied().fold(0.0, f64::max));
        result.process_rss_mib = peaks;
    }
    Ok(result)
}
