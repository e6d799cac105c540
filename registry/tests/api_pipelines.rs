//! Pipelines deployed through the registry: the whole definition and a target cluster, the
//! list a daemon of that cluster polls (ETag, 304), and lineage reports that never undeploy.

mod common;

use axum::http::{Request, header};
use common::{Harness, TOKEN, expect_error};
use serde_json::{Value, json};

const ORDER: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;

fn component(name: &str, version: &str) -> Vec<u8> {
    json!({"name": name, "version": version, "description": name, "input": ORDER, "output": ORDER})
        .to_string()
        .into_bytes()
}

const DEFINITION: &str = r#"
[[source]]
kind = "kafka"
topics = ["orders"]
group = "clean"

[[processor]]
plugin = "clean@^1"

[sink]
kind = "kafka"
topic = "orders-clean"
"#;

/// GET of a cluster's list with an optional If-None-Match: status, ETag, body.
async fn poll(h: &Harness, cluster: &str, etag: Option<&str>) -> (u16, String, Value) {
    let mut req = Request::builder()
        .method("GET")
        .uri(format!("/v1/clusters/{cluster}/pipelines"));
    if let Some(etag) = etag {
        req = req.header(header::IF_NONE_MATCH, etag);
    }
    let resp = tower::ServiceExt::oneshot(
        weft_registry::app(h.state.clone()),
        req.body(axum::body::Body::empty()).expect("request"),
    )
    .await
    .expect("infallible");
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, etag, common::parse(&bytes))
}

async fn setup() -> Harness {
    let h = Harness::new();
    for version in ["1.0.0", "1.2.0", "2.0.0"] {
        let (status, _, body) = h
            .raw(
                "POST",
                "/v1/plugins",
                Some(component("clean", version)),
                Some(TOKEN),
                Some("application/wasm"),
            )
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    h
}

#[tokio::test]
async fn a_deployed_pipeline_is_listed_for_its_cluster_with_lineage_read_from_its_definition() {
    let h = setup().await;
    let (status, stored) = h
        .call(
            "PUT",
            "/v1/pipelines/clean-orders",
            Some(
                json!({"name": "clean-orders", "cluster": "prod-eu", "definition": DEFINITION,
                        "revision": 999}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    // Lineage comes from the definition: topics, and `clean@^1` pinned to the newest 1.x.
    assert_eq!(stored["sources"], json!([{"topic": "orders"}]));
    assert_eq!(stored["sinks"], json!([{"topic": "orders-clean"}]));
    assert_eq!(
        stored["processors"],
        json!([{"name": "clean", "version": "1.2.0"}])
    );
    assert_eq!(stored["definition"], DEFINITION, "stored verbatim");
    let revision = stored["revision"].as_u64().expect("revision");
    assert_ne!(
        revision, 999,
        "the revision is the registry's, not the client's"
    );
    let (_, lineage) = h.anon("GET", "/v1/lineage/topics/orders", None).await;
    assert_eq!(lineage["consumers"], json!(["clean-orders"]));

    let (status, etag, list) = poll(&h, "prod-eu", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["cluster"], "prod-eu");
    assert_eq!(list["pipelines"][0]["name"], "clean-orders");
    assert_eq!(list["pipelines"][0]["definition"], DEFINITION);
    assert_eq!(list["pipelines"][0]["revision"], revision);
    assert_eq!(
        etag,
        format!("\"{}\"", list["digest"].as_str().expect("digest"))
    );
    // Nothing changed: an empty 304.
    let (status, again, body) = poll(&h, "prod-eu", Some(&etag)).await;
    assert_eq!((status, &again, body), (304, &etag, Value::Null));
    // Another cluster sees nothing, and ?cluster= filters the same way.
    let (_, _, other) = poll(&h, "prod-us", None).await;
    assert_eq!(other["pipelines"], json!([]));
    let (_, filtered) = h.anon("GET", "/v1/pipelines?cluster=prod-us", None).await;
    assert_eq!(filtered, json!([]));
    let (_, filtered) = h.anon("GET", "/v1/pipelines?cluster=prod-eu", None).await;
    assert_eq!(filtered[0]["name"], "clean-orders");

    // A daemon's lineage report (no definition) updates lineage and keeps the deployment:
    // the cluster's list is unchanged (still 304).
    let (status, reported) = h
        .call(
            "PUT",
            "/v1/pipelines/clean-orders",
            Some(
                json!({"name": "clean-orders", "sources": [{"topic": "orders"}],
                        "processors": [{"name": "clean", "version": "1.0.0"}],
                        "sinks": [{"topic": "orders-clean"}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{reported}");
    assert_eq!(reported["cluster"], "prod-eu");
    assert_eq!(reported["definition"], DEFINITION);
    assert_eq!(reported["revision"], revision);
    assert_eq!(poll(&h, "prod-eu", Some(&etag)).await.0, 304);
    let (_, users) = h
        .anon("GET", "/v1/lineage/plugins/clean/versions/1.0.0", None)
        .await;
    assert_eq!(users, json!(["clean-orders"]), "lineage shows what runs");

    // A new definition: new revision, new ETag.
    let changed = DEFINITION.replace("clean@^1", "clean@^2");
    let (status, stored) = h
        .call(
            "PUT",
            "/v1/pipelines/clean-orders",
            Some(json!({"name": "clean-orders", "cluster": "prod-eu", "definition": changed})),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    assert!(stored["revision"].as_u64().expect("revision") > revision);
    assert_eq!(stored["processors"][0]["version"], "2.0.0");
    let (status, etag2, list) = poll(&h, "prod-eu", Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(etag2, etag);
    assert_eq!(list["pipelines"][0]["definition"], changed);

    // Moved to another cluster: gone from this one's list.
    h.call(
        "PUT",
        "/v1/pipelines/clean-orders",
        Some(json!({"name": "clean-orders", "cluster": "prod-us", "definition": changed})),
    )
    .await;
    let (status, _, list) = poll(&h, "prod-eu", Some(&etag2)).await;
    assert_eq!((status, list["pipelines"].clone()), (200, json!([])));
    let (_, etag_us, list) = poll(&h, "prod-us", None).await;
    assert_eq!(list["pipelines"][0]["name"], "clean-orders");
    // Deleted: gone from every list.
    assert_eq!(
        h.call("DELETE", "/v1/pipelines/clean-orders", None).await.0,
        204
    );
    let (status, _, list) = poll(&h, "prod-us", Some(&etag_us)).await;
    assert_eq!((status, list["pipelines"].clone()), (200, json!([])));
}

#[tokio::test]
async fn bad_deployments_are_refused_with_the_reason() {
    let h = setup().await;
    let put = |body: Value| {
        let h = &h;
        async move { h.call("PUT", "/v1/pipelines/p", Some(body)).await }
    };
    let msg = expect_error(
        &put(json!({"name": "p", "cluster": "c", "sources": [{"topic": "a"}]})).await,
        422,
        42213,
    );
    assert!(msg.contains("no `definition`"), "{msg}");
    let msg = expect_error(
        &put(json!({"name": "p", "cluster": "c", "definition": "[[source]\nkind ="})).await,
        422,
        42213,
    );
    assert!(msg.contains("not valid TOML"), "{msg}");
    let msg = expect_error(
        &put(json!({"name": "p", "cluster": "c", "definition": "[sink]\nkind = \"null\""})).await,
        422,
        42213,
    );
    assert!(msg.contains("[[source]]"), "{msg}");
    let msg = expect_error(
        &put(json!({"name": "p", "cluster": "c",
                    "definition": DEFINITION.replace("clean@^1", "clean@^7")}))
        .await,
        422,
        42213,
    );
    assert!(msg.contains("processor[0]") && msg.contains("^7"), "{msg}");
    expect_error(
        &put(json!({"name": "p", "cluster": "../etc", "definition": DEFINITION})).await,
        422,
        42211,
    );
    expect_error(
        &poll_error(&h, "/v1/clusters/bad%20name/pipelines").await,
        422,
        42211,
    );
    // Writes need the token, as every write.
    expect_error(
        &h.anon(
            "PUT",
            "/v1/pipelines/p",
            Some(json!({"name": "p", "cluster": "c", "definition": DEFINITION})),
        )
        .await,
        401,
        40101,
    );
    // Nothing of the above was stored.
    let (_, _, list) = poll(&h, "c", None).await;
    assert_eq!(list["pipelines"], json!([]));
}

async fn poll_error(h: &Harness, path: &str) -> (axum::http::StatusCode, Value) {
    h.anon("GET", path, None).await
}

#[tokio::test]
async fn a_file_to_file_pipeline_registers_with_its_definition_and_no_topics() {
    let h = setup().await;
    let definition = "[[source]]\nkind = \"jsonl\"\npath = \"in.jsonl\"\nschema = \"s.avsc\"\n\n[[processor]]\nplugin = \"plugins/filter.wasm\"\n\n[sink]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n";
    let (status, stored) = h
        .call(
            "PUT",
            "/v1/pipelines/files",
            Some(json!({"name": "files", "cluster": "c", "definition": definition})),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        (&stored["sources"], &stored["processors"], &stored["sinks"]),
        (&json!([]), &json!([]), &json!([]))
    );
    // Without a definition an empty pipeline says nothing: refused.
    let msg = expect_error(
        &h.call("PUT", "/v1/pipelines/empty", Some(json!({"name": "empty"})))
            .await,
        422,
        42213,
    );
    assert!(msg.contains("needs a definition"), "{msg}");
}
