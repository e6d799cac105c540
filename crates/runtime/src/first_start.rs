//! The first start of a large component: compiled with wasmtime's Winch baseline compiler for
//! this run (an 18.6 MB Python processor: about 1.5 s instead of 12 s of Cranelift on two
//! cores), while Cranelift compiles it in the background into the cache for the next run.
//!
//! Winch code runs under the same limits (epoch deadlines, the memory limiter, traps) but
//! slower, so it is only a bridge: once Cranelift's code is in the cache (a marker file says
//! so), every later load takes it from there. A chain runs in one store, and a store belongs
//! to one engine, so a chain with any Winch stage compiles its other stages with Winch too
//! (they are small; see [`crate::Runtime::align`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, Strategy};

/// Components at least this large take the Winch path when not yet compiled: below it,
/// Cranelift takes under about a second here and its code is faster.
pub const FIRST_START_MIN_BYTES: usize = 4 << 20;

/// Which compiler a loaded component's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiler {
    /// Optimised code, from the cache or compiled at load.
    Cranelift,
    /// Baseline code for this process only; Cranelift's is on its way to the cache.
    Winch,
}

impl Compiler {
    pub fn as_str(self) -> &'static str {
        match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }
}

/// When loads take the Winch path, from `$WEFT_BASELINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselinePolicy {
    /// Components of [`FIRST_START_MIN_BYTES`] or more that the cache does not hold yet
    /// (the default).
    Auto,
    /// Never: every load compiles with Cranelift, as before.
    Off,
    /// Every load, whatever its size or the cache, and no background compile: to run a test
    /// suite against Winch code.
    Always,
}

impl BaselinePolicy {
    /// `$WEFT_BASELINE`: `auto` (or unset), `off`, `always`; anything else is `auto`.
    pub fn from_env() -> Self {
        match std::env::var("WEFT_BASELINE").as_deref() {
            Ok("off") => BaselinePolicy::Off,
            Ok("always") => BaselinePolicy::Always,
            _ => BaselinePolicy::Auto,
        }
    }
}

/// Applies the engine settings both compilers share (the component model, epoch deadlines).
pub(crate) fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines per call: a guest that loops forever is interrupted at the next epoch.
    // Winch emits the same epoch checks as Cranelift.
    config.epoch_interruption(true);
    // `WEFT_PERF_MAP=1` names guest functions in `perf` profiles (/tmp/perf-PID.map), the
    // only way to see where a processor's time goes inside Wasm.
    if std::env::var_os("WEFT_PERF_MAP").is_some_and(|v| !v.is_empty() && v != "0") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// The Winch engine: no cache (its code is for this process only).
pub(crate) fn winch_engine() -> wasmtime::Result<Engine> {
    let mut config = base_config();
    config.strategy(Strategy::Winch);
    Engine::new(&config)
}

/// Where the marker saying "Cranelift's code for this component is in the cache" lives:
/// keyed by the component's hash and the engine's settings, so another wasmtime version or
/// configuration does not take a stale marker for a hit.
pub(crate) fn marker(cache_dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    cache_dir
        .join("first-start")
        .join(format!("{:016x}", hasher.finish()))
        .join(sha256)
}

/// Records that Cranelift's code for the component is in the cache (best effort: a lost
/// marker only means one more Winch start).
pub(crate) fn mark_compiled(marker: &Path) {
    if let Some(parent) = marker.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(err) = std::fs::write(marker, b"") {
        tracing::debug!(marker = %marker.display(), "cannot record a compiled component: {err}");
    }
}

/// Compiles `bytes` with the cached Cranelift engine on a thread of its own, so the next run
/// loads optimised code from the cache. The process may end first (a short `weft run`):
/// then the next start takes the Winch path again.
pub(crate) fn compile_in_background(
    engine: Engine,
    bytes: Arc<[u8]>,
    marker: PathBuf,
    origin: String,
) -> Option<thread::JoinHandle<()>> {
    let spawned = thread::Builder::new()
        .name("weft-cranelift".into())
        .spawn(move || {
            let started = Instant::now();
            match Component::new(&engine, &bytes) {
                Ok(_) => {
                    mark_compiled(&marker);
                    eprintln!(
                        "compiled {origin} with Cranelift into the cache in {:.1} s: the next run starts from it",
                        started.elapsed().as_secs_f64()
                    );
                }
                Err(err) => tracing::warn!("background compile of {origin} failed: {err:#}"),
            }
        });
    spawned
        .map_err(|err| tracing::warn!("cannot start the background compile: {err}"))
        .ok()
}
