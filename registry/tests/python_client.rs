//! Confluent's own Python client (`confluent-kafka`: `SchemaRegistryClient`, `AvroSerializer`,
//! `AvroDeserializer`) against the real binary, through `tests/python/confluent_client.py`.
//!
//! `scripts/setup.sh` installs the client. Without it the test fails when `CI` is set, and
//! only locally skips, loudly.

mod real;

use std::process::Command;

use real::{RealRegistry, TOKEN};

/// Why the Python client cannot run here, if it cannot.
fn client_missing() -> Option<String> {
    let probe = Command::new("python3")
        .args([
            "-c",
            "from confluent_kafka.schema_registry import SchemaRegistryClient\n\
             from confluent_kafka.schema_registry.avro import AvroSerializer",
        ])
        .output();
    match probe {
        Err(e) => Some(format!("python3 cannot be started: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "the confluent-kafka Python client is not installed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

#[test]
fn the_confluent_python_client_registers_looks_up_serializes_and_deserializes() {
    if let Some(why) = client_missing() {
        let fix =
            "run scripts/setup.sh (python3 -m pip install 'confluent-kafka[avro,schemaregistry]')";
        if std::env::var_os("CI").is_some() {
            panic!("{why}\n{fix}");
        }
        eprintln!("\n!!! SKIPPED the confluent-kafka end-to-end test: {why}\n!!! {fix}\n");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = RealRegistry::start(&dir.path().join("data"));
    let script = real::workspace_root().join("registry/tests/python/confluent_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&registry.url, TOKEN])
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the confluent-kafka client failed against the registry\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("all confluent-kafka client steps passed"),
        "{stdout}"
    );
}
