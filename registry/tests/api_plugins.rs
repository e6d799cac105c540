//! Plugins and lineage through the handlers, with a fake inspector (the "component" is its
//! manifest as JSON); real components are in `e2e.rs`.

mod common;

use common::{Harness, TOKEN, expect_error};
use serde_json::{Value, json};

const IN_V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;
const IN_V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}"#;
const IN_BROKEN: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":""}]}"#;

fn component(name: &str, version: &str, input: &str, extra: &str) -> Vec<u8> {
    json!({"name": name, "version": version, "description": format!("{name} {extra}"), "input": input, "output": input})
        .to_string()
        .into_bytes()
}

async fn push(h: &Harness, bytes: Vec<u8>) -> (u16, Value) {
    let (status, _, body) = h
        .raw(
            "POST",
            "/v1/plugins",
            Some(bytes),
            Some(TOKEN),
            Some("application/wasm"),
        )
        .await;
    (status.as_u16(), common::parse(&body))
}

#[tokio::test]
async fn upload_list_show_download() {
    let h = Harness::new();
    let bytes = component("mask", "1.0.0", IN_V1, "");
    let (status, meta) = push(&h, bytes.clone()).await;
    assert_eq!(status, 201, "{meta}");
    assert_eq!(meta["name"], "mask");
    assert_eq!(meta["version"], "1.0.0");
    assert_eq!(meta["size"], bytes.len());
    assert_eq!(meta["yanked"], false);
    assert_eq!(meta["params"][0]["name"], "field");
    let sha = meta["sha256"].as_str().expect("sha").to_string();
    assert_eq!(sha.len(), 64);

    let (_, list) = h.anon("GET", "/v1/plugins", None).await;
    assert_eq!(list[0]["name"], "mask");
    assert_eq!(list[0]["latest"], "1.0.0");
    let (_, versions) = h.anon("GET", "/v1/plugins/mask", None).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(1));
    let (status, one) = h.anon("GET", "/v1/plugins/mask/versions/1.0.0", None).await;
    assert_eq!((status.as_u16(), &one["sha256"]), (200, &json!(sha)));

    let (status, headers, body) = h
        .raw(
            "GET",
            "/v1/plugins/mask/versions/1.0.0/download",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    assert_eq!(headers["content-type"], "application/wasm");
    assert_eq!(headers["etag"], format!("\"{sha}\"").as_str());
    // Conditional GET with the digest.
    let mut req = axum::http::Request::builder()
        .uri("/v1/plugins/mask/versions/1.0.0/download")
        .header("if-none-match", format!("\"{sha}\""));
    req = req.method("GET");
    let resp = tower::ServiceExt::oneshot(
        weft_registry::app(h.state.clone()),
        req.body(axum::body::Body::empty()).expect("request"),
    )
    .await
    .expect("infallible");
    assert_eq!(resp.status(), 304);

    expect_error(&h.anon("GET", "/v1/plugins/nope", None).await, 404, 40410);
    expect_error(
        &h.anon("GET", "/v1/plugins/mask/versions/9.9.9", None).await,
        404,
        40411,
    );
    expect_error(
        &h.anon("GET", "/v1/plugins/mask/versions/banana", None)
            .await,
        422,
        42211,
    );
    expect_error(
        &h.anon("GET", "/v1/plugins/Bad..Name", None).await,
        422,
        42211,
    );
}

#[tokio::test]
async fn versions_are_immutable_and_reuploads_idempotent() {
    let h = Harness::new();
    let bytes = component("mask", "1.0.0", IN_V1, "");
    assert_eq!(push(&h, bytes.clone()).await.0, 201);
    assert_eq!(push(&h, bytes).await.0, 200);
    let (status, err) = push(&h, component("mask", "1.0.0", IN_V1, "changed")).await;
    assert_eq!((status, err["error_code"].clone()), (409, json!(40901)));
    assert!(err["message"].as_str().expect("msg").contains("immutable"));
}

#[tokio::test]
async fn concurrent_uploads_of_one_version_have_one_winner() {
    let h = Harness::new();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let state = h.state.clone();
        tasks.push(tokio::spawn(async move {
            let bytes = component("race", "1.0.0", IN_V1, &format!("variant {i}"));
            let req = axum::http::Request::builder()
                .method("POST")
                .uri("/v1/plugins")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(axum::body::Body::from(bytes))
                .expect("request");
            tower::ServiceExt::oneshot(weft_registry::app(state), req)
                .await
                .expect("infallible")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn invalid_uploads_are_refused_with_reasons() {
    let h = Harness::with(|mut s| {
        s.max_plugin_bytes = 2048;
        s
    });
    let (status, err) = push(&h, b"\0asm garbage".to_vec()).await;
    assert_eq!((status, err["error_code"].clone()), (422, json!(42210)));
    let (status, err) = push(&h, component("Bad_Name", "1.0.0", IN_V1, "")).await;
    assert_eq!(status, 422);
    assert!(
        err["message"]
            .as_str()
            .expect("msg")
            .contains("[a-z][a-z0-9-]*")
    );
    let (status, err) = push(&h, component("mask", "one", IN_V1, "")).await;
    assert_eq!(status, 422);
    assert!(
        err["message"]
            .as_str()
            .expect("msg")
            .contains("semantic version")
    );
    let (status, err) = push(&h, component("mask", "1.0.0", r#"{"type":"nope"}"#, "")).await;
    assert_eq!(status, 422);
    assert!(
        err["message"]
            .as_str()
            .expect("msg")
            .contains("input schema")
    );
    let (status, err) = push(&h, vec![b' '; 4096]).await;
    assert_eq!((status, err["error_code"].clone()), (413, json!(41301)));
    let (status, _, _) = h
        .raw(
            "POST",
            "/v1/plugins",
            Some(component("mask", "1.0.0", IN_V1, "")),
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn evolution_rule_guards_schemas_within_a_major_version() {
    let h = Harness::new();
    assert_eq!(push(&h, component("p", "1.0.0", IN_V1, "")).await.0, 201);
    assert_eq!(push(&h, component("p", "1.1.0", IN_V2, "")).await.0, 201);
    // An input field whose type changed: what the previous version read cannot be read.
    let (status, err) = push(&h, component("p", "1.2.0", IN_BROKEN, "")).await;
    assert_eq!((status, err["error_code"].clone()), (409, json!(40902)));
    let msg = err["message"].as_str().expect("msg");
    assert!(msg.contains("p@1.1.0 → p@1.2.0"), "{msg}");
    assert!(
        msg.contains("input: at `id`: type changed from long"),
        "{msg}"
    );
    // A new major version may break on purpose.
    assert_eq!(
        push(&h, component("p", "2.0.0", IN_BROKEN, "")).await.0,
        201
    );
    // Level NONE lifts the rule.
    let (status, _) = h
        .call(
            "PUT",
            "/v1/plugins/p/config",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        push(&h, component("p", "1.2.0", IN_BROKEN, "")).await.0,
        201
    );
    let (_, config) = h.anon("GET", "/v1/plugins/p/config", None).await;
    assert_eq!(config, json!({"compatibility": "NONE"}));
}

#[tokio::test]
async fn resolve_picks_the_newest_match_and_skips_yanked() {
    let h = Harness::new();
    for v in ["1.0.0", "1.2.0", "1.3.1", "2.0.0"] {
        assert_eq!(push(&h, component("m", v, IN_V1, "")).await.0, 201);
    }
    let resolve = |req: &'static str| {
        let h = &h;
        async move {
            h.anon("GET", &format!("/v1/plugins/m/resolve?req={req}"), None)
                .await
        }
    };
    assert_eq!(resolve("%5E1").await.1["version"], "1.3.1");
    assert_eq!(resolve("%5E1.2").await.1["version"], "1.3.1");
    assert_eq!(resolve("=1.2.0").await.1["version"], "1.2.0");
    assert_eq!(resolve("*").await.1["version"], "2.0.0");
    expect_error(&resolve("%5E3").await, 404, 40412);
    expect_error(&resolve("not-a-req").await, 422, 42212);

    let (status, meta) = h
        .call("POST", "/v1/plugins/m/versions/1.3.1/yank", None)
        .await;
    assert_eq!((status.as_u16(), &meta["yanked"]), (200, &json!(true)));
    assert_eq!(resolve("%5E1").await.1["version"], "1.2.0");
    // Still downloadable by exact version.
    let (status, _, _) = h
        .raw(
            "GET",
            "/v1/plugins/m/versions/1.3.1/download",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    h.call("POST", "/v1/plugins/m/versions/1.3.1/unyank", None)
        .await;
    assert_eq!(resolve("%5E1").await.1["version"], "1.3.1");
    expect_error(
        &h.anon("POST", "/v1/plugins/m/versions/1.3.1/yank", None)
            .await,
        401,
        40101,
    );
}

#[tokio::test]
async fn pipelines_validate_and_answer_lineage_queries() {
    let h = Harness::new();
    push(&h, component("clean", "1.0.0", IN_V1, "")).await;
    h.register("orders-value", &serde_json::from_str(IN_V1).expect("json"))
        .await;
    let pipeline = |name: &str, from: &str, to: &str, plugin: &str| {
        json!({"name": name, "sources": [{"topic": from}],
               "processors": [{"name": plugin, "version": "1.0.0"}],
               "sinks": [{"topic": to}]})
    };
    let p1 = pipeline("clean-orders", "orders", "orders-clean", "clean");
    let (status, report) = h
        .anon("POST", "/v1/pipelines/validate", Some(p1.clone()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["links"][0]["status"], "ok");
    let (status, _) = h
        .call("PUT", "/v1/pipelines/clean-orders", Some(p1.clone()))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        h.call("PUT", "/v1/pipelines/clean-orders", Some(p1))
            .await
            .0,
        200
    );
    let p2 = pipeline("archive", "orders-clean", "orders-archive", "clean");
    assert_eq!(
        h.call("PUT", "/v1/pipelines/archive", Some(p2)).await.0,
        201
    );

    let (_, lineage) = h.anon("GET", "/v1/lineage/topics/orders-clean", None).await;
    assert_eq!(lineage["consumers"], json!(["archive"]));
    assert_eq!(lineage["producers"], json!(["clean-orders"]));
    assert_eq!(lineage["upstream"], json!(["orders"]));
    assert_eq!(lineage["downstream"], json!(["orders-archive"]));
    let (_, lineage) = h
        .anon("GET", "/v1/lineage/topics/orders-archive", None)
        .await;
    assert_eq!(lineage["upstream"], json!(["orders", "orders-clean"]));
    let (_, users) = h
        .anon("GET", "/v1/lineage/plugins/clean/versions/1.0.0", None)
        .await;
    assert_eq!(users, json!(["archive", "clean-orders"]));
    let (_, users) = h.anon("GET", "/v1/lineage/plugins/clean", None).await;
    assert_eq!(users.as_array().map(Vec::len), Some(2));

    // A source whose schema the plugin cannot read is refused, naming the link and field.
    h.register(
        "legacy-value",
        &json!({"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}),
    )
    .await;
    let bad = pipeline("legacy", "legacy", "out", "clean");
    let (_, report) = h
        .anon("POST", "/v1/pipelines/validate", Some(bad.clone()))
        .await;
    assert_eq!(report["valid"], false);
    let answer = h.call("PUT", "/v1/pipelines/legacy", Some(bad)).await;
    let msg = expect_error(&answer, 409, 40903);
    assert!(msg.contains("clean@1.0.0") && msg.contains("`id`"), "{msg}");
    // Unknown plugin versions are invalid pipelines.
    let unknown = pipeline("ghost", "orders", "out", "nope");
    expect_error(
        &h.call("PUT", "/v1/pipelines/ghost", Some(unknown)).await,
        422,
        42213,
    );
    assert_eq!(h.call("DELETE", "/v1/pipelines/archive", None).await.0, 204);
    expect_error(
        &h.anon("GET", "/v1/pipelines/archive", None).await,
        404,
        40413,
    );
}

#[tokio::test]
async fn annotations_are_stamped_kept_in_order_bounded_and_need_the_token() {
    let h = Harness::new();
    assert_eq!(push(&h, component("mask", "1.2.0", IN_V1, "")).await.0, 201);
    let (_, fresh) = h.anon("GET", "/v1/plugins/mask/versions/1.2.0", None).await;
    assert_eq!(fresh["annotations"], json!([]));

    let note = json!({"kind": "rolled-back", "pipeline": "orders", "reason": "trapped on 6 of its first 200 events"});
    let path = "/v1/plugins/mask/versions/1.2.0/annotations";
    expect_error(&h.anon("POST", path, Some(note.clone())).await, 401, 40101);
    let (status, meta) = h.call("POST", path, Some(note)).await;
    assert_eq!(status, 200, "{meta}");
    let stored = &meta["annotations"][0];
    assert_eq!(stored["kind"], "rolled-back");
    assert_eq!(stored["pipeline"], "orders");
    assert_eq!(stored["reason"], "trapped on 6 of its first 200 events");
    assert!(
        stored["at"].as_str().is_some_and(|t| t.starts_with("20")),
        "{stored}"
    );
    // The contract's first spelling of the route reaches the same handler; a client's `at`
    // is the registry's to set.
    let (status, meta) = h
        .call(
            "POST",
            "/v1/plugins/mask/1.2.0/annotations",
            Some(json!({"kind": "note", "reason": "second", "at": "1999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["annotations"][1]["reason"], "second");
    assert_ne!(meta["annotations"][1]["at"], "1999-01-01T00:00:00Z");
    let (_, shown) = h.anon("GET", "/v1/plugins/mask", None).await;
    assert_eq!(shown[0]["annotations"].as_array().map(Vec::len), Some(2));

    for bad in [
        json!({"kind": ""}),
        json!({"kind": "Rolled Back"}),
        json!({"kind": "x".repeat(33)}),
        json!({"kind": "note", "reason": "r".repeat(5000)}),
    ] {
        expect_error(&h.call("POST", path, Some(bad)).await, 422, 42214);
    }
    expect_error(
        &h.call(
            "POST",
            path,
            Some(json!({"kind": "note", "pipeline": "a/b"})),
        )
        .await,
        422,
        42211,
    );
    expect_error(
        &h.call(
            "POST",
            "/v1/plugins/mask/versions/9.9.9/annotations",
            Some(json!({"kind": "note"})),
        )
        .await,
        404,
        40411,
    );
    // A daemon rolling back in a loop cannot grow the record without bound.
    for i in 0..120 {
        let (status, _) = h
            .call(
                "POST",
                path,
                Some(json!({"kind": "note", "reason": format!("n{i}")})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (_, meta) = h.anon("GET", "/v1/plugins/mask/versions/1.2.0", None).await;
    let kept = meta["annotations"].as_array().expect("annotations");
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[99]["reason"], "n119");
}
