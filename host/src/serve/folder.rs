//! The pipelines folder: which files are pipelines and what they may be named, reading a
//! file as a pipeline version (with the daemon's defaults), writing one so that neither the
//! watcher nor a crash ever sees half of it.

use std::path::Path;

use super::PutError;
use super::config::DaemonConfig;
use super::shared::Version;
use crate::config::{Layers, Settings, process_env};

/// Whether `name` can name a pipeline (and its file): letters, digits, `-`, `_`, `.`, at
/// most 100 characters, not starting with `.` (hidden and temporary files).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The pipeline a file of the folder holds: `orders.toml` → `orders`; `None` for other
/// files (not `.toml`, hidden, temporary).
pub(super) fn pipeline_name(file: &Path) -> Option<String> {
    if file.extension()? != "toml" {
        return None;
    }
    let stem = file.file_stem()?.to_str()?;
    valid_name(stem).then(|| stem.to_string())
}

/// Parses a pipeline file's text as `weft run` does, settled between the environment
/// (above) and the daemon's own file (below: `[kafka] brokers`, `[registry]`), so a
/// pipeline's own values win over the daemon's. Errors are `key: message`, every one.
pub(super) fn load_version(
    text: &str,
    file: &Path,
    daemon: &DaemonConfig,
) -> Result<Version, Vec<String>> {
    let base = file.parent().unwrap_or(Path::new("."));
    let layers = Layers::new(&Settings::default(), process_env, &daemon.settings());
    let config = layers.parse_str(text, file, base).map_err(|e| {
        e.issues
            .into_iter()
            .map(|i| {
                if i.key.is_empty() {
                    i.message
                } else {
                    format!("{}: {}", i.key, i.message)
                }
            })
            .collect::<Vec<_>>()
    })?;
    // What the API shows "as loaded": the file's own tables (parsed above, so this parses).
    let json = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(Version::new(config, json))
}

/// Writes `<name>.toml` through a hidden temporary file and a rename, so the watcher and a
/// crash never see half a file.
pub(super) fn write_atomically(file: &Path, text: &str) -> Result<(), PutError> {
    let io = |e: std::io::Error| PutError::Io {
        path: file.display().to_string(),
        reason: e.to_string(),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = file.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, file).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_toml_files_are_pipelines() {
        assert_eq!(
            pipeline_name(Path::new("/p/orders.toml")).as_deref(),
            Some("orders")
        );
        assert_eq!(pipeline_name(Path::new("/p/.orders.toml.tmp")), None);
        assert_eq!(pipeline_name(Path::new("/p/.hidden.toml")), None);
        assert_eq!(pipeline_name(Path::new("/p/notes.md")), None);
        assert_eq!(pipeline_name(Path::new("/p/sp ace.toml")), None);
    }

    #[test]
    fn names_that_could_escape_the_folder_are_refused() {
        for bad in ["", "../x", "a/b", ".x", "a b", &"x".repeat(101)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("orders-v2.eu_1"));
    }

    #[test]
    fn daemon_brokers_fill_only_kafka_tables_without_brokers() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("s.avsc"),
            r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"}]}"#,
        )
        .expect("schema");
        let daemon = DaemonConfig {
            kafka: super::super::config::KafkaDefaults {
                brokers: Some("daemon:9092".into()),
            },
            ..DaemonConfig::default()
        };
        let text = r#"
            [[source]]
            kind = "kafka"
            topics = ["in"]
            group = "g"
            format = "avro"
            schema = "s.avsc"
            [sink]
            kind = "kafka"
            topic = "out"
            brokers = "own:9092"
            format = "avro"
        "#;
        let v = load_version(text, &dir.path().join("p.toml"), &daemon);
        let key = match v {
            Ok(v) => v.key,
            Err(problems) => panic!("{problems:?}"),
        };
        // Unless the environment names brokers, which wins over both files.
        if std::env::var_os(crate::config::BROKERS_ENV).is_none() {
            assert!(key.contains("\"daemon:9092\""), "{key}");
            assert!(key.contains("\"own:9092\""), "{key}");
        }
    }

    #[test]
    fn every_problem_of_a_file_is_listed_with_its_key() {
        let problems = load_version(
            "[[source]]\nkind = \"jsonl\"\n[sink]\nkind = \"nowhere\"\n",
            Path::new("/tmp/p.toml"),
            &DaemonConfig::default(),
        )
        .expect_err("invalid");
        assert!(problems.len() >= 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("source[0]")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("sink")),
            "{problems:?}"
        );
    }
}
