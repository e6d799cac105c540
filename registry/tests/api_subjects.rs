//! Confluent dialect: subjects, versions, ids, deletes, config, compatibility — answers and
//! codes as the reference registry gives them.

mod common;

use common::{Harness, expect_error, user};
use serde_json::json;

fn v1() -> serde_json::Value {
    user(r#"[{"name":"id","type":"long"}]"#)
}
fn v2() -> serde_json::Value {
    user(r#"[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]"#)
}
fn v_required() -> serde_json::Value {
    user(r#"[{"name":"id","type":"long"},{"name":"email","type":"string"}]"#)
}

#[tokio::test]
async fn register_then_read_back_every_way() {
    let h = Harness::new();
    let (status, body) = h.register("orders-value", &v1()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"id": 1}));

    let (status, subjects) = h.call("GET", "/subjects", None).await;
    assert_eq!(status, 200);
    assert_eq!(subjects, json!(["orders-value"]));
    let (_, versions) = h.call("GET", "/subjects/orders-value/versions", None).await;
    assert_eq!(versions, json!([1]));

    for v in ["1", "latest", "-1"] {
        let (status, got) = h
            .call("GET", &format!("/subjects/orders-value/versions/{v}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(got["subject"], "orders-value");
        assert_eq!(got["version"], 1);
        assert_eq!(got["id"], 1);
        let schema: serde_json::Value =
            serde_json::from_str(got["schema"].as_str().expect("schema text")).expect("json");
        assert_eq!(schema, v1());
    }
    let (_, raw) = h
        .call("GET", "/subjects/orders-value/versions/1/schema", None)
        .await;
    assert_eq!(raw, v1());
    let (_, by_id) = h.call("GET", "/schemas/ids/1", None).await;
    let schema: serde_json::Value =
        serde_json::from_str(by_id["schema"].as_str().expect("schema")).expect("json");
    assert_eq!(schema, v1());
    let (_, raw) = h.call("GET", "/schemas/ids/1/schema", None).await;
    assert_eq!(raw, v1());
    let (_, types) = h.call("GET", "/schemas/types", None).await;
    assert_eq!(types, json!(["AVRO"]));
}

#[tokio::test]
async fn responses_carry_the_schema_registry_media_type() {
    let h = Harness::new();
    let (_, headers, _) = h.raw("GET", "/subjects", None, None, None).await;
    assert_eq!(
        headers["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    // Plain JSON and no content type at all are accepted too.
    let body = json!({"schema": v1().to_string()}).to_string().into_bytes();
    let (status, _, _) = h
        .raw(
            "POST",
            "/subjects/a/versions",
            Some(body),
            Some(common::TOKEN),
            Some("application/json"),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn same_schema_same_id_across_subjects_and_idempotent_registration() {
    let h = Harness::new();
    assert_eq!(h.register("a", &v1()).await.1, json!({"id": 1}));
    assert_eq!(h.register("a", &v1()).await.1, json!({"id": 1}));
    // Whitespace and key order do not make another schema.
    let reordered = json!({"fields":[{"type":"long","name":"id"}],"namespace":"weft.test","name":"User","type":"record"});
    assert_eq!(h.register("b", &reordered).await.1, json!({"id": 1}));
    let (_, versions) = h.call("GET", "/subjects/a/versions", None).await;
    assert_eq!(versions, json!([1]));
    assert_eq!(h.register("a", &v2()).await.1, json!({"id": 2}));
    let (_, usages) = h.call("GET", "/schemas/ids/1/versions", None).await;
    assert_eq!(
        usages,
        json!([{"subject":"a","version":1},{"subject":"b","version":1}])
    );
    let (_, subjects) = h.call("GET", "/schemas/ids/1/subjects", None).await;
    assert_eq!(subjects, json!(["a", "b"]));
}

#[tokio::test]
async fn lookup_finds_the_version_or_says_what_is_missing() {
    let h = Harness::new();
    h.register("a", &v1()).await;
    h.register("a", &v2()).await;
    let (status, got) = h
        .call(
            "POST",
            "/subjects/a",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (got["version"].clone(), got["id"].clone()),
        (json!(1), json!(1))
    );
    let other = user(r#"[{"name":"x","type":"int"}]"#);
    let answer = h
        .call(
            "POST",
            "/subjects/a",
            Some(json!({"schema": other.to_string()})),
        )
        .await;
    expect_error(&answer, 404, 40403);
    let answer = h
        .call(
            "POST",
            "/subjects/nope",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    let message = expect_error(&answer, 404, 40401);
    assert_eq!(message, "Subject 'nope' not found.");
    // Lookups read: no token needed.
    let (status, _) = h
        .anon(
            "POST",
            "/subjects/a",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn not_found_and_invalid_codes() {
    let h = Harness::new();
    expect_error(
        &h.call("GET", "/subjects/x/versions", None).await,
        404,
        40401,
    );
    expect_error(
        &h.call("GET", "/subjects/x/versions/1", None).await,
        404,
        40401,
    );
    h.register("x", &v1()).await;
    expect_error(
        &h.call("GET", "/subjects/x/versions/7", None).await,
        404,
        40402,
    );
    for bad in ["0", "abc", "-2", "2147483648"] {
        let msg = expect_error(
            &h.call("GET", &format!("/subjects/x/versions/{bad}"), None)
                .await,
            422,
            42202,
        );
        assert!(msg.contains(&format!("'{bad}'")), "{msg}");
    }
    expect_error(&h.call("GET", "/schemas/ids/99", None).await, 404, 40403);
    let msg = expect_error(&h.register("x", &json!("not-a-type")).await, 422, 42201);
    assert!(msg.starts_with("Invalid schema"), "{msg}");
    let answer = h
        .call(
            "POST",
            "/subjects/x/versions",
            Some(json!({"schema": "{not json"})),
        )
        .await;
    expect_error(&answer, 422, 42201);
    let answer = h
        .call(
            "POST",
            "/subjects/x/versions",
            Some(json!({"schema": "\"int\"", "schemaType": "PROTOBUF"})),
        )
        .await;
    expect_error(&answer, 422, 42201);
    let (status, _, body) = h
        .raw(
            "POST",
            "/subjects/x/versions",
            Some(b"{oops".to_vec()),
            Some(common::TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(common::parse(&body)["error_code"], 400);
}

#[tokio::test]
async fn incompatible_registration_is_a_409_naming_the_field() {
    let h = Harness::new();
    h.register("a", &v1()).await;
    let answer = h.register("a", &v_required()).await;
    let message = expect_error(&answer, 409, 409);
    assert!(
        message.starts_with(
            "Schema being registered is incompatible with an earlier schema for subject \"a\""
        ),
        "{message}"
    );
    assert!(
        message.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{message}"
    );
    assert!(message.contains("`email`"), "{message}");
    assert!(message.contains("{compatibility: 'BACKWARD'}"), "{message}");
    // Under NONE it goes in.
    let (status, _) = h
        .call("PUT", "/config/a", Some(json!({"compatibility": "NONE"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.register("a", &v_required()).await.0, 200);
}

#[tokio::test]
async fn config_global_and_per_subject() {
    let h = Harness::new();
    let (_, got) = h.call("GET", "/config", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, got) = h
        .call(
            "PUT",
            "/config",
            Some(json!({"compatibility": "full_transitive"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got, json!({"compatibility": "FULL_TRANSITIVE"}));
    let answer = h
        .call("PUT", "/config", Some(json!({"compatibility": "SIDEWAYS"})))
        .await;
    expect_error(&answer, 422, 42203);

    expect_error(&h.call("GET", "/config/s", None).await, 404, 40408);
    let (_, got) = h.call("GET", "/config/s?defaultToGlobal=true", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
    h.call(
        "PUT",
        "/config/s",
        Some(json!({"compatibility": "FORWARD"})),
    )
    .await;
    let (_, got) = h.call("GET", "/config/s", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "FORWARD"}));
    let (_, got) = h.call("DELETE", "/config/s", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "FORWARD"}));
    let (_, got) = h.call("DELETE", "/config", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
    let (_, got) = h.call("GET", "/config", None).await;
    assert_eq!(got, json!({"compatibilityLevel": "BACKWARD"}));
    let (_, mode) = h.call("GET", "/mode", None).await;
    assert_eq!(mode, json!({"mode": "READWRITE"}));
}

#[tokio::test]
async fn compatibility_endpoint_with_and_without_verbose() {
    let h = Harness::new();
    let body = |s: serde_json::Value| Some(json!({"schema": s.to_string()}));
    // Nothing registered: compatible with `latest`, unknown subject for a number.
    let (status, got) = h
        .call(
            "POST",
            "/compatibility/subjects/a/versions/latest",
            body(v1()),
        )
        .await;
    assert_eq!(
        (status.as_u16(), got),
        (200, json!({"is_compatible": true}))
    );
    expect_error(
        &h.call("POST", "/compatibility/subjects/a/versions/1", body(v1()))
            .await,
        404,
        40401,
    );
    h.register("a", &v1()).await;
    let (_, got) = h
        .call(
            "POST",
            "/compatibility/subjects/a/versions/latest",
            body(v2()),
        )
        .await;
    assert_eq!(got, json!({"is_compatible": true}));
    let (_, got) = h
        .call(
            "POST",
            "/compatibility/subjects/a/versions/1?verbose=true",
            body(v_required()),
        )
        .await;
    assert_eq!(got["is_compatible"], false);
    let messages = got["messages"].as_array().expect("messages");
    assert!(
        messages[0]
            .as_str()
            .expect("text")
            .contains("READER_FIELD_MISSING_DEFAULT_VALUE")
    );
    expect_error(
        &h.call("POST", "/compatibility/subjects/a/versions/9", body(v2()))
            .await,
        404,
        40402,
    );
    expect_error(
        &h.call("POST", "/compatibility/subjects/a/versions/x", body(v2()))
            .await,
        422,
        42202,
    );
    // Compatibility tests read: no token needed.
    let (status, _) = h
        .anon("POST", "/compatibility/subjects/a/versions", body(v2()))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn transitive_levels_check_every_live_version() {
    let h = Harness::new();
    h.call(
        "PUT",
        "/config/t",
        Some(json!({"compatibility": "BACKWARD_TRANSITIVE"})),
    )
    .await;
    let a = user(r#"[{"name":"id","type":"long"}]"#);
    let b = user(r#"[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]"#);
    h.register("t", &a).await;
    h.register("t", &b).await;
    // Readable from b's data, not from a's: transitive refuses it.
    let answer = h.register("t", &v_required()).await;
    assert!(expect_error(&answer, 409, 409).contains("oldSchemaVersion: 1"));
    // Non-transitive accepts it.
    h.call(
        "PUT",
        "/config/t",
        Some(json!({"compatibility": "BACKWARD"})),
    )
    .await;
    assert_eq!(h.register("t", &v_required()).await.0, 200);
}

#[tokio::test]
async fn soft_and_permanent_deletes_follow_confluent() {
    let h = Harness::new();
    h.register("d", &v1()).await;
    h.register("d", &v2()).await;
    // Permanent before soft: refused.
    expect_error(
        &h.call("DELETE", "/subjects/d/versions/1?permanent=true", None)
            .await,
        404,
        40407,
    );
    expect_error(
        &h.call("DELETE", "/subjects/d?permanent=true", None).await,
        404,
        40405,
    );
    // Soft-delete version 1.
    let (status, got) = h.call("DELETE", "/subjects/d/versions/1", None).await;
    assert_eq!((status.as_u16(), got), (200, json!(1)));
    expect_error(
        &h.call("DELETE", "/subjects/d/versions/1", None).await,
        404,
        40406,
    );
    expect_error(
        &h.call("GET", "/subjects/d/versions/1", None).await,
        404,
        40402,
    );
    let (_, got) = h
        .call("GET", "/subjects/d/versions/1?deleted=true", None)
        .await;
    assert_eq!(got["version"], 1);
    let (_, versions) = h.call("GET", "/subjects/d/versions", None).await;
    assert_eq!(versions, json!([2]));
    // Ids stay readable for consumers of old data.
    assert_eq!(h.call("GET", "/schemas/ids/1", None).await.0, 200);
    // Soft-delete the subject: answers the versions it deleted.
    let (_, got) = h.call("DELETE", "/subjects/d", None).await;
    assert_eq!(got, json!([2]));
    expect_error(&h.call("DELETE", "/subjects/d", None).await, 404, 40404);
    expect_error(
        &h.call("GET", "/subjects/d/versions", None).await,
        404,
        40401,
    );
    let (_, subjects) = h.call("GET", "/subjects", None).await;
    assert_eq!(subjects, json!([]));
    let (_, subjects) = h.call("GET", "/subjects?deleted=true", None).await;
    assert_eq!(subjects, json!(["d"]));
    // Re-registering a soft-deleted schema makes a new version with the same id.
    assert_eq!(h.register("d", &v1()).await.1, json!({"id": 1}));
    let (_, versions) = h.call("GET", "/subjects/d/versions", None).await;
    assert_eq!(versions, json!([3]));
    h.call("DELETE", "/subjects/d", None).await;
    // Permanent delete after the soft one.
    let (status, got) = h.call("DELETE", "/subjects/d?permanent=true", None).await;
    assert_eq!((status.as_u16(), got), (200, json!([1, 2, 3])));
    expect_error(&h.call("DELETE", "/subjects/d", None).await, 404, 40401);
    expect_error(&h.call("GET", "/schemas/ids/1", None).await, 404, 40403);
    expect_error(
        &h.call("DELETE", "/subjects/nope/versions/1", None).await,
        404,
        40401,
    );
}

#[tokio::test]
async fn writes_need_a_valid_token() {
    let h = Harness::new();
    let body = Some(json!({"schema": v1().to_string()}));
    let answer = h.anon("POST", "/subjects/a/versions", body.clone()).await;
    expect_error(&answer, 401, 40101);
    let (status, headers, _) = h
        .raw("DELETE", "/subjects/a", None, Some("wrong-token-xx"), None)
        .await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    // Reads are open by default.
    assert_eq!(h.anon("GET", "/subjects", None).await.0, 200);
    // ...unless configured otherwise.
    let closed = Harness::with(|mut s| {
        s.auth_reads = true;
        s
    });
    expect_error(&closed.anon("GET", "/subjects", None).await, 401, 40101);
    assert_eq!(closed.call("GET", "/subjects", None).await.0, 200);
    // Without any token configured, the registry is read-only.
    let read_only = Harness::with(|mut s| {
        s.tokens.clear();
        s
    });
    expect_error(
        &read_only
            .call("PUT", "/config", Some(json!({"compatibility":"NONE"})))
            .await,
        403,
        40301,
    );
}

#[tokio::test]
async fn bad_input_always_answers_json() {
    let h = Harness::with(|mut s| {
        s.max_body_bytes = 1024;
        s
    });
    expect_error(&h.call("GET", "/no/such/route", None).await, 404, 404);
    expect_error(&h.call("PATCH", "/subjects", None).await, 405, 405);
    let big = json!({"schema": "x".repeat(4096)});
    expect_error(
        &h.call("POST", "/subjects/a/versions", Some(big)).await,
        413,
        41301,
    );
    expect_error(
        &h.call("GET", "/subjects/..%2Fetc/versions", None).await,
        422,
        42208,
    );
    expect_error(
        &h.call("GET", "/subjects?deleted=maybe", None).await,
        400,
        400,
    );
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let h = Harness::new();
    let (status, doc) = h.anon("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/subjects/{subject}/versions",
        "/schemas/ids/{id}",
        "/config/{subject}",
        "/compatibility/subjects/{subject}/versions/{version}",
        "/v1/plugins",
        "/v1/plugins/{name}/resolve",
        "/v1/pipelines/{name}",
        "/v1/lineage/topics/{topic}",
        "/v1/lineage/fields/{subject}/{field}",
        "/v1/plugins/{name}/versions/{version}/annotations",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(paths["/subjects/{subject}/versions"].get("post").is_some());
    // The weft additions are described with their types.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in [
        "FieldLineage",
        "FieldReader",
        "Annotation",
        "Pipeline",
        "PluginRef",
    ] {
        assert!(
            schemas.contains_key(s),
            "{s} missing from {:?}",
            schemas.keys()
        );
    }
    assert!(
        schemas["PluginRef"]["properties"].get("reads").is_some(),
        "{}",
        schemas["PluginRef"]
    );
    let compat =
        doc["paths"]["/compatibility/subjects/{subject}/versions/{version}"]["post"]["parameters"]
            .to_string();
    assert!(compat.contains("\"pipelines\""), "{compat}");
}
