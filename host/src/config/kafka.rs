//! The Kafka tables of a pipeline file: `[[source]] kind = "kafka"`, `[sink] kind = "kafka"`
//! and `[dead_letter] kind = "kafka"`, how their brokers and registry are settled (flag >
//! environment > the table > defaults, see `settings`) and the checks serde cannot make.
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

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::issue::ConfigIssue;
use super::settings::{BROKERS_ENV, Layers, REGISTRY_ENV, RegistryAccess, Settings};
use super::types::{DeadLetterConfig, ParamValue, PipelineConfig, SinkConfig, SourceConfig};

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
    /// `[source.properties]`: librdkafka consumer properties, over weft's defaults.
    #[serde(default)]
    pub properties: BTreeMap<String, ParamValue>,
    /// The registry for schema ids and its token, settled by the loader (`--registry`,
    /// `WEFT_REGISTRY_URL`, `[registry] url`; `--token`, `WEFT_REGISTRY_TOKEN`).
    #[serde(skip)]
    pub registry: Option<RegistryAccess>,
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
    /// `[sink.properties]`: librdkafka producer properties, over weft's defaults.
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

/// Settles every Kafka table between `layers`: its brokers (flag > environment > the table's
/// own > defaults) and the pipeline's registry (already settled into `config.settings`).
pub(super) fn settle(config: &mut PipelineConfig, layers: &Layers) {
    let brokers = |own: &mut Option<String>| {
        let file = Settings {
            brokers: own.take(),
            ..Settings::default()
        };
        *own = layers.settle(&file).brokers;
    };
    let registry = config.settings.registry();
    for source in &mut config.sources {
        if let SourceConfig::Kafka(k) = source {
            brokers(&mut k.brokers);
            k.registry = registry.clone();
        }
    }
    if let SinkConfig::Kafka(k) = &mut config.sink {
        brokers(&mut k.brokers);
        k.registry = registry.clone();
    }
    if let DeadLetterConfig::Kafka(k) = &mut config.dead_letter {
        brokers(&mut k.brokers);
    }
}

/// Checks the Kafka tables: brokers known, topics given one way, a registry where the
/// Confluent format needs one, a schema where raw Avro needs one.
pub(super) fn check(config: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    let mut push = |key: String, message: String| issues.push(ConfigIssue { key, message });
    let no_brokers =
        format!("missing: give brokers = \"HOST:PORT\", pass --brokers or set {BROKERS_ENV}");
    let no_registry = format!(
        "the Confluent wire format needs a registry: add [registry] url = \"...\", pass --registry or set {REGISTRY_ENV} (or use format = \"avro\")"
    );
    for (i, source) in config.sources.iter().enumerate() {
        let SourceConfig::Kafka(k) = source else {
            continue;
        };
        let key = |field: &str| format!("source[{i}].{field}");
        if k.brokers.is_none() {
            push(key("brokers"), no_brokers.clone());
        }
        match (k.topics.is_empty(), &k.topic_pattern) {
            (true, None) => push(
                key("topics"),
                "missing: give topics = [\"...\"] or topic_pattern = \"...\"".into(),
            ),
            (false, Some(_)) => push(
                key("topic_pattern"),
                "give either topics or topic_pattern, not both".into(),
            ),
            _ => {}
        }
        if k.topics.iter().any(|t| t.trim().is_empty()) {
            push(key("topics"), "a topic name is empty".into());
        }
        if k.group.trim().is_empty() {
            push(key("group"), "must not be empty".into());
        }
        match k.format {
            WireFormat::Avro if k.schema.is_none() => push(
                key("schema"),
                "missing: format = \"avro\" reads bare datums, so the schema must be pinned (schema = \"x.avsc\")".into(),
            ),
            WireFormat::Confluent if k.registry.is_none() => {
                push(key("format"), no_registry.clone())
            }
            WireFormat::Confluent if k.schema.is_none() && k.reader_subject().is_none() => push(
                key("subject"),
                "missing: with several topics or a pattern, give the schema to read events as (schema = \"x.avsc\") or the subject holding it".into(),
            ),
            _ => {}
        }
        if k.format == WireFormat::Avro && k.subject.is_some() {
            push(
                key("subject"),
                "only used with format = \"confluent\"".into(),
            );
        }
        properties(&k.properties, &format!("source[{i}].properties"), &mut push);
    }
    if let SinkConfig::Kafka(k) = &config.sink {
        if k.brokers.is_none() {
            push("sink.brokers".into(), no_brokers.clone());
        }
        if k.topic.trim().is_empty() {
            push("sink.topic".into(), "must not be empty".into());
        }
        match k.format {
            WireFormat::Confluent if k.registry.is_none() => {
                push("sink.format".into(), no_registry.clone())
            }
            WireFormat::Avro if k.register_schema || k.subject.is_some() => push(
                if k.register_schema {
                    "sink.register_schema"
                } else {
                    "sink.subject"
                }
                .into(),
                "only used with format = \"confluent\"".into(),
            ),
            _ => {}
        }
        properties(&k.properties, "sink.properties", &mut push);
    }
    if let DeadLetterConfig::Kafka(k) = &config.dead_letter {
        if k.brokers.is_none() {
            push("dead_letter.brokers".into(), no_brokers);
        }
        if k.topic.trim().is_empty() {
            push("dead_letter.topic".into(), "must not be empty".into());
        }
        properties(&k.properties, "dead_letter.properties", &mut push);
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

fn properties(
    props: &BTreeMap<String, ParamValue>,
    key: &str,
    push: &mut impl FnMut(String, String),
) {
    for name in props.keys() {
        if let Some((_, why)) = GUARDED.iter().find(|(guarded, _)| guarded == name) {
            push(
                format!("{key}.{name}"),
                format!("cannot be overridden: {why}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::issue::ConfigErrors;
    use super::*;

    /// Parsed with the file alone: no flags, no environment, no defaults.
    fn parse(text: &str) -> Result<PipelineConfig, ConfigErrors> {
        Layers::default().parse_str(text, Path::new("p.toml"), Path::new("."))
    }

    fn issues(text: &str) -> Vec<(String, String)> {
        parse(text)
            .expect_err("invalid")
            .issues
            .into_iter()
            .map(|i| (i.key, i.message))
            .collect()
    }

    #[test]
    fn a_kafka_pipeline_parses_with_defaults() {
        let config = parse(
            r#"
            [registry]
            url = "http://127.0.0.1:1"
            [[source]]
            kind = "kafka"
            brokers = "127.0.0.1:9092"
            topics = ["titles"]
            group = "g"
            [source.properties]
            "fetch.min.bytes" = 1
            [sink]
            kind = "kafka"
            brokers = "127.0.0.1:9092"
            topic = "out"
            [dead_letter]
            kind = "kafka"
            brokers = "127.0.0.1:9092"
            topic = "dead"
            "#,
        )
        .expect("valid");
        let SourceConfig::Kafka(source) = &config.sources[0] else {
            panic!("not a kafka source");
        };
        assert_eq!(source.start, StartPosition::Committed);
        assert_eq!(source.format, WireFormat::Confluent);
        assert_eq!(source.reader_subject().as_deref(), Some("titles-value"));
        let registry = source.registry.as_ref().expect("the file's registry");
        assert_eq!(registry.url, "http://127.0.0.1:1");
        let SinkConfig::Kafka(sink) = &config.sink else {
            panic!("not a kafka sink");
        };
        assert_eq!(sink.subject(), "out-value");
        assert!(!sink.register_schema);
        assert!(matches!(config.dead_letter, DeadLetterConfig::Kafka(_)));
    }

    #[test]
    fn every_kafka_problem_is_reported_with_its_key() {
        let found = issues(
            r#"
            [[source]]
            kind = "kafka"
            brokers = "b:9092"
            topics = ["a"]
            topic_pattern = "a.*"
            group = "g"
            format = "avro"
            [source.properties]
            "enable.auto.commit" = true
            [sink]
            kind = "kafka"
            brokers = "b:9092"
            topic = "out"
            format = "avro"
            register_schema = true
            "#,
        );
        let keys: Vec<_> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "source[0].topic_pattern",
                "source[0].schema",
                "source[0].properties.enable.auto.commit",
                "sink.register_schema"
            ],
            "{found:?}"
        );
    }

    #[test]
    fn confluent_needs_a_registry_and_a_reader_schema() {
        let found = issues(
            r#"
            [[source]]
            kind = "kafka"
            brokers = "b:9092"
            topic_pattern = "titles-.*"
            group = "g"
            [sink]
            kind = "null"
            "#,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "source[0].format");
        assert!(found[0].1.contains(REGISTRY_ENV), "{found:?}");
    }

    #[test]
    fn a_bad_start_names_its_key() {
        let found = issues(
            r#"
            [[source]]
            kind = "kafka"
            brokers = "b:9092"
            topics = ["a"]
            group = "g"
            start = "beginning"
            [sink]
            kind = "null"
            "#,
        );
        // serde buffers a tagged table, so the key stops at the table; the message names
        // the bad value and the accepted ones.
        assert_eq!(found[0].0, "source[0]", "{found:?}");
        assert!(found[0].1.contains("beginning"), "{found:?}");
        assert!(found[0].1.contains("earliest"), "{found:?}");
    }

    /// Every Kafka table gets the settled brokers and registry: flags over the environment
    /// over the file over defaults, whatever the table says.
    #[test]
    fn kafka_tables_are_settled_flag_over_env_over_file_over_defaults() {
        const PIPELINE: &str = r#"
            [registry]
            url = "http://file-registry"
            [[source]]
            kind = "kafka"
            brokers = "file:9092"
            topics = ["a"]
            group = "g"
            [sink]
            kind = "kafka"
            topic = "out"
            [dead_letter]
            kind = "kafka"
            topic = "dead"
            "#;
        let settle = |flags: &Settings, env: &[(&str, &str)], defaults: &Settings| {
            let env: BTreeMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let layers = Layers::new(flags, |n| env.get(n).cloned(), defaults);
            let config = layers
                .parse_str(PIPELINE, Path::new("p.toml"), Path::new("."))
                .expect("valid");
            let SourceConfig::Kafka(source) = &config.sources[0] else {
                panic!("not a kafka source");
            };
            let SinkConfig::Kafka(sink) = &config.sink else {
                panic!("not a kafka sink");
            };
            let DeadLetterConfig::Kafka(dead) = &config.dead_letter else {
                panic!("not a kafka dead letter");
            };
            let registry = sink.registry.clone().expect("a registry");
            assert_eq!(source.registry.as_ref(), Some(&registry));
            assert_eq!(config.settings.registry().as_ref(), Some(&registry));
            (
                [
                    source.brokers.clone(),
                    sink.brokers.clone(),
                    dead.brokers.clone(),
                ],
                registry.url,
                registry.token,
            )
        };
        let defaults = Settings {
            brokers: Some("default:9092".into()),
            registry_token: Some("default-token".into()),
            ..Settings::default()
        };
        let some = |s: &str| Some(s.to_string());

        // The table's own brokers beat the defaults, which fill the tables without any; the
        // defaults' token (given without a registry of its own) goes to the file's registry.
        let (brokers, url, token) = settle(&Settings::default(), &[], &defaults);
        assert_eq!(
            brokers,
            [
                some("file:9092"),
                some("default:9092"),
                some("default:9092")
            ]
        );
        assert_eq!(url, "http://file-registry");
        assert_eq!(token, some("default-token"));

        // The environment beats every table.
        let env = [
            (BROKERS_ENV, "env:9092"),
            (REGISTRY_ENV, "http://env-registry"),
            (super::super::settings::REGISTRY_TOKEN_ENV, "env-token"),
        ];
        let (brokers, url, token) = settle(&Settings::default(), &env, &defaults);
        assert_eq!(
            brokers,
            [some("env:9092"), some("env:9092"), some("env:9092")]
        );
        assert_eq!(url, "http://env-registry");
        assert_eq!(token, some("env-token"));

        // Flags beat the environment.
        let flags = Settings {
            brokers: some("flag:9092"),
            registry_url: some("http://flag-registry"),
            registry_token: some("flag-token"),
            cache_dir: None,
        };
        let (brokers, url, token) = settle(&flags, &env, &defaults);
        assert_eq!(
            brokers,
            [some("flag:9092"), some("flag:9092"), some("flag:9092")]
        );
        assert_eq!(url, "http://flag-registry");
        assert_eq!(token, some("flag-token"));
    }
}
