//! What is wrong with a pipeline file: one [`ConfigIssue`] per problem, gathered into
//! [`ConfigErrors`] so every problem is reported at once. The loader and the table checks
//! (`kafka`) both push issues; neither depends on the other for it.

use std::fmt;
use std::path::PathBuf;

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
