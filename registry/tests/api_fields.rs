//! Field-level lineage and the pipelines guard through the routes: who reads a field
//! (`GET /v1/lineage/fields/{subject}/{field}`), `?pipelines=true` on the compatibility
//! tests, the PIPELINES level refusing at registration, and hostile inputs (unknown
//! subjects, odd field names, a lineage cycle, thousands of pipelines).

mod common;

use common::{Harness, TOKEN, expect_error};
use serde_json::{Value, json};
use weft_registry_api::{Endpoint, Pipeline, PluginRef};

fn order(fields: &str) -> Value {
    serde_json::from_str(&format!(
        r#"{{"type":"record","name":"Order","fields":[{fields}]}}"#
    ))
    .expect("schema JSON")
}

const ID: &str = r#"{"name":"id","type":"long"}"#;
const YEAR: &str = r#"{"name":"year","type":"int"}"#;
const YEAR_LONG: &str = r#"{"name":"year","type":"long"}"#;
const EMAIL: &str = r#"{"name":"email","type":"string"}"#;
const NOTE: &str = r#"{"name":"note","type":"string","default":""}"#;

fn v1() -> Value {
    order(&[ID, YEAR, EMAIL, NOTE].join(","))
}

/// Schema-agnostic plugins (no declared schemas), as the record processors are.
async fn plugins(h: &Harness, names: &[&str]) {
    for name in names {
        let body = json!({"name": name, "version": "1.0.0", "description": name}).to_string();
        let (status, _, bytes) = h
            .raw(
                "POST",
                "/v1/plugins",
                Some(body.into_bytes()),
                Some(TOKEN),
                Some("application/wasm"),
            )
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    }
}

fn stage(name: &str, reads: Option<&[&str]>) -> Value {
    match reads {
        Some(r) => json!({"name": name, "version": "1.0.0", "reads": r}),
        None => json!({"name": name, "version": "1.0.0"}),
    }
}

async fn put(h: &Harness, name: &str, body: Value) -> (axum::http::StatusCode, Value) {
    h.call("PUT", &format!("/v1/pipelines/{name}"), Some(body))
        .await
}

/// `recent`: orders → recent, filter reads year, mask reads email, passes id/year/email.
/// `legacy`: recent → archive, one stage that lists no fields. `ids`: orders, reads id.
async fn setup() -> Harness {
    let h = Harness::new();
    plugins(&h, &["filter", "mask", "project", "legacy"]).await;
    assert_eq!(h.register("orders-value", &v1()).await.0, 200);
    let pipelines = [
        json!({"name": "recent", "sources": [{"topic": "orders"}],
            "processors": [stage("filter", Some(&["year"])), stage("mask", Some(&["email"]))],
            "sinks": [{"topic": "recent"}], "passes": ["id", "year", "email"]}),
        json!({"name": "legacy", "sources": [{"topic": "recent"}],
            "processors": [stage("legacy", None)], "sinks": [{"topic": "archive"}]}),
        json!({"name": "ids", "sources": [{"topic": "orders"}],
            "processors": [stage("project", Some(&["id"]))]}),
    ];
    for p in pipelines {
        let name = p["name"].as_str().expect("name").to_string();
        let answer = put(&h, &name, p).await;
        assert_eq!(answer.0, 201, "{}", answer.1);
    }
    h
}

fn readers(answer: &Value) -> Vec<(String, String, u64, String, Vec<String>, bool)> {
    answer["readers"]
        .as_array()
        .expect("readers")
        .iter()
        .map(|r| {
            (
                r["pipeline"].as_str().expect("pipeline").to_string(),
                r["stage"].as_str().expect("stage").to_string(),
                r["position"].as_u64().expect("position"),
                r["topic"].as_str().expect("topic").to_string(),
                r["via"]
                    .as_array()
                    .expect("via")
                    .iter()
                    .map(|v| v.as_str().expect("topic").to_string())
                    .collect(),
                r["all_fields"].as_bool().expect("all_fields"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_field_has_its_direct_readers_and_the_downstream_ones() {
    let h = setup().await;
    let (status, year) = h
        .call("GET", "/v1/lineage/fields/orders-value/year", None)
        .await;
    assert_eq!(status, 200, "{year}");
    assert_eq!(year["subject"], "orders-value");
    assert_eq!(year["field"], "year");
    assert_eq!(
        readers(&year),
        vec![
            (
                "recent".into(),
                "filter@1.0.0".into(),
                1,
                "orders".into(),
                vec![],
                false
            ),
            (
                "legacy".into(),
                "legacy@1.0.0".into(),
                1,
                "recent".into(),
                vec!["recent".into()],
                true
            ),
        ]
    );
    // `note` is read by no stage that names it, and `recent` does not pass it on.
    let (_, note) = h
        .call("GET", "/v1/lineage/fields/orders-value/note", None)
        .await;
    assert_eq!(readers(&note), vec![]);
    // The registered pipeline shows what it reads.
    let (_, recent) = h.call("GET", "/v1/pipelines/recent", None).await;
    assert_eq!(recent["processors"][0]["reads"], json!(["year"]));
    assert_eq!(recent["passes"], json!(["id", "year", "email"]));
}

#[tokio::test]
async fn hostile_subjects_and_field_names_get_clear_answers() {
    let h = setup().await;
    let unknown = h
        .call("GET", "/v1/lineage/fields/nobody-value/year", None)
        .await;
    expect_error(&unknown, 404, 40401);
    // Read by a pipeline but never registered: lineage knows it.
    let (status, recent) = h
        .call("GET", "/v1/lineage/fields/recent-value/year", None)
        .await;
    assert_eq!(status, 200, "{recent}");
    assert_eq!(readers(&recent).len(), 1);
    for bad in ["a%2Fb", "%C3%A9t%C3%A9", "a..b", "year%20", "%00"] {
        let answer = h
            .call(
                "GET",
                &format!("/v1/lineage/fields/orders-value/{bad}"),
                None,
            )
            .await;
        let message = expect_error(&answer, 422, 42215);
        assert!(message.contains("invalid field path"), "{message}");
    }
    // A nested path is a path.
    let (status, _) = h
        .call("GET", "/v1/lineage/fields/orders-value/owner.email", None)
        .await;
    assert_eq!(status, 200);
    // `reads` and `passes` take field paths only; a typo'd key is refused, not ignored.
    let bad_reads = put(
        &h,
        "bad",
        json!({"name": "bad", "sources": [{"topic": "orders"}],
            "processors": [stage("filter", Some(&["a/b"]))]}),
    )
    .await;
    let message = expect_error(&bad_reads, 422, 42213);
    assert!(message.contains("filter@1.0.0: reads"), "{message}");
    assert!(
        message.starts_with("invalid pipeline: filter@1.0.0: reads: invalid field path `a/b`"),
        "said once: {message}"
    );
    let typo = put(
        &h,
        "bad",
        json!({"name": "bad", "sorces": [{"topic": "orders"}]}),
    )
    .await;
    let message = expect_error(&typo, 400, 400);
    assert!(message.contains("unknown field `sorces`"), "{message}");
    let typo = put(
        &h,
        "bad",
        json!({"name": "bad", "sources": [{"topic": "orders"}],
            "processors": [{"name": "filter", "version": "1.0.0", "read": ["year"]}]}),
    )
    .await;
    let message = expect_error(&typo, 400, 400);
    assert!(message.contains("`read` in processors[0]"), "{message}");
}

#[tokio::test]
async fn a_lineage_cycle_ends_with_each_reader_once() {
    let h = Harness::new();
    plugins(&h, &["x", "y"]).await;
    for (name, from, to, plugin) in [("p", "a", "b", "x"), ("q", "b", "a", "y")] {
        let answer = put(
            &h,
            name,
            json!({"name": name, "sources": [{"topic": from}], "sinks": [{"topic": to}],
                "processors": [stage(plugin, Some(&["f"]))]}),
        )
        .await;
        assert_eq!(answer.0, 201, "{}", answer.1);
    }
    let (status, f) = h.call("GET", "/v1/lineage/fields/a-value/f", None).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(
        readers(&f),
        vec![
            ("p".into(), "x@1.0.0".into(), 1, "a".into(), vec![], false),
            (
                "q".into(),
                "y@1.0.0".into(),
                1,
                "b".into(),
                vec!["b".into()],
                false
            ),
        ]
    );
}

async fn test_compat(h: &Harness, schema: &Value, query: &str) -> Value {
    let (status, answer) = h
        .call(
            "POST",
            &format!("/compatibility/subjects/orders-value/versions/latest{query}"),
            Some(json!({"schema": schema.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn the_compatibility_test_with_pipelines_names_pipeline_stage_field_and_rule() {
    let h = setup().await;
    let no_year = order(&[ID, EMAIL, NOTE].join(","));
    // Confluent's answer alone: dropping a field is BACKWARD.
    let plain = test_compat(&h, &no_year, "").await;
    assert_eq!(plain, json!({"is_compatible": true}));
    let guarded = test_compat(&h, &no_year, "?pipelines=true").await;
    assert_eq!(guarded["is_compatible"], false);
    let messages: Vec<&str> = guarded["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m.as_str().expect("text"))
        .collect();
    assert!(
        messages.contains(
            &"pipeline recent: stage filter@1.0.0 (#1) reads field \"year\" from topic orders: removed"
        ),
        "{messages:?}"
    );
    // Downstream, through `recent`'s sink topic, a stage that lists no fields.
    assert!(
        messages.iter().any(|m| m
            .starts_with("pipeline legacy: stage legacy@1.0.0 (#1) reads every field")
            && m.contains("via recent")),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("pipeline ids")),
        "{messages:?}"
    );

    // Dropping a field no stage reads (and `recent` does not pass on) blocks nothing.
    let no_note = order(&[ID, YEAR, EMAIL].join(","));
    let fine = test_compat(&h, &no_note, "?pipelines=true&verbose=true").await;
    assert_eq!(fine["is_compatible"], true, "{fine}");

    // A type the stage's old schema cannot read (int → long) is a change too.
    let wider = order(&[ID, YEAR_LONG, EMAIL, NOTE].join(","));
    let retyped = test_compat(&h, &wider, "?pipelines=true").await;
    assert_eq!(retyped["is_compatible"], false);
    let text = retyped["messages"].to_string();
    assert!(
        text.contains("reads field \\\"year\\\" from topic orders: type changed (TYPE_MISMATCH"),
        "{text}"
    );
    // The all-versions route takes it too.
    let (_, all) = h
        .call(
            "POST",
            "/compatibility/subjects/orders-value/versions?pipelines=true",
            Some(json!({"schema": no_year.to_string()})),
        )
        .await;
    assert_eq!(all["is_compatible"], false, "{all}");
}

#[tokio::test]
async fn a_pipelines_subject_refuses_a_schema_that_blocks_a_reader_and_takes_one_that_does_not() {
    let h = setup().await;
    let (status, set) = h
        .call(
            "PUT",
            "/config/orders-value",
            Some(json!({"compatibility": "pipelines"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), set),
        (200, json!({"compatibility": "PIPELINES"}))
    );
    let (_, level) = h.call("GET", "/config/orders-value", None).await;
    assert_eq!(level, json!({"compatibilityLevel": "PIPELINES"}));

    let refused = h
        .register("orders-value", &order(&[ID, EMAIL, NOTE].join(",")))
        .await;
    let message = expect_error(&refused, 409, 409);
    assert!(message.contains("compatibility PIPELINES"), "{message}");
    assert!(
        message.contains("pipeline recent: stage filter@1.0.0 (#1) reads field \"year\""),
        "{message}"
    );
    // The subject's own level still applies: PIPELINES is BACKWARD first.
    let breaking = h
        .register(
            "orders-value",
            &order(&[ID, YEAR, EMAIL, NOTE, r#"{"name":"must","type":"int"}"#].join(",")),
        )
        .await;
    let message = expect_error(&breaking, 409, 409);
    assert!(
        message.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{message}"
    );
    assert!(
        message.contains("{compatibility: 'PIPELINES'}"),
        "{message}"
    );
    // The compatibility test answers the same without `?pipelines=true`.
    let test = test_compat(&h, &order(&[ID, EMAIL, NOTE].join(",")), "").await;
    assert_eq!(test["is_compatible"], false);

    let (status, id) = h
        .register("orders-value", &order(&[ID, YEAR, EMAIL].join(",")))
        .await;
    assert_eq!(status, 200, "{id}");
    let (_, versions) = h.call("GET", "/subjects/orders-value/versions", None).await;
    assert_eq!(versions, json!([1, 2]));
    let invalid = h
        .call(
            "PUT",
            "/config/orders-value",
            Some(json!({"compatibility": "SIDEWAYS"})),
        )
        .await;
    expect_error(&invalid, 422, 42203);
}

#[tokio::test]
async fn thousands_of_pipelines_are_walked_and_the_answer_stays_bounded() {
    let h = setup().await;
    let store = h.state.store.clone();
    let n = 3000;
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let p = Pipeline {
                name: format!("fan-{i:05}"),
                sources: vec![Endpoint {
                    topic: "orders".into(),
                    subject: None,
                }],
                processors: vec![PluginRef {
                    name: "filter".into(),
                    version: "1.0.0".into(),
                    reads: Some(vec!["year".into()]),
                }],
                sinks: vec![Endpoint {
                    // Every tenth writes back what the others read: a wide cycle.
                    topic: if i % 10 == 0 { "orders" } else { "fanned" }.into(),
                    subject: None,
                }],
                ..Pipeline::default()
            };
            store.put_pipeline(&p).expect("stored");
        }
    })
    .await
    .expect("stored them all");
    let (status, year) = h
        .call("GET", "/v1/lineage/fields/orders-value/year", None)
        .await;
    assert_eq!(status, 200);
    let found = readers(&year);
    // recent's filter, legacy downstream, then fan-out pipelines up to the cap on readers.
    assert_eq!(found.len(), 1000);
    assert_eq!(year["truncated"], true);
    let guarded = test_compat(&h, &order(&[ID, EMAIL, NOTE].join(",")), "?pipelines=true").await;
    let messages = guarded["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        102,
        "100 messages, a count of the rest, the cut"
    );
    assert_eq!(messages[100], "... and 900 more");
    assert!(
        messages[101]
            .as_str()
            .is_some_and(|m| m.contains("too large"))
    );
}

/// 3000 pipelines in a chain (each reads the previous one's sink, each has a stage reading
/// `f`): every reader downstream once carried the whole chain of topics before it, a 33 MB
/// answer. Now the readers stop at 1000 and each names at most 16 topics and a count.
#[tokio::test]
async fn a_chain_of_thousands_of_pipelines_gives_a_bounded_answer() {
    let h = Harness::new();
    let store = h.state.store.clone();
    let n = 3000;
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let topic = |t: usize| Endpoint {
                topic: format!("d{t}"),
                subject: None,
            };
            let p = Pipeline {
                name: format!("chain-{i:05}"),
                sources: vec![topic(i)],
                processors: vec![PluginRef {
                    name: "filter".into(),
                    version: "1.0.0".into(),
                    reads: Some(vec!["f".into()]),
                }],
                sinks: vec![topic(i + 1)],
                ..Pipeline::default()
            };
            store.put_pipeline(&p).expect("stored");
        }
    })
    .await
    .expect("stored them all");
    let (status, _, bytes) = h
        .raw(
            "GET",
            "/v1/lineage/fields/d0-value/f",
            None,
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(bytes.len() < 1_000_000, "a {} byte answer", bytes.len());
    let answer = common::parse(&bytes);
    assert_eq!(answer["truncated"], true);
    let found = readers(&answer);
    assert_eq!(found.len(), 1000);
    let (_, _, _, topic, via, _) = &found[999];
    assert_eq!(topic, "d999");
    assert_eq!(via.len(), 17, "{via:?}");
    assert_eq!(via[0], "d1");
    assert_eq!(via[8], "… 983 more …");
    assert_eq!(via[16], "d999");
}
