//! What `weft serve` costs (issue 10): how long a chain swap holds the stream, and the CPU
//! and memory of one daemon holding 20 idle pipelines. A measurement, not a test: it prints
//! figures for the README.
//!
//! ```text
//! scripts/build-plugins.sh
//! cargo run --release -p weft-bench --example serve_idle            # idle = 1 event/s generators
//! cargo run --release -p weft-bench --example serve_idle -- --kafka # idle = Kafka sources (tansu)
//! cargo run --release -p weft-bench --example serve_idle -- --kafka --fetch-wait-ms 500
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use weft_host::serve::{Daemon, DaemonConfig, State};
use weft_runtime::{Runtime, RuntimeOptions};

const IDLE_PIPELINES: usize = 20;
const SWAPS: usize = 20;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ lives in the workspace")
        .to_path_buf()
}

fn quoted(path: &std::path::Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kafka = args.iter().any(|a| a == "--kafka");
    // `--fetch-wait-ms N`: the sources' `fetch.wait.max.ms` (weft's default otherwise).
    let fetch_wait = args
        .iter()
        .position(|a| a == "--fetch-wait-ms")
        .and_then(|i| args.get(i + 1))
        .map(|ms| format!("\n[source.properties]\n\"fetch.wait.max.ms\" = {ms}"))
        .unwrap_or_default();
    let schema = workspace().join("plugins/enrich/schemas/title.avsc");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let mask = target.join("wasm32-wasip2/plugin/mask.wasm");
    if !mask.is_file() {
        bail!(
            "{} is missing: run scripts/build-plugins.sh",
            mask.display()
        );
    }
    let work = tempfile::tempdir()?;
    let config = DaemonConfig {
        pipelines: work.path().join("pipelines"),
        data_dir: work.path().join("data"),
        ..DaemonConfig::default()
    };
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: weft_runtime::default_cache_dir(),
    })?;
    let daemon = Daemon::start(config, runtime)?;

    // 1. Swap pause: a generator at 5,000 events/s through mask; each new version masks
    // another field (same source and sink, so only the chain is rebuilt and swapped).
    let swapping = |fields: &str| {
        format!(
            "[[source]]\nkind = \"generate\"\nschema = {}\ncount = 1000000000\nrate = 5000.0\n\
             [[processor]]\nplugin = {}\nparams = {{ fields = \"{fields}\" }}\n\
             [sink]\nkind = \"null\"\n[limits]\nbatch_size = 100\nlinger_ms = 20\n",
            quoted(&schema),
            quoted(&mask)
        )
    };
    daemon
        .put("swap", &swapping("owner.email"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    wait(&daemon, "swap", |s| {
        s.state == State::Running && s.events_out > 0
    })?;
    let mut pauses = Vec::with_capacity(SWAPS);
    for i in 0..SWAPS {
        let before = swap_pause_sum(&daemon.metrics_text());
        let fields = if i % 2 == 0 { "title" } else { "owner.email" };
        daemon
            .put("swap", &swapping(fields))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        pauses.push(swap_pause_sum(&daemon.metrics_text()) - before);
        std::thread::sleep(Duration::from_millis(100));
    }
    pauses.sort_by(f64::total_cmp);
    let ms = |s: f64| s * 1e3;
    println!(
        "swap pause over {SWAPS} swaps: median {:.2} ms, max {:.2} ms (chain build + switch, \
         between two committed batches; no restart, {} restarts)",
        ms(pauses[SWAPS / 2]),
        ms(pauses[SWAPS - 1]),
        daemon.get("swap").map_or(0, |d| d.status.restarts)
    );
    daemon.delete("swap").map_err(|e| anyhow::anyhow!("{e}"))?;

    // 2. Idle: 20 pipelines with nothing to do.
    let broker = if kafka {
        Some(weft_bench::kafka::Broker::start(
            &work.path().join("tansu.log"),
        )?)
    } else {
        None
    };
    for i in 0..IDLE_PIPELINES {
        let source = match &broker {
            Some(broker) => {
                let topic = format!("idle-{i}");
                broker.create_topic(&topic)?;
                format!(
                    "kind = \"kafka\"\ntopics = [\"{topic}\"]\ngroup = \"idle-{i}\"\n\
                     brokers = \"{}\"\nformat = \"avro\"\nschema = {}{fetch_wait}",
                    broker.address(),
                    quoted(&schema)
                )
            }
            None => format!(
                "kind = \"generate\"\nschema = {}\ncount = 1000000000\nrate = 1.0",
                quoted(&schema)
            ),
        };
        let text = format!(
            "[[source]]\n{source}\n[[processor]]\nplugin = {}\nparams = {{ fields = \"title\" }}\n\
             [sink]\nkind = \"null\"\n",
            quoted(&mask)
        );
        daemon
            .put(&format!("idle-{i}"), &text)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for i in 0..IDLE_PIPELINES {
        wait(&daemon, &format!("idle-{i}"), |s| s.state == State::Running)?;
    }
    std::thread::sleep(Duration::from_secs(3));
    let (cpu0, wall0) = (cpu_seconds()?, Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let cpu = (cpu_seconds()? - cpu0) / wall0.elapsed().as_secs_f64();
    println!(
        "{IDLE_PIPELINES} idle pipelines ({}): {:.2}% of a core, RSS {:.0} MiB",
        if kafka {
            "Kafka sources, no traffic"
        } else {
            "generators at 1 event/s"
        },
        cpu * 100.0,
        rss_bytes()? as f64 / (1 << 20) as f64
    );
    daemon.shutdown(Duration::from_secs(30));
    Ok(())
}

fn wait(
    daemon: &Daemon,
    name: &str,
    done: impl Fn(&weft_host::serve::PipelineStatus) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = daemon.get(name).context("pipeline gone")?.status;
        if done(&status) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name}: still {:?} ({:?})", status.state, status.last_error);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `weft_pipeline_swap_pause_seconds_sum{pipeline="swap"}` from the metrics text.
fn swap_pause_sum(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("weft_pipeline_swap_pause_seconds_sum{pipeline=\"swap\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// User + system CPU time of this process (`/proc/self/stat`, in USER_HZ = 100 ticks/s).
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(") ").context("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse::<u64>()?;
    Ok(kib << 10)
}
