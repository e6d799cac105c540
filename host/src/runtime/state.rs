//! What each `Store` carries: a locked-down WASI context, memory limits and the log import.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::{Level, weft::processor::log};

/// Store data of a chain. Plugins see WASI only because Rust's standard library imports it:
/// the context has no preopened directories, no environment, no arguments, no sockets, no
/// inherited stdio and frozen clocks, so every such call fails or learns nothing.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// Name@version of the processor currently called, for log lines.
    pub(crate) current: String,
    /// Last error-level message of the current call (the SDK logs panics there), used as
    /// the reason when the call traps.
    pub(crate) last_error: Option<String>,
}

impl HostState {
    pub(crate) fn new(memory_limit_bytes: usize) -> Self {
        let wasi = WasiCtxBuilder::new()
            .allow_blocking_current_thread(false)
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit_bytes)
                // A failed grow traps with a clear message instead of letting the guest's
                // allocator abort with a generic one.
                .trap_on_grow_failure(true)
                .build(),
            current: String::new(),
            last_error: None,
        }
    }
}

/// Processors get no clock: both WASI clocks stand still at zero, so a processor's output
/// depends on its input and parameters only (replays give the same result).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let processor = self.current.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "weft::plugin", processor, "{message}"),
            Level::Debug => tracing::debug!(target: "weft::plugin", processor, "{message}"),
            Level::Info => tracing::info!(target: "weft::plugin", processor, "{message}"),
            Level::Warn => tracing::warn!(target: "weft::plugin", processor, "{message}"),
            Level::Error => {
                tracing::error!(target: "weft::plugin", processor, "{message}");
                self.last_error = Some(message);
            }
        }
    }
}

/// The `types` interface defines no functions; the trait only marks it as linked.
impl super::bindings::weft::processor::types::Host for HostState {}
