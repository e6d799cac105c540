//! The `weft` command line: argument parsing and one function per subcommand.

mod admin;
mod dashboard;
mod inspect;
mod new;
mod plugin;
mod serve;
mod warm;
mod wit;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use weft_host::config::{self, Layers, Settings};
use weft_host::pipeline::{LocalOnly, Pipeline, PluginResolver, RunSummary, on_run_thread};
use weft_host::registry::RegistryResolver;
use weft_host::registry::client::Client;
use weft_runtime::{BaselinePolicy, Runtime, RuntimeOptions};

/// weft runs chains of WebAssembly processors over Avro event streams, fused in one process.
///
/// A pipeline file (TOML) names its sources, the processors in order (components built for
/// wasm32-wasip2), a sink and a dead-letter sink. Every link's schemas are checked before an
/// event moves; a processor that panics, loops or runs out of memory sends the event at
/// fault to the dead-letter sink and the rest flows on.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    // Flags only: their environment variables are read with the other layers, in one place
    // (`config::Settings`), so a flag beats its variable, which beats the pipeline file.
    /// Directory of the compiled-component and plugin cache; beats WEFT_CACHE_DIR
    /// [default: ~/.cache/weft].
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Registry for `plugin` commands, `name@version` references and the Kafka Confluent
    /// format; beats WEFT_REGISTRY_URL, which beats the pipeline's `[registry] url`.
    #[arg(long, global = true)]
    pub registry: Option<String>,
    /// Bearer token for registry writes (plugin pushes, schema registration); beats
    /// WEFT_REGISTRY_TOKEN.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Kafka brokers (host:port[,host:port]) for every Kafka table of the pipeline; beats
    /// WEFT_KAFKA_BROKERS, which beats the tables' `brokers`.
    #[arg(long, global = true)]
    pub brokers: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline until its sources are exhausted (or Ctrl-C), then print a summary.
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// No progress line on stderr.
        #[arg(long)]
        quiet: bool,
        /// Print the summary as JSON on stdout instead of the table on stderr.
        #[arg(long)]
        json: bool,
    },
    /// Build a pipeline and check every link's schemas, without running it.
    Validate {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Show a processor component's manifest: name, version, parameters and schemas.
    Inspect {
        /// The component (.wasm).
        plugin: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the processor contract (weft:processor@0.2.0, world `processor`) that guests
    /// build against, or write it into a folder: point wit-bindgen's `path`, componentize-py's
    /// `-d` or componentize-js's `--wit` at that folder.
    Wit {
        /// Write `processor.wit` into this folder (created if missing) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create a new processor (Rust, Python or JavaScript) that builds with one command.
    New {
        /// Name of the processor ([a-z][a-z0-9-]*); also the crate's folder.
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path to weft's guest SDK (`guest-sdk/` of a weft checkout).
        #[arg(long, default_value = new::DEFAULT_SDK_PATH)]
        sdk_path: PathBuf,
        /// The processor's language: rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: weft_host::scaffold::Lang,
    },
    /// Push, list and show plugins in the registry (--registry or WEFT_REGISTRY_URL).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Write a pipeline's Grafana dashboard (JSON) and Prometheus alert rules (YAML): panels
    /// per stage over `weft serve`'s metrics; alerts for FAILED, growing lag, dead letters, traps.
    Dashboard {
        /// The pipeline file; the pipeline is named after it, as `weft serve` names it.
        pipeline: PathBuf,
        /// Folder for `<name>.dashboard.json` and `<name>.rules.yml`.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// The pipelines of a running `weft serve`: state, uptime, counts, pinned stages, errors.
    Status {
        #[command(flatten)]
        admin: admin::AdminArgs,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List, show, apply, delete, pause, resume or restart a running `weft serve`'s pipelines.
    Pipelines {
        #[command(flatten)]
        admin: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::PipelinesCommand,
    },
    /// Run every pipeline of a folder as a service: admin API, /metrics, hot reload at batch
    /// boundaries, FAILED pipelines retried with backoff; SIGTERM stops after each batch.
    Serve {
        /// The daemon config (weftd.toml): listen address, pipelines folder, defaults.
        #[arg(long, short)]
        config: PathBuf,
        /// Longest the pipelines get to finish their batch on SIGTERM (e.g. 30s, 2m).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Upload a component; its manifest gives the name and version.
    Push {
        /// The component (.wasm).
        file: PathBuf,
    },
    /// List the plugins in the registry.
    List,
    /// Show a plugin's versions, or one version: NAME or NAME@VERSION.
    Show { reference: String },
    /// Compile components into the cache now, so the first run that needs them starts at
    /// once: paths, or NAME@REQ references resolved through the registry.
    Warm {
        #[arg(required = true)]
        references: Vec<String>,
    },
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a test reading stderr gets text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

impl Cli {
    /// The flags' layer of the settings (`None` where a flag was not given).
    pub fn settings(&self) -> Settings {
        Settings {
            brokers: self.brokers.clone(),
            registry_url: self.registry.clone(),
            registry_token: self.token.clone(),
            cache_dir: self.cache_dir.clone(),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The one place the CLI settles flags, environment and files: everything below uses
    // `process` (no file) or the pipeline file settled between `layers`.
    let flags = cli.settings();
    let defaults = Settings {
        cache_dir: weft_runtime::default_cache_dir(),
        ..Settings::default()
    };
    let process = Settings::resolve(&flags, config::process_env, &defaults);
    let layers = Layers::new(&flags, config::process_env, &defaults);
    let runtime_options = RuntimeOptions {
        cache_dir: process.cache_dir.clone(),
    };
    match cli.command {
        Command::Run {
            pipeline,
            quiet,
            json,
        } => {
            let runtime = Runtime::new(runtime_options)?;
            let stop = Arc::new(AtomicBool::new(false));
            watch_signals(stop.clone(), runtime.clone())?;
            let progress = (!quiet).then_some(Duration::from_secs(1));
            let summary = build(&pipeline, &runtime, &layers)
                .and_then(|built| Ok(on_run_thread(move || drive(built, &stop, progress))??));
            // Interrupted mid-call, the run fails with whatever error the cut call caused;
            // interrupted between calls, it finishes its batch and has a summary to print.
            if summary.is_err() && runtime.interrupted() {
                eprintln!(
                    "interrupted: the batch in flight was neither written nor committed \
                     (a restart reads it again)"
                );
                return Ok(ExitCode::from(130));
            }
            let summary = summary?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary.to_json())?);
            } else {
                eprintln!("{summary}");
            }
            // A first start ran on Winch code: leave Cranelift's in the cache for the next run.
            if runtime.background_pending() > 0 {
                eprintln!("finishing the Cranelift compile into the cache for the next run…");
            }
            runtime.finish_background();
            Ok(if summary.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Validate { pipeline } => {
            let runtime = Runtime::new(runtime_options)?;
            let built = build(&pipeline, &runtime, &layers)?;
            println!("{}: ok", pipeline.display());
            println!(
                "  source  {}  ({})",
                built.source_name(),
                schema_name(&built.source_schema())
            );
            // Each processor pinned: the exact component a run of this file would use now.
            for (((id, (_, output)), digest), reads) in built
                .chain()
                .stage_ids()
                .iter()
                .zip(built.chain().stage_schemas())
                .zip(built.stage_digests())
                .zip(built.chain().stage_reads())
            {
                println!("  → {id}  emits {}", schema_name(&output));
                println!("      pin {id}@{digest}");
                // What configure said the stage reads of its input (lineage, upgrade checks).
                match reads {
                    Some(fields) if fields.is_empty() => println!("      reads no field"),
                    Some(fields) => println!("      reads {}", fields.join(", ")),
                    None => println!("      reads every field"),
                }
            }
            println!("  → sink  {}", built.config().sink.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { plugin, json } => {
            let runtime = Runtime::new(runtime_options)?;
            inspect::inspect(&runtime, &plugin, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wit { out } => {
            wit::run(out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::New {
            name,
            dir,
            sdk_path,
            lang,
        } => new::run(&name, &dir, &sdk_path, lang),
        Command::Dashboard { pipeline, out } => {
            let (json, rules) = dashboard::write(&pipeline, &out)?;
            println!("wrote {}", json.display());
            println!("wrote {}", rules.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config, grace } => serve::serve(&config, grace, runtime_options),
        Command::Plugin(PluginCommand::Warm { references }) => {
            // Warming is for Cranelift's code in the cache, never a Winch first start.
            let runtime = Runtime::with_policy(runtime_options, BaselinePolicy::Off)?;
            warm::warm(&runtime, &references, || {
                let cache = process
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("weft-cache"));
                Ok(Box::new(RegistryResolver::new(
                    registry_client(&process)?,
                    &cache,
                )))
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(command) => {
            let client = registry_client(&process)?;
            match command {
                PluginCommand::Push { file } => {
                    plugin::push(&client, &Runtime::new(runtime_options)?, &file)?
                }
                PluginCommand::List => plugin::list(&client)?,
                PluginCommand::Show { reference } => plugin::show(&client, &reference)?,
                PluginCommand::Warm { .. } => unreachable!("handled above"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { admin, json } => admin::status(&admin, json),
        Command::Pipelines { admin, command } => admin::pipelines(&admin, command),
    }
}

/// Steps the pipeline until its source is exhausted or `stop` is set (checked before each
/// batch, so the batch under way is written, flushed and committed), with a progress line on
/// stderr every `progress`.
fn drive(
    pipeline: Pipeline,
    stop: &AtomicBool,
    progress: Option<Duration>,
) -> weft_host::Result<RunSummary> {
    let mut running = pipeline.open()?;
    let mut last_progress = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let step = running.step()?;
        if let Some(every) = progress
            && last_progress.elapsed() >= every
        {
            last_progress = Instant::now();
            let so_far = running.summary();
            let secs = so_far.elapsed.as_secs_f64();
            eprintln!(
                "[{secs:>6.1}s] in {} · out {} · dead letters {} · {:.0} events/s · {} batches",
                so_far.events_in,
                so_far.events_out,
                so_far.dead_letters,
                so_far.events_in as f64 / secs.max(1e-9),
                so_far.batches
            );
        }
        if step.exhausted {
            break;
        }
    }
    running.close()
}

/// First SIGINT or SIGTERM: stop after the current batch (written, flushed, committed).
/// Second: interrupt the plugin call under way, so a processor that sleeps or loops cannot
/// hold the shutdown until its deadline; the batch in flight is dropped uncommitted. Third:
/// exit at once, whatever the host is doing.
fn watch_signals(stop: Arc<AtomicBool>, runtime: Runtime) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the signal handler")?;
    std::thread::Builder::new()
        .name("weft-signals".into())
        .spawn(move || {
            for (count, _signal) in signals.forever().enumerate() {
                match count {
                    0 => {
                        stop.store(true, Ordering::Relaxed);
                        eprintln!("stopping after the current batch (signal again to stop now)");
                    }
                    1 => {
                        eprintln!("stopping now: interrupting the running processor");
                        runtime.interrupt();
                    }
                    _ => std::process::exit(130),
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// A client of the registry the settings name (flag, else WEFT_REGISTRY_URL, else the file).
fn registry_client(settings: &Settings) -> anyhow::Result<Client> {
    let access = settings.registry().context(
        "no registry given: pass --registry URL, set WEFT_REGISTRY_URL or add [registry] url to the pipeline",
    )?;
    Ok(Client::new(&access.url, access.token)?)
}

fn build(path: &std::path::Path, runtime: &Runtime, layers: &Layers) -> anyhow::Result<Pipeline> {
    let config = layers.load_file(path)?;
    let needs_registry = config
        .processors
        .iter()
        .any(|p| !config::is_local_plugin(&p.plugin));
    let resolver: Box<dyn PluginResolver> = if needs_registry {
        let client = registry_client(&config.settings)?;
        let cache = config
            .settings
            .cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("weft-cache"));
        Box::new(RegistryResolver::new(client, &cache))
    } else {
        Box::new(LocalOnly)
    };
    Pipeline::build(config, runtime, &warm::Progress(resolver.as_ref()))
        .with_context(|| format!("{}", path.display()))
}

fn schema_name(schema: &apache_avro::Schema) -> String {
    match schema.name() {
        Some(name) => name.fullname(None),
        None => schema.canonical_form(),
    }
}
