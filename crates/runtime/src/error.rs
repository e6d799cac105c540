//! The runtime's error type: every variant names the plugin, processor or link at fault, as
//! the host prints it (the host converts each variant to its own of the same name).

use std::path::PathBuf;

/// Errors of loading components, building chains and calling them.
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
    #[error("plugin {origin}: describe() failed: {reason}")]
    Describe { origin: String, reason: String },
    #[error("plugin {origin}: invalid manifest: {reason}")]
    InvalidManifest { origin: String, reason: String },
    #[error("processor {processor}: configure failed: {reason}")]
    Configure { processor: String, reason: String },
    #[error("invalid Avro schema {origin}: {reason}")]
    Schema { origin: String, reason: String },
    #[error("link {link}: {reason}")]
    Link { link: String, reason: String },
    #[error("wasm runtime: {0}")]
    Runtime(String),
    /// A plugin call was cut short because weft is shutting down (a second Ctrl-C).
    #[error("interrupted: weft is shutting down")]
    Interrupted,
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
