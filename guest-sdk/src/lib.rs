//! The SDK for weft processors: write a plain Rust type, get a WebAssembly component
//! implementing `wit/processor.wit`, with no generated bindings in sight.
//!
//! Two APIs, one per kind of processor:
//!
//! - **Typed** ([`Processor`], exported with [`export_typed!`]): the processor declares the
//!   Avro schemas it reads and writes and works on its own serde structs. The SDK decodes
//!   each event with the stream's schema resolved to the declared input schema, and encodes
//!   the output with the declared output schema.
//! - **Record** ([`RecordProcessor`], exported with [`export_record!`]): a schema-agnostic
//!   processor (filter, project, mask) sees the input schema in `configure`, says which schema
//!   it emits, and works on [`Record`]s — Avro values with field access by [`FieldPath`].
//!   Answering [`RecordOutcome::Keep`] passes the event on without re-encoding it.
//!
//! Either way the SDK checks the pipeline's parameters against the manifest (unknown names
//! refused, required ones present, defaults filled in), carries key, headers and timestamp
//! of the input event over to what is emitted, and logs a panic's message through the host
//! before the trap so it can end up in the dead-letter reason.
//!
//! The component exports `weft:processor@0.2.0` (`wit/processor.wit`), whose `configure` also
//! tells the host which input fields the instance reads, for field-level lineage and for
//! checking schema changes against running pipelines. A typed processor reports the fields
//! of the stream its declared input schema takes, without a line of code; a record processor
//! says it with [`Configured::reading`] (`filter` lists its condition's fields), and without
//! it is taken to read every field.
//!
//! # Example
//!
//! A typed processor; its crate is a `cdylib` (plus `rlib` for native unit tests) built with
//! `cargo build --target wasm32-wasip2`.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weft_guest::{ConfigError, EventMeta, Manifest, Outcome, ParamSpec, Params, Processor};
//!
//! #[derive(Deserialize)]
//! struct Greeting {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Shout {
//!     name: String,
//!     text: String,
//! }
//!
//! struct Shouter {
//!     suffix: String,
//! }
//!
//! impl Processor for Shouter {
//!     type Input = Greeting;
//!     type Output = Shout;
//!
//!     const MANIFEST: Manifest = Manifest {
//!         name: "shouter",
//!         version: env!("CARGO_PKG_VERSION"),
//!         description: "Greets loudly.",
//!         params: &[ParamSpec::with_default("suffix", "Appended to the greeting.", "!")],
//!     };
//!     // Usually include_str!("../schemas/greeting.avsc").
//!     const INPUT_SCHEMA: &'static str = r#"{"type": "record", "name": "Greeting",
//!         "fields": [{"name": "name", "type": "string"}]}"#;
//!     const OUTPUT_SCHEMA: &'static str = r#"{"type": "record", "name": "Shout",
//!         "fields": [{"name": "name", "type": "string"}, {"name": "text", "type": "string"}]}"#;
//!
//!     fn configure(params: &Params) -> Result<Self, ConfigError> {
//!         let suffix = params.get("suffix").unwrap_or_default().to_owned();
//!         weft_guest::log::info!("shouting with suffix {suffix:?}");
//!         Ok(Self { suffix })
//!     }
//!
//!     fn process(&mut self, input: Greeting, _meta: &EventMeta<'_>) -> Outcome<Shout> {
//!         if input.name.is_empty() {
//!             return Outcome::reject("nobody to greet");
//!         }
//!         let text = format!("HELLO {}{}", input.name.to_uppercase(), self.suffix);
//!         Outcome::Emit(Shout { name: input.name, text })
//!     }
//! }
//!
//! weft_guest::export_typed!(Shouter);
//!
//! // Natively, `testing` runs the same configure / decode / process / encode path.
//! use weft_guest::testing::{configure_typed, TestOutcome};
//! use weft_guest::avro::types::Value;
//!
//! let mut stage = configure_typed::<Shouter>(&[("suffix", "!!")], Shouter::INPUT_SCHEMA)?;
//! let input = Value::Record(vec![("name".into(), Value::String("ada".into()))]);
//! assert_eq!(
//!     stage.process_one(input)?,
//!     TestOutcome::Emit(vec![Value::Record(vec![
//!         ("name".into(), Value::String("ada".into())),
//!         ("text".into(), Value::String("HELLO ADA!!".into())),
//!     ])])
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A record processor implements [`RecordProcessor`] instead and is exported with
//! [`export_record!`]; see the `filter`, `project` and `mask` plugins.
//!
//! # Allocator
//!
//! By default (cargo feature `allocator`) the SDK installs the component's global
//! allocator: free stacks per size class in front of wasi-libc's dlmalloc. Decoding and
//! encoding an event make many small allocations that all die with the event; profiles of
//! the shipped processors showed dlmalloc taking about 40% of their time, and the free
//! stacks hand those blocks out again with a couple of loads and stores (kept beside the
//! blocks, so handing one out does not read a block long out of the cache). Small blocks are
//! kept for reuse rather than given back, so a component holds on to the most small blocks
//! it ever had alive at once.
//!
//! To choose your own allocator, turn the feature off and install it as usual; with the
//! feature on, a second `#[global_allocator]` is a compile error.
//!
//! ```toml
//! [dependencies]
//! weft-guest = { version = "0.1", default-features = false }
//! ```
//!
//! ```
//! // In the plugin's lib.rs: wasi-libc's allocator, or any other `GlobalAlloc`.
//! #[global_allocator]
//! static ALLOCATOR: std::alloc::System = std::alloc::System;
//! ```
//!
//! `tests/plugins/own-alloc` is a processor built this way.

extern crate self as weft_guest;

// The components' allocator (feature `allocator`); natively only its unit tests build it.
#[cfg(any(
    test,
    all(
        feature = "allocator",
        target_family = "wasm",
        not(target_feature = "atomics")
    )
))]
mod alloc;
#[doc(hidden)]
pub mod bindings;
mod codec;
mod decode;
mod encode;
mod event;
mod lazy;
pub mod log;
mod manifest;
mod path;
mod record;
mod runtime;
mod scan;
mod stage;
pub mod testing;
mod typed;

/// The Avro library the SDK speaks, so processors use the same version.
pub use apache_avro as avro;

pub use event::{Event, EventMeta, Header, Outcome};
pub use manifest::{ConfigError, Manifest, ParamSpec, Params};
pub use record::{Configured, FieldPath, Record, RecordOutcome, RecordProcessor, unwrap_union};
pub use typed::Processor;

/// What the export macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::{RecordAdapter, TypedAdapter};
    pub use wit_bindgen;
}

/// Exports a [`Processor`] (typed API) as the component's `processor` world.
///
/// Use it once per plugin crate: `weft_guest::export_typed!(MyProcessor);`
///
/// The exports exist only in the component (`target_family = "wasm"`). Natively the plugin
/// crate stays a plain library, so several plugins can link into one binary (the native
/// benchmark does) without their export symbols clashing; the processor type is still
/// checked there.
#[macro_export]
macro_rules! export_typed {
    ($processor:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type WeftTypedProcessor = $crate::__private::TypedAdapter<$processor>;
            $crate::bindings::__export_processor!(WeftTypedProcessor with_types_in $crate::bindings);
        };
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            const fn weft_check<P: $crate::Processor>() {}
            weft_check::<$processor>();
        };
    };
}

/// Exports a [`RecordProcessor`] (generic record API) as the component's `processor` world.
///
/// Use it once per plugin crate: `weft_guest::export_record!(MyProcessor);`
///
/// As with [`export_typed!`], the exports exist only in the component.
#[macro_export]
macro_rules! export_record {
    ($processor:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type WeftRecordProcessor = $crate::__private::RecordAdapter<$processor>;
            $crate::bindings::__export_processor!(WeftRecordProcessor with_types_in $crate::bindings);
        };
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            const fn weft_check<P: $crate::RecordProcessor>() {}
            weft_check::<$processor>();
        };
    };
}
