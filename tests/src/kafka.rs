//! Kafka test fixtures: a real tansu broker (sqlite storage, free port), the real
//! `weft-registry` and `weft` binaries, an independent rdkafka producer of title events and
//! a collector that reads a topic back. Everything listens on 127.0.0.1 and every wait is
//! bounded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use weft_host::io::json::json_to_avro;
use weft_host::registry::client::Client;

use crate::{target_dir, title_schema};

/// The token the test registry accepts for writes.
pub const REGISTRY_TOKEN: &str = "weft-kafka-test-token";

/// The tansu executable; panics (never skips) when it is not installed.
pub fn tansu() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    let in_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
    on_path
        .or(in_cargo.filter(|p| p.is_file()))
        .expect("tansu (the Kafka-compatible broker these tests run against) is not installed: run scripts/setup.sh --kafka")
}

/// A built binary of this workspace (`weft` or `weft-registry`), up to date with the code.
///
/// `cargo test -p weft-tests` builds no binary of another package, so the first call in a
/// test process runs cargo for both, as scripts/test.sh does (the same command, so a no-op
/// there): a fresh clone works, and no test runs a binary older than the code.
pub fn binary(name: &str, package: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "weft-host", "-p", "weft-registry", "--bins"])
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("cargo build -p weft-host -p weft-registry --bins: {status}"))
    });
    if let Err(err) = built {
        panic!("building {name} (package {package}) failed: {err}");
    }
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing after cargo built it",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ready()
}

/// Sends SIGTERM and waits (bounded) for the process to exit; SIGKILL after the bound.
pub fn terminate(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Where a test broker keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In memory: fast, gone when the broker stops. In tansu 0.6 it answers wrong high
    /// watermarks, and a group resuming mid-partition from a committed offset can stall, so
    /// only tests that read each topic straight through use it.
    Memory,
    /// A sqlite file in the broker's temp dir: survives a restart. tansu 0.6 reads records
    /// with headers very slowly from sqlite (about 35 s for 30,000 on two cores, starving
    /// group heartbeats), so tests over sqlite produce without headers.
    Sqlite,
}

impl Storage {
    fn engine(self) -> &'static str {
        match self {
            Storage::Memory => "memory://tansu/",
            // Relative to the working directory: the broker's temp dir.
            Storage::Sqlite => "sqlite://weft.db",
        }
    }
}

/// A tansu broker on a free port of 127.0.0.1.
pub struct Broker {
    port: u16,
    storage: Storage,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    pub fn start(storage: Storage) -> Self {
        let mut broker = Self {
            port: free_port(),
            storage,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            starts: 0,
        };
        broker.spawn();
        broker
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = File::create(self.dir.path().join(format!("tansu-{}.log", self.starts)))
            .expect("broker log");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &self.url()])
            .args(["--advertised-listener-url", &self.url()])
            .args(["--storage-engine", self.storage.engine()])
            .current_dir(self.dir.path())
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("CLUSTER_ID")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let address = self.address();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect(&address)
                .is_ok()),
            "tansu did not listen on {address} within 20s; log: {}",
            self.log()
        );
    }

    /// Everything the broker logged, for assertion messages.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("tansu-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Whether the running broker hit one of its own panics (tansu 0.6's sqlite storage
    /// sometimes does, e.g. "more or less than one row" while updating a group); its storage
    /// no longer answers, so only a restart helps.
    pub fn panicked(&self) -> bool {
        std::fs::read_to_string(self.dir.path().join(format!("tansu-{}.log", self.starts)))
            .is_ok_and(|log| log.contains("panicked at"))
    }

    /// Stops the broker (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10));
        }
        self.wait_closed();
    }

    /// Kills the broker (SIGKILL), as a crash or a lost machine would. With sqlite storage
    /// every acknowledged write is already committed to the file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.wait_closed();
    }

    fn wait_closed(&self) {
        let address = self.address();
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(&address)
                .is_err()),
            "the broker still listens on {address} after being stopped"
        );
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        assert_eq!(
            self.storage,
            Storage::Sqlite,
            "only a sqlite broker keeps its data"
        );
        self.stop();
        self.spawn();
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", name, "--broker", &self.url()])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "creating topic {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The real `weft-registry` on a free port with a throwaway data directory.
pub struct Registry {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(binary("weft-registry", "weft-registry"))
            .args(["--listen", "127.0.0.1:0", "--token", REGISTRY_TOKEN])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weft-registry");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("weft-registry prints its address within 30s");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from weft-registry: {line:?}"))
            .to_string();
        Self {
            child,
            url,
            _dir: dir,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, Some(REGISTRY_TOKEN.into())).expect("registry client")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How title values are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Confluent wire format with this schema id.
    Confluent(u32),
    /// Bare Avro datums.
    Raw,
}

/// The title schema the inputs are written with.
pub fn titles() -> Schema {
    let text = std::fs::read_to_string(title_schema()).expect("title schema");
    Schema::parse_str(&text).expect("valid title schema")
}

/// The key of title `id`.
pub fn title_key(id: u64) -> String {
    format!("title-{id}")
}

/// The Avro datum of title `id` (same shapes as [`crate::titles_jsonl`]).
pub fn title_datum(schema: &Schema, id: u64) -> Vec<u8> {
    let kind = ["book", "movie", "series"][(id % 3) as usize];
    let json = serde_json::json!({
        "id": id,
        "title": format!("Title {id}"),
        "kind": kind,
        "year": 1990 + (id % 40),
        "rating": (id % 10) as f64,
        "genres": ["drama"],
        "owner": {"name": "Ada", "email": format!("ada{id}@example.com")},
    });
    let value = json_to_avro(&json, schema).expect("title fits the schema");
    to_avro_datum(schema, value).expect("encode title")
}

/// Counts failed deliveries of the test producer.
#[derive(Default)]
struct Deliveries {
    failed: Arc<AtomicU64>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An independent producer (acks=all, idempotent, Java's key partitioner).
pub struct TestProducer {
    producer: BaseProducer<Deliveries>,
    failed: Arc<AtomicU64>,
}

impl TestProducer {
    pub fn new(brokers: &str) -> Self {
        let context = Deliveries::default();
        let failed = context.failed.clone();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create_with_context(context)
            .expect("test producer");
        Self { producer, failed }
    }

    pub fn send(&self, topic: &str, key: Option<&[u8]>, value: &[u8], headers: &[(&str, &str)]) {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(value).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(Instant::now() < deadline, "producing to {topic}: {e}");
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Waits until everything sent is acknowledged; panics if anything failed.
    pub fn flush(&self) {
        self.producer
            .flush(Duration::from_secs(60))
            .expect("test producer flushes within 60s");
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            0,
            "the test producer had failed deliveries"
        );
    }

    /// Produces titles `ids` keyed `title-<id>`, with a `trace` header `t<id>` when asked.
    pub fn titles(
        &self,
        topic: &str,
        ids: std::ops::RangeInclusive<u64>,
        framing: Framing,
        trace_headers: bool,
    ) {
        let schema = titles();
        let mut value = Vec::new();
        for id in ids {
            value.clear();
            let datum = title_datum(&schema, id);
            match framing {
                Framing::Confluent(schema_id) => {
                    value.push(0);
                    value.extend_from_slice(&schema_id.to_be_bytes());
                    value.extend_from_slice(&datum);
                }
                Framing::Raw => value.extend_from_slice(&datum),
            }
            let key = title_key(id);
            let trace = format!("t{id}");
            let headers: &[(&str, &str)] = if trace_headers {
                &[("trace", &trace)]
            } else {
                &[]
            };
            self.send(topic, Some(key.as_bytes()), &value, headers);
        }
        self.flush();
    }
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, Vec<u8>>,
}

impl Received {
    pub fn header(&self, key: &str) -> Option<String> {
        self.headers
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads every partition of a topic from the beginning, without a group, so it never
/// disturbs what it observes.
pub struct Collector {
    consumer: BaseConsumer,
    pub messages: Vec<Received>,
}

impl Collector {
    pub fn new(brokers: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "weft-test-collector")
            .set("enable.auto.commit", "false")
            .create()
            .expect("collector consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .expect("topic metadata");
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        assert!(partitions > 0, "topic {topic} has no partitions");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
                .expect("add partition");
        }
        consumer.assign(&tpl).expect("assign");
        Self {
            consumer,
            messages: Vec::new(),
        }
    }

    /// Reads what arrives within `window`.
    pub fn poll(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(wait) {
                Some(Ok(m)) => self.messages.push(Received {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                // A broker restarting: the consumer retries by itself.
                Some(Err(_)) => {}
                None if wait.is_zero() => return,
                None => {}
            }
        }
    }

    /// Reads until `done` holds for what was read (true) or `timeout` passes (false).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.poll(Duration::from_millis(250));
            if done(&self.messages) {
                return true;
            }
        }
        false
    }
}

/// The id of a title event as the sink wrote it.
pub fn title_id(schema: &Schema, value: &[u8], framing: Framing) -> i64 {
    let datum = match framing {
        Framing::Confluent(expected) => {
            assert_eq!(value[0], 0, "magic byte");
            let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
            assert_eq!(id, expected, "schema id in the framing");
            &value[5..]
        }
        Framing::Raw => value,
    };
    let Value::Record(fields) =
        from_avro_datum(schema, &mut &datum[..], None).expect("output decodes")
    else {
        panic!("output is not a record");
    };
    match fields.iter().find(|(name, _)| name == "id") {
        Some((_, Value::Long(id))) => *id,
        other => panic!("no long id in the output: {other:?}"),
    }
}

/// What a topic holds compared with what was expected: ids missing, and how many
/// duplicates a fault made.
#[derive(Debug)]
pub struct Tally {
    pub received: usize,
    pub distinct: usize,
    pub duplicates: usize,
    pub missing: Vec<i64>,
    pub unexpected: Vec<i64>,
}

pub fn tally(ids: impl IntoIterator<Item = i64>, expected: impl IntoIterator<Item = i64>) -> Tally {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut received = 0;
    for id in ids {
        *counts.entry(id).or_default() += 1;
        received += 1;
    }
    let expected: std::collections::BTreeSet<i64> = expected.into_iter().collect();
    Tally {
        received,
        distinct: counts.len(),
        duplicates: received - counts.len(),
        missing: expected
            .iter()
            .filter(|id| !counts.contains_key(id))
            .copied()
            .collect(),
        unexpected: counts
            .keys()
            .filter(|id| !expected.contains(id))
            .copied()
            .collect(),
    }
}

/// The group's committed offset on each partition of `topic` (`None` when it has none).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    (0..partitions)
        .map(
            |p| match offsets.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// The end offset of each partition of `topic`.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("watermark reader");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// A `weft run --json` process: stderr in `<name>.log`, the summary in `<name>.json`.
pub struct Host {
    child: Option<Child>,
    log: PathBuf,
    summary: PathBuf,
}

impl Host {
    /// Starts `weft -v run --quiet --json PIPELINE` in `dir`; `env` adds variables.
    pub fn start(dir: &Path, name: &str, pipeline: &Path, env: &[(&str, &str)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let summary = dir.join(format!("{name}.json"));
        let mut command = crate::weft_command();
        command
            .args(["-v", "run", "--quiet", "--json"])
            .arg(pipeline)
            .env("RUST_LOG", "info")
            .stdout(File::create(&summary).expect("summary file"))
            .stderr(File::create(&log).expect("host log"));
        for (k, v) in env {
            command.env(k, v);
        }
        Self {
            child: Some(command.spawn().expect("start weft")),
            log,
            summary,
        }
    }

    /// The run summary it printed on exit.
    pub fn summary(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.summary).unwrap_or_default();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("no JSON summary ({e}): {text:?}\nlog:\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has been assigned at least one partition (from its info log).
    pub fn has_partitions(&self) -> bool {
        self.log()
            .lines()
            .any(|l| l.contains(" assigned ") && !l.contains("no partitions"))
    }

    /// How many times the group took partitions from it (from its info log).
    pub fn rebalances(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" revoked "))
            .count()
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: no flush, no commit, no goodbye to the group.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as Ctrl-C or an orchestrator would; the exit status if it stopped in time.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, Duration::from_secs(30))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}
