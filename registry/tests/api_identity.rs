//! Schema identity, `normalize`, Confluent-style booleans in queries, and per-subject reads
//! on a long history: what a Confluent client relies on, through the router.

mod common;

use common::{Harness, expect_error};
use serde_json::{Value, json};

fn dotted() -> Value {
    json!({"type":"record","name":"com.acme.N","fields":[
        {"name":"id","type":"long"},
        {"name":"next","type":["null","N"],"default":null}]})
}

/// The same record as [`dotted`]: namespace split out, keys reordered, a type wrapped.
fn split() -> Value {
    json!({"fields":[
        {"type":{"type":"long"},"name":"id"},
        {"name":"next","default":null,"type":["null","com.acme.N"]}],
        "namespace":"com.acme","type":"record","name":"N"})
}

async fn schema_of(h: &Harness, path: &str) -> Value {
    let (status, body) = h.call("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(body["schema"].as_str().expect("schema text")).expect("schema JSON")
}

#[tokio::test]
async fn a_dotted_name_and_a_namespace_are_one_schema_one_id_one_version() {
    let h = Harness::new();
    let (status, first) = h.register("orders-value", &dotted()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = h.register("orders-value", &split()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (_, versions) = h.call("GET", "/subjects/orders-value/versions", None).await;
    assert_eq!(versions, json!([1]));
    // Looked up by either spelling; the stored text is the first one sent.
    let (status, found) = h
        .call(
            "POST",
            "/subjects/orders-value",
            Some(json!({"schema": split().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (found["version"].as_u64(), &found["id"]),
        (Some(1), &first["id"])
    );
    assert_eq!(
        schema_of(&h, "/subjects/orders-value/versions/1").await,
        dotted()
    );
    // Another subject with the other spelling shares the id.
    let (_, other) = h.register("audit-value", &split()).await;
    assert_eq!(other["id"], first["id"]);
}

#[tokio::test]
async fn what_changes_decoding_or_docs_is_another_schema() {
    let h = Harness::new();
    let with_default = |d: i64| json!({"type":"record","name":"R","fields":[{"name":"x","type":"long","default":d}]});
    let (_, a) = h.register("s", &with_default(1)).await;
    let (_, b) = h.register("s", &with_default(2)).await;
    let mut documented = with_default(2);
    documented["doc"] = json!("now with a doc");
    let (_, c) = h.register("s", &documented).await;
    assert_ne!(a["id"], b["id"]);
    assert_ne!(b["id"], c["id"]);
    let (_, versions) = h.call("GET", "/subjects/s/versions", None).await;
    assert_eq!(versions, json!([1, 2, 3]));
}

#[tokio::test]
async fn normalize_stores_and_serves_the_canonical_form() {
    let h = Harness::new();
    let (status, answer) = h
        .call(
            "POST",
            "/subjects/n/versions?normalize=true",
            Some(json!({"schema": split().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let stored = schema_of(&h, "/subjects/n/versions/latest").await;
    assert_eq!(
        stored,
        json!({"type":"record","name":"com.acme.N","fields":[
            {"name":"id","type":"long"},
            {"name":"next","type":["null","com.acme.N"],"default":null}]})
    );
    // Without normalize the text is kept as sent.
    let (_, plain) = h.register("plain", &split()).await;
    assert_eq!(plain["id"], answer["id"], "one schema, one id");
    let (_, lookup) = h
        .call(
            "POST",
            "/subjects/n?normalize=true",
            Some(json!({"schema": dotted().to_string()})),
        )
        .await;
    assert_eq!(lookup["id"], answer["id"]);
}

#[tokio::test]
async fn booleans_are_read_in_any_case_as_confluent_clients_send_them() {
    let h = Harness::new();
    let schema = json!({"schema": dotted().to_string()});
    let (status, body) = h
        .call(
            "POST",
            "/subjects/b/versions?normalize=False",
            Some(schema.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h
        .call(
            "POST",
            "/subjects/b?normalize=False&deleted=False",
            Some(schema.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let breaking = json!({"schema": json!({"type":"record","name":"com.acme.N","fields":[
        {"name":"id","type":"long"},{"name":"qty","type":"int"}]}).to_string()});
    let (status, body) = h
        .call(
            "POST",
            "/compatibility/subjects/b/versions/latest?normalize=False&verbose=True",
            Some(breaking),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_compatible"], false);
    assert!(
        body["messages"].as_array().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let (status, _) = h.call("DELETE", "/subjects/b?permanent=FALSE", None).await;
    assert_eq!(status, 200);
    let (_, listed) = h.call("GET", "/subjects?deleted=TRUE", None).await;
    assert_eq!(listed, json!(["b"]));
    let (_, listed) = h.call("GET", "/subjects?deleted=false", None).await;
    assert_eq!(listed, json!([]));
    let (status, body) = h.call("DELETE", "/subjects/b?permanent=True", None).await;
    assert_eq!((status.as_u16(), body), (200, json!([1])));
    // Anything else is refused with the parameter named, not read as false.
    let answer = h.call("GET", "/subjects?deleted=1", None).await;
    let message = expect_error(&answer, 400, 400);
    assert!(
        message.contains("`deleted`") && message.contains("true or false"),
        "{message}"
    );
}

#[tokio::test]
async fn reads_on_a_long_history_find_the_right_version() {
    let h = Harness::new();
    let version = |n: u64| json!({"type":"record","name":"H","fields":[{"name":"x","type":"long","default":n}]});
    for n in 1..=60 {
        let (status, body) = h.register("hist", &version(n)).await;
        assert_eq!(status, 200, "{body}");
    }
    // Subjects sharing a prefix, listed once each whatever their number of versions.
    for subject in ["hist-b", "hista", "his"] {
        h.register(subject, &version(1)).await;
    }
    let (_, latest) = h.call("GET", "/subjects/hist/versions/latest", None).await;
    assert_eq!(latest["version"], 60);
    h.call("DELETE", "/subjects/hist/versions/60", None).await;
    h.call("DELETE", "/subjects/hist/versions/59", None).await;
    let (_, latest) = h.call("GET", "/subjects/hist/versions/latest", None).await;
    assert_eq!(latest["version"], 58);
    let (_, latest) = h
        .call("GET", "/subjects/hist/versions/latest?deleted=true", None)
        .await;
    assert_eq!(latest["version"], 60);
    let answer = h.call("GET", "/subjects/hist/versions/59", None).await;
    expect_error(&answer, 404, 40402);
    let (_, v10) = h.call("GET", "/subjects/hist/versions/10", None).await;
    assert_eq!(v10["version"], 10);
    // Registering version 10's schema again answers version 10, adds nothing.
    let (_, again) = h.register("hist", &version(10)).await;
    assert_eq!(again["id"], v10["id"]);
    let (_, found) = h
        .call(
            "POST",
            "/subjects/hist",
            Some(json!({"schema": version(10).to_string()})),
        )
        .await;
    assert_eq!(found["version"], 10);
    // A soft-deleted version is found only when asked.
    let body = Some(json!({"schema": version(60).to_string()}));
    let answer = h.call("POST", "/subjects/hist", body.clone()).await;
    expect_error(&answer, 404, 40403);
    let (_, found) = h.call("POST", "/subjects/hist?deleted=true", body).await;
    assert_eq!(found["version"], 60);
    // "his", "hist", "hist-b", "hista": each once, in order; the prefix filter holds.
    let (_, subjects) = h.call("GET", "/subjects?subjectPrefix=hist", None).await;
    assert_eq!(subjects, json!(["hist", "hist-b", "hista"]));
    let (_, versions) = h.call("GET", "/subjects/hist/versions", None).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(58));
    // The next version continues after the soft-deleted ones.
    let (_, next) = h.register("hist", &version(61)).await;
    let (_, latest) = h.call("GET", "/subjects/hist/versions/latest", None).await;
    assert_eq!(
        (latest["version"].as_u64(), &latest["id"]),
        (Some(61), &next["id"])
    );
}
