//! The Wasm runtime: one `Engine` per process, components compiled once and cached on disk,
//! and chains of processor instances sharing one `Store`.
//!
//! This crate is the sandbox and nothing else: the manifest's caps, the fused chain with its
//! limits, the WASI context a plugin sees. Sources, sinks, Kafka and the registry client live
//! in `weft-host`; the registry uses this crate alone to call `describe` on uploads.
#![forbid(unsafe_code)]

mod bindings;
mod chain;
mod contract;
mod error;
pub mod manifest;
mod plugin;
mod plugin_log;
mod state;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

pub use bindings::{ConfigError, Event, Header, Level, Outcome};
pub use chain::{Chain, ChainLimits, ChainOutput, DeadLetter, StageSpec, StageStats};
pub use contract::{ContractVersion, READ_PATH_MAX, READS_MAX};
pub use plugin::Plugin;
pub use plugin_log::{LOG_BURST, LOG_MESSAGE_MAX, LOG_RATE_PER_SEC};
pub(crate) use state::HostState;
pub use wasi::{MAX_RANDOM_BYTES, OUTPUT_TAIL_BYTES};

pub use error::{Error, Result};

/// How often the epoch ticker advances the engine's epoch; the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings of the process-wide Wasm runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Directory of the compiled-code cache; `None` compiles every component at each start.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
        }
    }
}

/// `$WEFT_CACHE_DIR`, else `$XDG_CACHE_HOME/weft`, else `~/.cache/weft`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEFT_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("weft"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("weft"))
}

/// The process-wide engine, linker and epoch ticker. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    ticker_stop: Arc<AtomicBool>,
    /// Set by [`Runtime::interrupt`]; every store checks it each epoch tick.
    interrupt: Arc<AtomicBool>,
    log_gates: state::LogGates,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the engine (epoch interruption on, compiled-code cache on disk) and a linker
    /// that offers plugins only the `log` import plus a WASI with no files, network,
    /// environment or real clocks.
    pub fn new(options: RuntimeOptions) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Deadlines per call: a guest that loops forever is interrupted at the next epoch.
        config.epoch_interruption(true);
        // No pooling allocator: a chain instantiates each processor once and reuses the
        // instance for every batch; re-instantiation happens only after a trap. Measured on
        // the shipped plugins, on-demand instantiation takes about 6-10 µs (weft-bench), so
        // reserving pooled slots up front would buy nothing a pipeline notices.
        if let Some(dir) = &options.cache_dir {
            // Keyed by the component's content hash and the engine's settings, so a warm
            // start skips Cranelift entirely.
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir.join("compiled"));
            match wasmtime::Cache::new(cache) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), "compiled-code cache disabled: {err:#}")
                }
            }
        }
        let engine = Engine::new(&config).map_err(|e| Error::Runtime(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Runtime(format!("linking WASI: {e:#}")))?;
        wasi::shadow_blocking_clocks(&mut linker)
            .map_err(|e| Error::Runtime(format!("linking WASI clocks: {e:#}")))?;
        contract::add_to_linker(&mut linker)
            .map_err(|e| Error::Runtime(format!("linking weft imports: {e:#}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.weak(), ticker_stop.clone());

        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                ticker_stop,
                interrupt: Arc::new(AtomicBool::new(false)),
                log_gates: state::LogGates::default(),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Interrupts every plugin call of this runtime within one epoch tick, and makes every
    /// later call fail at once: for a shutdown that cannot wait for a slow processor (a
    /// second Ctrl-C). The batch in flight then fails with [`Error::Interrupted`], so it is
    /// neither written, dead-lettered nor committed. There is no way back.
    pub fn interrupt(&self) {
        self.inner.interrupt.store(true, Ordering::Relaxed);
        // Bring the next check forward rather than wait for the ticker.
        self.inner.engine.increment_epoch();
    }

    /// Whether [`Runtime::interrupt`] was called.
    pub fn interrupted(&self) -> bool {
        self.inner.interrupt.load(Ordering::Relaxed)
    }

    pub(crate) fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.inner.interrupt.clone()
    }

    pub(crate) fn log_gates(&self) -> state::LogGates {
        self.inner.log_gates.clone()
    }

    /// Loads a component from a file: compiles (or takes from the cache), links, and reads
    /// its manifest through `describe()` in a bounded sandbox.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Plugin::load(self, &bytes, &path.display().to_string())
    }

    /// Loads a component from bytes (named `<bytes>` in errors).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Plugin> {
        Plugin::load(self, bytes, "<bytes>")
    }

    /// Like [`Runtime::load_bytes`], naming the component in errors.
    pub fn load_named(&self, bytes: &[u8], origin: &str) -> Result<Plugin> {
        Plugin::load(self, bytes, origin)
    }
}

fn spawn_epoch_ticker(engine: wasmtime::EngineWeak, stop: Arc<AtomicBool>) {
    let spawned = thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!("cannot start the epoch ticker, deadlines will not fire: {err}");
    }
}
