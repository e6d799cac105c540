//! `weft-bench`: runs every variant of issue 5 on one workload and prints the table.
//!
//! Each variant runs in its own child process (this binary re-executed with the hidden
//! `variant` subcommand), so each peak RSS is that variant's alone.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use weft_bench::measure::VariantResult;
use weft_bench::report::{Machine, Report, Startup};
use weft_bench::stages::{STAGES, default_plugin_dir};
use weft_bench::workload::{DISTINCT, Workload};
use weft_bench::{kafka, variants};

#[derive(Parser)]
#[command(
    name = "weft-bench",
    about = "Benchmarks the fused Wasm chain against native code, one process per processor over Kafka, and Kafka passthrough."
)]
struct Cli {
    /// Events per variant.
    #[arg(long, default_value_t = 1_000_000, global = true)]
    events: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Leave out the Kafka variants (no broker needed).
    #[arg(long)]
    skip_kafka: bool,
    /// A smoke run: a tenth of the events (at least 10,000).
    #[arg(long)]
    quick: bool,
    /// Folder of the plugin components (default: target/wasm32-wasip2/plugin).
    #[arg(long, global = true)]
    plugins: Option<PathBuf>,
    /// The `weft` binary for the Kafka variants (default: beside this one).
    #[arg(long)]
    weft: Option<PathBuf>,
    /// Only the Kafka variants (no native, in-memory fused or start-up figures).
    #[arg(long, conflicts_with = "skip_kafka")]
    kafka_only: bool,
    /// Only these Kafka variants: fused, unfused, passthrough, floor (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Steady rates (events/s) at which each Kafka variant's latency is measured, after its
    /// timed events; `--rates 0` for none.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000])]
    rates: Vec<u64>,
    /// Seconds each steady rate is produced for.
    #[arg(long, default_value_t = 20)]
    rate_seconds: u64,
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
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Native,
    Fused,
    Startup,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plugins = cli.plugins.clone().unwrap_or_else(default_plugin_dir);
    let events = if cli.quick {
        (cli.events / 10).max(10_000)
    } else {
        cli.events
    };
    if let Some(Cmd::Variant { which, batch }) = cli.command {
        let json = match which {
            Which::Native => serde_json::to_string(&variants::native(events, batch)?)?,
            Which::Fused => serde_json::to_string(&variants::fused(&plugins, events, batch)?)?,
            Which::Startup => serde_json::to_string(&variants::startup(&plugins)?)?,
        };
        println!("{json}");
        return Ok(());
    }

    let workload = Workload::generate(DISTINCT)?;
    let mut report = Report {
        machine: Machine::detect(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        events,
        event_mean_bytes: workload.mean_bytes(),
        chain: STAGES
            .iter()
            .map(|s| {
                let params: Vec<String> =
                    s.params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!("{}({})", s.plugin, params.join(", "))
            })
            .collect(),
        variants: Vec::new(),
        startup: None,
        ratios: Vec::new(),
        targets: Vec::new(),
    };
    drop(workload);
    warm_code_cache(&plugins)?;

    let child = |args: &[&str]| -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("locating this binary")?;
        eprintln!("running {}", args.join(" "));
        let output = Command::new(exe)
            .args(args)
            .arg("--events")
            .arg(events.to_string())
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

    if !cli.kafka_only {
        report.variants.push(serde_json::from_str(&child(&[
            "variant", "native", "--batch", "1024",
        ])?)?);
        for batch in [1usize, 64, 1024] {
            let batch = batch.to_string();
            let result: VariantResult =
                serde_json::from_str(&child(&["variant", "fused", "--batch", &batch])?)?;
            report.variants.push(result);
        }
        let startup: Startup = serde_json::from_str(&child(&["variant", "startup"])?)?;
        report.startup = Some(startup);
    }

    if !cli.skip_kafka {
        let weft = match &cli.weft {
            Some(path) => path.clone(),
            None => kafka::default_weft_binary()?,
        };
        let options = kafka::KafkaOptions {
            only: cli.only.clone(),
            rates: cli.rates.iter().copied().filter(|r| *r > 0).collect(),
            rate_seconds: cli.rate_seconds,
            source_properties: cli.source_property.clone(),
            sink_properties: cli.sink_property.clone(),
        };
        report
            .variants
            .extend(kafka::run_all(&weft, &plugins, events, &options)?);
    }

    report.evaluate();
    println!("{}", report.to_markdown());
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
