//! The Kafka variants, against a tansu broker started for the run (in-memory storage):
//!
//! - `unfused-kafka`: one `weft run` process per processor, topics between them — the
//!   design weft's fusion replaces;
//! - `fused-kafka`: one `weft run` process with the whole chain, Kafka in and out;
//! - `passthrough-kafka`: one `weft run` process, no processor: the broker's I/O ceiling.
//!
//! Each variant gets fresh topics (3 partitions) and bare Avro datums (`format = "avro"`, no
//! registry). Its processes are started, a warm-up of events is sent through until it comes
//! out at the end (so every consumer group has joined), then the timed events are produced
//! and the clock stops when the last expected event reaches the output topic. Peak RSS is
//! sampled from `/proc/<pid>/status` while the processes run.

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::measure::{VariantResult, peak_rss_mib_of};
use crate::native::{self, NativeChain};
use crate::stages::{STAGES, StageDef, plugin_path};
use crate::workload::{DISTINCT, TITLE_SCHEMA, Workload};

/// Events sent through before timing, so that every consumer has joined its group.
const WARM_UP: u64 = 2_000;
/// Longest wait for the events of one phase to come out.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Partitions of every topic.
const PARTITIONS: u32 = 3;

/// `weft` beside this binary (both are built into the same target folder).
pub fn default_weft_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    Ok(exe.with_file_name("weft"))
}

/// `$TANSU`, else `tansu` on the `PATH`, else `~/.cargo/bin/tansu`.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").map(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    if let Some(Some(path)) = on_path {
        return path;
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
        .unwrap_or_else(|| PathBuf::from("tansu"))
}

/// A tansu broker with in-memory storage on a free local port, stopped on drop.
pub struct Broker {
    child: Child,
    tansu: PathBuf,
    port: u16,
}

impl Broker {
    pub fn start(log: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let tansu = tansu_binary();
        let log = std::fs::File::create(log).context("creating the broker log")?;
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (the Kafka variants need tansu)",
                    tansu.display()
                )
            })?;
        let broker = Self { child, tansu, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on port {port} within 20 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }

    /// `127.0.0.1:PORT`, as Kafka clients take it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str) -> anyhow::Result<()> {
        let output = Command::new(&self.tansu)
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &PARTITIONS.to_string()])
            .output()
            .context("running tansu topic create")?;
        if !output.status.success() {
            bail!(
                "creating topic {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Kafka variant: its pipelines (one `weft run` each) and its topics.
struct Plan {
    variant: &'static str,
    stages: usize,
    input: String,
    output: String,
    pipelines: Vec<PathBuf>,
}

/// Writes a pipeline file: `topic_in` → `stages` → `topic_out`, bare Avro both ways.
fn pipeline(
    dir: &Path,
    name: &str,
    broker: &str,
    (topic_in, schema): (&str, &Path),
    stages: &[StageDef],
    topic_out: &str,
    plugins: &Path,
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
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs the Kafka variants; a failure to start the broker fails them all with the reason.
pub fn run_all(weft: &Path, plugins: &Path, events: u64) -> anyhow::Result<Vec<VariantResult>> {
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
            dir.as_path(),
            &format!("unfused-{}", stage.plugin),
            &address,
            (&unfused_topics[i], &schemas[i]),
            std::slice::from_ref(stage),
            &unfused_topics[i + 1],
            plugins,
        )?);
    }
    plans.push(Plan {
        variant: "unfused-kafka",
        stages: STAGES.len(),
        input: unfused_topics[0].clone(),
        output: unfused_topics[STAGES.len()].clone(),
        pipelines: unfused,
    });
    plans.push(Plan {
        variant: "fused-kafka",
        stages: STAGES.len(),
        input: "fused-in".into(),
        output: "fused-out".into(),
        pipelines: vec![pipeline(
            dir.as_path(),
            "fused",
            &address,
            ("fused-in", &schemas[0]),
            STAGES,
            "fused-out",
            plugins,
        )?],
    });
    plans.push(Plan {
        variant: "passthrough-kafka",
        stages: 0,
        input: "passthrough-in".into(),
        output: "passthrough-out".into(),
        pipelines: vec![pipeline(
            dir.as_path(),
            "passthrough",
            &address,
            ("passthrough-in", &schemas[0]),
            &[],
            "passthrough-out",
            plugins,
        )?],
    });
    for topic in unfused_topics.iter().map(String::as_str).chain([
        "fused-in",
        "fused-out",
        "passthrough-in",
        "passthrough-out",
    ]) {
        broker.create_topic(topic)?;
    }

    let workload = Workload::generate(DISTINCT)?;
    let (warm_out, main_out) = expected_outputs(&workload, events)?;
    let mut results = Vec::new();
    for plan in &plans {
        eprintln!("running {} over Kafka", plan.variant);
        let expected = if plan.stages == 0 {
            (WARM_UP, events)
        } else {
            (warm_out, main_out)
        };
        let result = run_plan(
            plan,
            weft,
            &address,
            &workload,
            events,
            expected,
            dir.as_path(),
        )
        .unwrap_or_else(|e| VariantResult {
            variant: plan.variant.into(),
            batch: 1024,
            stages: plan.stages,
            note: Some(format!("failed: {e:#}")),
            ..VariantResult::default()
        });
        results.push(result);
    }
    Ok(results)
}

/// How many events come out of the chain for the warm-up and for the timed events.
fn expected_outputs(workload: &Workload, events: u64) -> anyhow::Result<(u64, u64)> {
    let mut chain = NativeChain::build(TITLE_SCHEMA)?;
    let mut count = |n: u64| -> anyhow::Result<u64> {
        let mut source = workload.source(n);
        let mut out = 0;
        while source.remaining() > 0 {
            out += chain.process(source.next_batch(4096, native::event))?.len() as u64;
        }
        Ok(out)
    };
    Ok((count(WARM_UP)?, count(events)?))
}

/// Samples the peak RSS of processes while they run.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<f64>>,
}

impl RssSampler {
    fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut peaks = vec![0.0f64; pids.len()];
            while !flag.load(Ordering::Relaxed) {
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    if let Some(mib) = peak_rss_mib_of(&pid.to_string()) {
                        *peak = peak.max(mib);
                    }
                }
                thread::sleep(Duration::from_millis(50));
            }
            peaks
        });
        Self { stop, handle }
    }

    fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The `weft run` processes of a plan; stopped (SIGINT, then kill) on drop.
struct Processes(Vec<Child>);

impl Processes {
    fn check_running(&mut self) -> anyhow::Result<()> {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a weft run process exited early ({status}); see its log");
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_plan(
    plan: &Plan,
    weft: &Path,
    broker: &str,
    workload: &Workload,
    events: u64,
    (warm_out, main_out): (u64, u64),
    dir: &Path,
) -> anyhow::Result<VariantResult> {
    let mut counter = Counter::new(broker, &plan.output)?;
    let mut children = Vec::new();
    for pipeline in &plan.pipelines {
        let log = dir.join(format!(
            "{}.log",
            pipeline
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let log = std::fs::File::create(&log).context("creating a process log")?;
        children.push(
            Command::new(weft)
                .arg("run")
                .arg(pipeline)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", weft.display()))?,
        );
    }
    let mut processes = Processes(children);
    let sampler = RssSampler::start(processes.0.iter().map(Child::id).collect());
    let producer = EventProducer::new(broker)?;

    producer.send(&plan.input, workload, WARM_UP)?;
    counter.wait_for(warm_out, &mut processes)?;

    let started = Instant::now();
    producer.send(&plan.input, workload, events)?;
    let last = counter.wait_for(warm_out + main_out, &mut processes)?;
    let elapsed = last.duration_since(started);
    drop(processes);
    let peaks = sampler.finish();

    let mut result = VariantResult {
        variant: plan.variant.into(),
        batch: 1024,
        stages: plan.stages,
        events_in: events,
        events_out: main_out,
        elapsed_s: elapsed.as_secs_f64(),
        peak_rss_mib: Some(peaks.iter().sum()),
        process_rss_mib: if peaks.len() > 1 { peaks } else { Vec::new() },
        note: Some(format!(
            "{} weft run process(es), tansu in-memory broker, {PARTITIONS} partitions, bare Avro; \
             from the first event produced to the last consumed at the end",
            plan.pipelines.len()
        )),
        ..VariantResult::default()
    };
    result.finish_rates();
    Ok(result)
}

/// Produces the workload's events to a topic.
struct EventProducer {
    producer: BaseProducer,
}

impl EventProducer {
    fn new(broker: &str) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", broker)
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .context("creating the producer")?;
        Ok(Self { producer })
    }

    fn send(&self, topic: &str, workload: &Workload, events: u64) -> anyhow::Result<()> {
        let values = workload.values();
        for i in 0..events {
            let value = &values[(i % values.len() as u64) as usize];
            let mut record: BaseRecord<'_, (), [u8]> =
                BaseRecord::to(topic).payload(value.as_slice());
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(e).context("producing an event"),
                }
            }
            self.producer.poll(Duration::ZERO);
        }
        self.producer
            .flush(Duration::from_secs(120))
            .context("flushing the producer")
    }
}

/// Counts the events reaching a topic.
struct Counter {
    consumer: BaseConsumer,
    seen: u64,
}

impl Counter {
    fn new(broker: &str, topic: &str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker)
            .set("group.id", format!("bench-counter-{topic}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .context("creating the counting consumer")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        Ok(Self { consumer, seen: 0 })
    }

    /// Waits until `total` events have been seen; returns when the last one arrived.
    fn wait_for(&mut self, total: u64, processes: &mut Processes) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        let mut last = Instant::now();
        let mut checked = Instant::now();
        while self.seen < total {
            if let Some(message) = self.consumer.poll(Duration::from_millis(100)) {
                message.context("consuming the output")?;
                self.seen += 1;
                last = Instant::now();
            }
            if checked.elapsed() > Duration::from_secs(1) {
                processes.check_running()?;
                checked = Instant::now();
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {total} events came out within {PHASE_TIMEOUT:?}",
                    self.seen
                );
            }
        }
        Ok(last)
    }
}
