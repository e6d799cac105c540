//! Host bindings for the `processor` world of `wit/processor.wit`.

wasmtime::component::bindgen!({
    // The one world every weft processor exports.
    world: "processor",
    path: "../../wit",
});

pub use weft::processor::log::Level;
pub use weft::processor::types::Header;
