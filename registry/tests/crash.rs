//! Durability through the real binary: `kill -9` in the middle of a burst of concurrent
//! registrations, restart on the same data, and every registration that was answered 200
//! is still there with the same id and schema, and no id ever names two schemas.

mod real;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use real::{RealRegistry, TOKEN};
use serde_json::{Value, json};

const ROUNDS: usize = 4;
const WRITERS: usize = 6;

/// A 200 answer: this schema text was registered under this subject as this id.
#[derive(Debug, Clone)]
struct Acked {
    subject: String,
    schema: String,
    id: u64,
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// A schema no other writer, round or attempt uses (one distinct field name each).
fn schema(round: usize, writer: usize, n: usize) -> String {
    json!({"type":"record","name":"Event","namespace":"crash.test","fields":[
        {"name": format!("f_{round}_{writer}_{n}"), "type":"long"}]})
    .to_string()
}

/// Registers until `stop`; records every 200. Connection errors (the process is gone) end
/// nothing: the writer keeps trying until told to stop, as a real client would retry.
fn writer(
    url: String,
    round: usize,
    writer: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    let http = http();
    // Two writers per subject: versions race as well as ids.
    let subject = format!("crash-{}", writer / 2);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let schema = schema(round, writer, n);
        let answer = http
            .post(format!("{url}/subjects/{subject}/versions"))
            .bearer_auth(TOKEN)
            .json(&json!({ "schema": schema }))
            .send();
        let Ok(answer) = answer else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        if answer.status().as_u16() != 200 {
            continue;
        }
        let Ok(body) = answer.json::<Value>() else {
            // The process died between the status line and the body: not acknowledged.
            continue;
        };
        let id = body["id"].as_u64().expect("a 200 carries an id");
        acked.lock().expect("acked list").push(Acked {
            subject: subject.clone(),
            schema: schema.clone(),
            id,
        });
    }
}

/// Checks every acknowledged write against a running registry.
fn check_all(url: &str, acked: &[Acked]) {
    let http = http();
    let mut by_id: BTreeMap<u64, &str> = BTreeMap::new();
    for a in acked {
        if let Some(other) = by_id.insert(a.id, &a.schema)
            && other != a.schema
        {
            panic!(
                "id {} was answered for two schemas:\n{other}\n{}",
                a.id, a.schema
            );
        }
        let found: Value = http
            .post(format!("{url}/subjects/{}", a.subject))
            .json(&json!({ "schema": a.schema }))
            .send()
            .expect("lookup")
            .json()
            .expect("lookup body");
        assert_eq!(
            found["id"].as_u64(),
            Some(a.id),
            "acknowledged registration lost or changed after kill -9: {a:?}\nlookup answered {found}"
        );
        let by_id: Value = http
            .get(format!("{url}/schemas/ids/{}", a.id))
            .send()
            .expect("schema by id")
            .json()
            .expect("schema body");
        let stored: Value =
            serde_json::from_str(by_id["schema"].as_str().expect("schema text")).expect("JSON");
        let sent: Value = serde_json::from_str(&a.schema).expect("JSON");
        assert_eq!(stored, sent, "id {} now names another schema", a.id);
    }
}

#[test]
fn every_acknowledged_registration_survives_kill_9_and_no_id_is_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut all_acked: Vec<Acked> = Vec::new();
    {
        // Any schema may follow any other: the test is about durability, not compatibility.
        let registry = RealRegistry::start(&data);
        let answer = http()
            .put(format!("{}/config", registry.url))
            .bearer_auth(TOKEN)
            .json(&json!({"compatibility": "NONE"}))
            .send()
            .expect("set level");
        assert_eq!(answer.status().as_u16(), 200);
    }
    for round in 0..ROUNDS {
        let registry = RealRegistry::start(&data);
        // What earlier rounds acknowledged is still there before anything new is written.
        check_all(&registry.url, &all_acked);
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (url, stop, acked) = (registry.url.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || writer(url, round, w, stop, acked))
            })
            .collect();
        // Kill once the burst is under way (however slow the machine), at a different
        // moment each round.
        let started = std::time::Instant::now();
        while acked.lock().expect("acked").len() < 5 && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50 + 120 * round as u64));
        registry.kill9();
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer thread");
        }
        let acked = acked.lock().expect("acked").clone();
        assert!(
            !acked.is_empty(),
            "round {round}: no registration was acknowledged"
        );
        all_acked.extend(acked);
    }
    let registry = RealRegistry::start(&data);
    check_all(&registry.url, &all_acked);
    // After all the crashes, a new schema still gets an id nobody was ever answered.
    let fresh: Value = http()
        .post(format!("{}/subjects/crash-fresh/versions", registry.url))
        .bearer_auth(TOKEN)
        .json(&json!({ "schema": schema(99, 99, 99) }))
        .send()
        .expect("register")
        .json()
        .expect("body");
    let id = fresh["id"].as_u64().expect("id");
    assert!(
        all_acked.iter().all(|a| a.id != id),
        "id {id} handed out again after a crash"
    );
    eprintln!(
        "{} acknowledged registrations checked over {ROUNDS} kill -9 rounds",
        all_acked.len()
    );
}

/// Writes one new resource per request until `stop`: `kind` 0 a subject's level, 1 a
/// pipeline. Returns the paths whose write was answered with success.
fn other_writer(url: String, round: usize, kind: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let http = http();
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (path, body) = if kind == 0 {
            (
                format!("/config/cfg-{round}-{n}"),
                json!({"compatibility": "FULL_TRANSITIVE"}),
            )
        } else {
            let name = format!("p-{round}-{n}");
            (
                format!("/v1/pipelines/{name}"),
                json!({"name": name, "sources": [{"topic": "in"}], "sinks": [{"topic": "out"}]}),
            )
        };
        let answer = http
            .put(format!("{url}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send();
        let Ok(answer) = answer else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        if answer.status().is_success() && answer.bytes().is_ok() {
            acked.push(path);
        }
    }
    acked
}

#[test]
fn acknowledged_level_and_pipeline_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut acked: Vec<String> = Vec::new();
    for round in 0..2 {
        let registry = RealRegistry::start(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|kind| {
                let (url, stop) = (registry.url.clone(), stop.clone());
                std::thread::spawn(move || other_writer(url, round, kind, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + 150 * round as u64));
        registry.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            acked.extend(w.join().expect("writer thread"));
        }
    }
    assert!(
        acked.iter().any(|p| p.starts_with("/config/")),
        "no level write acknowledged"
    );
    assert!(
        acked.iter().any(|p| p.starts_with("/v1/")),
        "no pipeline write acknowledged"
    );
    let registry = RealRegistry::start(&data);
    let http = http();
    for path in &acked {
        let answer = http
            .get(format!("{}{path}", registry.url))
            .send()
            .expect("read back");
        let status = answer.status().as_u16();
        let body: Value = answer.json().expect("JSON");
        assert_eq!(
            status, 200,
            "acknowledged write {path} lost after kill -9: {body}"
        );
        if path.starts_with("/config/") {
            assert_eq!(
                body["compatibilityLevel"], "FULL_TRANSITIVE",
                "{path}: {body}"
            );
        }
    }
    eprintln!(
        "{} acknowledged level and pipeline writes checked",
        acked.len()
    );
}
