//! A loaded processor component: compiled, linked and described, ready to instantiate.

use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{Manifest, ProcessorPre};
use super::{HostState, Runtime};
use crate::{Error, Result};

/// Bounds of the sandbox in which `describe()` runs at load time.
const DESCRIBE_MEMORY: usize = 64 << 20;
const DESCRIBE_DEADLINE: Duration = Duration::from_secs(2);

/// A processor component, compiled once and instantiated per chain.
#[derive(Clone)]
pub struct Plugin {
    pre: ProcessorPre<HostState>,
    manifest: Manifest,
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
        let pre = ProcessorPre::new(instance_pre).map_err(|e| {
            invalid(format!(
                "does not export the weft:processor/processor world: {e:#}"
            ))
        })?;

        let mut store = Store::new(runtime.engine(), HostState::new(DESCRIBE_MEMORY));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(DESCRIBE_DEADLINE));
        store.epoch_deadline_trap();
        let describe_err = |e: wasmtime::Error| Error::Describe {
            origin: origin.to_string(),
            reason: format!("{e:#}"),
        };
        let instance = pre.instantiate(&mut store).map_err(describe_err)?;
        let manifest = instance.call_describe(&mut store).map_err(describe_err)?;
        validate_manifest(&manifest).map_err(|reason| Error::InvalidManifest {
            origin: origin.to_string(),
            reason,
        })?;

        Ok(Self {
            pre,
            manifest,
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len(),
            origin: origin.to_string(),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `name@version`, how processors are named in errors, summaries and dead letters.
    pub fn id(&self) -> String {
        format!("{}@{}", self.manifest.name, self.manifest.version)
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

    pub(crate) fn pre(&self) -> &ProcessorPre<HostState> {
        &self.pre
    }
}

/// Epoch ticks for a deadline, at least one.
pub(crate) fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64
}

/// A component (as opposed to a core module) has layer 1 in its preamble.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// Checks what the rest of weft relies on: a usable name, a semver version, parseable schemas.
pub(crate) fn validate_manifest(m: &Manifest) -> std::result::Result<(), String> {
    let name_ok = m
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && m.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && m.name.len() <= 64;
    if !name_ok {
        return Err(format!(
            "name {:?} must match [a-z][a-z0-9-]* (at most 64 characters)",
            m.name
        ));
    }
    semver::Version::parse(&m.version)
        .map_err(|e| format!("version {:?} is not semver: {e}", m.version))?;
    for (which, schema) in [("input", &m.input_schema), ("output", &m.output_schema)] {
        if let Some(json) = schema {
            apache_avro::Schema::parse_str(json)
                .map_err(|e| format!("{which} schema is not a valid Avro schema: {e}"))?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for p in &m.params {
        if !seen.insert(p.name.as_str()) {
            return Err(format!("parameter {:?} declared twice", p.name));
        }
    }
    Ok(())
}
