//! What a daemon's lineage report says of a pipeline: its Kafka topics, its registry
//! plugins pinned to the version running, and which SOURCE fields each stage reads and which
//! reach the sink. A stage reports the fields of ITS input it reads (`Chain::stage_reads`); a
//! stage's field is the source's while every stage before it passed the name through.

use std::collections::BTreeSet;
use std::sync::Arc;

use apache_avro::Schema;
use weft_runtime::Chain;

use crate::config::{self, PipelineConfig, SinkConfig, SourceConfig};
use crate::registry::pipelines::{Endpoint, Lineage, PluginRef};

/// What a running chain reads of its source and passes to its sink, in the SOURCE schema's
/// field names: what the registry's field lineage and compatibility guard work from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldFlow {
    /// Per stage, in chain order: the source fields it reads (`None`: every field, or
    /// unknown). A field an earlier stage derived is no source field and is left out: the
    /// stage that derived it reads what it came from.
    pub reads: Vec<Option<Vec<String>>>,
    /// Source fields that reach the sink under their name; `None` when unknown.
    pub passes: Option<Vec<String>>,
}

impl FieldFlow {
    /// The flow of a configured chain: its stages' schemas and what each reported it reads.
    pub fn of(chain: &Chain) -> Self {
        Self::from_stages(&chain.stage_schemas(), &chain.stage_reads())
    }

    /// A stage's input field is the source field of the same name while every earlier stage
    /// passed that name through (it is in the stage's input and output); a stage that drops
    /// a field, or a non-record schema, ends the trail.
    pub fn from_stages(
        schemas: &[(Arc<Schema>, Arc<Schema>)],
        reads: &[Option<Vec<String>>],
    ) -> Self {
        let Some((source, _)) = schemas.first() else {
            return Self::default();
        };
        // Source fields still reachable by name at the current stage's input.
        let mut carried: Option<BTreeSet<String>> = top_fields(source);
        let mut out = Vec::with_capacity(schemas.len());
        for (i, (_, output)) in schemas.iter().enumerate() {
            let stage_reads = reads.get(i).cloned().flatten();
            out.push(match (stage_reads, &carried) {
                (Some(list), Some(carried)) => Some(
                    list.into_iter()
                        .filter(|r| carried.contains(r.split('.').next().unwrap_or(r)))
                        .collect(),
                ),
                // Reads every field, or the source is no record: nothing narrower is known.
                _ => None,
            });
            carried = match (carried, top_fields(output)) {
                (Some(c), Some(o)) => Some(c.intersection(&o).cloned().collect()),
                _ => None,
            };
        }
        Self {
            reads: out,
            passes: carried.map(|c| c.into_iter().collect()),
        }
    }
}

/// Top-level field names of a record schema; `None` for any other schema.
fn top_fields(schema: &Schema) -> Option<BTreeSet<String>> {
    match schema {
        Schema::Record(r) => Some(r.fields.iter().map(|f| f.name.clone()).collect()),
        _ => None,
    }
}

/// What a pipeline reads, runs and writes, as the registry records it: Kafka topics (files
/// and generators are not topics) and the registry plugins pinned to the version running
/// (`stage_ids[i]` = `name@version` of stage i+1; local `.wasm` plugins are not in the
/// registry and are left out), with the fields each reads and those that reach the sink
/// (`flow`; an empty one, before the chain is known, says every field).
pub fn lineage(
    name: &str,
    config: &PipelineConfig,
    stage_ids: &[String],
    flow: &FieldFlow,
) -> Lineage {
    let mut sources = Vec::new();
    for source in &config.sources {
        if let SourceConfig::Kafka(k) = source {
            // An explicit subject belongs to a single topic.
            let subject = (k.topics.len() == 1).then(|| k.subject.clone()).flatten();
            sources.extend(k.topics.iter().map(|topic| Endpoint {
                topic: topic.clone(),
                subject: subject.clone(),
            }));
        }
    }
    let sinks = match &config.sink {
        SinkConfig::Kafka(k) => vec![Endpoint {
            topic: k.topic.clone(),
            subject: k.subject.clone(),
        }],
        _ => Vec::new(),
    };
    let processors = config
        .processors
        .iter()
        .zip(stage_ids)
        .enumerate()
        .filter(|(_, (p, _))| !config::is_local_plugin(&p.plugin))
        .filter_map(|(i, (_, id))| {
            let (name, version) = id.split_once('@')?;
            // `name@version` (the status may add `@sha256`).
            let version = version.split('@').next().unwrap_or(version);
            Some(PluginRef {
                name: name.to_string(),
                version: version.to_string(),
                reads: flow.reads.get(i).cloned().flatten(),
            })
        })
        .collect();
    Lineage {
        name: name.to_string(),
        description: config.pipeline.description.clone().unwrap_or_default(),
        sources,
        processors,
        sinks,
        // Only a chain known in full says what reaches the sink.
        passes: if flow.reads.len() == stage_ids.len() {
            flow.passes.clone()
        } else {
            None
        },
        ..Lineage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> Arc<Schema> {
        let fields: Vec<String> = fields
            .iter()
            .map(|f| format!(r#"{{"name":"{f}","type":"string"}}"#))
            .collect();
        let text = format!(
            r#"{{"type":"record","name":"R","fields":[{}]}}"#,
            fields.join(",")
        );
        Arc::new(Schema::parse_str(&text).expect("schema"))
    }

    #[test]
    fn stage_reads_become_source_fields_while_each_earlier_stage_passes_them_on() {
        let source = record(&["id", "year", "owner", "note"]);
        // project keeps id, year, owner; enrich adds country; filter reads year and country;
        // a 0.1.0 stage reads everything.
        let projected = record(&["id", "year", "owner"]);
        let enriched = record(&["id", "year", "owner", "country"]);
        let flow = FieldFlow::from_stages(
            &[
                (source.clone(), projected.clone()),
                (projected.clone(), enriched.clone()),
                (enriched.clone(), enriched.clone()),
                (enriched.clone(), enriched.clone()),
            ],
            &[
                Some(vec!["id".into(), "year".into(), "owner".into()]),
                Some(vec!["owner.email".into()]),
                Some(vec!["year".into(), "country".into()]),
                None,
            ],
        );
        assert_eq!(
            flow.reads,
            vec![
                Some(vec!["id".to_string(), "year".into(), "owner".into()]),
                Some(vec!["owner.email".to_string()]),
                // `country` is enrich's, not the source's.
                Some(vec!["year".to_string()]),
                None,
            ]
        );
        assert_eq!(
            flow.passes,
            Some(vec!["id".to_string(), "owner".into(), "year".into()])
        );
        // A source that is no record: nothing narrower than every field.
        let flow = FieldFlow::from_stages(
            &[(Arc::new(Schema::String), record(&["a"]))],
            &[Some(vec!["a".into()])],
        );
        assert_eq!((flow.reads, flow.passes), (vec![None], None));
    }

    fn config(text: &str) -> PipelineConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("s.avsc"),
            r#"{"type":"record","name":"R","fields":[]}"#,
        )
        .expect("schema");
        std::fs::write(dir.path().join("f.wasm"), b"").expect("plugin file");
        crate::config::parse_str(text, std::path::Path::new("p.toml"), dir.path()).expect("config")
    }

    #[test]
    fn lineage_lists_kafka_topics_and_pins_registry_plugins_only() {
        let c = config(
            r#"
[pipeline]
description = "clean orders"
[registry]
url = "http://127.0.0.1:1"
[[source]]
kind = "kafka"
brokers = "b:9092"
topics = ["orders"]
subject = "orders-v"
group = "g"
[[source]]
kind = "generate"
schema = "s.avsc"
count = 1
[[processor]]
plugin = "f.wasm"
[[processor]]
plugin = "mask@^1"
[sink]
kind = "kafka"
brokers = "b:9092"
topic = "clean"
"#,
        );
        let l = lineage(
            "p",
            &c,
            &["f@0.1.0".into(), "mask@1.2.3".into()],
            &FieldFlow::default(),
        );
        assert_eq!(l.description, "clean orders");
        assert_eq!(
            l.sources,
            vec![Endpoint {
                topic: "orders".into(),
                subject: Some("orders-v".into())
            }]
        );
        assert_eq!(
            l.processors,
            vec![PluginRef {
                name: "mask".into(),
                version: "1.2.3".into(),
                reads: None,
            }]
        );
        assert_eq!(l.sinks[0].topic, "clean");
    }

    #[test]
    fn lineage_carries_the_flow_of_a_known_chain_only() {
        let source = record(&["id", "year", "owner", "note"]);
        let c = config(
            "[[source]]\nkind = \"generate\"\nschema = \"s.avsc\"\ncount = 1\n[[processor]]\nplugin = \"mask@^1\"\n[sink]\nkind = \"null\"\n",
        );
        let one = FieldFlow::from_stages(
            &[(source.clone(), source.clone())],
            &[Some(vec!["note".into()])],
        );
        let l = lineage("p", &c, &["mask@1.0.0".into()], &one);
        assert_eq!(l.processors[0].reads, Some(vec!["note".to_string()]));
        assert_eq!(
            l.passes,
            Some(vec![
                "id".to_string(),
                "note".into(),
                "owner".into(),
                "year".into()
            ])
        );
        // Before the chain is known: every field, nothing claimed about the sink.
        let unknown = lineage("p", &c, &["mask@1.0.0".into()], &FieldFlow::default());
        assert_eq!(
            (unknown.processors[0].reads.clone(), unknown.passes),
            (None, None)
        );
    }

    #[test]
    fn a_file_pipeline_has_no_topics() {
        let c = config(
            "[[source]]\nkind = \"generate\"\nschema = \"s.avsc\"\ncount = 1\n[sink]\nkind = \"null\"\n",
        );
        let l = lineage("gen", &c, &[], &FieldFlow::default());
        assert!(l.sources.is_empty() && l.sinks.is_empty() && l.processors.is_empty());
    }
}
