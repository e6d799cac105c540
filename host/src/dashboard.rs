//! The default dashboard and alerts of a pipeline: a Grafana dashboard (JSON) and Prometheus
//! alert rules (YAML) over the metrics `weft serve` exports, with panels for every stage.
//!
//! A pure function of the pipeline's config and name (plus, when known, its stages'
//! `name@version`): `weft dashboard PIPELINE.toml` and the daemon's
//! `GET /v1/pipelines/{name}/dashboard` produce the same documents. Panels select a stage by
//! its position (`stage="2"`), so a dashboard stays valid when a plugin version changes.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{PipelineConfig, SourceConfig};

/// The alert thresholds; [`Thresholds::default`] is what `weft dashboard` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Dead letters per second (5-minute rate) above which `WeftDeadLettersHigh` fires.
    pub dead_letters_per_s: f64,
    /// How long the summed Kafka lag must keep growing before `WeftKafkaLagGrowing` fires.
    pub lag_growing_for: &'static str,
    /// How long a pipeline may stay FAILED (retrying) before `WeftPipelineFailed` fires.
    pub failed_for: &'static str,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            dead_letters_per_s: 1.0,
            lag_growing_for: "15m",
            failed_for: "2m",
        }
    }
}

/// Both documents for one pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// A Grafana dashboard (the `dashboard` object of Grafana's import format).
    pub dashboard: Value,
    /// Prometheus alerting rules, as a rules file holds them.
    pub alerts: RuleFile,
}

/// A Prometheus rules file: `groups: [{name, rules: [...]}]`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<AlertRule>,
}

/// One alerting rule, with Prometheus's field names.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AlertRule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Generated {
    /// The dashboard as pretty JSON text.
    pub fn dashboard_json(&self) -> String {
        // A `Value` always serialises.
        serde_json::to_string_pretty(&self.dashboard).unwrap_or_default()
    }

    /// The alert rules as YAML text, as `promtool check rules` reads it.
    pub fn alerts_yaml(&self) -> Result<String, serde_norway::Error> {
        serde_norway::to_string(&self.alerts)
    }
}

/// A stage of the chain as the dashboard names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 1-based, the `stage` label of the metrics.
    pub number: usize,
    /// `name@version` when known, else the plugin reference as written.
    pub processor: String,
}

/// The stages of `config`: `stage_ids[i]` (`name@version`, as the daemon reports them) when
/// given, else the reference of the file (a path's file stem, or `mask@^1`).
pub fn stages(config: &PipelineConfig, stage_ids: &[String]) -> Vec<Stage> {
    config
        .processors
        .iter()
        .enumerate()
        .map(|(i, p)| Stage {
            number: i + 1,
            processor: stage_ids.get(i).cloned().unwrap_or_else(|| {
                std::path::Path::new(&p.plugin)
                    .file_stem()
                    .filter(|_| p.plugin.ends_with(".wasm"))
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.plugin.clone())
            }),
        })
        .collect()
}

/// The dashboard and alert rules of pipeline `name` with the default thresholds.
pub fn generate(name: &str, config: &PipelineConfig, stage_ids: &[String]) -> Generated {
    generate_with(name, config, stage_ids, &Thresholds::default())
}

pub fn generate_with(
    name: &str,
    config: &PipelineConfig,
    stage_ids: &[String],
    thresholds: &Thresholds,
) -> Generated {
    let stages = stages(config, stage_ids);
    let kafka = config
        .sources
        .iter()
        .any(|s| matches!(s, SourceConfig::Kafka(_)));
    Generated {
        dashboard: dashboard(name, &stages, kafka),
        alerts: alerts(name, kafka, thresholds),
    }
}

/// A PromQL string literal: the name between double quotes, escaped.
fn quoted(text: &str) -> String {
    // JSON string escaping is a subset of what PromQL's double-quoted strings accept.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Label matchers `{pipeline="..."}` plus extra `key="value"` pairs.
fn sel(name: &str, extra: &[(&str, &str)]) -> String {
    let mut parts = vec![format!("pipeline={}", quoted(name))];
    parts.extend(extra.iter().map(|(k, v)| format!("{k}={}", quoted(v))));
    format!("{{{}}}", parts.join(","))
}

const WINDOW: &str = "[5m]";

/// Lays panels out two to a row of Grafana's 24-column grid.
struct Layout {
    panels: Vec<Value>,
    y: u64,
    column: u64,
    next_id: u64,
}

impl Layout {
    fn row(&mut self, title: &str) {
        if self.column != 0 {
            self.y += 8;
            self.column = 0;
        }
        self.next_id += 1;
        self.panels.push(json!({
            "type": "row", "id": self.next_id, "title": title, "collapsed": false,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": [],
        }));
        self.y += 1;
    }

    /// A time series panel; `targets` are (PromQL, legend).
    fn panel(&mut self, title: &str, unit: &str, targets: &[(String, &str)]) {
        self.next_id += 1;
        let targets: Vec<Value> = targets
            .iter()
            .enumerate()
            .map(|(i, (expr, legend))| {
                json!({
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "expr": expr, "legendFormat": legend,
                    // refIds A, B, ... (a panel has a handful at most).
                    "refId": char::from(b'A' + (i % 26) as u8).to_string(),
                })
            })
            .collect();
        self.panels.push(json!({
            "type": "timeseries", "id": self.next_id, "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": self.column * 12, "y": self.y, "w": 12, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": targets,
        }));
        if self.column == 1 {
            self.column = 0;
            self.y += 8;
        } else {
            self.column = 1;
        }
    }
}

fn dashboard(name: &str, stages: &[Stage], kafka: bool) -> Value {
    let p = sel(name, &[]);
    let mut l = Layout {
        panels: Vec::new(),
        y: 0,
        column: 0,
        next_id: 0,
    };
    l.row(&format!("Pipeline {name}"));
    l.panel(
        "State",
        "none",
        &[(
            format!("max by (state) (weft_pipeline_state{p}) == 1"),
            "{{state}}",
        )],
    );
    l.panel(
        "Events per second",
        "ops",
        &[
            (
                format!("sum(rate(weft_pipeline_events_in_total{p}{WINDOW}))"),
                "in",
            ),
            (
                format!("sum(rate(weft_pipeline_events_out_total{p}{WINDOW}))"),
                "out",
            ),
            (
                format!("sum(rate(weft_pipeline_dead_letters_total{p}{WINDOW}))"),
                "dead letters",
            ),
        ],
    );
    let quantile = |q: &str| {
        format!(
            "histogram_quantile({q}, sum by (le) (rate(weft_pipeline_batch_duration_seconds_bucket{p}{WINDOW})))"
        )
    };
    l.panel(
        "Batch latency",
        "s",
        &[(quantile("0.5"), "p50"), (quantile("0.99"), "p99")],
    );
    l.panel(
        "Commits, restarts and swaps per second",
        "ops",
        &[
            (
                format!("sum(rate(weft_pipeline_commits_total{p}{WINDOW}))"),
                "commits",
            ),
            (
                format!("sum(rate(weft_pipeline_restarts_total{p}{WINDOW}))"),
                "restarts",
            ),
            (
                format!("sum(rate(weft_pipeline_swaps_total{p}{WINDOW}))"),
                "swaps",
            ),
        ],
    );
    l.panel(
        "Automatic upgrades",
        "short",
        &[
            (
                format!("sum by (kind) (increase(weft_pipeline_upgrades_total{p}{WINDOW}))"),
                "upgrades ({{kind}})",
            ),
            (
                format!("sum(increase(weft_pipeline_rollbacks_total{p}{WINDOW}))"),
                "rollbacks",
            ),
            (format!("max(weft_pipeline_upgrade_blocked{p})"), "blocked"),
        ],
    );
    if kafka {
        l.panel(
            "Kafka consumer lag",
            "short",
            &[(
                format!("sum by (topic, partition) (weft_kafka_consumer_lag{p})"),
                "{{topic}}/{{partition}}",
            )],
        );
        l.panel(
            "Kafka rebalances per second",
            "ops",
            &[(
                format!("sum(rate(weft_kafka_rebalances_total{p}{WINDOW}))"),
                "rebalances",
            )],
        );
    }
    for stage in stages {
        let n = stage.number.to_string();
        let s = sel(name, &[("stage", &n)]);
        l.row(&format!("Stage {n}: {}", stage.processor));
        l.panel(
            &format!("Stage {n} events per second"),
            "ops",
            &[
                (
                    format!("sum(rate(weft_stage_events_in_total{s}{WINDOW}))"),
                    "in",
                ),
                (
                    format!("sum(rate(weft_stage_events_out_total{s}{WINDOW}))"),
                    "out",
                ),
                (
                    format!("sum(rate(weft_stage_rejected_total{s}{WINDOW}))"),
                    "rejected",
                ),
                (
                    format!("sum(rate(weft_stage_traps_total{s}{WINDOW}))"),
                    "traps",
                ),
            ],
        );
        l.panel(
            &format!("Stage {n} busy (seconds per second)"),
            "percentunit",
            &[(
                format!("sum(rate(weft_stage_busy_seconds_total{s}{WINDOW}))"),
                "busy",
            )],
        );
    }
    json!({
        "title": format!("weft pipeline {name}"),
        "uid": uid(name),
        "tags": ["weft", "weft-pipeline"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
        }]},
        "panels": l.panels,
    })
}

/// Grafana uids are at most 40 characters: a readable prefix and a hash of the whole name,
/// so two long names never share a dashboard.
fn uid(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(&Sha256::digest(name.as_bytes())[..6]);
    let prefix: String = name.chars().take(20).collect();
    format!("weft-{prefix}-{digest}")
}

fn alerts(name: &str, kafka: bool, t: &Thresholds) -> RuleFile {
    let p = sel(name, &[]);
    let rule = |alert: &str, expr: String, for_: &str, severity: &str, summary: String| AlertRule {
        alert: alert.to_string(),
        expr,
        for_: for_.to_string(),
        labels: [
            ("severity".to_string(), severity.to_string()),
            ("pipeline".to_string(), name.to_string()),
        ]
        .into(),
        annotations: [("summary".to_string(), summary)].into(),
    };
    let failed = sel(name, &[("state", "FAILED")]);
    let mut rules = vec![
        rule(
            "WeftPipelineFailed",
            format!("max(weft_pipeline_state{failed}) == 1"),
            t.failed_for,
            "critical",
            format!(
                "pipeline {name} is FAILED (retrying with backoff); see last_error in `weft status`"
            ),
        ),
        rule(
            "WeftDeadLettersHigh",
            format!(
                "sum(rate(weft_pipeline_dead_letters_total{p}{WINDOW})) > {}",
                t.dead_letters_per_s
            ),
            "5m",
            "warning",
            format!(
                "pipeline {name} sends more than {} events per second to its dead-letter sink",
                t.dead_letters_per_s
            ),
        ),
        rule(
            "WeftStageTraps",
            format!("sum by (stage, processor) (rate(weft_stage_traps_total{p}{WINDOW})) > 0"),
            "5m",
            "warning",
            format!(
                "a processor of pipeline {name} keeps trapping (stage {{{{ $labels.stage }}}}, {{{{ $labels.processor }}}})"
            ),
        ),
        rule(
            "WeftUpgradeBlocked",
            format!("max(weft_pipeline_upgrade_blocked{p}) == 1"),
            "1m",
            "warning",
            format!(
                "an automatic upgrade of pipeline {name} is blocked (it runs on as it was); `upgrade` in its status names the link, field and rule"
            ),
        ),
    ];
    if kafka {
        rules.push(rule(
            "WeftKafkaLagGrowing",
            format!(
                "sum(weft_kafka_consumer_lag{p}) > 0 and sum(deriv(weft_kafka_consumer_lag{p}[10m])) > 0"
            ),
            t.lag_growing_for,
            "warning",
            format!("pipeline {name} falls further behind its Kafka topics"),
        ));
    }
    RuleFile {
        groups: vec![RuleGroup {
            name: format!("weft-pipeline-{name}"),
            rules,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> PipelineConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("s.avsc"),
            r#"{"type":"record","name":"R","fields":[]}"#,
        )
        .expect("schema");
        crate::config::parse_str(text, Path::new("p.toml"), dir.path()).expect("config")
    }

    const KAFKA: &str = r#"
[registry]
url = "http://127.0.0.1:1"
[[source]]
kind = "kafka"
brokers = "127.0.0.1:9092"
topics = ["orders"]
group = "g"
[[processor]]
plugin = "filter@^0.1"
[[processor]]
plugin = "mask@^1"
[sink]
kind = "null"
"#;

    /// Every PromQL expression of both documents, with where it is.
    fn expressions(g: &Generated) -> Vec<String> {
        let mut out: Vec<String> = g.alerts.groups[0]
            .rules
            .iter()
            .map(|r| r.expr.clone())
            .collect();
        for panel in g.dashboard["panels"].as_array().expect("panels") {
            for t in panel["targets"].as_array().into_iter().flatten() {
                out.push(t["expr"].as_str().expect("expr").to_string());
            }
        }
        out
    }

    #[test]
    fn every_expression_parses_as_promql_even_with_an_awkward_name() {
        for name in ["orders", "a.b-c_d", "we\"ird\\name"] {
            let g = generate(name, &config(KAFKA), &[]);
            for expr in expressions(&g) {
                promql_parser::parser::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
                assert!(expr.contains(&quoted(name)), "{expr} selects the pipeline");
            }
        }
    }

    #[test]
    fn stages_are_named_by_id_when_known_and_by_reference_otherwise() {
        let c = config(KAFKA);
        let named = stages(&c, &["filter@0.1.3".into()]);
        assert_eq!(named[0].processor, "filter@0.1.3");
        assert_eq!(named[1].processor, "mask@^1");
        let g = generate("orders", &c, &["filter@0.1.3".into(), "mask@1.0.0".into()]);
        let titles: Vec<&str> = g.dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .filter_map(|p| p["title"].as_str())
            .collect();
        assert!(titles.contains(&"Stage 2: mask@1.0.0"), "{titles:?}");
        let names: Vec<&str> = g.alerts.groups[0]
            .rules
            .iter()
            .map(|r| r.alert.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "WeftPipelineFailed",
                "WeftDeadLettersHigh",
                "WeftStageTraps",
                "WeftUpgradeBlocked",
                "WeftKafkaLagGrowing"
            ]
        );
    }

    #[test]
    fn a_pipeline_without_kafka_has_no_lag_panel_or_alert_and_the_yaml_round_trips() {
        let files = "[[source]]\nkind = \"generate\"\nschema = \"s.avsc\"\ncount = 1\n[sink]\nkind = \"null\"\n";
        let g = generate("gen", &config(files), &[]);
        let exprs = expressions(&g);
        assert!(!exprs.iter().any(|e| e.contains("weft_kafka")), "{exprs:?}");
        let yaml = g.alerts_yaml().expect("yaml");
        let back: RuleFile = serde_norway::from_str(&yaml).expect("parses back");
        assert_eq!(back, g.alerts);
        assert!(yaml.contains("for: 2m"), "{yaml}");
    }

    #[test]
    fn uids_are_short_and_distinct_for_long_names() {
        let a = uid(&"x".repeat(100));
        let b = uid(&format!("{}y", "x".repeat(99)));
        assert!(a.len() <= 40 && b.len() <= 40, "{a} {b}");
        assert_ne!(a, b);
    }
}
