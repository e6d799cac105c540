//! Finding the component a `[[processor]]` names: the resolver a pipeline is built with.
//! Local paths need nothing more ([`LocalOnly`]); registry references need the registry's
//! resolver (`registry::RegistryResolver`), which implements the same trait.

use std::path::Path;

use weft_runtime::{Plugin, Runtime};

use crate::config::is_local_plugin;
use crate::{Error, Result};

/// Finds the component a `[[processor]]` names. Local paths are read directly; registry
/// references go through a registry when one is configured.
pub trait PluginResolver {
    fn resolve(&self, runtime: &Runtime, reference: &str) -> Result<Plugin>;
}

/// Resolves only local `.wasm` paths.
#[derive(Debug, Default)]
pub struct LocalOnly;

impl PluginResolver for LocalOnly {
    fn resolve(&self, runtime: &Runtime, reference: &str) -> Result<Plugin> {
        if is_local_plugin(reference) {
            Ok(runtime.load_file(Path::new(reference))?)
        } else {
            Err(Error::InvalidComponent {
                origin: reference.to_string(),
                reason: "registry references need a registry: add [registry] url = \"...\" or set WEFT_REGISTRY_URL".into(),
            })
        }
    }
}
