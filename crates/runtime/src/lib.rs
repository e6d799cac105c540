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
mod first_start;
pub mod manifest;
mod plugin;
mod plugin_log;
mod positions;
mod state;
mod wasi;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use bindings::{ConfigError, Event, Header, Level, Outcome};
pub use chain::{Chain, ChainLimits, ChainOutput, DeadLetter, StageSpec, StageStats};
pub use contract::{ContractVersion, READ_PATH_MAX, READS_MAX};
pub use plugin::Plugin;
pub use plugin_log::{LOG_BURST, LOG_MESSAGE_MAX, LOG_RATE_PER_SEC};
pub use positions::{
    HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC, POSITION_PREFIX, Position,
    is_position, position_at,
};
pub(crate) use state::HostState;
pub use wasi::{MAX_RANDOM_BYTES, OUTPUT_TAIL_BYTES};

pub use error::{Error, Result};
pub use first_start::{BaselinePolicy, Compiler, FIRST_START_MIN_BYTES};

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

/// The process-wide engines, linkers and epoch ticker. Cheap to clone.
///
/// A clone either compiles and instantiates with Cranelift (what [`Runtime::new`] returns)
/// or, for a chain with a first-start stage, with Winch (see [`Compiler`]).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
    compiler: Compiler,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    /// The Winch engine and its linker, when the policy may use them.
    winch: Option<(Engine, Linker<HostState>)>,
    policy: BaselinePolicy,
    cache_dir: Option<PathBuf>,
    /// Cranelift compiles under way for the next run (see [`Runtime::finish_background`]).
    background: Mutex<Vec<thread::JoinHandle<()>>>,
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
    /// environment or real clocks. Large uncached components start on Winch as
    /// `$WEFT_BASELINE` says (see [`BaselinePolicy`]).
    pub fn new(options: RuntimeOptions) -> Result<Self> {
        Self::with_policy(options, BaselinePolicy::from_env())
    }

    /// Like [`Runtime::new`] with an explicit first-start policy.
    pub fn with_policy(options: RuntimeOptions, policy: BaselinePolicy) -> Result<Self> {
        let mut config = first_start::base_config();
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
        let linker = new_linker(&engine)?;
        // Auto needs a cache to fill for the next run; without one every start is a first.
        let wants_winch = match policy {
            BaselinePolicy::Off => false,
            BaselinePolicy::Auto => options.cache_dir.is_some(),
            BaselinePolicy::Always => true,
        };
        // Without Winch (another target, a build without it) every load takes Cranelift.
        let winch = if wants_winch {
            match first_start::winch_engine() {
                Ok(engine) => Some((new_linker(&engine)?, engine)),
                Err(err) => {
                    tracing::warn!("no Winch first starts: {err:#}");
                    None
                }
            }
            .map(|(linker, engine)| (engine, linker))
        } else {
            None
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let mut ticked = vec![engine.weak()];
        ticked.extend(winch.as_ref().map(|(engine, _)| engine.weak()));
        spawn_epoch_ticker(ticked, ticker_stop.clone());

        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                winch,
                policy,
                cache_dir: options.cache_dir,
                background: Mutex::new(Vec::new()),
                ticker_stop,
                interrupt: Arc::new(AtomicBool::new(false)),
                log_gates: state::LogGates::default(),
            }),
            compiler: Compiler::Cranelift,
        })
    }

    /// This runtime compiling with `compiler`, if it has that engine.
    pub(crate) fn with_compiler(&self, compiler: Compiler) -> Option<Runtime> {
        if compiler == Compiler::Winch && self.inner.winch.is_none() {
            return None;
        }
        Some(Runtime {
            inner: self.inner.clone(),
            compiler,
        })
    }

    /// The compiler this runtime's loads and stores use.
    pub fn compiler(&self) -> Compiler {
        self.compiler
    }

    /// Which compiler a new load of a component of `size` bytes and hash `sha256` takes,
    /// and for a Winch start the marker a background Cranelift compile will write.
    pub(crate) fn choose(&self, size: usize, sha256: &str) -> (Compiler, Option<PathBuf>) {
        if self.compiler == Compiler::Winch || self.inner.policy == BaselinePolicy::Always {
            return (Compiler::Winch, None);
        }
        let marker = match &self.inner.cache_dir {
            Some(dir) if size >= FIRST_START_MIN_BYTES => {
                first_start::marker(dir, &self.inner.engine, sha256)
            }
            _ => return (Compiler::Cranelift, None),
        };
        if self.inner.policy == BaselinePolicy::Auto
            && self.inner.winch.is_some()
            && !marker.exists()
        {
            (Compiler::Winch, Some(marker))
        } else {
            (Compiler::Cranelift, Some(marker))
        }
    }

    /// The runtime a chain of `specs` runs in, and the specs compiled for it: one store
    /// belongs to one engine, so when any stage has Winch code the others are compiled with
    /// Winch too (from their bytes; the small ones take milliseconds).
    pub(crate) fn align(&self, specs: Vec<StageSpec>) -> Result<(Runtime, Vec<StageSpec>)> {
        let winch = specs
            .iter()
            .any(|spec| spec.plugin.compiler() == Compiler::Winch);
        let Some(runtime) = self.with_compiler(if winch {
            Compiler::Winch
        } else {
            self.compiler
        }) else {
            return Ok((self.clone(), specs));
        };
        let specs = specs
            .into_iter()
            .map(|spec| {
                Ok(StageSpec {
                    plugin: spec.plugin.for_runtime(&runtime)?,
                    params: spec.params,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((runtime, specs))
    }

    /// Compiles `bytes` with Cranelift in the background into the cache (see
    /// [`first_start`]).
    pub(crate) fn compile_in_background(&self, bytes: Arc<[u8]>, marker: PathBuf, origin: &str) {
        let handle = first_start::compile_in_background(
            self.inner.engine.clone(),
            bytes,
            marker,
            origin.to_string(),
        );
        if let (Some(handle), Ok(mut background)) = (handle, self.inner.background.lock()) {
            background.push(handle);
        }
    }

    /// How many background Cranelift compiles have not finished yet.
    pub fn background_pending(&self) -> usize {
        self.inner
            .background
            .lock()
            .map(|b| b.iter().filter(|h| !h.is_finished()).count())
            .unwrap_or(0)
    }

    /// Waits for the background Cranelift compiles of first starts, so that a short run
    /// still leaves optimised code in the cache for the next one.
    pub fn finish_background(&self) {
        let handles = match self.inner.background.lock() {
            Ok(mut background) => std::mem::take(&mut *background),
            Err(_) => return,
        };
        for handle in handles {
            let _ = handle.join();
        }
    }

    pub fn engine(&self) -> &Engine {
        match (&self.inner.winch, self.compiler) {
            (Some((engine, _)), Compiler::Winch) => engine,
            _ => &self.inner.engine,
        }
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        match (&self.inner.winch, self.compiler) {
            (Some((_, linker)), Compiler::Winch) => linker,
            _ => &self.inner.linker,
        }
    }

    /// Interrupts every plugin call of this runtime within one epoch tick, and makes every
    /// later call fail at once: for a shutdown that cannot wait for a slow processor (a
    /// second Ctrl-C). The batch in flight then fails with [`Error::Interrupted`], so it is
    /// neither written, dead-lettered nor committed. There is no way back.
    pub fn interrupt(&self) {
        self.inner.interrupt.store(true, Ordering::Relaxed);
        // Bring the next check forward rather than wait for the ticker.
        self.inner.engine.increment_epoch();
        if let Some((engine, _)) = &self.inner.winch {
            engine.increment_epoch();
        }
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
        Plugin::load(self, bytes.into(), &path.display().to_string())
    }

    /// Loads a component from bytes (named `<bytes>` in errors).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Plugin> {
        Plugin::load(self, bytes.into(), "<bytes>")
    }

    /// Like [`Runtime::load_bytes`], naming the component in errors.
    pub fn load_named(&self, bytes: &[u8], origin: &str) -> Result<Plugin> {
        Plugin::load(self, bytes.into(), origin)
    }
}

/// A linker offering the `log` import plus a WASI with no files, network, environment or
/// real clocks.
fn new_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| Error::Runtime(format!("linking WASI: {e:#}")))?;
    wasi::shadow_blocking_clocks(&mut linker)
        .map_err(|e| Error::Runtime(format!("linking WASI clocks: {e:#}")))?;
    contract::add_to_linker(&mut linker)
        .map_err(|e| Error::Runtime(format!("linking weft imports: {e:#}")))?;
    Ok(linker)
}

fn spawn_epoch_ticker(engines: Vec<wasmtime::EngineWeak>, stop: Arc<AtomicBool>) {
    let spawned = thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                for engine in &engines {
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!("cannot start the epoch ticker, deadlines will not fire: {err}");
    }
}
