//! Reading an uploaded component's manifest: instantiate it and call `describe()` in the
//! host runtime's sandbox (bounded memory, epoch deadline, no imports but `log`).
//!
//! Behind a trait so handler tests can stand in a fake when no compiled plugin is at hand.

use crate::store::ParamInfo;

/// A manifest as the registry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub version: String,
    pub description: String,
    pub input_schema: Option<String>,
    pub output_schema: Option<String>,
    pub params: Vec<ParamInfo>,
}

/// Validates component bytes and reads their manifest.
pub trait Inspector: Send + Sync + 'static {
    /// `Err` carries a reason fit for the uploader (never a host stack trace).
    fn describe(&self, bytes: &[u8]) -> Result<Described, String>;
}

/// The real thing: `weft_host::runtime`, one engine for the registry's lifetime.
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
    fn describe(&self, bytes: &[u8]) -> Result<Described, String> {
        let plugin = self.runtime.load_bytes(bytes).map_err(|e| e.to_string())?;
        let m = plugin.manifest();
        Ok(Described {
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            input_schema: m.input_schema.clone(),
            output_schema: m.output_schema.clone(),
            params: m
                .params
                .iter()
                .map(|p| ParamInfo {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    required: p.required,
                    default: p.default.clone(),
                })
                .collect(),
        })
    }
}
