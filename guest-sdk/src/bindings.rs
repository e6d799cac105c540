//! Bindings generated from `wit/processor.wit` (`weft:processor@0.2.0`); only the SDK looks in
//! here.

wit_bindgen::generate!({
    world: "processor",
    path: "../wit",
    // Plugins invoke the export macro through `weft_guest::export_typed!` and
    // `weft_guest::export_record!`, so it has to be reachable from other crates.
    pub_export_macro: true,
    export_macro_name: "__export_processor",
    // The export macro expands in the plugin crate: point it at these bindings and at
    // the `wit_bindgen` runtime re-exported by the SDK, so plugins depend on the SDK only.
    default_bindings_module: "weft_guest::bindings",
    runtime_path: "weft_guest::__private::wit_bindgen::rt",
    // Events and outcomes are compared in tests of processors.
    additional_derives: [PartialEq],
});
