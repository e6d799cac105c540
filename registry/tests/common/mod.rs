//! Helpers for handler tests: a registry over a temp dir, driven through `oneshot`.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;
use weft_registry::inspect::Inspector;
use weft_registry::{AppState, Settings, app};
use weft_registry_api::{ParamInfo, PluginManifest};

pub const TOKEN: &str = "test-token-1234";

/// Stands in for the Wasm runtime: the "component" is a JSON manifest. Real components go
/// through the real binary in weft-tests' `registry.rs`.
pub struct FakeInspector;

impl Inspector for FakeInspector {
    fn describe(&self, bytes: &[u8]) -> Result<PluginManifest, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not a component: {e}"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(PluginManifest {
            name: s("name").unwrap_or_default(),
            version: s("version").unwrap_or_default(),
            description: s("description").unwrap_or_default(),
            input_schema: s("input"),
            output_schema: s("output"),
            params: vec![ParamInfo {
                name: "field".into(),
                description: "a field".into(),
                required: false,
                default: Some("x".into()),
            }],
        })
    }
}

pub struct Harness {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|s| s)
    }

    pub fn with(adjust: impl FnOnce(Settings) -> Settings) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = adjust(Settings::new(dir.path()).with_token(TOKEN));
        let state =
            AppState::with_inspector(settings, Arc::new(FakeInspector)).expect("open state");
        Self { state, _dir: dir }
    }

    /// Sends a request with the token; returns status and JSON body (Null if empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .raw(
                method,
                path,
                body.map(|b| b.to_string().into_bytes()),
                Some(TOKEN),
                None,
            )
            .await;
        (status, parse(&bytes))
    }

    /// Same without a token.
    pub async fn anon(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .raw(
                method,
                path,
                body.map(|b| b.to_string().into_bytes()),
                None,
                None,
            )
            .await;
        (status, parse(&bytes))
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
        content_type: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        req = req.header(
            header::CONTENT_TYPE,
            content_type.unwrap_or("application/vnd.schemaregistry.v1+json"),
        );
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let resp = app(self.state.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        (status, headers, bytes)
    }

    /// Registers a schema (JSON value) under a subject; returns the answer.
    pub async fn register(&self, subject: &str, schema: &Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(serde_json::json!({ "schema": schema.to_string() })),
        )
        .await
    }
}

pub fn parse(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(bytes))
        })
    }
}

/// A record schema `weft.test.User` with the given fields (JSON array text).
pub fn user(fields: &str) -> Value {
    serde_json::from_str(&format!(
        r#"{{"type":"record","name":"User","namespace":"weft.test","fields":{fields}}}"#
    ))
    .expect("test schema JSON")
}

/// Asserts an error answer's status and code; returns its message.
pub fn expect_error(answer: &(StatusCode, Value), status: u16, code: u64) -> String {
    assert_eq!(answer.0.as_u16(), status, "status of {}", answer.1);
    assert_eq!(
        answer.1["error_code"].as_u64(),
        Some(code),
        "code of {}",
        answer.1
    );
    answer.1["message"].as_str().expect("message").to_string()
}
