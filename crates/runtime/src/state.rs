//! What each `Store` carries, and the one builder that sets every limit of a store: the
//! locked-down WASI context, a memory limiter and a deadline that record which limit was hit,
//! the log import, and the output tails that explain a trap.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Level, v01, v02};
use super::plugin_log::{LogGate, sanitize};
use super::wasi::{Output, RandomStreams};
use super::{EPOCH_TICK, Runtime};

/// Bytes of a plugin's stderr (or stdout) quoted in a trap reason: enough for a panic
/// message or the end of a traceback.
const REASON_TAIL_BYTES: usize = 1 << 10;

/// Which plugin export a call is, for the wording of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    Describe,
    Configure,
    Process,
}

/// A limit the host enforced on the call that just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    Deadline,
    Memory,
    /// The process is shutting down (a second Ctrl-C): every call is interrupted.
    Signal,
}

/// Store data of a chain (or of the sandbox in which `describe` runs).
///
/// Plugins see WASI only because Rust's standard library imports it: see
/// [`super::wasi::context`] for what that WASI can do (nothing that reaches the host).
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    output: Output,
    random: RandomStreams,
    /// Set by a second Ctrl-C: interrupts whatever call is running, and every later one.
    interrupt: Arc<AtomicBool>,
    /// Epoch ticks left before the current call's deadline.
    ticks_left: u64,
    deadline: Duration,
    /// Which limit made the current call fail, recorded where it was enforced.
    hit: Option<Hit>,
    /// `name@version` and chain position of the processor currently called, for log lines.
    processor: String,
    stage: usize,
    /// Last error-level message of the current call (the SDK logs panics there), used as
    /// the reason when the call traps.
    last_error: Option<String>,
    /// The log rate limits, shared by the runtime's stores (see [`LogGates`]).
    logs: LogGates,
    /// The gates this store logged through, to report what they held back when it ends.
    gates_used: HashSet<(String, usize)>,
}

/// Memory limit of every instance of a store; records a refused growth instead of leaving
/// the trap to be recognised by its text.
struct Limiter {
    memory_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            // A trap with a clear reason instead of a failed grow, which a guest's allocator
            // turns into an abort with a generic message.
            wasmtime::bail!("memory limit of {} MiB exceeded", self.memory_bytes >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// A store with every limit set: memory, a per-call deadline that a second Ctrl-C cuts
/// short, and a fresh WASI context. Calls go through [`begin_call`] and
/// [`HostState::failure`]; instantiation, before any call, runs under `deadline` too.
pub(crate) fn new_store(
    runtime: &Runtime,
    memory_bytes: usize,
    deadline: Duration,
) -> Store<HostState> {
    let output = Output::default();
    let random = RandomStreams::default();
    let state = HostState {
        wasi: super::wasi::context(&output, &random),
        table: ResourceTable::new(),
        limiter: Limiter {
            memory_bytes,
            hit: false,
        },
        output,
        random,
        interrupt: runtime.interrupt_flag(),
        ticks_left: ticks(deadline),
        deadline,
        hit: None,
        processor: String::new(),
        stage: 0,
        last_error: None,
        logs: runtime.log_gates(),
        gates_used: HashSet::new(),
    };
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|s| &mut s.limiter);
    // Checked every tick rather than once at the deadline, so an interrupt takes effect
    // within a tick whatever the deadline.
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if state.interrupt.load(Ordering::Relaxed) {
            state.hit = Some(Hit::Signal);
            return Ok(UpdateDeadline::Interrupt);
        }
        if state.ticks_left <= 1 {
            state.hit = Some(Hit::Deadline);
            return Ok(UpdateDeadline::Interrupt);
        }
        state.ticks_left -= 1;
        Ok(UpdateDeadline::Continue(1))
    });
    store.set_epoch_deadline(1);
    store
}

/// Prepares a store for a call of `processor` (stage `stage`, component `sha256`): its
/// deadline, its random streams, empty output tails, no limit hit.
pub(crate) fn begin_call(
    store: &mut Store<HostState>,
    stage: usize,
    processor: &str,
    sha256: &str,
    deadline: Duration,
) {
    let state = store.data_mut();
    state.ticks_left = ticks(deadline);
    state.deadline = deadline;
    state.hit = None;
    state.limiter.hit = false;
    state.last_error = None;
    state.output.clear();
    state.random.select(stage, sha256);
    state.stage = stage;
    if state.processor != processor {
        processor.clone_into(&mut state.processor);
    }
    store.set_epoch_deadline(1);
}

/// Epoch ticks for a deadline, at least one.
fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

impl HostState {
    /// Whether a second Ctrl-C asked every plugin call to stop.
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// Why the call begun by [`begin_call`] failed, in the same words for every export:
    /// the limit that was hit, else the guest's panic message, else the trap with the tail
    /// of what the guest wrote on stderr (and stdout).
    pub(crate) fn failure(&mut self, export: Export, err: &wasmtime::Error) -> String {
        // `process` keeps the words its dead letters always had; the other exports say
        // which call it was, in the same shape.
        let (per_call, per_instance, during) = match export {
            Export::Process => (" per batch", " per processor", String::new()),
            other => ("", "", format!(" in {}", other.name())),
        };
        let hit = self.hit.take().or(self.limiter.hit.then_some(Hit::Memory));
        match hit {
            Some(Hit::Signal) => return "interrupted: weft is shutting down".to_owned(),
            Some(Hit::Deadline) => {
                return format!(
                    "deadline of {} ms{per_call} exceeded{during}",
                    self.deadline.as_millis()
                );
            }
            Some(Hit::Memory) => {
                return format!(
                    "memory limit of {} MiB{per_instance} exceeded{during}",
                    self.limiter.memory_bytes >> 20
                );
            }
            None => {}
        }
        let what = match (self.last_error.take(), err.downcast_ref::<wasmtime::Trap>()) {
            (Some(panic), _) => panic,
            (None, Some(trap)) => trap.to_string(),
            (None, None) => format!("{err:#}"),
        };
        let mut reason = format!("trap: {}", sanitize(&what));
        for (name, pipe) in [
            ("stderr", &self.output.stderr),
            ("stdout", &self.output.stdout),
        ] {
            let tail = quote_tail(&pipe.contents());
            if !tail.is_empty() {
                reason.push_str(&format!(" ({name}: {tail})"));
            }
        }
        reason
    }

    /// Reports what this store's gates held back, once a second at most (or now: `force`).
    pub(crate) fn report_suppressed(&mut self, force: bool) {
        // Called after every call: a store that never logged has nothing to report, and
        // need not take the shared lock or read the clock.
        if self.gates_used.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut gates = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &self.gates_used {
            let Some(count) = gates
                .get_mut(key)
                .and_then(|g| g.take_suppressed(now, force))
            else {
                continue;
            };
            tracing::warn!(
                target: "weft::plugin",
                plugin = %key.0,
                stage = key.1 + 1,
                "{count} log messages suppressed (more than {} a second)",
                super::plugin_log::LOG_RATE_PER_SEC
            );
        }
    }
}

/// One log rate limit per processor of a chain (`name@version` and position), kept by the
/// runtime rather than the store: an instance re-created after a trap must not get a fresh
/// burst, or a plugin that logs and traps on every event would print 200 lines per event.
pub(crate) type LogGates = Arc<Mutex<HashMap<(String, usize), LogGate>>>;

impl Drop for HostState {
    fn drop(&mut self) {
        self.report_suppressed(true);
    }
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Describe => "describe",
            Export::Configure => "configure",
            Export::Process => "process",
        }
    }
}

/// The last lines of a guest's output, on one line: Rust's advice about RUST_BACKTRACE
/// (there is no environment to set it in) dropped, at most [`REASON_TAIL_BYTES`].
fn quote_tail(tail: &str) -> String {
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let joined = lines.join(" | ");
    let start = joined.len().saturating_sub(REASON_TAIL_BYTES);
    let start = (start..=joined.len())
        .find(|&i| joined.is_char_boundary(i))
        .unwrap_or(joined.len());
    let cut = if start > 0 { "…" } else { "" };
    sanitize(&format!("{cut}{}", &joined[start..]))
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v02::weft::processor::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if level == Level::Error {
            // Kept whether or not it is printed: the SDK logs a panic's message here.
            self.last_error = Some(message.chars().take(REASON_TAIL_BYTES).collect());
        }
        let now = Instant::now();
        let key = (self.processor.clone(), self.stage);
        let admitted = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| LogGate::new(now))
            .admit(now);
        self.gates_used.insert(key);
        self.report_suppressed(false);
        if !admitted {
            return;
        }
        let message = sanitize(&message);
        let plugin = self.processor.as_str();
        let stage = self.stage + 1;
        match level {
            Level::Trace => {
                tracing::trace!(target: "weft::plugin", plugin = %plugin, stage, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "weft::plugin", plugin = %plugin, stage, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "weft::plugin", plugin = %plugin, stage, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "weft::plugin", plugin = %plugin, stage, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "weft::plugin", plugin = %plugin, stage, "{message}")
            }
        }
    }
}

/// A 0.1.0 component logs through the same gate, in the same words.
impl v01::weft::processor::log::Host for HostState {
    fn log(&mut self, level: v01::weft::processor::log::Level, message: String) {
        use v01::weft::processor::log::Level as Old;
        let level = match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        v02::weft::processor::log::Host::log(self, level, message);
    }
}

/// The `types` interface defines no functions; the trait only marks it as linked.
impl v02::weft::processor::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_tail_reads_as_one_line_without_the_backtrace_advice() {
        let tail = "\nthread '<unnamed>' panicked at src/lib.rs:12:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            quote_tail(tail),
            "thread '<unnamed>' panicked at src/lib.rs:12:5: | boom"
        );
    }

    #[test]
    fn a_long_tail_keeps_its_end() {
        let tail = format!("start\n{}\nthe end\n", "é".repeat(4000));
        let quoted = quote_tail(&tail);
        assert!(quoted.starts_with('…') && quoted.ends_with(" | the end"));
        assert!(quoted.len() <= REASON_TAIL_BYTES + 8);
    }
}
