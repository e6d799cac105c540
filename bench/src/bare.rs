//! A bare harness over one processor component, for microbenchmarks that need what the
//! host keeps private: instantiation alone, and a single `process` call. It uses the host
//! runtime's `Engine` (same settings, same code cache) with its own linker offering what
//! the host offers (WASI with nothing granted, the log import).

use std::path::Path;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod bindings {
    //! Bindings of the `processor` world, for the harness only.
    wasmtime::component::bindgen!({
        // The one world every weft processor exports.
        world: "processor",
        path: "../wit",
    });
}

pub use bindings::Processor;
use bindings::ProcessorPre;
use bindings::weft::processor::log::{self, Level};
pub use bindings::weft::processor::types::{Event, Outcome};

/// wasmtime's error as an `anyhow` one, with its chain of causes.
pub fn wasm(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// Store data: a WASI context granting nothing, as the host's.
pub struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for BareState {
    fn log(&mut self, _level: Level, _message: String) {}
}

impl bindings::weft::processor::types::Host for BareState {}

/// A component compiled and pre-linked, ready to instantiate.
pub struct Bare {
    engine: Engine,
    pre: ProcessorPre<BareState>,
}

impl Bare {
    /// Compiles (or takes from the engine's cache) and pre-links the component at `path`.
    pub fn load(engine: &Engine, path: &Path) -> anyhow::Result<Self> {
        let component = Component::from_file(engine, path)
            .map_err(wasm)
            .with_context(|| format!("compiling {}", path.display()))?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(wasm)
            .context("linking WASI")?;
        Processor::add_to_linker::<BareState, HasSelf<BareState>>(&mut linker, |s| s)
            .map_err(wasm)
            .context("linking the log import")?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProcessorPre::new)
            .map_err(wasm)
            .context("pre-linking")?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }

    /// A fresh store like the host's: WASI granting nothing, a far epoch deadline.
    pub fn store(&self) -> Store<BareState> {
        let wasi = WasiCtxBuilder::new()
            .allow_blocking_current_thread(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            BareState {
                wasi,
                table: ResourceTable::new(),
            },
        );
        // The engine interrupts at epoch deadlines; the harness never wants that.
        store.set_epoch_deadline(u64::MAX / 2);
        store
    }

    pub fn instantiate(&self, store: &mut Store<BareState>) -> anyhow::Result<Processor> {
        self.pre
            .instantiate(store)
            .map_err(wasm)
            .context("instantiating")
    }

    /// Instantiates and configures the processor in `store`; returns it with the output
    /// schema `configure` answered.
    pub fn configured(
        &self,
        store: &mut Store<BareState>,
        params: &[(String, String)],
        input_schema: &str,
    ) -> anyhow::Result<(Processor, String)> {
        let processor = self.instantiate(store)?;
        let output = processor
            .weft_processor_stage()
            .call_configure(&mut *store, params, input_schema)
            .map_err(wasm)?
            .map_err(|e| anyhow::anyhow!("configure failed: {}", e.message))?;
        Ok((processor, output.output_schema))
    }
}
