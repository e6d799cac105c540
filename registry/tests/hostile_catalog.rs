//! The catalog's pages fed markup by whoever can publish: a plugin description, a schema's
//! docs, defaults and custom attributes, a pipeline description, an annotation's reason and
//! a search query all carry a payload that would run script if pasted into HTML. Every page
//! shows it as text (escaped) and the content security policy forbids inline script anyway.

mod common;

use axum::http::StatusCode;
use common::{Harness, TOKEN};
use serde_json::json;

const PAYLOAD: &str =
    r#""'><script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">"#;

/// Pieces of the payload that must never reach a page unescaped.
const RAW: [&str; 4] = [
    "<script>alert",
    "<img src=x",
    "onerror=alert(2)>",
    "<a href=\"javascript:",
];

async fn page(h: &Harness, path: &str) -> String {
    let (status, headers, bytes) = h.raw("GET", path, None, None, None).await;
    let body = String::from_utf8(bytes).expect("utf-8 page");
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{path}: {csp:?}"
    );
    for raw in RAW {
        assert!(!body.contains(raw), "{path} holds {raw:?} unescaped");
    }
    body
}

#[tokio::test]
async fn markup_from_publishers_is_shown_as_text_on_every_page() {
    let h = Harness::new();
    let input = json!({"type": "record", "name": "X", "doc": PAYLOAD,
        "fields": [{"name": "title", "type": "string", "doc": PAYLOAD}]});
    let component = json!({"name": "evil", "version": "1.0.0", "description": PAYLOAD,
        "input": input.to_string()});
    let (status, _, bytes) = h
        .raw(
            "POST",
            "/v1/plugins",
            Some(component.to_string().into_bytes()),
            Some(TOKEN),
            Some("application/wasm"),
        )
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    let (status, answer) = h
        .call(
            "POST",
            "/v1/plugins/evil/versions/1.0.0/annotations",
            Some(json!({"kind": "rolled-back", "pipeline": "evil-p", "reason": PAYLOAD})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    let schema = json!({"type": "record", "name": "X", "doc": PAYLOAD, "evil": PAYLOAD,
    "fields": [
        {"name": "title", "type": "string", "doc": PAYLOAD, "default": PAYLOAD},
        {"name": "kind", "type": {"type": "enum", "name": "E", "symbols": ["A"], "doc": PAYLOAD}}
    ]});
    let (status, answer) = h.register("xss-value", &schema).await;
    assert_eq!(status, 200, "{answer}");

    let pipeline = json!({"name": "evil-p", "description": PAYLOAD,
        "sources": [{"topic": "xss"}], "sinks": [{"topic": "xss-out"}],
        "processors": [{"name": "evil", "version": "1.0.0", "reads": ["title"]}]});
    let (status, answer) = h.call("PUT", "/v1/pipelines/evil-p", Some(pipeline)).await;
    assert!(status.is_success(), "{status} {answer}");

    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
    // Pages that show the payload: it is there, as text.
    for path in [
        "/ui/plugins/evil/1.0.0",
        "/ui/subjects/xss-value",
        "/ui/pipelines/evil-p",
    ] {
        let body = page(&h, path).await;
        assert!(
            body.contains(escaped),
            "{path} does not show the payload as text"
        );
    }
    let query = "%22%27%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for path in [
        "/ui",
        "/ui/plugins",
        "/ui/plugins/evil",
        "/ui/subjects",
        &format!("/ui/subjects?q={query}"),
        "/ui/subjects/xss-value/diff?from=1&to=1",
        "/ui/pipelines",
        "/ui/lineage",
        "/ui/create",
    ] {
        page(&h, path).await;
    }
}
