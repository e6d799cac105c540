//! What is wrong with a pipeline file: one [`ConfigIssue`] per problem, gathered into
//! [`ConfigErrors`] so every problem is reported at once. The loader and the table checks
//! (`kafka`) both push issues; neither depends on the other for it.

use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, e.g. `source[0].path`; empty for the whole file.
    pub key: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub issues: Vec<ConfigIssue>,
}

impl std::error::Error for ConfigErrors {}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{}: {n} error{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.key.is_empty() {
                write!(f, "\n  {}", issue.message)?;
            } else {
                write!(f, "\n  {}: {}", issue.key, issue.message)?;
            }
        }
        Ok(())
    }
}

/// Deserializes one top-level section of a TOML file, recording its error (with the full
/// key) instead of stopping, so the other sections are still checked. Pipeline files and
/// weftd.toml are read with it.
pub fn section<T: DeserializeOwned>(
    table: &toml::Table,
    name: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    let value = table.get(name)?.clone();
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(err) => {
            let path = err.path().to_string();
            let key = if path == "." {
                name.to_string()
            } else if path.starts_with('[') {
                format!("{name}{path}")
            } else {
                format!("{name}.{path}")
            };
            issues.push(ConfigIssue::new(
                key,
                one_line(&err.into_inner().to_string()),
            ));
            None
        }
    }
}

/// serde's messages for tagged enums span lines (`...\nin `kind``); a key's message is one line.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
