//! A loaded processor component: compiled, linked and described, ready to instantiate.

use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use weft_registry_api::PluginManifest;

use super::Runtime;
use super::contract::{ContractVersion, Pre};
use super::manifest::{from_wit, validate_manifest};
use super::state::{Export, begin_call, new_store};
use crate::{Error, Result};

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
    size: usize,
    origin: String,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("sha256", &self.sha256)
            .field("contract", &self.pre.version())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn load(runtime: &Runtime, bytes: &[u8], origin: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidComponent {
            origin: origin.to_string(),
            reason,
        };
        if !wasmparser_is_component(bytes) {
            return Err(invalid(
                "not a WebAssembly component (build it for wasm32-wasip2)".into(),
            ));
        }
        let component =
            Component::new(runtime.engine(), bytes).map_err(|e| invalid(format!("{e:#}")))?;
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = Pre::new(instance_pre).map_err(invalid)?;

        let sha256 = hex::encode(Sha256::digest(bytes));
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
            size: bytes.len(),
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
        self.size
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
