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
    #[error("plugin {origin}: describe() failed: {reason}")]
    Describe { origin: String, reason: String },
    #[error("plugin {origin}: invalid manifest: {reason}")]
    InvalidManifest { origin: String, reason: String },
    #[error("processor {processor}: configure failed: {reason}")]
    Configure { processor: String, reason: String },
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
    /// A plugin call was cut short because weft is shutting down (a second Ctrl-C).
    #[error("interrupted: weft is shutting down")]
    Interrupted,
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

/// The runtime's errors keep their variant, so a message reads the same from either crate.
impl From<weft_runtime::Error> for Error {
    fn from(e: weft_runtime::Error) -> Self {
        use weft_runtime::Error as R;
        match e {
            R::Io { path, source } => Error::Io { path, source },
            R::InvalidComponent { origin, reason } => Error::InvalidComponent { origin, reason },
            R::Describe { origin, reason } => Error::Describe { origin, reason },
            R::InvalidManifest { origin, reason } => Error::InvalidManifest { origin, reason },
            R::Configure { processor, reason } => Error::Configure { processor, reason },
            R::Schema { origin, reason } => Error::Schema { origin, reason },
            R::Link { link, reason } => Error::Link { link, reason },
            R::Runtime(reason) => Error::Runtime(reason),
            R::Interrupted => Error::Interrupted,
        }
    }
}
