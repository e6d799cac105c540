//! Reading an uploaded component's manifest: instantiate it and call `describe()` in the
//! runtime's sandbox (bounded memory, epoch deadline, no imports but `log`).
//!
//! Behind a trait so handler tests can stand in a fake when no compiled plugin is at hand.

use weft_registry_api::PluginManifest;

/// Validates component bytes and reads their manifest.
pub trait Inspector: Send + Sync + 'static {
    /// `Err` carries a reason fit for the uploader (never a host stack trace).
    fn describe(&self, bytes: &[u8]) -> Result<PluginManifest, String>;
}

/// The real thing: `weft_runtime`, one engine for the registry's lifetime.
pub struct WasmInspector {
    runtime: weft_runtime::Runtime,
}

impl WasmInspector {
    /// Creates the runtime. The compiled-code cache is left off: uploads are compiled once.
    pub fn new() -> anyhow::Result<Self> {
        let options = weft_runtime::RuntimeOptions { cache_dir: None };
        Ok(Self {
            runtime: weft_runtime::Runtime::new(options)?,
        })
    }
}

impl Inspector for WasmInspector {
    fn describe(&self, bytes: &[u8]) -> Result<PluginManifest, String> {
        let plugin = self.runtime.load_bytes(bytes).map_err(|e| e.to_string())?;
        Ok(plugin.manifest().clone())
    }
}
