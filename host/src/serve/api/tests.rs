//! The admin API against a real daemon (generator → JSON-lines pipelines, no plugins), called
//! through `app(..).oneshot(request)` without sockets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::{AdminAuth, app};
use crate::serve::{Daemon, DaemonConfig};

const TOKEN: &str = "test-admin-token";

/// A daemon over a temp folder holding `steady.toml`, a slow generator that keeps running.
struct Fixture {
    daemon: Daemon,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("pipelines")).expect("pipelines folder");
        std::fs::write(
            dir.path().join("pipelines/steady.toml"),
            generator_pipeline("steady", 5.0),
        )
        .expect("pipeline file");
        Self::start_in(dir)
    }

    /// A daemon over a folder prepared already (or left by an earlier daemon).
    fn start_in(dir: tempfile::TempDir) -> Self {
        let file = dir.path().join("weftd.toml");
        let config = DaemonConfig::parse(
            "listen = \"127.0.0.1:0\"\npipelines = \"pipelines\"\n",
            &file,
            dir.path(),
        )
        .expect("daemon config");
        let runtime = weft_runtime::Runtime::new(weft_runtime::RuntimeOptions {
            cache_dir: Some(std::env::temp_dir().join("weft-test-cache")),
        })
        .expect("runtime");
        let daemon = Daemon::start(config, runtime).expect("daemon starts");
        Self { daemon, dir }
    }

    async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Body) -> Response {
        self.call_typed(method, uri, token, None, body).await
    }

    async fn call_typed(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Body,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = app(self.daemon.clone(), AdminAuth::new([TOKEN]))
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Response {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Response {
        self.call(Method::GET, uri, None, Body::empty()).await
    }

    async fn put_toml(&self, name: &str, toml: &str, token: Option<&str>) -> Response {
        self.call_typed(
            Method::PUT,
            &format!("/v1/pipelines/{name}"),
            token,
            Some("application/toml"),
            Body::from(toml.to_string()),
        )
        .await
    }
}

impl Fixture {
    /// POSTs `action` and waits (bounded) for the state it promises.
    async fn control_until(&self, name: &str, action: &str, reached: impl Fn(&str) -> bool) {
        let uri = format!("/v1/pipelines/{name}/{action}");
        let r = self
            .call(Method::POST, &uri, Some(TOKEN), Body::empty())
            .await;
        let state = r.json()["state"].as_str().unwrap_or_default().to_string();
        match r.status {
            StatusCode::OK => assert!(reached(&state), "{action} answered 200 with {}", r.text),
            StatusCode::ACCEPTED => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    let now = self.daemon.get(name).expect("still there").status.state;
                    if reached(now.as_str()) {
                        break;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{action} never applied"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            other => panic!("{action}: {other} {}", r.text),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.daemon.shutdown(std::time::Duration::from_secs(10));
    }
}

struct Response {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    fn error_code(&self) -> String {
        self.json()["error_code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error_code in {:?}", self.text))
            .to_string()
    }
}

fn title_schema() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/enrich/schemas/title.avsc");
    format!("{:?}", path.display().to_string())
}

/// Synthetic titles at `rate` per second into `<name>.jsonl`, no processors.
fn generator_pipeline(name: &str, rate: f64) -> String {
    format!(
        "[[source]]\nkind = \"generate\"\nschema = {}\ncount = 1000000\nrate = {rate}\n\n\
         [sink]\nkind = \"jsonl\"\npath = \"{name}.jsonl\"\n",
        title_schema()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_open_and_every_write_needs_the_admin_token() {
    let f = Fixture::start();
    let list = f.get("/v1/pipelines").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.json()[0]["name"], "steady", "{}", list.text);
    assert_eq!(f.get("/v1/pipelines/steady").await.status, StatusCode::OK);

    let body = generator_pipeline("other", 5.0);
    let writes = [
        (Method::PUT, "/v1/pipelines/other"),
        (Method::DELETE, "/v1/pipelines/steady"),
        (Method::POST, "/v1/pipelines/steady/pause"),
        (Method::POST, "/v1/pipelines/steady/resume"),
        (Method::POST, "/v1/pipelines/steady/restart"),
    ];
    for (method, uri) in writes {
        let none = f
            .call(method.clone(), uri, None, Body::from(body.clone()))
            .await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(none.error_code(), "unauthorized");
        assert!(none.headers.contains_key(header::WWW_AUTHENTICATE));
        let wrong = f
            .call(
                method.clone(),
                uri,
                Some("not-the-token"),
                Body::from(body.clone()),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(wrong.error_code(), "forbidden");
    }
    // Nothing of that reached the daemon.
    let names: Vec<String> = f.daemon.list().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["steady"]);
    assert!(!f.dir.path().join("pipelines/other.toml").exists());
    assert!(f.dir.path().join("pipelines/steady.toml").exists());

    // A daemon without tokens refuses writes, whatever is presented.
    let refused = app(f.daemon.clone(), AdminAuth::new(Vec::<String>::new()))
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/v1/pipelines/steady/pause")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pipelines_and_routes_are_404_with_a_code() {
    let f = Fixture::start();
    assert_eq!(
        f.get("/v1/pipelines/nope").await.error_code(),
        "pipeline_not_found"
    );
    for (method, uri) in [
        (Method::DELETE, "/v1/pipelines/nope"),
        (Method::POST, "/v1/pipelines/nope/pause"),
        (Method::POST, "/v1/pipelines/nope/resume"),
        (Method::POST, "/v1/pipelines/nope/restart"),
    ] {
        let r = f
            .call(method.clone(), uri, Some(TOKEN), Body::empty())
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            r.text
        );
        assert_eq!(r.error_code(), "pipeline_not_found");
        assert_eq!(r.json()["message"], "pipeline `nope` not found");
    }
    let r = f.get("/v2/whatever").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "no_route".into())
    );
    let r = f
        .call(
            Method::PATCH,
            "/v1/pipelines/steady",
            Some(TOKEN),
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_pipeline_is_refused_with_every_error_and_the_old_one_keeps_running() {
    let f = Fixture::start();
    let before = f.get("/v1/pipelines/steady").await.json()["config"].clone();
    // Three problems in one file: an unknown key, a bad batch size and a missing schema file.
    let broken = "[[source]]\nkind = \"generate\"\nschema = \"no-such.avsc\"\ncount = 10\n\n\
         [sink]\nkind = \"jsonl\"\npath = \"x.jsonl\"\ncolour = \"red\"\n\n\
         [limits]\nbatch_size = 0\n";
    let r = f.put_toml("steady", broken, Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let body = r.json();
    assert_eq!(body["error_code"], "invalid_pipeline");
    let errors: Vec<String> = body["errors"]
        .as_array()
        .expect("errors list")
        .iter()
        .map(|e| e.as_str().expect("string").to_string())
        .collect();
    assert!(errors.len() >= 2, "every error at once: {errors:?}");
    let all = errors.join("\n");
    assert!(all.contains("colour"), "{all}");
    assert!(all.contains("batch_size"), "{all}");
    // The running version is untouched, in the daemon and in the folder.
    let after = f.get("/v1/pipelines/steady").await.json();
    assert_eq!(after["config"], before);
    let file = std::fs::read_to_string(f.dir.path().join("pipelines/steady.toml")).expect("file");
    assert_eq!(file, generator_pipeline("steady", 5.0));

    // JSON that TOML cannot hold: every null named.
    let r = f
        .call_typed(
            Method::PUT,
            "/v1/pipelines/steady",
            Some(TOKEN),
            Some("application/json"),
            Body::from(r#"{"sink": {"kind": null}, "pipeline": {"name": null}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text
    );

    // Names that are not file names never reach the folder.
    let r = f
        .put_toml("..%2Fescape", &generator_pipeline("x", 1.0), Some(TOKEN))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name".into())
    );
    assert!(!f.dir.path().join("escape.toml").exists());

    // A body past the limit is refused before it is read whole.
    let huge = "#".repeat(super::MAX_BODY_BYTES + 1);
    let r = f.put_toml("big", &huge, Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_toml_bodies_create_replace_and_delete_a_pipeline() {
    let f = Fixture::start();
    let toml_text = generator_pipeline("added", 20.0);
    let as_json: Value = {
        let t: toml::Value = toml::from_str(&toml_text).expect("toml");
        serde_json::to_value(t).expect("json")
    };
    let r = f
        .call_typed(
            Method::PUT,
            "/v1/pipelines/added",
            Some(TOKEN),
            Some("application/json"),
            Body::from(as_json.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["outcome"], "created");
    assert!(f.dir.path().join("pipelines/added.toml").is_file());
    let detail = f.get("/v1/pipelines/added").await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.json()["status"]["name"], "added");

    // The same pipeline as TOML changes nothing; another rate replaces it.
    let r = f.put_toml("added", &toml_text, Some(TOKEN)).await;
    assert_eq!(
        (r.status, r.json()["outcome"].clone()),
        (StatusCode::OK, "unchanged".into()),
        "{}",
        r.text
    );
    let r = f
        .put_toml("added", &generator_pipeline("added", 30.0), Some(TOKEN))
        .await;
    assert_eq!(
        (r.status, r.json()["outcome"].clone()),
        (StatusCode::OK, "replaced".into()),
        "{}",
        r.text
    );

    // Pause and resume: 200 with the new state once applied (202 while the pipeline is still
    // in its batch, and then the status gets there).
    f.control_until("added", "pause", |s| s == "PAUSED").await;
    f.control_until("added", "resume", |s| s != "PAUSED").await;

    let r = f
        .call(
            Method::DELETE,
            "/v1/pipelines/added",
            Some(TOKEN),
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["deleted"], true);
    assert!(!f.dir.path().join("pipelines/added.toml").exists());
    assert_eq!(
        f.get("/v1/pipelines/added").await.status,
        StatusCode::NOT_FOUND
    );
    let again = f
        .call(
            Method::DELETE,
            "/v1/pipelines/added",
            Some(TOKEN),
            Body::empty(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_the_openapi_description() {
    let f = Fixture::start();
    assert_eq!(f.get("/health").await.json()["status"], "ok");
    let ready = f.get("/ready").await;
    let body = ready.json();
    assert_eq!(body["ready"], ready.status == StatusCode::OK, "{body}");
    if ready.status != StatusCode::OK {
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["not_ready"][0], "steady");
    }
    let metrics = f.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains("pipeline=\"steady\""),
        "{}",
        metrics.text
    );

    let spec = f.get("/openapi.json").await.json();
    let paths = spec["paths"].as_object().expect("paths");
    for path in [
        "/v1/pipelines",
        "/v1/pipelines/{name}",
        "/v1/pipelines/{name}/pause",
        "/v1/pipelines/{name}/resume",
        "/v1/pipelines/{name}/restart",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    assert!(paths["/v1/pipelines/{name}"]["put"]["security"].is_array());
    assert!(spec["components"]["securitySchemes"]["admin_token"].is_object());
    assert!(spec["components"]["schemas"]["PipelineDetail"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_is_in_the_history_which_survives_a_restart_of_the_daemon() {
    let f = Fixture::start();
    let r = f.get("/v1/pipelines/steady/history").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["pipeline"], "steady");
    assert_eq!(r.json()["entries"].as_array().map(Vec::len), Some(0));
    // Another batch size: swapped at a batch boundary, recorded as a reload.
    let changed = format!(
        "{}\n[limits]\nbatch_size = 7\n",
        generator_pipeline("steady", 5.0)
    );
    let put = f.put_toml("steady", &changed, Some(TOKEN)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let r = f.get("/v1/pipelines/steady/history").await;
    let entries = r.json()["entries"].clone();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_eq!(entries[0]["kind"], "reload", "{}", r.text);
    let at = entries[0]["at"].as_str().expect("at");
    humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert!(
        entries[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("swapped at a batch boundary")),
        "{}",
        r.text
    );
    // Paused, a new version is applied at its next start: a reload too.
    f.control_until("steady", "pause", |s| s == "PAUSED").await;
    let again = format!(
        "{}\n[limits]\nbatch_size = 9\n",
        generator_pipeline("steady", 5.0)
    );
    let put = f.put_toml("steady", &again, Some(TOKEN)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let r = f.get("/v1/pipelines/steady/history").await;
    let entries = r.json()["entries"].clone();
    assert_eq!(entries.as_array().map(Vec::len), Some(2), "{}", r.text);
    assert!(
        entries[1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not running")),
        "{}",
        r.text
    );
    // No such pipeline, no history: 404 as for the pipeline itself.
    let nope = f.get("/v1/pipelines/nope/history").await;
    assert_eq!(
        (nope.status, nope.error_code()),
        (StatusCode::NOT_FOUND, "pipeline_not_found".into())
    );
    // A status carries the upgrade fields, null when nothing is blocked.
    let status = f.get("/v1/pipelines/steady").await.json()["status"].clone();
    assert_eq!(status["upgrade"], Value::Null, "{status}");
    assert!(status["pins"].is_array(), "{status}");
    let metrics = f.get("/metrics").await.text;
    assert!(
        metrics.contains("weft_pipeline_upgrade_blocked{pipeline=\"steady\"} 0"),
        "{metrics}"
    );
    let spec = f.get("/openapi.json").await.json();
    assert!(
        spec["paths"]["/v1/pipelines/{name}/history"]["get"].is_object(),
        "the history route is described"
    );

    // The next daemon over the same folder reads the history back from its data_dir.
    let mut f = f;
    f.daemon.shutdown(std::time::Duration::from_secs(10));
    let dir = std::mem::replace(&mut f.dir, tempfile::tempdir().expect("temp dir"));
    drop(f);
    let again = Fixture::start_in(dir);
    let r = again.get("/v1/pipelines/steady/history").await;
    assert_eq!(r.json()["entries"], entries, "{}", r.text);
}
