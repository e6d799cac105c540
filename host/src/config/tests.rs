//! The loader over Kafka tables: defaults, every problem with its key, and brokers and the
//! registry settled between flags, environment, the file and defaults.

use std::collections::BTreeMap;
use std::path::Path;

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
        (REGISTRY_TOKEN_ENV, "env-token"),
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

#[test]
fn parameters_reach_processors_as_the_file_wrote_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["s.avsc", "p.wasm", "q.wasm"] {
        std::fs::write(dir.path().join(file), "").expect("write");
    }
    let config = parse_str(
        r#"
        [[source]]
        kind = "generate"
        schema = "s.avsc"
        count = 1
        [[processor]]
        plugin = "p.wasm"
        params = { ratio = 5.0, big = 1e3, small = -0.50, n = 7, on = true, name = "a\"b", tags = ["x", 2, 1.5], map = { k = 1, nested = { deep = [true] } } }
        [[processor]]
        plugin = "q.wasm"
        params = { inf = +inf, plain = 2.25 }
        [sink]
        kind = "null"
        "#,
        Path::new("p.toml"),
        dir.path(),
    )
    .expect("valid");
    let text = |i: usize, name: &str| config.processors[i].params[name].to_string();
    assert_eq!(text(0, "ratio"), "5.0");
    assert_eq!(text(0, "big"), "1e3");
    assert_eq!(text(0, "small"), "-0.50");
    assert_eq!(text(0, "n"), "7");
    assert_eq!(text(0, "on"), "true");
    assert_eq!(text(0, "name"), "a\"b");
    assert_eq!(text(0, "tags"), r#"["x",2,1.5]"#);
    assert_eq!(text(0, "map"), r#"{"k":1,"nested":{"deep":[true]}}"#);
    assert_eq!(text(1, "inf"), "+inf");
    assert_eq!(text(1, "plain"), "2.25");
}

#[test]
fn a_kafka_property_must_be_a_scalar() {
    let found = issues(
        r#"
        [registry]
        url = "http://127.0.0.1:1"
        [[source]]
        kind = "kafka"
        topics = ["t"]
        group = "g"
        [source.properties]
        "client.id" = ["a"]
        [sink]
        kind = "null"
        "#,
    );
    assert!(
        found.contains(&(
            "source[0].properties.client.id".to_owned(),
            "must be a string, a number or a boolean".to_owned()
        )),
        "{found:?}"
    );
}
