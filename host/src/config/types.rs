//! The pipeline file's types. Config types are separate from runtime types: building a
//! `Pipeline` (in the `pipeline` module) turns these into running parts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::kafka::{KafkaDeadLetterConfig, KafkaSinkConfig, KafkaSourceConfig};
use super::settings::Settings;
use super::value::ParamValue;

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// `[pipeline]`: name and description.
    #[serde(default)]
    pub pipeline: PipelineMeta,
    /// `[[source]]`: one or more sources; several are read as their union.
    #[serde(rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// `[[processor]]`: the chain, in order. May be empty (a plain copy).
    #[serde(rename = "processor", default)]
    pub processors: Vec<ProcessorConfig>,
    /// `[sink]`: where processed events go.
    pub sink: SinkConfig,
    /// `[dead_letter]`: where rejected and poison events go (default: JSON lines on stderr).
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// `[limits]`: per-processor and batching bounds.
    #[serde(default)]
    pub limits: Limits,
    /// `[registry]`: where `name@version` plugin references are resolved.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// The pipeline's settings once settled by the loader (flag > environment > this file >
    /// defaults): the registry (URL and token) and cache folder a run uses. A Kafka table's
    /// brokers and registry are settled into the table itself.
    #[serde(skip)]
    pub settings: Settings,
}

/// `[pipeline]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineMeta {
    /// `name = "titles"`: shown in summaries and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `description = "..."`
    #[serde(default)]
    pub description: Option<String>,
}

/// A `[[source]]` table, selected by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// `kind = "avro-file"`, `path = "in.avro"`: an Avro object container file; its schema
    /// comes from the file header.
    AvroFile { path: PathBuf },
    /// `kind = "jsonl"`, `path = "in.jsonl"`, `schema = "title.avsc"`: one JSON object per
    /// line, encoded with the given Avro schema.
    Jsonl { path: PathBuf, schema: PathBuf },
    /// `kind = "stdin"`, `schema = "title.avsc"`: JSON lines read from standard input.
    Stdin { schema: PathBuf },
    /// `kind = "generate"`, `schema = "title.avsc"`, `count = 1000`: synthetic events that
    /// follow the schema. `rate` (events per second) paces them; `seed` makes them repeatable.
    Generate {
        schema: PathBuf,
        count: u64,
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default = "default_seed")]
        seed: u64,
    },
    /// `kind = "kafka"`, `topics = ["titles"]`, `group = "g"`: a consumer group; see
    /// [`KafkaSourceConfig`].
    Kafka(KafkaSourceConfig),
}

fn default_seed() -> u64 {
    42
}

impl SourceConfig {
    /// Short name for errors and summaries.
    pub fn describe(&self) -> String {
        match self {
            SourceConfig::AvroFile { path } => format!("avro-file {}", path.display()),
            SourceConfig::Jsonl { path, .. } => format!("jsonl {}", path.display()),
            SourceConfig::Stdin { .. } => "stdin".into(),
            SourceConfig::Generate { count, .. } => format!("generate ({count} events)"),
            SourceConfig::Kafka(k) => format!("kafka {} (group {})", k.topics_label(), k.group),
        }
    }
}

/// A `[[processor]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// `plugin = "plugins/filter.wasm"` (a path relative to the pipeline file) or
    /// `plugin = "filter@^0.1"` (resolved through the registry).
    pub plugin: String,
    /// `params = { condition = "year > 2000" }`: strings, numbers or booleans, passed to the
    /// processor's `configure` as strings. Checked against the parameters it declares.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
}

/// The `[sink]` table, selected by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    /// `kind = "avro-file"`, `path = "out.avro"`: an Avro object container file written with
    /// the chain's output schema.
    AvroFile { path: PathBuf },
    /// `kind = "jsonl"`, `path = "out.jsonl"`: one JSON object per line.
    Jsonl { path: PathBuf },
    /// `kind = "stdout"`: JSON lines on standard output.
    Stdout,
    /// `kind = "null"`: discard (counted in the summary).
    Null,
    /// `kind = "kafka"`, `topic = "out"`: an idempotent producer; see [`KafkaSinkConfig`].
    Kafka(KafkaSinkConfig),
}

impl SinkConfig {
    pub fn describe(&self) -> String {
        match self {
            SinkConfig::AvroFile { path } => format!("avro-file {}", path.display()),
            SinkConfig::Jsonl { path } => format!("jsonl {}", path.display()),
            SinkConfig::Stdout => "stdout".into(),
            SinkConfig::Null => "null".into(),
            SinkConfig::Kafka(k) => format!("kafka {}", k.topic),
        }
    }
}

/// The `[dead_letter]` table: JSON lines with the event, the processor and the reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// `kind = "jsonl"`, `path = "dead.jsonl"`
    Jsonl { path: PathBuf },
    /// `kind = "stderr"` (the default)
    #[default]
    Stderr,
    /// `kind = "kafka"`, `topic = "dead"`: the original bytes with `weft.*` headers; see
    /// [`KafkaDeadLetterConfig`].
    Kafka(KafkaDeadLetterConfig),
}

impl DeadLetterConfig {
    pub fn describe(&self) -> String {
        match self {
            DeadLetterConfig::Jsonl { path } => format!("jsonl {}", path.display()),
            DeadLetterConfig::Stderr => "stderr".into(),
            DeadLetterConfig::Kafka(k) => format!("kafka {}", k.topic),
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `memory_mb = 64`: linear-memory limit of each processor instance.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// `deadline_ms = 1000`: longest one processor call may take: `process` on a batch
    /// (then interrupted and its events isolated), instantiation and `configure`.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// `batch_size = 1024`: most events per batch (one component call per processor per batch).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `linger_ms = 100`: longest a partial batch waits for more events from a slow source.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// `max_depth = 64`: deepest nesting of records, arrays and maps an event may have
    /// (the host's Avro and JSON code recurses once per level). A deeper event goes to the
    /// dead-letter sink.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// `max_emit_per_event = 1000`: most events a processor may emit for one input event;
    /// past it the input event goes to the dead-letter sink and nothing it emitted moves on.
    #[serde(default = "default_max_emit_per_event")]
    pub max_emit_per_event: usize,
    /// `max_batch_output_mb = 128`: most bytes a processor's output for one batch may hold
    /// in host memory; input events whose output would pass it go to the dead-letter sink.
    #[serde(default = "default_max_batch_output_mb")]
    pub max_batch_output_mb: u64,
}

fn default_memory_mb() -> u64 {
    64
}
fn default_deadline_ms() -> u64 {
    1000
}
fn default_batch_size() -> usize {
    1024
}
fn default_linger_ms() -> u64 {
    100
}
fn default_max_depth() -> usize {
    weft_schema::datum::DEFAULT_MAX_DEPTH
}
fn default_max_emit_per_event() -> usize {
    weft_runtime::ChainLimits::default().max_emit_per_event
}
fn default_max_batch_output_mb() -> u64 {
    weft_runtime::ChainLimits::default().max_batch_output_bytes as u64 >> 20
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            deadline_ms: default_deadline_ms(),
            batch_size: default_batch_size(),
            linger_ms: default_linger_ms(),
            max_depth: default_max_depth(),
            max_emit_per_event: default_max_emit_per_event(),
            max_batch_output_mb: default_max_batch_output_mb(),
        }
    }
}

/// `[registry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `url = "http://127.0.0.1:8081"`; `--registry` and `WEFT_REGISTRY_URL` override it.
    pub url: String,
}
