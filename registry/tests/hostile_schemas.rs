//! Schemas sent to crash or stall the registry: invalid names (apache-avro panicked on
//! them), readers nested through references against a recursive writer (the check
//! overflowed the stack), checks that took exponential time on the async workers.

mod common;
mod real;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{Harness, expect_error};
use serde_json::{Value, json};

const LIST: &str = r#"{"type":"record","name":"Node","fields":[
    {"name":"value","type":"long"},{"name":"next","type":["null","Node"]}]}"#;

/// A reader `Node` whose `next` is the last of `n` records chained by reference (each
/// defined first in an optional field): shallow JSON, `n` records deep.
fn chained_reader(n: usize) -> String {
    let mut fields = vec![
        r#"{"name":"value","type":"long"}"#.to_string(),
        r#"{"name":"d0","type":["null",{"type":"record","name":"n0.Node","fields":[{"name":"value","type":"long"}]}],"default":null}"#.to_string(),
    ];
    for i in 1..n {
        fields.push(format!(
            r#"{{"name":"d{i}","type":["null",{{"type":"record","name":"n{i}.Node","fields":[{{"name":"value","type":"long"}},{{"name":"next","type":["null","n{}.Node"]}}]}}],"default":null}}"#,
            i - 1
        ));
    }
    fields.push(format!(
        r#"{{"name":"next","type":["null","n{}.Node"]}}"#,
        n - 1
    ));
    format!(
        r#"{{"type":"record","name":"Node","fields":[{}]}}"#,
        fields.join(",")
    )
}

/// Records nested `depth` deep through `["null", record]` unions, `leaf` innermost.
fn nested_unions(depth: usize, leaf: &str) -> String {
    let mut s = format!(
        r#"{{"type":"record","name":"R{depth}","fields":[{{"name":"x","type":"{leaf}"}}]}}"#
    );
    for i in (0..depth).rev() {
        s = format!(
            r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":["null",{s}]}}]}}"#
        );
    }
    s
}

/// A union of `n` records all named `R` (in namespaces `n0`, `n1`, ...), the `i`th with one
/// field `x{i}` of type `ty`: a writer branch is readable by its reader namesake only, and no
/// branch can be skipped by its name, so every check walks up to `n * n` pairs.
fn union_of_records(n: usize, ty: &str) -> String {
    let branches: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"record","name":"n{i}.R","fields":[{{"name":"x{i}","type":"{ty}"}}]}}"#
            )
        })
        .collect();
    format!("[{}]", branches.join(","))
}

fn body(schema: &str) -> Option<Value> {
    Some(json!({ "schema": schema }))
}

async fn test_latest(h: &Harness, subject: &str, schema: &str) -> (StatusCode, Value) {
    h.anon(
        "POST",
        &format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"),
        body(schema),
    )
    .await
}

/// The name as a message shows it: control characters escaped.
fn shown(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).collect()
}

#[tokio::test]
async fn invalid_names_answer_422_naming_the_name_and_the_rule() {
    let h = Harness::new();
    let record = |name: &str| {
        json!({"type":"record","name":name,"fields":[{"name":"a","type":"int"}]}).to_string()
    };
    let mut cases: Vec<(String, String, &str)> = ["a-b", "", "../../etc", "naïve", "a\0b", "1st"]
        .into_iter()
        .map(|name| (record(name), name.to_string(), "type name"))
        .collect();
    cases.push((
        json!({"type":"record","name":"R","aliases":["good","bad alias"],"fields":[]}).to_string(),
        "bad alias".into(),
        "type alias",
    ));
    cases.push((
        json!({"type":"record","name":"R","fields":[{"name":"a","aliases":["x-y"],"type":"int"}]})
            .to_string(),
        "x-y".into(),
        "field alias",
    ));
    cases.push((
        json!({"type":"enum","name":"E","symbols":["A","B C"]}).to_string(),
        "B C".into(),
        "enum symbol",
    ));
    cases.push((
        json!({"type":"record","name":"R","fields":[{"name":"é","type":"int"}]}).to_string(),
        "é".into(),
        "field name",
    ));
    for (schema, name, kind) in cases {
        let expected = format!("invalid {kind} `{}`", shown(&name));
        let answer = h
            .call("POST", "/subjects/names-value/versions", body(&schema))
            .await;
        let message = expect_error(&answer, 422, 42201);
        assert!(
            message.contains(&expected),
            "{message} should name {expected}"
        );
        assert!(
            message.contains("[A-Za-z_][A-Za-z0-9_]*"),
            "{message} states the rule"
        );
        let answer = test_latest(&h, "names-value", &schema).await;
        let message = expect_error(&answer, 422, 42201);
        assert!(message.contains(&expected), "{message}");
    }
    // Nothing was stored, and the registry still answers.
    let (status, subjects) = h.anon("GET", "/subjects", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subjects, json!([]));
}

#[tokio::test]
async fn a_linked_list_against_records_chained_by_reference_gets_an_answer() {
    let h = Harness::new();
    let (status, _) = h
        .call("POST", "/subjects/list-value/versions", body(LIST))
        .await;
    assert_eq!(status, StatusCode::OK);

    // The issue's request: 1,000 records chained by reference. Refused before any check.
    let deep = chained_reader(1_000);
    let message = expect_error(&test_latest(&h, "list-value", &deep).await, 422, 42201);
    assert!(
        message.contains("types nest deeper than 64 levels (at n32.Node)"),
        "{message}"
    );
    let answer = h
        .call("POST", "/subjects/list-value/versions", body(&deep))
        .await;
    expect_error(&answer, 422, 42201);

    // Within the bound, the chain is checked and readable.
    let (status, answer) = test_latest(&h, "list-value", &chained_reader(30)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["is_compatible"], json!(true), "{answer}");
    let (status, _) = h.anon("GET", "/subjects/list-value/versions", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn nested_unions_thirty_deep_are_answered() {
    let h = Harness::new();
    let (status, _) = h
        .call(
            "POST",
            "/subjects/nest-value/versions",
            body(&nested_unions(30, "int")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Exponential before memoization: 2^30 pair visits.
    let (status, answer) = test_latest(&h, "nest-value", &nested_unions(30, "string")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["is_compatible"], json!(false));
    let messages = answer["messages"].to_string();
    assert!(
        messages.contains("int (writer) to string (reader)"),
        "{messages}"
    );
    let (status, answer) = test_latest(&h, "nest-value", &nested_unions(30, "long")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["is_compatible"], json!(true));
}

#[tokio::test]
async fn a_check_past_its_budget_answers_too_complex() {
    let h = Harness::new();
    let (status, _) = h
        .call(
            "POST",
            "/subjects/wide-value/versions",
            body(&union_of_records(600, "int")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Every writer branch against every reader branch: 360,000 pairs.
    let reader = union_of_records(600, "boolean");
    let message = expect_error(&test_latest(&h, "wide-value", &reader).await, 422, 42201);
    assert!(
        message.contains("schema too complex to check: more than 100000 steps"),
        "{message}"
    );
    // Registering it is refused too, and stores nothing.
    let answer = h
        .call("POST", "/subjects/wide-value/versions", body(&reader))
        .await;
    assert_ne!(answer.0, StatusCode::OK, "{}", answer.1);
    assert!(
        answer.1["message"].to_string().contains("too complex"),
        "{}",
        answer.1
    );
    let (_, versions) = h.anon("GET", "/subjects/wide-value/versions", None).await;
    assert_eq!(versions, json!([1]));
}

/// Two async workers, four heavy checks: the checks run on the blocking pool, so a cheap
/// request is answered while all four are still running. (Before, the checks held both
/// workers and the cheap request waited for one to finish.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_checks_do_not_starve_other_requests() {
    let h = Arc::new(Harness::new());
    // Versions 1 and 2 (registered under NONE), then FULL_TRANSITIVE: each heavy request
    // checks four pairs of 400-branch unions, each close to the step budget.
    let (status, _) = h
        .call(
            "PUT",
            "/config/heavy-value",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for ty in ["string", "bytes"] {
        let (status, answer) = h
            .call(
                "POST",
                "/subjects/heavy-value/versions",
                body(&union_of_records(400, ty)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, _) = h
        .call(
            "PUT",
            "/config/heavy-value",
            Some(json!({"compatibility": "FULL_TRANSITIVE"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let heavy: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.anon(
                    "POST",
                    "/compatibility/subjects/heavy-value/versions",
                    body(&union_of_records(400, "string")),
                )
                .await
            })
        })
        .collect();
    // Let the four start (no assertion on time: only on what finished first).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, subjects) = h.anon("GET", "/subjects", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subjects, json!(["heavy-value"]));
    let finished = heavy.iter().filter(|task| task.is_finished()).count();
    assert_eq!(
        finished, 0,
        "a cheap request waited for a heavy check to finish"
    );
    for task in heavy {
        let (status, answer) = task.await.expect("the request task ends");
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["is_compatible"], json!(true), "{answer}");
    }
}

/// Through the real binary: the requests that used to abort the process get answers, and
/// the process is still there to answer the next one.
#[test]
fn the_real_registry_answers_hostile_schemas_and_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = real::RealRegistry::start(dir.path());
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let post = |path: &str, schema: &str| {
        let response = http
            .post(format!("{}{path}", registry.url))
            .bearer_auth(real::TOKEN)
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&json!({ "schema": schema }))
            .send()
            .expect("the registry answers");
        let status = response.status().as_u16();
        (status, response.json::<Value>().expect("a JSON answer"))
    };
    let (status, _) = post("/subjects/list-value/versions", LIST);
    assert_eq!(status, 200);
    let hostile = [
        chained_reader(1_000),
        nested_unions(30, "string"),
        json!({"type":"record","name":"a-b","fields":[]}).to_string(),
        json!({"type":"record","name":"R","aliases":["../../etc"],"fields":[]}).to_string(),
        json!({"type":"record","name":"R\u{0}","fields":[]}).to_string(),
    ];
    for schema in &hostile {
        for path in [
            "/compatibility/subjects/list-value/versions/latest",
            "/subjects/list-value/versions",
        ] {
            let (status, answer) = post(path, schema);
            assert!(
                status == 200 || status == 409 || status == 422,
                "{path}: {status} {answer}"
            );
        }
    }
    let versions: Value = http
        .get(format!("{}/subjects/list-value/versions", registry.url))
        .send()
        .expect("still up")
        .json()
        .expect("JSON");
    assert_eq!(versions, json!([1]));
}
