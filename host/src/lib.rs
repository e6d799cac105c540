//! weft's host: builds pipelines from TOML files, checks every schema link before an event
//! moves, and runs the chain (`weft-runtime`) between sources and sinks (files, Kafka).
//!
//! The `weft` binary (`src/main.rs`) is a thin CLI over this library.
#![forbid(unsafe_code)]

pub mod config;
pub mod dashboard;
pub mod error;
pub mod io;
pub mod pipeline;
pub mod registry;
pub mod resolve;
pub mod scaffold;
pub mod serve;

pub use error::{Error, Result};
pub use weft_runtime::{Event, Header};
