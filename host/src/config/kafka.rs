//! The Kafka tables of a pipeline file: `[[source]] kind = "kafka"`, `[sink] kind = "kafka"`
//! and `[dead_letter] kind = "kafka"`, how each table's brokers and registry are settled
//! (flag > environment > the table > defaults, see `settings`) and the checks serde cannot
//! make. The loader walks the pipeline and calls them table by table.
//!
//! ```toml
//! [registry]
//! url = "http://127.0.0.1:8081"        # --registry and WEFT_REGISTRY_URL override it
//!
//! [[source]]
//! kind = "kafka"
//! brokers = "127.0.0.1:9092"           # --brokers and WEFT_KAFKA_BROKERS override it
//! topics = ["titles"]                  # or topic_pattern = "titles-.*"
//! group = "titles-enricher"
//! start = "committed"                  # "earliest" | "latest" | "committed"
//! format = "confluent"                 # or "avro" with schema = "title.avsc"
//! [source.properties]
//! "fetch.min.bytes" = 1                # any librdkafka consumer property
//!
//! [sink]
//! kind = "kafka"
//! topic = "titles-enriched"
//! register_schema = true               # subject defaults to "titles-enriched-value"
//!
//! [dead_letter]
//! kind = "kafka"
//! topic = "titles-dead"
//! ```
//!
//! Latency and idle cost come mostly from two client settings, both overridable in
//! `properties` (why each default, with the figures it was chosen on, in `io::kafka`):
//! - `fetch.wait.max.ms = 5` (consumer): how long a broker may hold a fetch. Apache Kafka
//!   answers as soon as there is data, so there it only sets how often an idle consumer asks
//!   (raise it to 100–500 for fewer idle fetches at no latency cost); tansu holds every fetch
//!   the whole wait, so there each hop costs 1.5 waits on average (2 for the lowest latency,
//!   at more idle CPU in weft and in tansu).
//! - `linger.ms = 1` (producer): each batch's acknowledgement waits it out; 0 sends many
//!   small requests and is slower, not faster.
//!
//! `fetch.min.bytes` stays librdkafka's 1 (a fetch returns with the first event). The
//! pipeline's `linger_ms` bounds how long a batch waits for its first event only: events
//! already fetched are processed at once, so it adds nothing at low rates, and an idle
//! pipeline wakes once per linger.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::issue::ConfigIssue;
use super::settings::{BROKERS_ENV, Layers, REGISTRY_ENV, RegistryAccess, Settings};
use super::value::ParamValue;

/// Where a consumer group starts reading a partition it has never read in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartPosition {
    /// From the beginning of each partition, whatever the group committed.
    Earliest,
    /// From the end of each partition: only events produced from now on.
    Latest,
    /// From the group's committed offsets; partitions without one start at the beginning.
    #[default]
    Committed,
}

/// How a Kafka message's value carries its Avro datum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro datum. Ids are
    /// resolved through the registry.
    #[default]
    Confluent,
    /// A bare Avro datum written with a schema pinned in the pipeline (`schema = "x.avsc"`).
    Avro,
}

/// `[[source]] kind = "kafka"`: a consumer group reading topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `brokers = "127.0.0.1:9092,127.0.0.1:9093"`; `--brokers` and `WEFT_KAFKA_BROKERS`
    /// override it. Settled by the loader: the run finds the value to use here.
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topics = ["titles"]`; or use `topic_pattern`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// `topic_pattern = "titles-.*"`: a regular expression over topic names, re-evaluated as
    /// topics appear.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// `group = "titles-enricher"`: the consumer group; hosts in one group share partitions.
    pub group: String,
    /// `start = "committed"` (default), `"earliest"` or `"latest"`.
    #[serde(default)]
    pub start: StartPosition,
    /// `format = "confluent"` (default) or `"avro"`.
    #[serde(default)]
    pub format: WireFormat,
    /// `schema = "title.avsc"`: the schema events are read as. Required with `format = "avro"`;
    /// with `"confluent"` every writer schema is resolved to it (default: the latest schema of
    /// `subject`).
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// `subject = "titles-value"`: where the reader schema is looked up when `schema` is not
    /// given (default `<topic>-value` for a single topic).
    #[serde(default)]
    pub subject: Option<String>,
    /// `[source.properties]`: librdkafka consumer properties, over weft's defaults
    /// (`"fetch.wait.max.ms" = 5`: see the module's notes on latency).
    #[serde(default)]
    pub properties: BTreeMap<String, ParamValue>,
    /// `commit_interval_ms = 1000` (default): how often offsets the sinks acknowledged are
    /// committed (asynchronously). They are also committed at once when partitions are
    /// revoked and on close; a host killed with SIGKILL re-reads at most this much more than
    /// the batch it was writing. `0` commits after every batch.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// The registry for schema ids and its token, settled by the loader (`--registry`,
    /// `WEFT_REGISTRY_URL`, `[registry] url`; `--token`, `WEFT_REGISTRY_TOKEN`).
    #[serde(skip)]
    pub registry: Option<RegistryAccess>,
    /// Not a key: the registry id of the reader schema to start with instead of the subject's
    /// latest. `weft serve` sets it to the schema a pipeline last ran with, so a rebuild does
    /// not take a version its upgrade check refused (the check moves it on when it can).
    #[serde(skip)]
    pub reader_id: Option<u32>,
}

fn default_commit_interval_ms() -> u64 {
    1000
}

impl KafkaSourceConfig {
    /// The topics or the pattern, for names and errors.
    pub fn topics_label(&self) -> String {
        match &self.topic_pattern {
            Some(pattern) => format!("/{pattern}/"),
            None => self.topics.join(","),
        }
    }

    /// The subject whose latest schema is the reader schema, when none is pinned.
    pub fn reader_subject(&self) -> Option<String> {
        self.subject
            .clone()
            .or_else(|| match self.topics.as_slice() {
                [topic] if self.topic_pattern.is_none() => Some(format!("{topic}-value")),
                _ => None,
            })
    }
}

/// `[sink] kind = "kafka"`: an idempotent producer writing one topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `brokers = "127.0.0.1:9092"`; `--brokers` and `WEFT_KAFKA_BROKERS` override it.
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topic = "titles-enriched"`
    pub topic: String,
    /// `subject = "titles-enriched-value"` (the default): where the output schema is registered
    /// or looked up.
    #[serde(default)]
    pub subject: Option<String>,
    /// `register_schema = true`: register the chain's output schema under `subject` at start
    /// (the registry checks its compatibility level); otherwise it must already be there.
    #[serde(default)]
    pub register_schema: bool,
    /// `format = "confluent"` (default) or `"avro"` (bare datums, no registry).
    #[serde(default)]
    pub format: WireFormat,
    /// `[sink.properties]`: librdkafka producer properties, over weft's defaults
    /// (idempotent, `acks = "all"`, `"linger.ms" = 1`: see the module's notes on latency).
    #[serde(default)]
    pub properties: BTreeMap<String, ParamValue>,
    /// The registry for schema ids and its token, settled by the loader (`--registry`,
    /// `WEFT_REGISTRY_URL`, `[registry] url`; `--token`, `WEFT_REGISTRY_TOKEN`).
    #[serde(skip)]
    pub registry: Option<RegistryAccess>,
}

impl KafkaSinkConfig {
    /// The subject of the output schema.
    pub fn subject(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| format!("{}-value", self.topic))
    }
}

/// `[dead_letter] kind = "kafka"`: the original bytes, with the reason in headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaDeadLetterConfig {
    /// `brokers = "127.0.0.1:9092"`; `--brokers` and `WEFT_KAFKA_BROKERS` override it.
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topic = "titles-dead"`
    pub topic: String,
    /// `[dead_letter.properties]`: librdkafka producer properties, over weft's defaults.
    #[serde(default)]
    pub properties: BTreeMap<String, ParamValue>,
}

/// A table's brokers settled: flag > environment > the table's own > defaults.
fn settle_brokers(own: &mut Option<String>, layers: &Layers) {
    let file = Settings {
        brokers: own.take(),
        ..Settings::default()
    };
    *own = layers.settle(&file).brokers;
}

fn no_brokers() -> String {
    format!("missing: give brokers = \"HOST:PORT\", pass --brokers or set {BROKERS_ENV}")
}

fn no_registry() -> String {
    format!(
        "the Confluent wire format needs a registry: add [registry] url = \"...\", pass --registry or set {REGISTRY_ENV} (or use format = \"avro\")"
    )
}

impl KafkaSourceConfig {
    /// Settles the brokers between `layers` and takes the pipeline's settled registry.
    pub(super) fn settle(&mut self, layers: &Layers, registry: Option<RegistryAccess>) {
        settle_brokers(&mut self.brokers, layers);
        self.registry = registry;
    }

    /// Checks the settled table `key` (`source[0]`): brokers known, topics given one way, a
    /// registry where the Confluent format needs one, a schema where raw Avro needs one.
    pub(super) fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        let mut push = |field: &str, message: String| {
            issues.push(ConfigIssue::new(format!("{key}.{field}"), message))
        };
        if self.brokers.is_none() {
            push("brokers", no_brokers());
        }
        match (self.topics.is_empty(), &self.topic_pattern) {
            (true, None) => push(
                "topics",
                "missing: give topics = [\"...\"] or topic_pattern = \"...\"".into(),
            ),
            (false, Some(_)) => push(
                "topic_pattern",
                "give either topics or topic_pattern, not both".into(),
            ),
            _ => {}
        }
        if self.topics.iter().any(|t| t.trim().is_empty()) {
            push("topics", "a topic name is empty".into());
        }
        if self.group.trim().is_empty() {
            push("group", "must not be empty".into());
        }
        match self.format {
            WireFormat::Avro if self.schema.is_none() => push(
                "schema",
                "missing: format = \"avro\" reads bare datums, so the schema must be pinned (schema = \"x.avsc\")".into(),
            ),
            WireFormat::Confluent if self.registry.is_none() => push("format", no_registry()),
            WireFormat::Confluent if self.schema.is_none() && self.reader_subject().is_none() => push(
                "subject",
                "missing: with several topics or a pattern, give the schema to read events as (schema = \"x.avsc\") or the subject holding it".into(),
            ),
            _ => {}
        }
        if self.format == WireFormat::Avro && self.subject.is_some() {
            push("subject", "only used with format = \"confluent\"".into());
        }
        properties(&self.properties, key, issues);
    }
}

impl KafkaSinkConfig {
    /// Settles the brokers between `layers` and takes the pipeline's settled registry.
    pub(super) fn settle(&mut self, layers: &Layers, registry: Option<RegistryAccess>) {
        settle_brokers(&mut self.brokers, layers);
        self.registry = registry;
    }

    /// Checks the settled `[sink]` table.
    pub(super) fn check(&self, issues: &mut Vec<ConfigIssue>) {
        let mut push = |field: &str, message: String| {
            issues.push(ConfigIssue::new(format!("sink.{field}"), message))
        };
        if self.brokers.is_none() {
            push("brokers", no_brokers());
        }
        if self.topic.trim().is_empty() {
            push("topic", "must not be empty".into());
        }
        match self.format {
            WireFormat::Confluent if self.registry.is_none() => push("format", no_registry()),
            WireFormat::Avro if self.register_schema || self.subject.is_some() => push(
                if self.register_schema {
                    "register_schema"
                } else {
                    "subject"
                },
                "only used with format = \"confluent\"".into(),
            ),
            _ => {}
        }
        properties(&self.properties, "sink", issues);
    }
}

impl KafkaDeadLetterConfig {
    /// Settles the brokers between `layers`.
    pub(super) fn settle(&mut self, layers: &Layers) {
        settle_brokers(&mut self.brokers, layers);
    }

    /// Checks the settled `[dead_letter]` table.
    pub(super) fn check(&self, issues: &mut Vec<ConfigIssue>) {
        if self.brokers.is_none() {
            issues.push(ConfigIssue::new("dead_letter.brokers", no_brokers()));
        }
        if self.topic.trim().is_empty() {
            issues.push(ConfigIssue::new("dead_letter.topic", "must not be empty"));
        }
        properties(&self.properties, "dead_letter", issues);
    }
}

/// Properties weft sets itself because delivery guarantees depend on them.
const GUARDED: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "weft commits offsets itself, only after the sink acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "weft commits offsets itself, only after the sink acknowledged",
    ),
    ("group.id", "use the source's `group` key"),
    ("bootstrap.servers", "use the `brokers` key"),
    ("transactional.id", "transactions are not supported"),
];

/// Checks the `properties` of table `table` (`sink`, `source[0]`).
fn properties(props: &BTreeMap<String, ParamValue>, table: &str, issues: &mut Vec<ConfigIssue>) {
    for (name, value) in props {
        if !value.is_scalar() {
            issues.push(ConfigIssue::new(
                format!("{table}.properties.{name}"),
                "must be a string, a number or a boolean".to_owned(),
            ));
        }
        if let Some((_, why)) = GUARDED.iter().find(|(guarded, _)| guarded == name) {
            issues.push(ConfigIssue::new(
                format!("{table}.properties.{name}"),
                format!("cannot be overridden: {why}"),
            ));
        }
    }
}
