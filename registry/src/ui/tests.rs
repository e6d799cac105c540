//! The catalog through the whole app (`app(state).oneshot`): user input rendered inert,
//! reads following `auth_reads`, errors as pages. The browser test (tests/catalog_ui.rs)
//! drives the same pages in Chromium.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use weft_registry_api::PluginManifest;

use crate::inspect::Inspector;
use crate::{AppState, Settings, app};

const TOKEN: &str = "ui-test-token";
const EVIL: &str = "<script>window.pwned=1</script><img src=x onerror=alert(1)>";

/// Reads the manifest from the upload's JSON: a plugin whose description is hostile.
struct JsonInspector;

impl Inspector for JsonInspector {
    fn describe(&self, bytes: &[u8]) -> Result<PluginManifest, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

fn state(dir: &tempfile::TempDir, auth_reads: bool) -> AppState {
    let mut settings = Settings::new(dir.path()).with_token(TOKEN);
    settings.auth_reads = auth_reads;
    AppState::with_inspector(settings, Arc::new(JsonInspector)).expect("state")
}

async fn send(state: &AppState, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app(state.clone()).oneshot(req).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 24).await.expect("body");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn write(method: &str, path: &str, body: String) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn user_input_is_rendered_as_text_never_as_markup() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&dir, false);
    // A subject name may hold `<`, quotes and `&`; a doc anything.
    let subject = "<b onmouseover=\"x()\">&-value";
    let schema = serde_json::json!({
        "type": "record", "name": "T", "doc": EVIL,
        "fields": [{"name": "a", "type": "int", "doc": EVIL}]
    })
    .to_string();
    let body = serde_json::json!({ "schema": schema }).to_string();
    let path = format!("/subjects/{}/versions", super::layout::seg(subject));
    let (status, _, text) = send(&state, write("POST", &path, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let manifest = serde_json::json!({
        "name": "evil", "version": "1.0.0", "description": EVIL, "params": []
    });
    let upload = Request::post("/v1/plugins")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(manifest.to_string()))
        .expect("request");
    let (status, _, text) = send(&state, upload).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");

    for page in [
        format!("/ui/subjects/{}", super::layout::seg(subject)),
        "/ui/subjects?q=script".to_string(),
        "/ui/subjects".to_string(),
        "/ui/plugins".to_string(),
        "/ui/plugins/evil/1.0.0".to_string(),
    ] {
        let (status, headers, html) = send(&state, get(&page)).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        assert!(
            !html.contains("<script>window"),
            "{page} renders a script: {html}"
        );
        assert!(!html.contains("<img src=x"), "{page} renders an img");
        assert!(
            !html.contains("<b onmouseover"),
            "{page} renders the subject as markup"
        );
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{page}: {csp}");
    }
    let (_, _, html) = send(&state, get("/ui/plugins/evil/1.0.0")).await;
    assert!(
        html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"),
        "{html}"
    );
    let (_, _, html) = send(&state, get("/ui/subjects?q=script")).await;
    assert!(
        html.contains("&lt;b onmouseover=&quot;x()&quot;&gt;&amp;-value"),
        "{html}"
    );
}

#[tokio::test]
async fn reads_follow_auth_reads_through_the_cookie_or_the_header() {
    let dir = tempfile::tempdir().expect("dir");
    let closed = state(&dir, true);
    let (status, headers, _) = send(&closed, get("/ui/subjects?q=a")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some("/ui/token?next=%2Fui%2Fsubjects%3Fq%3Da")
    );
    // What a reader needs to present a token is open.
    for open in [
        "/ui/token",
        "/ui/assets/catalog.js",
        "/ui/assets/catalog.css",
    ] {
        let (status, _, _) = send(&closed, get(open)).await;
        assert_eq!(status, StatusCode::OK, "{open}");
    }
    let with = |cookie: &str| {
        Request::get("/ui/subjects")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request")
    };
    let (status, _, _) = send(&closed, with(&format!("weft_token_default={TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&closed, with("weft_token_default=wrong")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bearer = Request::get("/ui/pipelines")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&closed, bearer).await;
    assert_eq!(status, StatusCode::OK);

    // Without auth_reads, pages are open like the API's reads.
    let dir = tempfile::tempdir().expect("dir");
    let open = state(&dir, false);
    let (status, _, html) = send(&open, get("/ui")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("weft catalog"));
}

#[tokio::test]
async fn missing_things_are_html_pages_with_the_api_message() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&dir, false);
    let (status, headers, html) = send(&state, get("/ui/subjects/nope-value")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert!(kind.is_some_and(|k| k.starts_with("text/html")), "{kind:?}");
    assert!(
        html.contains("Subject &#39;nope-value&#39; not found.")
            || html.contains("Subject 'nope-value' not found."),
        "{html}"
    );
    let (status, _, _) = send(&state, get("/ui/no/such/page")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, headers, html) = send(&state, get("/ui/subjects/a/diff?from=x&to=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert!(kind.is_some_and(|k| k.starts_with("text/html")), "{kind:?}");
    assert!(
        html.contains("from"),
        "the page names the bad parameter: {html}"
    );
    // The API's own errors stay JSON.
    let (status, headers, _) = send(&state, get("/v1/pipelines/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert_eq!(kind, Some("application/json"));
}
