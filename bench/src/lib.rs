//! weft's benchmarks: one generated workload run natively, fused in Wasm, one process per
//! processor over Kafka, and as a Kafka passthrough, with figures side by side.
//!
//! The `weft-bench` binary drives the variants (each in its own child process, so peak RSS
//! figures do not pollute each other); `benches/` holds criterion microbenchmarks over the
//! same pieces.

pub mod bare;
pub mod broker;
pub mod clients;
pub mod fused;
pub mod kafka;
pub mod measure;
pub mod native;
pub mod processes;
pub mod relay;
pub mod report;
pub mod stages;
pub mod targets;
pub mod variants;
pub mod workload;

use std::sync::OnceLock;
use std::time::Instant;

/// When the run began, for the elapsed time of progress lines.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Starts the clock of progress lines (the first call wins; later ones change nothing).
pub fn start_clock() {
    STARTED.get_or_init(Instant::now);
}

/// Seconds since [`start_clock`] (0 before it).
pub fn elapsed_s() -> f64 {
    STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64())
}

/// A progress line on stderr, prefixed with the run's elapsed time as `[mm:ss]`.
pub fn progress(message: std::fmt::Arguments<'_>) {
    let s = elapsed_s() as u64;
    eprintln!("[{:02}:{:02}] {message}", s / 60, s % 60);
}
