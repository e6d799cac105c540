//! A `weft serve` daemon for end-to-end tests: the real binary over `<dir>/weftd.toml` and
//! `<dir>/pipelines/`, on a free port of 127.0.0.1, driven through its admin API with a
//! bearer token. Its stdout and stderr go to `<dir>/serve.log`, which every failed wait
//! prints; dropping it sends SIGTERM (SIGKILL past a bound), so no daemon outlives its test.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka::{free_port, terminate};
use crate::weft_command;

/// The admin token every test daemon accepts for writes.
pub const ADMIN_TOKEN: &str = "weft-serve-test-admin-token";

/// Polls `ready` every 50 ms until it holds (true) or `within` passes (false, after one last
/// look).
pub fn wait_until(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

/// What a test daemon is started with besides its folder.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// TOML appended to the generated `weftd.toml` (tables such as `[registry]`,
    /// `[upgrades]`); the generated part sets `listen`, `pipelines`, `data_dir`,
    /// `admin_tokens` and a fast `[restart]` unless this gives its own.
    pub weftd: String,
    /// Arguments after `serve` (e.g. `["--grace", "60s"]`).
    pub args: Vec<String>,
    /// Environment variables of the process.
    pub env: Vec<(String, String)>,
}

impl Options {
    /// Options with this TOML appended to `weftd.toml`.
    pub fn weftd(toml: impl Into<String>) -> Self {
        Self {
            weftd: toml.into(),
            ..Self::default()
        }
    }
}

/// A running `weft serve`.
pub struct Daemon {
    child: Option<Child>,
    options: Options,
    url: String,
    dir: PathBuf,
    http: reqwest::blocking::Client,
}

impl Daemon {
    /// Starts a daemon in `dir` whose `weftd.toml` adds `weftd` (TOML tables) to the
    /// generated keys; returns once `/health` answers.
    pub fn start(dir: &Path, weftd: &str) -> Self {
        Self::start_with(dir, Options::weftd(weftd))
    }

    /// Starts a daemon in `dir` (created with its `pipelines/` folder when missing, pipeline
    /// files already there are run); returns once `/health` answers.
    pub fn start_with(dir: &Path, options: Options) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir.join("pipelines")).expect("pipelines folder");
        let restart = if options.weftd.contains("[restart]") {
            ""
        } else {
            "\n[restart]\ninitial_ms = 200\nmax_ms = 2000\n"
        };
        std::fs::write(
            dir.join("weftd.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\npipelines = \"pipelines\"\ndata_dir = \"data\"\n\
                 admin_tokens = [\"{ADMIN_TOKEN}\"]\n{restart}\n{}\n",
                options.weftd
            ),
        )
        .expect("write weftd.toml");
        let mut daemon = Self {
            child: None,
            options,
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("daemon log");
        let mut command = weft_command();
        command
            .arg("serve")
            .args(&self.options.args)
            .arg("--config")
            .arg(self.dir.join("weftd.toml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("start weft serve"));
        self.wait_for("/health to answer", Duration::from_secs(60), || {
            self.http
                .get(format!("{}/health", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The daemon's folder (`weftd.toml`, `pipelines/`, `data/`, `serve.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the pipelines folder.
    pub fn pipelines_dir(&self) -> PathBuf {
        self.dir.join("pipelines")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    /// Everything the daemon wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Polls `done` until it holds; past `within` the test fails naming `what`, with the
    /// daemon's log.
    pub fn wait_for(&self, what: &str, within: Duration, done: impl FnMut() -> bool) {
        if !wait_until(within, done) {
            panic!(
                "timed out after {within:?} waiting for {what}; daemon log:\n{}",
                self.log()
            );
        }
    }

    /// `GET path`: the status code and the JSON body (`Null` when it is not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.url)))
    }

    /// `PUT path` with a JSON body and the admin token.
    pub fn put_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(
            self.http
                .put(format!("{}{path}", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .json(body),
        )
    }

    /// `POST path` with a JSON body and the admin token.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .json(body),
        )
    }

    /// `PUT /v1/pipelines/{name}` with a pipeline file's TOML text; must be accepted.
    pub fn put_pipeline(&self, name: &str, toml: &str) -> Value {
        let (code, body) = self.send(
            self.http
                .put(format!("{}/v1/pipelines/{name}", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/toml")
                .body(toml.to_string()),
        );
        assert!(
            (200..300).contains(&code),
            "PUT pipeline {name}: {code} {body}\ndaemon log:\n{}",
            self.log()
        );
        body
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let response = request.send().unwrap_or_else(|e| {
            panic!(
                "the daemon did not answer: {e}\ndaemon log:\n{}",
                self.log()
            )
        });
        let code = response.status().as_u16();
        (code, response.json().unwrap_or(Value::Null))
    }

    /// `GET /v1/pipelines/{name}`: the pipeline's detail (status, config, stages, ...).
    pub fn pipeline(&self, name: &str) -> Value {
        let (code, detail) = self.get(&format!("/v1/pipelines/{name}"));
        assert_eq!(
            code,
            200,
            "GET pipeline {name}: {detail}\ndaemon log:\n{}",
            self.log()
        );
        detail
    }

    /// The `status` object of a pipeline's detail.
    pub fn status(&self, name: &str) -> Value {
        self.pipeline(name)["status"].clone()
    }

    /// The pipeline's state (`RUNNING`, `FAILED`, ...).
    pub fn state(&self, name: &str) -> String {
        self.status(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str, within: Duration) {
        if !wait_until(within, || self.state(name) == state) {
            panic!(
                "{name} not {state} within {within:?}: {}\ndaemon log:\n{}",
                self.pipeline(name),
                self.log()
            );
        }
    }

    /// Waits until `/ready` answers 200 (every pipeline started).
    pub fn wait_ready(&self, within: Duration) {
        self.wait_for("/ready to answer 200", within, || {
            self.get("/ready").0 == 200
        });
    }

    /// The value of one sample of `/metrics`, e.g.
    /// `weft_pipeline_swaps_total{pipeline="gen"}`; `None` when absent.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        text.lines().find_map(|line| {
            line.strip_prefix(sample)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
    }

    /// SIGTERM; the exit status if it stopped within `within` (SIGKILL past it: `None`).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, within)
    }

    /// SIGKILL, as a crash would: nothing flushed, nothing committed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again over the same folder, data dir and port (after
    /// [`Daemon::kill`] or [`Daemon::terminate`]); returns once `/health` answers.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(20));
        }
    }
}
