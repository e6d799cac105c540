//! A loaded processor component: compiled, linked and described, ready to instantiate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use weft_registry_api::PluginManifest;

use super::contract::{ContractVersion, Pre};
use super::manifest::{from_wit, validate_manifest};
use super::state::{Export, begin_call, new_store};
use crate::{Compiler, Error, Result, Runtime};

/// Memory of the sandbox in which `describe()` runs at load time. A manifest within every
/// cap of [`super::manifest`] is under 1 MiB; the limit also bounds what the host lifts out of
/// the guest before checking the caps (a 50 MB description fails in the guest instead).
pub const DESCRIBE_MEMORY: usize = 16 << 20;
/// Deadline of `describe()` at load time.
pub const DESCRIBE_DEADLINE: Duration = Duration::from_secs(2);

/// A processor component, compiled once and instantiated per chain.
#[derive(Clone)]
pub struct Plugin {
    pre: Pre,
    manifest: PluginManifest,
    sha256: String,
    /// The component, kept to compile it again for a chain run by Winch
    /// ([`Runtime::align`]).
    bytes: Arc<[u8]>,
    compiler: Compiler,
    origin: String,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("sha256", &self.sha256)
            .field("contract", &self.pre.version())
            .field("compiler", &self.compiler)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Loads with the compiler [`Runtime::choose`] picks: a large component not yet in the
    /// cache starts on Winch while Cranelift compiles it in the background.
    pub(crate) fn load(runtime: &Runtime, bytes: Arc<[u8]>, origin: &str) -> Result<Self> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let (compiler, marker) = runtime.choose(bytes.len(), &sha256);
        let Some(chosen) = runtime.with_compiler(compiler) else {
            return Self::load_with(runtime, bytes, sha256, origin);
        };
        let started = Instant::now();
        let plugin = match Self::load_with(&chosen, bytes.clone(), sha256.clone(), origin) {
            // Winch refuses some instructions (part of SIMD): Cranelift compiles them.
            Err(Error::InvalidComponent { reason, .. }) if compiler == Compiler::Winch => {
                tracing::info!("Winch cannot compile {origin}, Cranelift does: {reason}");
                return Self::load_with(runtime, bytes, sha256, origin);
            }
            loaded => loaded?,
        };
        match (compiler, marker) {
            (Compiler::Winch, Some(marker)) => {
                eprintln!(
                    "first start of {origin}: compiled with Winch (baseline) in {:.1} s for this run; Cranelift compiles it in the background for the next",
                    started.elapsed().as_secs_f64()
                );
                runtime.compile_in_background(bytes, marker, origin);
            }
            // The cache now holds Cranelift's code (also after `weft plugin warm`).
            (Compiler::Cranelift, Some(marker)) if !marker.exists() => {
                super::first_start::mark_compiled(&marker)
            }
            _ => {}
        }
        Ok(plugin)
    }

    /// This plugin compiled for `runtime`'s engine: itself when it already is.
    pub(crate) fn for_runtime(self, runtime: &Runtime) -> Result<Self> {
        if self.compiler == runtime.compiler() {
            return Ok(self);
        }
        Self::load_with(runtime, self.bytes, self.sha256, &self.origin)
    }

    fn load_with(
        runtime: &Runtime,
        bytes: Arc<[u8]>,
        sha256: String,
        origin: &str,
    ) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidComponent {
            origin: origin.to_string(),
            reason,
        };
        if !wasmparser_is_component(&bytes) {
            return Err(invalid(
                "not a WebAssembly component (build it for wasm32-wasip2)".into(),
            ));
        }
        let component =
            Component::new(runtime.engine(), &bytes).map_err(|e| invalid(format!("{e:#}")))?;
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = Pre::new(instance_pre).map_err(invalid)?;

        let mut store = new_store(runtime, DESCRIBE_MEMORY, DESCRIBE_DEADLINE);
        begin_call(&mut store, 0, origin, &sha256, DESCRIBE_DEADLINE);
        let describe = pre
            .instantiate(&mut store)
            .and_then(|instance| instance.describe(&mut store));
        let manifest = describe.map(from_wit).map_err(|e| {
            if runtime.interrupted() {
                return Error::Interrupted;
            }
            Error::Describe {
                origin: origin.to_string(),
                reason: store.data_mut().failure(Export::Describe, &e),
            }
        })?;
        validate_manifest(&manifest).map_err(|reason| Error::InvalidManifest {
            origin: origin.to_string(),
            reason,
        })?;

        Ok(Self {
            pre,
            manifest,
            sha256,
            bytes,
            compiler: runtime.compiler(),
            origin: origin.to_string(),
        })
    }

    /// What the component declared through `describe()`, within every cap of
    /// [`super::manifest`].
    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }

    /// `name@version`, how processors are named in errors, summaries and dead letters.
    pub fn id(&self) -> String {
        self.manifest.id()
    }

    /// Hex sha256 of the component bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Which compiler this plugin's code comes from: Winch only for the first start of a
    /// large component (or under `WEFT_BASELINE=always`).
    pub fn compiler(&self) -> Compiler {
        self.compiler
    }

    /// Where the component came from (a path or a registry reference).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `weft:processor` package version the component exports.
    pub fn contract(&self) -> ContractVersion {
        self.pre.version()
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.pre
    }
}

/// A component (as opposed to a core module) has layer 1 in its preamble.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}
