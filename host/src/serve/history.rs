//! A pipeline's upgrade history (upgrades, blocked upgrades, rollbacks, reloads) and the
//! plugin versions rolled back for it, kept in memory and in `<data_dir>/upgrades/<name>.json`
//! so both survive a restart of the daemon: a version a canary rejected is not tried again
//! because the process restarted.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Entries kept per pipeline; older ones are dropped.
pub const HISTORY_LIMIT: usize = 200;

/// What happened to a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    /// A new plugin version or source schema was checked and swapped in.
    Upgrade,
    /// A new plugin version or source schema failed a check; the pipeline ran on as it was.
    Blocked,
    /// A canary window failed: the previous chain was swapped back.
    Rollback,
    /// A new version of the pipeline file (the folder, the admin API, the cluster) was applied.
    Reload,
}

/// One entry of `GET /v1/pipelines/{name}/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// When (RFC 3339).
    pub at: String,
    pub kind: HistoryKind,
    /// What ran before: its pins (`name@version`) and reader schema id.
    pub from: String,
    /// What runs after (or, for `blocked`, what was refused).
    pub to: String,
    pub reason: String,
}

/// `GET /v1/pipelines/{name}/history`: oldest first, newest last, at most 200.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub pipeline: String,
    pub entries: Vec<HistoryEntry>,
}

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    entries: VecDeque<HistoryEntry>,
    /// `name@version` of plugin versions rolled back for this pipeline.
    #[serde(default)]
    excluded: BTreeSet<String>,
    /// The source subject and the reader schema id the pipeline last ran with.
    #[serde(default)]
    reader: Option<(String, u32)>,
}

/// One pipeline's history and exclusions, written through to its file on every change.
#[derive(Debug)]
pub(super) struct Ledger {
    /// `None`: kept in memory only (a file that could not be read is not overwritten).
    path: Option<PathBuf>,
    stored: Stored,
}

impl Ledger {
    /// The ledger of `pipeline` under `data_dir`; empty when there is none yet. A file that
    /// does not parse is moved aside (`.corrupt`) rather than silently overwritten.
    pub fn load(data_dir: &Path, pipeline: &str) -> Self {
        let path = data_dir.join("upgrades").join(format!("{pipeline}.json"));
        let stored = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) => stored,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::warn!(file = %path.display(), "unreadable upgrade history ({e}); moved to {}", aside.display());
                    if let Err(e) = std::fs::rename(&path, &aside) {
                        tracing::warn!(file = %path.display(), "moving it aside: {e}; keeping the history in memory only");
                        return Self {
                            path: None,
                            stored: Stored::default(),
                        };
                    }
                    Stored::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), "reading the upgrade history: {e}; keeping it in memory only");
                return Self {
                    path: None,
                    stored: Stored::default(),
                };
            }
        };
        Self {
            path: Some(path),
            stored,
        }
    }

    pub fn record(&mut self, kind: HistoryKind, from: &str, to: &str, reason: &str) {
        tracing::info!(?kind, %from, %to, "{reason}");
        self.stored.entries.push_back(HistoryEntry {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            kind,
            from: from.to_string(),
            to: to.to_string(),
            reason: reason.to_string(),
        });
        while self.stored.entries.len() > HISTORY_LIMIT {
            self.stored.entries.pop_front();
        }
        self.save();
    }

    /// Never resolve `name@version` for this pipeline again.
    pub fn exclude(&mut self, name_version: &str) {
        if self.stored.excluded.insert(name_version.to_string()) {
            self.save();
        }
    }

    /// `name@version` of every version rolled back for this pipeline.
    pub fn excluded(&self) -> &BTreeSet<String> {
        &self.stored.excluded
    }

    /// The reader schema the pipeline last ran with, and its subject.
    pub fn reader(&self) -> Option<(String, u32)> {
        self.stored.reader.clone()
    }

    pub fn set_reader(&mut self, subject: &str, id: u32) {
        let reader = Some((subject.to_string(), id));
        if self.stored.reader != reader {
            self.stored.reader = reader;
            self.save();
        }
    }

    pub fn entries(&self) -> Vec<HistoryEntry> {
        self.stored.entries.iter().cloned().collect()
    }

    /// Writes through a temporary file and a rename, so a crash leaves the old or the new
    /// file, never half of one. A failure is logged: the history is a record, not a reason
    /// to stop a pipeline.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&self.stored)?)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %path.display(), "saving the upgrade history: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_exclusions_survive_a_reload_and_stay_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ledger = Ledger::load(dir.path(), "orders");
        for i in 0..HISTORY_LIMIT + 5 {
            ledger.record(
                HistoryKind::Upgrade,
                &format!("mask@1.{i}.0"),
                &format!("mask@1.{}.0", i + 1),
                "new version",
            );
        }
        ledger.exclude("mask@1.2.0");
        ledger.set_reader("orders-value", 7);
        let again = Ledger::load(dir.path(), "orders");
        // A rebuild after a restart of the daemon starts from the schema last run.
        assert_eq!(again.reader(), Some(("orders-value".to_string(), 7)));
        let entries = again.entries();
        assert_eq!(entries.len(), HISTORY_LIMIT);
        // The oldest went first; the newest is last.
        assert_eq!(entries[0].from, "mask@1.5.0");
        assert_eq!(
            entries.last().map(|e| e.to.as_str()),
            Some(format!("mask@1.{}.0", HISTORY_LIMIT + 5).as_str())
        );
        assert!(again.excluded().contains("mask@1.2.0"));
        // Another pipeline's ledger is its own.
        assert!(Ledger::load(dir.path(), "other").entries().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("upgrades");
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("orders.json"), b"{not json").expect("write");
        let mut ledger = Ledger::load(dir.path(), "orders");
        assert!(ledger.entries().is_empty());
        ledger.record(HistoryKind::Reload, "a", "b", "file changed");
        assert_eq!(
            std::fs::read(folder.join("orders.json.corrupt")).expect("kept"),
            b"{not json"
        );
        assert_eq!(Ledger::load(dir.path(), "orders").entries().len(), 1);
    }
}
