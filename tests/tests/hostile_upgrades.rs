//! The daemon's upgrade check against a registry that misbehaves, through the real `weft
//! serve` and the real registry binary behind a proxy the test controls: while the registry
//! is unreachable, answers JSON of the wrong shape, truncated JSON, or HTML with a 500, a
//! version pushed meanwhile is not picked up, the pipeline runs on with the chain it had
//! (same pin, events flowing, no blocked upgrade, nothing in its history), and once the
//! registry answers again the version is followed by itself, recorded once.
//!
//! No broker: a `generate` source and a `null` sink keep the pipeline busy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use weft_tests::kafka::{REGISTRY_TOKEN, Registry};
use weft_tests::serve::{Daemon, wait_until};
use weft_tests::{plugin, title_schema, toml_path};

const BOUND: Duration = Duration::from_secs(60);

/// What the proxy does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Forward = 0,
    /// Closes the connection without a word.
    Refuse = 1,
    /// 200 with JSON of the wrong shape.
    WrongShape = 2,
    /// 200 with JSON cut in the middle.
    Truncated = 3,
    /// 500 with an HTML page.
    Html500 = 4,
}

/// A TCP proxy in front of the registry whose behaviour the test switches.
struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    /// Requests answered other than by forwarding, per mode switch.
    spoiled: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mode = Arc::new(AtomicU8::new(Mode::Forward as u8));
        let spoiled = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, st) = (mode.clone(), spoiled.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (m, s, upstream) = (m.clone(), s.clone(), upstream.clone());
                std::thread::spawn(move || serve(conn, &upstream, &m, &s));
            }
        });
        Self {
            url,
            mode,
            spoiled,
            stop,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.spoiled.store(0, Ordering::SeqCst);
    }

    fn spoiled(&self) -> u64 {
        self.spoiled.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn current(mode: &AtomicU8) -> u8 {
    mode.load(Ordering::SeqCst)
}

/// One client connection: forwarded while the mode is `Forward` (a pooled connection is cut
/// when the mode changes), else answered by the misbehaviour.
fn serve(mut client: TcpStream, upstream: &str, mode: &AtomicU8, spoiled: &AtomicU64) {
    let now = current(mode);
    if now != Mode::Forward as u8 {
        let mut request = [0u8; 8192];
        let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = client.read(&mut request);
        let answer: Vec<u8> = match now {
            n if n == Mode::WrongShape as u8 => reply(
                "200 OK",
                "application/json",
                b"{\"versions\": \"none\", \"x\": [1, 2]}",
            ),
            n if n == Mode::Truncated as u8 => {
                // The length promises more than is sent, then the connection closes.
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n[{\"name\": \"stamp\", \"vers"
                    .to_vec()
            }
            n if n == Mode::Html500 as u8 => reply(
                "500 Internal Server Error",
                "text/html",
                b"<html><body><h1>upstream exploded</h1></body></html>",
            ),
            _ => Vec::new(),
        };
        let _ = client.write_all(&answer);
        let _ = client.shutdown(Shutdown::Both);
        spoiled.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = [0u8; 16384];
        loop {
            if current(mode) != Mode::Forward as u8 {
                break;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    let (c2, s2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    std::thread::scope(|scope| {
        scope.spawn(|| pipe(client, server));
        scope.spawn(|| pipe(s2, c2));
    });
}

fn reply(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn push(registry: &Registry, build: &str) {
    let bytes = std::fs::read(plugin(build)).expect("read stamp build");
    registry
        .client()
        .push(bytes)
        .unwrap_or_else(|e| panic!("push {build}: {e}"));
}

fn pinned(status: &Value, version: &str) -> bool {
    let wanted = format!("stamp@{version}@");
    status["pins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|p| p.starts_with(&wanted))
}

fn history(daemon: &Daemon) -> Vec<Value> {
    let (code, body) = daemon.get("/v1/pipelines/busy/history");
    assert_eq!(code, 200, "history: {body}");
    body["entries"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_registry_that_is_down_or_answers_garbage_leaves_the_running_chain_alone() {
    let registry = Registry::start();
    push(&registry, "stamp_1_0");
    let proxy = Proxy::start(&registry.url);
    let work = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(
        work.path(),
        &format!(
            "[registry]\nurl = \"{}\"\ntoken = \"{REGISTRY_TOKEN}\"\n\n\
             [upgrades]\nenabled = true\ninterval_ms = 100\n",
            proxy.url
        ),
    );
    daemon.put_pipeline(
        "busy",
        &format!(
            r#"
[[source]]
kind = "generate"
schema = {schema}
count = 1000000000
rate = 2000.0

[[processor]]
plugin = "stamp@^1"
params = {{ field = "title" }}

[sink]
kind = "null"
"#,
            schema = toml_path(&title_schema())
        ),
    );
    daemon.wait_for("stamp 1.0.0 running", BOUND, || {
        let s = daemon.status("busy");
        s["state"] == "RUNNING" && pinned(&s, "1.0.0")
    });
    // Pushed behind the proxy's back: only a registry that answers can tell the daemon.
    push(&registry, "stamp_1_1");

    for mode in [
        Mode::Refuse,
        Mode::WrongShape,
        Mode::Truncated,
        Mode::Html500,
    ] {
        proxy.set(mode);
        let before = daemon.status("busy")["events_in"].as_u64().unwrap_or(0);
        // Several checks meet the misbehaviour (each interval asks at least once).
        assert!(
            wait_until(BOUND, || proxy.spoiled() >= 5),
            "{mode:?}: the daemon stopped asking the registry\n{}",
            daemon.log()
        );
        let status = daemon.status("busy");
        assert_eq!(status["state"], "RUNNING", "{mode:?}: {status}");
        assert!(pinned(&status, "1.0.0"), "{mode:?}: {status}");
        assert!(
            status["upgrade"].is_null(),
            "{mode:?}: a registry that does not answer is no blocked upgrade: {status}"
        );
        assert!(
            wait_until(BOUND, || {
                daemon.status("busy")["events_in"].as_u64().unwrap_or(0) > before + 100
            }),
            "{mode:?}: events stopped flowing\n{}",
            daemon.log()
        );
    }
    assert_eq!(
        history(&daemon),
        Vec::<Value>::new(),
        "nothing happened yet"
    );

    proxy.set(Mode::Forward);
    daemon.wait_for(
        "stamp 1.1.0 followed once the registry answers",
        BOUND,
        || pinned(&daemon.status("busy"), "1.1.0"),
    );
    let entries = history(&daemon);
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["upgrade"], "{entries:?}");
    assert_eq!(entries[0]["from"], "stamp@1.0.0", "{entries:?}");
    assert_eq!(entries[0]["to"], "stamp@1.1.0", "{entries:?}");
    assert_eq!(daemon.status("busy")["state"], "RUNNING");
}
