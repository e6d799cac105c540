//! The host library's error type: every variant names what a user needs to find the fault.

use std::path::PathBuf;

/// Errors of the weft host library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {origin}: not a weft processor component: {reason}")]
    InvalidComponent { origin: String, reason: String },
    #[error("plugin {origin}: invalid manifest: {reason}")]
    InvalidManifest { origin: String, reason: String },
    #[error("invalid Avro schema {origin}: {reason}")]
    Schema { origin: String, reason: String },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigErrors),
    /// Problems found while loading the processors of a pipeline, all of them at once.
    #[error("{} processor error{}:\n  {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("\n  "))]
    Processors { problems: Vec<String> },
    #[error("link {link}: {reason}")]
    Link { link: String, reason: String },
    #[error("source {source_name}: {reason}")]
    Source { source_name: String, reason: String },
    #[error("sink {sink}: {reason}")]
    Sink { sink: String, reason: String },
    #[error("wasm runtime: {0}")]
    Runtime(String),
    /// What loading, configuring or running the processors failed with, in the runtime's
    /// own words.
    #[error(transparent)]
    Plugin(#[from] weft_runtime::Error),
}

/// Result with the host library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
