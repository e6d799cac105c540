//! `weft dashboard` through the real binary: the Grafana JSON parses and names every stage's
//! metrics, every alert expression parses as PromQL, and the rules file parses as YAML.

use serde_json::Value;
use weft_tests::{Workdir, plugin, title_schema, titles_jsonl, toml_path, weft_command};

/// Every `expr` of the dashboard's panels.
fn panel_exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

#[test]
fn dashboard_and_alert_rules_cover_every_stage_and_parse() {
    let w = Workdir::new();
    w.write("in.jsonl", &titles_jsonl(3));
    let pipeline = w.write(
        "orders-clean.toml",
        &format!(
            "[[source]]\nkind = \"jsonl\"\npath = \"in.jsonl\"\nschema = {}\n\n\
             [[processor]]\nplugin = {}\nparams = {{ condition = \"year > 2000\" }}\n\n\
             [[processor]]\nplugin = {}\n\n\
             [[processor]]\nplugin = {}\n\n\
             [sink]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n",
            toml_path(&title_schema()),
            toml_path(&plugin("filter")),
            toml_path(&plugin("mask")),
            toml_path(&plugin("project")),
        ),
    );
    let out = w.path("grafana");
    let run = weft_command()
        .arg("dashboard")
        .arg(&pipeline)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("weft runs");
    assert!(
        run.status.success(),
        "weft dashboard failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json_path = out.join("orders-clean.dashboard.json");
    let rules_path = out.join("orders-clean.rules.yml");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&json_path.display().to_string()),
        "{stdout}"
    );

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("dashboard written"))
            .expect("the dashboard is JSON");
    assert_eq!(dashboard["title"], "weft pipeline orders-clean");
    let exprs = panel_exprs(&dashboard);
    for stage in 1..=3 {
        for metric in [
            "weft_stage_events_in_total",
            "weft_stage_events_out_total",
            "weft_stage_rejected_total",
            "weft_stage_traps_total",
            "weft_stage_busy_seconds_total",
        ] {
            let wanted = format!("{metric}{{pipeline=\"orders-clean\",stage=\"{stage}\"}}");
            assert!(
                exprs.iter().any(|e| e.contains(&wanted)),
                "no panel shows {wanted}"
            );
        }
    }
    for metric in [
        "weft_pipeline_state",
        "weft_pipeline_events_in_total",
        "weft_pipeline_dead_letters_total",
        "weft_pipeline_batch_duration_seconds_bucket",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "no panel shows {metric}"
        );
    }
    // A file source has no consumer lag to show.
    assert!(!exprs.iter().any(|e| e.contains("weft_kafka_consumer_lag")));
    for expr in &exprs {
        promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("panel {expr}: {e}"));
    }

    let rules: Value =
        serde_norway::from_str(&std::fs::read_to_string(&rules_path).expect("rules written"))
            .expect("the rules file is YAML");
    let rules = rules["groups"][0]["rules"].as_array().expect("rules");
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "WeftPipelineFailed",
            "WeftDeadLettersHigh",
            "WeftStageTraps",
            "WeftUpgradeBlocked"
        ]
    );
    for rule in rules {
        let expr = rule["expr"].as_str().expect("expr");
        promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("alert {expr}: {e}"));
        assert!(rule["for"].is_string() && rule["labels"]["severity"].is_string());
    }
}

#[test]
fn a_kafka_pipeline_gets_the_lag_panel_and_alert() {
    let w = Workdir::new();
    let pipeline = w.write(
        "lagging.toml",
        "[[source]]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:1\"\ntopics = [\"t\"]\ngroup = \"g\"\n\
         format = \"avro\"\nschema = \"s.avsc\"\n\n[sink]\nkind = \"null\"\n",
    );
    w.write("s.avsc", r#"{"type":"record","name":"R","fields":[]}"#);
    let run = weft_command()
        .arg("dashboard")
        .arg(&pipeline)
        .arg("--out")
        .arg(w.path("out"))
        .output()
        .expect("weft runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rules = std::fs::read_to_string(w.path("out/lagging.rules.yml")).expect("rules");
    let rules: Value = serde_norway::from_str(&rules).expect("YAML");
    let lag = rules["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["alert"] == "WeftKafkaLagGrowing")
        .expect("a lag alert for a Kafka source");
    promql_parser::parser::parse(lag["expr"].as_str().expect("expr")).expect("PromQL");
    let dashboard = std::fs::read_to_string(w.path("out/lagging.dashboard.json")).expect("json");
    assert!(dashboard.contains("weft_kafka_consumer_lag{pipeline=\\\"lagging\\\"}"));
}
