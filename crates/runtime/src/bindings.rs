//! Host bindings for both versions of the `weft:processor` package: 0.2.0 (`wit/processor.wit`)
//! and 0.1.0 (the kept copy in `crates/runtime/wit-0.1/`), so components built against either
//! load. The 0.1.0 bindings reuse the 0.2.0 types (`with:`): an event or an outcome is the
//! same Rust value whichever version a stage speaks, and a batch crosses no conversion.

/// The current contract, `weft:processor@0.2.0`.
pub mod v02 {
    wasmtime::component::bindgen!({
        world: "processor",
        path: "../../wit",
    });
}

/// The first contract, `weft:processor@0.1.0`: the three functions exported by the world
/// itself, `configure` returning only the output schema.
pub mod v01 {
    wasmtime::component::bindgen!({
        world: "processor",
        path: "wit-0.1",
        with: {
            "weft:processor/types@0.1.0": super::v02::weft::processor::types,
        },
    });
}

pub use v02::weft::processor::log::Level;
pub use v02::weft::processor::types::{ConfigError, Event, Header, Manifest, Outcome};
