//! Helpers shared by weft's end-to-end tests: the built plugins (re-exported from
//! `weft-test-components`, whose build script builds them), temporary pipelines, and
//! reading what a run wrote.

pub mod kafka;
pub mod serve;
pub mod stream;

use std::path::{Path, PathBuf};

use weft_host::config;
use weft_host::pipeline::{LocalOnly, Pipeline, RunOptions, RunSummary};
use weft_runtime::{Runtime, RuntimeOptions};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

pub use weft_test_components::{plugin, plugin_dir};

/// The demo's title schema.
pub fn title_schema() -> PathBuf {
    workspace().join("plugins/enrich/schemas/title.avsc")
}

/// The compiled-component cache the tests share, private to the test process's temp dir.
pub fn test_cache_dir() -> PathBuf {
    std::env::temp_dir().join("weft-test-cache")
}

/// A runtime with the tests' shared cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(test_cache_dir()),
    })
    .expect("runtime starts")
}

/// The built `weft` binary as a command, with the tests' shared compiled-component cache.
pub fn weft_command() -> std::process::Command {
    let mut command = std::process::Command::new(kafka::binary("weft", "weft-host"));
    command.env("WEFT_CACHE_DIR", test_cache_dir());
    command
}

/// A temp dir holding a pipeline file and what it reads and writes.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes `pipeline.toml`, builds and runs it.
    pub fn run(&self, pipeline_toml: &str) -> anyhow::Result<RunSummary> {
        self.run_on(pipeline_toml, &runtime())
    }

    /// [`Workdir::run`] on a runtime of the test's own (another compiler, another policy).
    pub fn run_on(&self, pipeline_toml: &str, runtime: &Runtime) -> anyhow::Result<RunSummary> {
        let path = self.write("pipeline.toml", pipeline_toml);
        let config = config::load_file(&path)?;
        let pipeline = Pipeline::build(config, runtime, &LocalOnly)?;
        Ok(pipeline.run(&RunOptions::default())?)
    }

    /// The isolation tests' pipeline: titles 1..=10 (written here) through
    /// `enrich → hostile(mode, when id=3) → project` into `out.jsonl`, dead letters into
    /// `dead.jsonl`, batches of 4, and `limits` as extra lines of the `[limits]` table.
    pub fn hostile_pipeline(&self, mode: &str, limits: &str) -> String {
        let input = self.write("titles.jsonl", &titles_jsonl(10));
        format!(
            r#"[[source]]
kind = "jsonl"
path = {input}
schema = {schema}

[[processor]]
plugin = {enrich}

[[processor]]
plugin = {hostile}
params = {{ mode = "{mode}", when = "id=3" }}

[[processor]]
plugin = {project}
params = {{ keep = "id,title_slug" }}

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
batch_size = 4
{limits}
"#,
            input = toml_path(&input),
            schema = toml_path(&title_schema()),
            enrich = toml_path(&plugin("enrich")),
            hostile = toml_path(&plugin("hostile")),
            project = toml_path(&plugin("project")),
        )
    }

    /// The JSON objects of a JSON-lines file written by a run.
    pub fn read_jsonl(&self, relative: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path(relative)).expect("output exists");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("valid JSON line"))
            .collect()
    }
}

/// Quotes a path for a TOML string.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `n` title events as JSON lines: ids 1..=n, years 1990 + id, ratings id % 10, and
/// kind `book` for ids divisible by 3.
pub fn titles_jsonl(n: u64) -> String {
    (1..=n)
        .map(|i| {
            let kind = ["book", "movie", "series"][(i % 3) as usize];
            serde_json::json!({
                "id": i,
                "title": format!("Title {i}"),
                "kind": kind,
                "year": 1990 + i,
                "rating": (i % 10) as f64,
                "genres": ["drama"],
                "owner": {"name": "Ada", "email": format!("ada{i}@example.com")},
            })
            .to_string()
                + "\n"
        })
        .collect()
}
