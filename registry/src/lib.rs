//! weft's registry: versioned processor plugins with the schemas they declare, schema
//! subjects in the Confluent Schema Registry REST dialect, compatibility checks, lineage.
//!
//! The `weft-registry` binary (`src/main.rs`) only wires [`config::Settings`], [`AppState`]
//! and [`app`]; tests drive [`app`] directly. The host's blocking client of this API is
//! `weft_host::registry::client`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod fields;
pub mod inspect;
pub mod names;
pub mod routes;
pub mod state;
pub mod store;
mod ui;

pub use config::Settings;
pub use error::{ApiError, ErrorBody};
pub use routes::{app, openapi};
pub use state::AppState;
