//! The pipelines folder, watched (the `notify` crate): created, changed and removed `*.toml`
//! files become start, replace and stop. Events are debounced — an editor's save is several
//! events, a copy of a large file many — and each settled file is handed to a callback (the
//! supervisor's, which compares the parsed config with what runs, so a file `Daemon::put` just
//! wrote, equal to what runs, changes nothing). The watch knows nothing of the supervisor.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};

/// Quiet time after the last event of a file before it is read.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches until dropped (the debounce thread ends with the watcher's channel).
pub(super) struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
}

impl FolderWatch {
    /// Calls `settled` with each `*.toml` file of `folder` that was created, changed or
    /// removed, once its events have settled; the watch ends when `settled` returns false.
    pub fn start(
        folder: &Path,
        settled: impl Fn(&Path) -> bool + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx).context("starting the folder watch")?;
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", folder.display()))?;
        std::thread::Builder::new()
            .name("weft-watch".into())
            .spawn(move || {
                let mut pending = BTreeSet::<PathBuf>::new();
                loop {
                    let event = if pending.is_empty() {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    } else {
                        rx.recv_timeout(DEBOUNCE)
                    };
                    match event {
                        // Reading a file is an access event: taking those would make every
                        // read of the folder trigger another read, forever.
                        Ok(Ok(event)) if matches!(event.kind, EventKind::Access(_)) => {}
                        Ok(Ok(event)) => pending.extend(
                            event
                                .paths
                                .into_iter()
                                .filter(|p| p.extension().is_some_and(|e| e == "toml")),
                        ),
                        Ok(Err(e)) => tracing::warn!("folder watch: {e}"),
                        Err(RecvTimeoutError::Timeout) => {
                            for file in std::mem::take(&mut pending) {
                                if !settled(&file) {
                                    return;
                                }
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .context("starting the folder watch thread")?;
        Ok(Self { _watcher: watcher })
    }
}
