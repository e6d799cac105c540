//! A small blocking client of the registry's HTTP API, for the `weft` CLI, the host and tests.
//!
//! Only the host uses it; the registry links neither it nor blocking reqwest. What it reads
//! (plugin versions, the catalog, schema ids and texts, error bodies) are the registry's own
//! types from `weft-registry-api`, so the two sides cannot drift apart.

use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use weft_registry_api::{ErrorBody, IdResponse, SchemaResponse, VersionResponse};

/// What the registry answers about plugins: its own types.
pub use weft_registry_api::{Annotation, ParamInfo, PluginManifest, PluginSummary, PluginVersion};

/// What `push` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A new version was stored.
    Created(PluginVersion),
    /// These exact bytes were already stored under that version.
    Unchanged(PluginVersion),
}

impl Pushed {
    pub fn meta(&self) -> &PluginVersion {
        match self {
            Pushed::Created(m) | Pushed::Unchanged(m) => m,
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry answered with an error body.
    #[error("registry error {error_code} (HTTP {status}): {message}")]
    Api {
        status: u16,
        error_code: u32,
        message: String,
    },
    /// The registry could not be reached or answered garbage.
    #[error("registry at {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The downloaded bytes do not hash to the digest the registry announced.
    #[error("download of {name}@{version}: sha256 {actual} does not match the expected {expected}")]
    DigestMismatch {
        name: String,
        version: String,
        expected: String,
        actual: String,
    },
}

impl ClientError {
    /// The registry's detailed code (40401, 40901, ...), if it answered one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            ClientError::Api { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The most a JSON answer may be: metadata is kilobytes and a cluster's pipeline list a few
/// MiB, so a body past this is a broken or hostile registry, and reading it all would exhaust memory.
pub const MAX_JSON_BYTES: u64 = 16 << 20;
/// The most an error body is read for its message.
const MAX_ERROR_BYTES: u64 = 64 << 10;
/// The most a download may be whatever the metadata claims: far above any registry's
/// `max_plugin_bytes` (32 MiB by default), far below what would take a host down.
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

/// A blocking registry client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client of the registry at `base_url` (e.g. `http://127.0.0.1:8081`), with a token
    /// for writes (and reads, if the registry requires it).
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Transport {
                url: base_url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// The registry's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Uploads a component; the registry reads its name and version from `describe()`.
    pub fn push(&self, bytes: Vec<u8>) -> Result<Pushed> {
        let req = self
            .request(reqwest::Method::POST, "/v1/plugins")
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(bytes);
        let (status, meta) = self.send_json::<PluginVersion>(req, "/v1/plugins")?;
        Ok(if status == 201 {
            Pushed::Created(meta)
        } else {
            Pushed::Unchanged(meta)
        })
    }

    /// The catalog.
    pub fn list(&self) -> Result<Vec<PluginSummary>> {
        self.get_json("/v1/plugins")
    }

    /// One version's metadata, or every version's (oldest first) when `version` is `None`.
    pub fn show(&self, name: &str, version: Option<&str>) -> Result<Vec<PluginVersion>> {
        match version {
            Some(v) => Ok(vec![self.get_json(&format!(
                "/v1/plugins/{}/versions/{}",
                seg(name),
                seg(v)
            ))?]),
            None => self.get_json(&format!("/v1/plugins/{}", seg(name))),
        }
    }

    /// The newest non-yanked version matching a semver requirement (`^1`, `=1.2.0`).
    pub fn resolve(&self, name: &str, req: &str) -> Result<PluginVersion> {
        self.get_json(&format!(
            "/v1/plugins/{}/resolve?req={}",
            seg(name),
            seg(req)
        ))
    }

    /// Downloads a version's bytes and checks them against its sha256.
    pub fn download(&self, name: &str, version: &str) -> Result<Vec<u8>> {
        let meta = self
            .show(name, Some(version))?
            .pop()
            .ok_or_else(|| ClientError::Transport {
                url: self.base.clone(),
                reason: "empty metadata answer".into(),
            })?;
        let path = format!(
            "/v1/plugins/{}/versions/{}/download",
            seg(name),
            seg(version)
        );
        let resp = self.send(self.request(reqwest::Method::GET, &path), &path)?;
        // The metadata says how many bytes the version has; more is not that version.
        let cap = meta.size.min(MAX_DOWNLOAD_BYTES);
        let mut hasher = Sha256::new();
        let bytes = self.read_capped(resp, cap, &path, |chunk| hasher.update(chunk))?;
        let actual = hex::encode(hasher.finalize());
        if actual != meta.sha256 {
            return Err(ClientError::DigestMismatch {
                name: name.to_string(),
                version: version.to_string(),
                expected: meta.sha256,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Adds a note to a version (a canary's `rolled-back`); needs the write token. Returns
    /// the version's metadata with its annotations.
    pub fn annotate(&self, name: &str, version: &str, note: &Annotation) -> Result<PluginVersion> {
        let path = format!(
            "/v1/plugins/{}/versions/{}/annotations",
            seg(name),
            seg(version)
        );
        let body = serde_json::to_string(note).map_err(|e| self.transport(&path, e))?;
        let req = self
            .request(reqwest::Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        Ok(self.send_json(req, &path)?.1)
    }

    /// Confluent: registers a schema under a subject; returns its global id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        self.post_schema(&format!("/subjects/{}/versions", seg(subject)), schema)
    }

    /// Confluent: the schema (JSON text) registered under a global id.
    pub fn schema_by_id(&self, id: u32) -> Result<String> {
        Ok(self
            .get_json::<SchemaResponse>(&format!("/schemas/ids/{id}"))?
            .schema)
    }

    /// Confluent: the global id of a schema already registered under a subject (40401 or
    /// 40403 when it is not).
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<u32> {
        self.post_schema(&format!("/subjects/{}", seg(subject)), schema)
    }

    /// POSTs `{"schema": ...}` in the Confluent content type and reads back `{"id": ...}`.
    fn post_schema(&self, path: &str, schema: &str) -> Result<u32> {
        let req = self
            .request(reqwest::Method::POST, path)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            )
            .body(serde_json::json!({ "schema": schema }).to_string());
        Ok(self.send_json::<IdResponse>(req, path)?.1.id)
    }

    /// Confluent: the global id and text of a subject's latest schema.
    pub fn latest(&self, subject: &str) -> Result<(u32, String)> {
        let version = self
            .get_json::<VersionResponse>(&format!("/subjects/{}/versions/latest", seg(subject)))?;
        Ok((version.id, version.schema))
    }

    pub(super) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(self
            .send_json(self.request(reqwest::Method::GET, path), path)?
            .1)
    }

    pub(super) fn send_json<T: DeserializeOwned>(
        &self,
        req: reqwest::blocking::RequestBuilder,
        path: &str,
    ) -> Result<(u16, T)> {
        let resp = self.send(req, path)?;
        let status = resp.status().as_u16();
        let body = self.read_capped(resp, MAX_JSON_BYTES, path, |_| ())?;
        let value = serde_json::from_slice(&body).map_err(|e| self.transport(path, e))?;
        Ok((status, value))
    }

    /// Sends; a non-success status becomes [`ClientError::Api`].
    pub(super) fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::blocking::Response> {
        let resp = req.send().map_err(|e| self.transport(path, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = self.read_capped(resp, MAX_ERROR_BYTES, path, |_| ())?;
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => ClientError::Api {
                status: status.as_u16(),
                error_code: e.error_code,
                message: e.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                error_code: u32::from(status.as_u16()),
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            },
        })
    }

    /// Reads a body of at most `cap` bytes, handing each chunk to `seen` as it arrives; a
    /// larger Content-Length is refused before reading, a longer body (chunked, or lying
    /// about its length) once it passes the cap, so memory stays bounded either way.
    pub(super) fn read_capped(
        &self,
        resp: reqwest::blocking::Response,
        cap: u64,
        path: &str,
        mut seen: impl FnMut(&[u8]),
    ) -> Result<Vec<u8>> {
        let too_large =
            || self.transport(path, format!("answer larger than the cap of {cap} bytes"));
        if resp.content_length().is_some_and(|len| len > cap) {
            return Err(too_large());
        }
        let capacity = resp
            .content_length()
            .unwrap_or(0)
            .min(cap)
            .min(MAX_JSON_BYTES);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        let mut limited = resp.take(cap.saturating_add(1));
        let mut chunk = [0u8; 64 << 10];
        loop {
            let n = limited
                .read(&mut chunk)
                .map_err(|e| self.transport(path, e))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            if body.len() as u64 > cap {
                return Err(too_large());
            }
            seen(&chunk[..n]);
        }
        Ok(body)
    }

    pub(super) fn transport(&self, path: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub(super) fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    /// What the test registry answers on a connection, by request path.
    type Answer = fn(&str, &mut TcpStream) -> std::io::Result<()>;

    /// A registry on 127.0.0.1 that answers `connections` requests with `answer`, then stops.
    fn registry(connections: usize, answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let path = first.split(' ').nth(1).unwrap_or_default().to_string();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                // The client hangs up at its cap: the write fails and this answer ends.
                let _ = answer(&path, &mut stream);
            }
        });
        format!("http://{addr}")
    }

    /// A 200 whose chunked body never ends.
    fn endless(stream: &mut TcpStream) -> std::io::Result<()> {
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")?;
        let chunk = [b' '; 1 << 16];
        loop {
            stream.write_all(b"10000\r\n")?;
            stream.write_all(&chunk)?;
            stream.write_all(b"\r\n")?;
        }
    }

    fn reason(err: ClientError) -> String {
        match err {
            ClientError::Transport { reason, .. } => reason,
            other => panic!("not a transport error: {other}"),
        }
    }

    #[test]
    fn an_endless_json_answer_stops_at_the_cap() {
        let base = registry(1, |_, s| endless(s));
        let client = Client::new(&base, None).expect("client");
        let err = client.list().expect_err("an endless body is refused");
        assert_eq!(
            reason(err),
            format!("answer larger than the cap of {MAX_JSON_BYTES} bytes")
        );
    }

    #[test]
    fn an_announced_length_past_the_cap_is_refused_before_reading() {
        let base = registry(1, |_, s| {
            s.write_all(b"HTTP/1.1 500 Oops\r\ncontent-length: 99999999999\r\n\r\n")
        });
        let client = Client::new(&base, None).expect("client");
        let err = client.list().expect_err("refused");
        assert_eq!(
            reason(err),
            format!("answer larger than the cap of {MAX_ERROR_BYTES} bytes")
        );
    }

    #[test]
    fn a_download_stops_at_the_size_its_metadata_gives() {
        let base = registry(2, |path, s| {
            if path.ends_with("/download") {
                return endless(s);
            }
            let meta = PluginVersion {
                manifest: PluginManifest {
                    name: "mask".into(),
                    version: "1.0.0".into(),
                    description: String::new(),
                    input_schema: None,
                    output_schema: None,
                    params: Vec::new(),
                },
                sha256: hex::encode(Sha256::digest(b"0123456789")),
                size: 10,
                uploaded_at: String::new(),
                yanked: false,
                annotations: Vec::new(),
            };
            let body = serde_json::to_string(&meta).expect("json");
            write!(
                s,
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        let client = Client::new(&base, None).expect("client");
        let err = client.download("mask", "1.0.0").expect_err("refused");
        assert_eq!(reason(err), "answer larger than the cap of 10 bytes");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("^1.2"), "%5E1.2");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
        assert_eq!(seg("mask"), "mask");
    }
}
