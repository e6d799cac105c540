//! Cold starts said out loud, and done ahead of time: a component's first load compiles it
//! (an 18 MB Python or JS processor takes 13-14 s here; later loads take it from the
//! compiled-code cache in about 0.1 s). [`Progress`] says so while it happens; `weft plugin
//! warm` compiles into the cache before the first run needs it.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weft_host::pipeline::{LocalOnly, PluginResolver};
use weft_runtime::{Plugin, Runtime};

/// How long a load may take before the user is told it is compiling: a cached load of the
/// largest components takes about 0.1-0.2 s.
const QUIET_FOR: Duration = Duration::from_millis(500);

/// Runs `load`, printing `compiling LABEL…` on stderr if it takes longer than [`QUIET_FOR`]
/// and how long it took once done.
pub fn with_progress<T>(label: &str, load: impl FnOnce() -> T) -> T {
    let (done, wait) = mpsc::channel::<()>();
    let label_owned = label.to_owned();
    let started = Instant::now();
    let watcher = std::thread::spawn(move || {
        if wait.recv_timeout(QUIET_FOR) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!(
                "compiling {label_owned}… (first load of this component; later runs take it from the cache)"
            );
            // Wait for the end, then say how long it took.
            let _ = wait.recv();
            eprintln!(
                "compiled {label_owned} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    });
    let result = load();
    drop(done);
    let _ = watcher.join();
    result
}

/// `shout.wasm (18.6 MB)`.
pub fn describe_file(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    match std::fs::metadata(path) {
        Ok(meta) => format!("{name} ({:.1} MB)", meta.len() as f64 / 1e6),
        Err(_) => name,
    }
}

/// A resolver that reports slow (compiling) loads of the one it wraps.
pub struct Progress<'a>(pub &'a dyn PluginResolver);

impl PluginResolver for Progress<'_> {
    fn resolve(&self, runtime: &Runtime, reference: &str) -> weft_host::Result<Plugin> {
        let label = if weft_host::config::is_local_plugin(reference) {
            describe_file(Path::new(reference))
        } else {
            reference.to_owned()
        };
        with_progress(&label, || self.0.resolve(runtime, reference))
    }
}

/// `weft plugin warm`: loads each component (a path, or a registry reference through
/// `registry`) so it is compiled into the cache; prints what each took.
pub fn warm(
    runtime: &Runtime,
    references: &[String],
    registry: impl Fn() -> anyhow::Result<Box<dyn PluginResolver>>,
) -> anyhow::Result<()> {
    let mut remote: Option<Box<dyn PluginResolver>> = None;
    for reference in references {
        let started = Instant::now();
        let plugin = if weft_host::config::is_local_plugin(reference) {
            Progress(&LocalOnly).resolve(runtime, reference)?
        } else {
            if remote.is_none() {
                remote = Some(registry()?);
            }
            let resolver = remote.as_deref().expect("set just above");
            Progress(resolver).resolve(runtime, reference)?
        };
        println!(
            "warm {} ({:.1} MB, sha256 {}) in {:.1} s",
            plugin.id(),
            plugin.size() as f64 / 1e6,
            &plugin.sha256()[..12],
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
