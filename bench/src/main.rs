//! `weft-bench`: runs every variant on one workload and prints the report of issue 12.
//!
//! Each variant runs in its own child process (this binary re-executed with the hidden
//! `variant` subcommand), so each peak RSS is that variant's alone.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use weft_bench::measure::VariantResult;
use weft_bench::progress;
use weft_bench::relay::{RelaySpec, key_value};
use weft_bench::report::{Machine, Report};
use weft_bench::stages::{STAGES, default_plugin_dir};
use weft_bench::workload::{DISTINCT, Workload};
use weft_bench::{kafka, variants};

#[derive(Parser)]
#[command(
    name = "weft-bench",
    about = "Benchmarks weft over Kafka (passthrough, fused, unfused beside a no-weft floor \
             and a no-weft relay: throughput, CPU per event, latency, idle cost, RSS) and the fused Wasm chain against native \
             code in memory, and checks the figures against issue 12's targets.",
    after_help = "A full run (scripts/bench.sh) takes about 10 minutes on 2 cores; --quick about 2. \
                  Progress goes to stderr, the Markdown report to stdout (and --markdown).",
    args_override_self = true
)]
struct Cli {
    /// Events per in-memory run (native, fused).
    #[arg(long, default_value_t = 1_000_000, global = true)]
    events: u64,
    /// Events per saturation run over Kafka.
    #[arg(long, default_value_t = 500_000)]
    kafka_events: u64,
    /// Runs per figure where runs are cheap (in memory, saturation over Kafka); the report
    /// shows their median and range. Default 3, 1 with --quick.
    #[arg(long)]
    runs: Option<usize>,
    /// A fast functional run: a tenth of the events, one run, 3 s per steady rate.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Leave out the Kafka variants (no broker needed).
    #[arg(long)]
    skip_kafka: bool,
    /// Only the Kafka variants (no native, in-memory fused or start-up figures).
    #[arg(long, conflicts_with = "skip_kafka")]
    kafka_only: bool,
    /// Only these variants (comma-separated): native, fused (in memory; with --kafka-only,
    /// fused means fused over Kafka), startup, passthrough, fused-kafka, unfused, relay, floor.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Steady rates (events/s) at which each Kafka variant's latency is measured, after its
    /// saturation runs and before one more at its own saturation throughput; `--rates 0` for
    /// no latency phase at all.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 2_000, 10_000])]
    rates: Vec<u64>,
    /// Seconds each steady rate is produced for. Default 20, 3 with --quick.
    #[arg(long)]
    rate_seconds: Option<u64>,
    /// Seconds each Kafka variant sits idle after its warm-up, for the CPU it spends with no
    /// traffic. Default 10, 3 with --quick; 0 for none.
    #[arg(long)]
    idle_seconds: Option<u64>,
    /// Folder of the plugin components (default: target/wasm32-wasip2/plugin).
    #[arg(long, global = true)]
    plugins: Option<PathBuf>,
    /// The `weft` binary for the Kafka variants (default: beside this one).
    #[arg(long)]
    weft: Option<PathBuf>,
    /// A librdkafka consumer property for every Kafka pipeline's source (KEY=VALUE, repeatable),
    /// over weft's defaults.
    #[arg(long, value_parser = key_value)]
    source_property: Vec<(String, String)>,
    /// A librdkafka producer property for every Kafka pipeline's sink (KEY=VALUE, repeatable).
    #[arg(long, value_parser = key_value)]
    sink_property: Vec<(String, String)>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one variant in this process and prints its result as JSON (used by the driver).
    #[command(hide = true)]
    Variant {
        #[arg(value_enum)]
        which: Which,
        #[arg(long, default_value_t = 1024)]
        batch: usize,
    },
    /// Relays a topic to another with plain rdkafka clients until stopped: the relay floor.
    #[command(hide = true)]
    Relay(RelaySpec),
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Native,
    Fused,
    Startup,
}

/// Loads every plugin once through the default runtime, so the variants start from a warm
/// compiled-code cache as a pipeline started a second time does (cold start is reported
/// separately by the `startup` child).
fn warm_code_cache(plugins: &std::path::Path) -> anyhow::Result<()> {
    let runtime = weft_runtime::Runtime::new(weft_runtime::RuntimeOptions::default())
        .context("starting the runtime")?;
    for stage in STAGES {
        runtime.load_file(&weft_bench::stages::plugin_path(plugins, stage.plugin)?)?;
    }
    Ok(())
}

/// Seconds of the latency phase at each Kafka variant's own saturation throughput: queues
/// build at capacity, so a longer phase says little more and fills the broker's memory.
const SATURATION_SECONDS: u64 = 5;

/// What one run does, settled from the flags.
struct Plan {
    events: u64,
    kafka_events: u64,
    runs: usize,
    rate_seconds: u64,
    idle_seconds: u64,
    native: bool,
    fused: bool,
    startup: bool,
    kafka: Vec<&'static str>,
    rates: Vec<u64>,
}

impl Plan {
    fn from(cli: &Cli) -> Self {
        let tenth = |n: u64, least: u64| if cli.quick { (n / 10).max(least) } else { n };
        let wants = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
        let memory = !cli.kafka_only;
        let kafka_names = |variant: &'static str| {
            let short = variant.trim_end_matches("-kafka");
            let fused_alias = cli.kafka_only && short == "fused";
            let plain = short != "fused" || fused_alias;
            (wants(variant) || (plain && wants(short))).then_some(variant)
        };
        Self {
            events: tenth(cli.events, 10_000),
            kafka_events: tenth(cli.kafka_events, 20_000),
            runs: cli.runs.unwrap_or(if cli.quick { 1 } else { 3 }).max(1),
            rate_seconds: cli
                .rate_seconds
                .unwrap_or(if cli.quick { 3 } else { 20 })
                .max(1),
            idle_seconds: cli.idle_seconds.unwrap_or(if cli.quick { 3 } else { 10 }),
            native: memory && wants("native"),
            fused: memory && wants("fused"),
            startup: memory && wants("startup"),
            kafka: if cli.skip_kafka {
                Vec::new()
            } else {
                [
                    "passthrough-kafka",
                    "fused-kafka",
                    "unfused-kafka",
                    "relay-kafka",
                    "floor-kafka",
                ]
                .into_iter()
                .filter_map(kafka_names)
                .collect()
            },
            rates: cli.rates.iter().copied().filter(|r| *r > 0).collect(),
        }
    }

    /// Seconds of the latency phase at saturation (none without latency phases).
    fn saturation_seconds(&self) -> u64 {
        if self.rates.is_empty() {
            0
        } else {
            self.rate_seconds.min(SATURATION_SECONDS)
        }
    }

    /// A rough duration on an idle 2-core machine, from the throughputs measured there, so
    /// the run can say how long it will take.
    fn expected_s(&self) -> f64 {
        let n = self.events as f64;
        let mut memory = 0.0;
        if self.native {
            memory += 3.0 * (n / 500_000.0 + 1.0);
        }
        if self.fused {
            memory += n / 170_000.0 + 2.0 * n / 300_000.0 + 3.0;
        }
        let startup = if self.startup { 9.0 } else { 0.0 };
        let kafka: f64 = self
            .kafka
            .iter()
            .map(|v| {
                let eps = match *v {
                    "passthrough-kafka" => 120_000.0,
                    "fused-kafka" => 70_000.0,
                    "unfused-kafka" => 60_000.0,
                    _ => 150_000.0,
                };
                let latency = if self.rates.is_empty() {
                    0.0
                } else {
                    (self.rates.len() as u64 * self.rate_seconds + self.saturation_seconds()) as f64
                        + 0.7 * (self.rates.len() + 1) as f64
                };
                2.0 + self.idle_seconds as f64
                    + self.runs as f64 * self.kafka_events as f64 / eps
                    + latency
            })
            .sum();
        memory * self.runs as f64 + startup + kafka + if self.kafka.is_empty() { 0.0 } else { 3.0 }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plugins = cli.plugins.clone().unwrap_or_else(default_plugin_dir);
    let plan = Plan::from(&cli);
    if let Some(Cmd::Relay(spec)) = cli.command {
        return weft_bench::relay::run(&spec);
    }
    if let Some(Cmd::Variant { which, batch }) = cli.command {
        // The driver passes the settled event count: no second `--quick` reduction here.
        let events = cli.events;
        let json = match which {
            Which::Native => serde_json::to_string(&variants::native(events, batch)?)?,
            Which::Fused => serde_json::to_string(&variants::fused(&plugins, events, batch)?)?,
            Which::Startup => serde_json::to_string(&variants::startup(&plugins)?)?,
        };
        println!("{json}");
        return Ok(());
    }
    weft_bench::start_clock();
    let expected = plan.expected_s();
    progress(format_args!(
        "expected duration about {:.0} min {:02.0} s on an idle 2-core machine (longer while \
         others build)",
        (expected / 60.0).floor(),
        expected % 60.0
    ));

    let workload = Workload::generate(DISTINCT)?;
    let mut report = Report {
        machine: Machine::detect(),
        date: weft_bench::report::utc_now(),
        // scripts/bench.sh names itself (with its arguments) rather than the binary it runs.
        command: std::env::var("WEFT_BENCH_COMMAND")
            .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
        events: plan.events,
        kafka_events: plan.kafka_events,
        runs: plan.runs,
        rate_seconds: plan.rate_seconds,
        saturation_seconds: plan.saturation_seconds(),
        idle_seconds: plan.idle_seconds,
        event_mean_bytes: workload.mean_bytes(),
        chain: STAGES
            .iter()
            .map(|s| {
                let params: Vec<String> =
                    s.params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!("{}({})", s.plugin, params.join(", "))
            })
            .collect(),
        duration_s: 0.0,
        variants: Vec::new(),
        startup: None,
        targets: Vec::new(),
    };
    drop(workload);
    if plan.native || plan.fused || plan.startup {
        warm_code_cache(&plugins)?;
    }

    let child = |args: &[&str]| -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("locating this binary")?;
        progress(format_args!("in memory: {}", args[1..].join(" ")));
        let output = Command::new(exe)
            .args(args)
            .arg("--events")
            .arg(plan.events.to_string())
            .arg("--plugins")
            .arg(&plugins)
            .output()
            .context("starting a variant")?;
        if !output.status.success() {
            bail!(
                "variant {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };

    // Native and fused at one batch size run back to back, run after run, so each pair
    // shares the machine's load of its moment (the ratios are taken pair by pair).
    for run in 0..plan.runs {
        for batch in [1usize, 64, 1024] {
            let batch = batch.to_string();
            for (wanted, which) in [(plan.native, "native"), (plan.fused, "fused")] {
                if wanted {
                    let result: VariantResult =
                        serde_json::from_str(&child(&["variant", which, "--batch", &batch])?)?;
                    report.variants.push(result);
                }
            }
        }
        if run == 0 && plan.startup {
            report.startup = Some(serde_json::from_str(&child(&["variant", "startup"])?)?);
        }
    }

    if !plan.kafka.is_empty() {
        let weft = match &cli.weft {
            Some(path) => path.clone(),
            None => kafka::default_weft_binary()?,
        };
        let options = kafka::KafkaOptions {
            only: plan.kafka.iter().map(|v| (*v).to_owned()).collect(),
            runs: plan.runs,
            rates: plan.rates.clone(),
            saturation_seconds: plan.saturation_seconds(),
            rate_seconds: plan.rate_seconds,
            idle_seconds: plan.idle_seconds,
            source_properties: cli.source_property.clone(),
            sink_properties: cli.sink_property.clone(),
        };
        // Without a broker (or a weft binary) the in-memory figures are still reported, with
        // the reason the Kafka ones are missing.
        match kafka::run_all(&weft, &plugins, plan.kafka_events, &options) {
            Ok(results) => report.variants.extend(results),
            Err(e) => {
                progress(format_args!("over Kafka: {e:#}"));
                report
                    .variants
                    .extend(plan.kafka.iter().map(|variant| VariantResult {
                        variant: (*variant).to_owned(),
                        batch: 1024,
                        note: Some(format!("failed: {e:#}")),
                        ..VariantResult::default()
                    }));
            }
        }
    }

    report.duration_s = weft_bench::elapsed_s();
    report.evaluate();
    let markdown = report.to_markdown();
    println!("{markdown}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
        progress(format_args!("Markdown written to {}", path.display()));
    }
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        progress(format_args!("JSON written to {}", path.display()));
    }
    progress(format_args!(
        "done in {:.1} min (expected {:.1})",
        report.duration_s / 60.0,
        expected / 60.0
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Plan {
        Plan::from(&Cli::parse_from([&["weft-bench"], args].concat()))
    }

    #[test]
    fn only_native_and_fused_runs_nothing_over_kafka() {
        let p = plan(&["--only", "native,fused"]);
        assert!(p.native && p.fused && !p.startup);
        assert!(p.kafka.is_empty());
    }

    #[test]
    fn fused_means_over_kafka_with_kafka_only() {
        let p = plan(&["--kafka-only", "--only", "fused,floor"]);
        assert!(!p.native && !p.fused);
        assert_eq!(p.kafka, ["fused-kafka", "floor-kafka"]);
    }

    #[test]
    fn quick_is_one_short_run_unless_told_otherwise() {
        let p = plan(&["--quick"]);
        assert_eq!(
            (p.events, p.kafka_events, p.runs, p.rate_seconds),
            (100_000, 50_000, 1, 3)
        );
        let p = plan(&["--quick", "--runs", "2", "--rates", "0"]);
        assert_eq!(p.runs, 2);
        assert_eq!(p.saturation_seconds(), 0);
        // A later flag wins, as scripts/bench.sh relies on for --json.
        let cli = Cli::parse_from(["weft-bench", "--json", "a.json", "--json", "b.json"]);
        assert_eq!(cli.json, Some(PathBuf::from("b.json")));
    }

    #[test]
    fn a_full_run_is_expected_within_fifteen_minutes() {
        let full = plan(&[]);
        assert_eq!(full.kafka.len(), 5);
        assert!(full.expected_s() < 15.0 * 60.0, "{}", full.expected_s());
        assert!(plan(&["--quick"]).expected_s() < full.expected_s() / 3.0);
    }

    #[test]
    fn the_relay_is_started_with_what_its_spec_says() {
        let spec = RelaySpec {
            broker: "127.0.0.1:9092".into(),
            from: "relay-in".into(),
            to: "relay-out".into(),
            group: "relay".into(),
            source_properties: vec![("fetch.wait.max.ms".into(), "3".into())],
            sink_properties: vec![
                ("linger.ms".into(), "0".into()),
                ("acks".into(), "1".into()),
            ],
        };
        let args = spec.args();
        let cli = Cli::parse_from(std::iter::once("weft-bench".to_owned()).chain(args));
        let Some(Cmd::Relay(parsed)) = cli.command else {
            panic!("not the relay subcommand");
        };
        assert_eq!(parsed, spec);
    }
}
