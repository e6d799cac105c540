//! `weft serve` end to end: the real binary with a folder of pipelines, driven through its
//! admin API and the `weft status` / `weft pipelines` commands while an independent producer
//! writes to a real broker (tansu) and an independent consumer reads the output back.
//!
//! Needs tansu (`scripts/setup.sh --kafka`), the plugins (`scripts/build-plugins.sh`) and the
//! `weft` binary (`cargo build -p weft-host --bin weft`). Missing pieces fail, never skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum};
use prometheus_parse::{LineInfo, Scrape};
use weft_tests::kafka::{
    Broker, Collector, Received, Storage, TestProducer, free_port, tally, terminate, titles,
};
use weft_tests::{plugin, title_schema, titles_jsonl, toml_path, weft_command};

const TOKEN: &str = "serve-test-admin-token";

/// A `weft serve` process over `<dir>/weftd.toml` and `<dir>/pipelines/`.
struct Serve {
    child: Option<Child>,
    url: String,
    dir: PathBuf,
    http: reqwest::blocking::Client,
}

impl Serve {
    /// Writes weftd.toml (a free port, fast retries of failed pipelines) and starts the
    /// daemon; returns once `/health` answers.
    fn start(dir: &Path) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir.join("pipelines")).expect("pipelines folder");
        std::fs::write(
            dir.join("weftd.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\npipelines = \"pipelines\"\ndata_dir = \"data\"\n\
                 admin_tokens = [\"{TOKEN}\"]\n\n[restart]\ninitial_ms = 200\nmax_ms = 2000\n"
            ),
        )
        .expect("weftd.toml");
        let log = std::fs::File::create(dir.join("serve.log")).expect("daemon log");
        let child = weft_command()
            .args(["-v", "serve", "--config"])
            .arg(dir.join("weftd.toml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start weft serve");
        let serve = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("http client"),
        };
        let up = wait_until(Duration::from_secs(60), || {
            serve
                .http
                .get(format!("{}/health", serve.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(
            up,
            "weft serve did not answer /health within 60s; log:\n{}",
            serve.log()
        );
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .expect("GET answered");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// PUT a pipeline file through the API.
    fn put(&self, name: &str, toml: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .put(format!("{}/v1/pipelines/{name}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/toml")
            .body(toml.to_string())
            .send()
            .expect("PUT answered");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// A pipeline's status from `GET /v1/pipelines/{name}`.
    fn status(&self, name: &str) -> serde_json::Value {
        let (code, detail) = self.get(&format!("/v1/pipelines/{name}"));
        assert_eq!(code, 200, "GET {name}: {detail}\nlog:\n{}", self.log());
        detail["status"].clone()
    }

    fn events_out(&self, name: &str) -> u64 {
        self.status(name)["events_out"].as_u64().unwrap_or(0)
    }

    /// Waits (bounded) until `name` is in `state`.
    fn wait_state(&self, name: &str, state: &str, within: Duration) {
        let reached = wait_until(within, || self.status(name)["state"] == state);
        assert!(
            reached,
            "{name} not {state} within {within:?}: {}\nlog:\n{}",
            self.status(name),
            self.log()
        );
    }

    /// `/metrics`, parsed by a Prometheus text parser; every sample line must parse.
    fn metrics(&self) -> Metrics {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .and_then(|r| r.text())
            .expect("GET /metrics");
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match LineInfo::parse(line) {
                LineInfo::Sample { value, .. } => assert!(
                    value.parse::<f64>().is_ok() || value.eq_ignore_ascii_case("nan"),
                    "sample value does not parse: {line}"
                ),
                other => panic!("not a sample line: {line} ({other:?})"),
            }
        }
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
        assert!(
            !scrape.samples.is_empty(),
            "no samples in /metrics:\n{text}"
        );
        Metrics { scrape, text }
    }

    /// `weft ARGS` against this daemon, with the admin URL and token from the environment.
    fn cli(&self, args: &[&str]) -> Output {
        weft_command()
            .args(args)
            .env("WEFT_ADMIN_URL", &self.url)
            .env("WEFT_ADMIN_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output()
            .expect("run weft")
    }

    /// `weft ARGS`, which must succeed; its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "weft {args:?} failed: {}{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM; the exit status if it stopped within the bound.
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, Duration::from_secs(60))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    /// The value of `metric` with these labels (0 when absent: a counter not yet touched).
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    fn pipeline(&self, metric: &str, pipeline: &str) -> f64 {
        self.value(metric, &[("pipeline", pipeline)])
    }
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

/// Kafka → mask(`field`) → Kafka, bare Avro datums, consumer group `serve-k2k`.
fn kafka_pipeline(brokers: &str, field: &str) -> String {
    format!(
        r#"[[source]]
kind = "kafka"
brokers = "{brokers}"
topics = ["titles-in"]
group = "serve-k2k"
format = "avro"
schema = {schema}

[source.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500

[[processor]]
plugin = {mask}
params = {{ fields = "{field}" }}

[sink]
kind = "kafka"
brokers = "{brokers}"
topic = "titles-out"
format = "avro"

[limits]
batch_size = 100
linger_ms = 20
"#,
        schema = toml_path(&title_schema()),
        mask = toml_path(&plugin("mask")),
    )
}

/// A generator of titles at `rate` per second (`None`: as fast as it goes) into `sink`.
fn generator_pipeline(rate: Option<f64>, sink: &str, extra: &str) -> String {
    let rate = rate.map(|r| format!("rate = {r}\n")).unwrap_or_default();
    format!(
        "[[source]]\nkind = \"generate\"\nschema = {}\ncount = 1000000000000\n{rate}\n{sink}\n{extra}",
        toml_path(&title_schema())
    )
}

/// Id, owner name and owner email of a title written by the sink as a bare datum.
fn decode(schema: &Schema, m: &Received) -> (i64, String, String) {
    let value = from_avro_datum(schema, &mut &m.value[..], None).expect("output decodes");
    let Value::Record(fields) = value else {
        panic!("output is not a record")
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let Some(Value::Long(id)) = field("id") else {
        panic!("no long id")
    };
    let Some(Value::Record(owner)) = field("owner") else {
        panic!("no owner record")
    };
    let text = |name: &str| match owner.iter().find(|(n, _)| n == name) {
        Some((_, Value::String(s))) => s.clone(),
        other => panic!("owner.{name}: {other:?}"),
    };
    (id, text("name"), text("email"))
}

/// Which chain wrote an event: v1 masks the email, v2 the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    V1,
    V2,
}

fn chain_of(name: &str, email: &str) -> Chain {
    match (name == "***", email == "***") {
        (false, true) => Chain::V1,
        (true, false) => Chain::V2,
        _ => panic!("neither or both fields masked: name {name:?}, email {email:?}"),
    }
}

/// Reads `out` until it holds `n` messages, failing with the daemon's log after `within`.
fn wait_for_messages(out: &mut Collector, n: usize, within: Duration, serve: &Serve) {
    let arrived = out.wait_for(within, |m| m.len() >= n);
    assert!(
        arrived,
        "{} of {n} arrived\nlog:\n{}",
        out.messages.len(),
        serve.log()
    );
}

/// The issue's "Done when": two pipelines from a folder, a third added through the API, a
/// file edited while events flow (swapped at a batch boundary without leaving the consumer
/// group), one paused in the middle of a backlog and resumed, one deleted; every produced
/// event is in the output exactly once, and /metrics agrees with what was counted.
#[test]
fn a_daemon_runs_changes_pauses_and_deletes_pipelines_without_losing_an_event() {
    let broker = Broker::start(Storage::Sqlite);
    let brokers = broker.address();
    broker.create_topic("titles-in", 3);
    broker.create_topic("titles-out", 3);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();

    // Two pipelines in the folder before the daemon starts.
    const FILE_EVENTS: u64 = 500;
    std::fs::write(dir.join("titles.jsonl"), titles_jsonl(FILE_EVENTS)).expect("input file");
    std::fs::create_dir_all(dir.join("pipelines")).expect("folder");
    std::fs::write(
        dir.join("pipelines/k2k.toml"),
        kafka_pipeline(&brokers, "owner.email"),
    )
    .expect("k2k.toml");
    std::fs::write(
        dir.join("pipelines/files.toml"),
        format!(
            "[[source]]\nkind = \"jsonl\"\npath = {}\nschema = {}\n\n[sink]\nkind = \"jsonl\"\npath = {}\n",
            toml_path(&dir.join("titles.jsonl")),
            toml_path(&title_schema()),
            toml_path(&dir.join("files-out.jsonl")),
        ),
    )
    .expect("files.toml");
    let mut serve = Serve::start(dir);
    let producer = TestProducer::new(&brokers);
    let schema = titles();
    let mut out = Collector::new(&brokers, "titles-out");

    // 1. Both run: the Kafka one carries the first 1000 events with chain v1.
    producer.titles(
        "titles-in",
        1..=1000,
        weft_tests::kafka::Framing::Raw,
        false,
    );
    wait_for_messages(&mut out, 1000, Duration::from_secs(120), &serve);
    serve.wait_state("files", "STOPPED", Duration::from_secs(60));
    let files_out = std::fs::read_to_string(dir.join("files-out.jsonl")).expect("file output");
    assert_eq!(
        files_out.lines().count() as u64,
        FILE_EVENTS,
        "file → file, once each"
    );

    // 2. A third pipeline through the API.
    let (code, body) = serve.put(
        "gen",
        &generator_pipeline(
            Some(200.0),
            &format!(
                "[sink]\nkind = \"jsonl\"\npath = {}\n",
                toml_path(&dir.join("gen.jsonl"))
            ),
            "",
        ),
    );
    assert_eq!(
        (code, body["outcome"].as_str()),
        (201, Some("created")),
        "{body}"
    );
    assert!(
        dir.join("pipelines/gen.toml").is_file(),
        "the API writes through to the folder"
    );
    assert!(
        wait_until(Duration::from_secs(60), || serve.events_out("gen") > 0),
        "gen never wrote: {}\nlog:\n{}",
        serve.status("gen"),
        serve.log()
    );

    // 3. Edit k2k's file while events flow: the chain is swapped, the group kept.
    let before = serve.metrics();
    let rebalances_before = before.pipeline("weft_kafka_rebalances_total", "k2k");
    let swaps_before = before.pipeline("weft_pipeline_swaps_total", "k2k");
    assert!(
        rebalances_before >= 1.0,
        "k2k was assigned partitions:\n{}",
        before.text
    );
    let flowing = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let producer = TestProducer::new(&brokers);
            for chunk in 0..10u64 {
                let first = 1001 + chunk * 100;
                producer.titles(
                    "titles-in",
                    first..=first + 99,
                    weft_tests::kafka::Framing::Raw,
                    false,
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(
        dir.join("pipelines/k2k.toml"),
        kafka_pipeline(&brokers, "owner.name"),
    )
    .expect("edit k2k.toml");
    flowing.join().expect("producer thread");
    let swapped = wait_until(Duration::from_secs(60), || {
        serve.metrics().pipeline("weft_pipeline_swaps_total", "k2k") > swaps_before
    });
    assert!(
        swapped,
        "no swap of k2k after its file changed\nlog:\n{}",
        serve.log()
    );
    wait_for_messages(&mut out, 2000, Duration::from_secs(120), &serve);
    let after_swap = serve.metrics();
    assert_eq!(
        after_swap.pipeline("weft_kafka_rebalances_total", "k2k"),
        rebalances_before,
        "the swap kept the group membership: no new assignment"
    );
    assert_eq!(
        after_swap.pipeline("weft_pipeline_swaps_total", "k2k"),
        swaps_before + 1.0,
        "one edit, one swap"
    );

    // 4. Pause k2k with the CLI while it works through a backlog (every step then reads a
    // full batch and leaves it in flight), so the pause lands with a batch in flight:
    // closing completes and counts it (the metrics below must still match the topic).
    // Nothing moves while paused, all of it after resuming.
    const BACKLOG_END: u64 = 2000 + 20_000;
    const TOTAL: u64 = BACKLOG_END + 200;
    let backlog = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            TestProducer::new(&brokers).titles(
                "titles-in",
                2001..=BACKLOG_END,
                weft_tests::kafka::Framing::Raw,
                false,
            );
        })
    };
    wait_for_messages(&mut out, 2100, Duration::from_secs(60), &serve);
    let paused = serve.cli_ok(&["pipelines", "pause", "k2k"]);
    assert_eq!(paused.trim(), "k2k: PAUSED");
    let status = serve.cli_ok(&["status"]);
    println!("weft status while k2k is paused:\n{status}");
    let k2k_line = status
        .lines()
        .find(|l| l.starts_with("k2k "))
        .expect("k2k row");
    assert!(k2k_line.contains("PAUSED"), "{status}");
    // What the pause flushed is in the topic; nothing after it.
    out.poll(Duration::from_secs(2));
    let at_pause = out.messages.len();
    backlog.join().expect("producer thread");
    assert!(
        (at_pause as u64) < BACKLOG_END,
        "the pause landed after the backlog: {at_pause} of {BACKLOG_END} were out"
    );
    producer.titles(
        "titles-in",
        BACKLOG_END + 1..=TOTAL,
        weft_tests::kafka::Framing::Raw,
        false,
    );
    out.poll(Duration::from_secs(3));
    assert_eq!(
        out.messages.len(),
        at_pause,
        "a paused pipeline wrote events"
    );
    let resumed = serve.cli_ok(&["pipelines", "resume", "k2k"]);
    assert!(resumed.starts_with("k2k: "), "{resumed}");
    wait_for_messages(&mut out, TOTAL as usize, Duration::from_secs(120), &serve);

    // 5. Delete gen with the CLI: gone from the daemon and the folder.
    assert_eq!(
        serve.cli_ok(&["pipelines", "delete", "gen"]).trim(),
        "gen: deleted"
    );
    assert!(!dir.join("pipelines/gen.toml").exists());
    assert_eq!(serve.get("/v1/pipelines/gen").0, 404);
    let list = serve.cli_ok(&["pipelines", "list"]);
    assert!(!list.contains("gen"), "{list}");
    let refused = serve.cli(&["pipelines", "pause", "gen"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pipeline `gen` not found"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Anything written late would show up now.
    out.poll(Duration::from_secs(2));
    let decoded: Vec<(i64, String, String)> =
        out.messages.iter().map(|m| decode(&schema, m)).collect();
    let t = tally(decoded.iter().map(|d| d.0), 1..=TOTAL as i64);
    println!("serve: produced {TOTAL}, output {t:?}");
    assert!(t.missing.is_empty() && t.unexpected.is_empty(), "{t:?}");
    // At-least-once allows a duplicate only for a batch written but not committed: a kill,
    // a crash, a sink that timed out. The swap and the pause both finish, write and commit
    // their batch first and nothing was killed, so every event is there exactly once.
    assert_eq!(t.duplicates, 0, "no fault, so no duplicates: {t:?}");

    // The swap happened between batches: per partition, v1 until a point, v2 after it.
    let mut by_chain = BTreeMap::new();
    let mut switched: BTreeMap<i32, bool> = BTreeMap::new();
    for (m, (id, name, email)) in out.messages.iter().zip(&decoded) {
        let chain = chain_of(name, email);
        *by_chain.entry(format!("{chain:?}")).or_insert(0) += 1;
        if *id <= 1000 {
            assert_eq!(chain, Chain::V1, "title {id} was written before the edit");
        }
        if *id > 2000 {
            assert_eq!(chain, Chain::V2, "title {id} was produced after the swap");
        }
        let seen_v2 = switched.entry(m.partition).or_insert(false);
        assert!(
            !(*seen_v2 && chain == Chain::V1),
            "partition {}: title {id} went through v1 after v2 had started",
            m.partition
        );
        *seen_v2 |= chain == Chain::V2;
    }
    println!("serve: events per chain {by_chain:?}");

    // /metrics agrees with what the consumer counted and with the status API.
    let metrics = serve.metrics();
    let k2k_out = metrics.pipeline("weft_pipeline_events_out_total", "k2k");
    let k2k_in = metrics.pipeline("weft_pipeline_events_in_total", "k2k");
    println!(
        "serve: metrics k2k in {k2k_in} out {k2k_out}; files out {}",
        metrics.pipeline("weft_pipeline_events_out_total", "files")
    );
    assert_eq!(k2k_out, t.received as f64, "k2k events out vs the topic");
    assert_eq!(k2k_in, TOTAL as f64, "k2k events in");
    assert_eq!(
        metrics.pipeline("weft_pipeline_events_out_total", "files"),
        FILE_EVENTS as f64
    );
    assert_eq!(
        serve.events_out("k2k") as f64,
        k2k_out,
        "status API vs /metrics"
    );
    assert_eq!(
        metrics.value(
            "weft_stage_events_in_total",
            &[("pipeline", "k2k"), ("stage", "1")]
        ),
        TOTAL as f64,
        "the mask stage saw every event once, across both chains"
    );
    assert_eq!(
        metrics.pipeline("weft_pipeline_dead_letters_total", "k2k"),
        0.0
    );

    let status = serve.terminate().expect("weft serve stops on SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}\nlog:\n{}",
        serve.log()
    );
}

/// A processor that loops on every event (each call ends at its deadline, a trap) and a
/// pipeline whose sink broker is down (its sink holds the batch and retries: it neither
/// commits nor moves on, but its status says what it waits for and `/ready` names it) leave
/// the other pipelines running. The rates are
/// printed, not asserted: a shared machine makes them noisy.
#[test]
fn a_trapping_plugin_and_a_dead_sink_leave_the_other_pipelines_running() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    std::fs::create_dir_all(dir.join("pipelines")).expect("folder");
    std::fs::write(
        dir.join("pipelines/steady.toml"),
        generator_pipeline(None, "[sink]\nkind = \"null\"\n", ""),
    )
    .expect("steady.toml");
    let serve = Serve::start(dir);
    serve.wait_state("steady", "RUNNING", Duration::from_secs(60));
    let window = Duration::from_secs(3);
    let rate = |name: &str| {
        let start = serve.events_out(name);
        let t = Instant::now();
        std::thread::sleep(window);
        (serve.events_out(name) - start) as f64 / t.elapsed().as_secs_f64()
    };
    let alone = rate("steady");

    // A processor that spins on every event: every call is cut at the 50 ms deadline.
    let (code, body) = serve.put(
        "trapper",
        &generator_pipeline(
            None,
            "[sink]\nkind = \"null\"\n",
            &format!(
                "[[processor]]\nplugin = {}\nparams = {{ mode = \"loop\" }}\n\n\
                 [dead_letter]\nkind = \"jsonl\"\npath = {}\n\n[limits]\ndeadline_ms = 50\nbatch_size = 8\n",
                toml_path(&plugin("hostile")),
                toml_path(&dir.join("trapper-dead.jsonl")),
            ),
        ),
    );
    assert_eq!(code, 201, "{body}");
    // A sink whose broker is not there: nothing listens on that port.
    let dead_broker = format!("127.0.0.1:{}", free_port());
    let (code, body) = serve.put(
        "deadsink",
        &generator_pipeline(
            Some(1000.0),
            &format!(
                "[sink]\nkind = \"kafka\"\nbrokers = \"{dead_broker}\"\ntopic = \"nowhere\"\nformat = \"avro\"\n\n\
                 [sink.properties]\n\"message.timeout.ms\" = 2000\n"
            ),
            "",
        ),
    );
    assert_eq!(code, 201, "{body}");

    let trapped = wait_until(Duration::from_secs(60), || {
        serve
            .metrics()
            .value("weft_stage_traps_total", &[("pipeline", "trapper")])
            >= 2.0
    });
    assert!(
        trapped,
        "the looping processor never trapped\nlog:\n{}",
        serve.log()
    );
    // The dead sink holds its batch and retries it; it never gets an event out.
    let stuck = wait_until(Duration::from_secs(60), || {
        serve.log().contains("to nowhere failed")
    });
    assert!(
        stuck,
        "the dead sink never reported a failed delivery\nlog:\n{}",
        serve.log()
    );
    // Its thread is blocked inside the sink's retries, yet the status and /ready say why.
    let named = wait_until(Duration::from_secs(30), || {
        serve.status("deadsink")["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("waiting: sink kafka nowhere: "))
    });
    assert!(
        named,
        "the dead sink's stall is not in its status: {}\nlog:\n{}",
        serve.status("deadsink"),
        serve.log()
    );
    let (code, ready) = serve.get("/ready");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(
        ready["not_ready"],
        serde_json::json!(["deadsink"]),
        "{ready}"
    );
    let table = serve.cli_ok(&["status"]);
    assert!(
        table.contains("waiting: sink kafka nowhere") && table.contains("not ready: deadsink"),
        "{table}"
    );

    let with_faults = rate("steady");
    let trapper = serve.status("trapper");
    let deadsink = serve.status("deadsink");
    println!(
        "steady: {alone:.0} events/s alone, {with_faults:.0} events/s beside a looping plugin \
         ({} traps, state {}) and a dead sink (state {}, restarts {}, last error {})",
        serve
            .metrics()
            .value("weft_stage_traps_total", &[("pipeline", "trapper")]),
        trapper["state"],
        deadsink["state"],
        deadsink["restarts"],
        deadsink["last_error"]
    );
    assert!(
        with_faults > 0.0,
        "steady stopped moving beside the faulty pipelines"
    );
    assert_eq!(serve.status("steady")["state"], "RUNNING");
    // Traps are per event: the pipeline itself keeps running and sends them to dead letters.
    assert_eq!(trapper["state"], "RUNNING", "{trapper}");
    assert!(
        trapper["dead_letters"].as_u64().unwrap_or(0) > 0,
        "{trapper}"
    );
    assert_eq!(
        deadsink["events_out"], 0,
        "nothing reached a broker that is not there: {deadsink}"
    );
}
