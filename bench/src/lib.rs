//! weft's benchmarks: one generated workload run natively, fused in Wasm, one process per
//! processor over Kafka, and as a Kafka passthrough, with figures side by side.
//!
//! The `weft-bench` binary drives the variants (each in its own child process, so peak RSS
//! figures do not pollute each other); `benches/` holds criterion microbenchmarks over the
//! same pieces.

pub mod bare;
pub mod clients;
pub mod fused;
pub mod kafka;
pub mod measure;
pub mod native;
pub mod report;
pub mod stages;
pub mod variants;
pub mod workload;
