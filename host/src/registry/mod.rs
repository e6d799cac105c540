//! Plugins from the registry: `name@requirement` references resolved to a version,
//! downloaded once into a local content-addressed cache (sha256 verified), and loaded from
//! that cache when the registry cannot be reached.
//!
//! Cache layout, under `<cache dir>/plugins/`:
//! - `sha256/<hex>.wasm`: component bytes, named by their digest;
//! - `index/<name>/<version>`: the digest of that version, so an offline start can resolve.

pub mod client;
pub mod pipelines;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use weft_runtime::{Plugin, Runtime};

use crate::config::{is_local_plugin, parse_plugin_ref};
use crate::resolve::PluginResolver;
use crate::{Error, Result};
use client::{Client, ClientError};

/// Resolves local paths directly and registry references through a registry and a cache.
#[derive(Debug, Clone)]
pub struct RegistryResolver {
    client: Client,
    cache: PathBuf,
}

impl RegistryResolver {
    /// `cache_dir` is the runtime's cache folder (plugins go in its `plugins/` subfolder).
    pub fn new(client: Client, cache_dir: &Path) -> Self {
        Self {
            client,
            cache: cache_dir.join("plugins"),
        }
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.cache.join("sha256").join(format!("{sha256}.wasm"))
    }

    fn index(&self, name: &str) -> PathBuf {
        self.cache.join("index").join(name)
    }

    /// Reads a cached blob, checking it still hashes to its name.
    fn read_blob(&self, sha256: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.blob(sha256)).ok()?;
        (hex::encode(Sha256::digest(&bytes)) == sha256).then_some(bytes)
    }

    fn store(&self, name: &str, version: &str, sha256: &str, bytes: &[u8]) -> Result<()> {
        let blob = self.blob(sha256);
        write_atomically(&blob, bytes)?;
        write_atomically(&self.index(name).join(version), sha256.as_bytes())
    }

    /// The newest cached version of `name` matching `req`, with its digest.
    fn cached(&self, name: &str, req: &semver::VersionReq) -> Option<(semver::Version, String)> {
        let entries = std::fs::read_dir(self.index(name)).ok()?;
        entries
            .filter_map(|e| {
                let e = e.ok()?;
                let version = semver::Version::parse(e.file_name().to_str()?).ok()?;
                let sha = std::fs::read_to_string(e.path()).ok()?;
                req.matches(&version)
                    .then_some((version, sha.trim().to_string()))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
    }

    fn resolve_remote(
        &self,
        runtime: &Runtime,
        reference: &str,
        name: &str,
        req: &semver::VersionReq,
    ) -> Result<Plugin> {
        let fail = |e: ClientError| Error::InvalidComponent {
            origin: reference.to_string(),
            reason: e.to_string(),
        };
        let meta = match self.client.resolve(name, &req.to_string()) {
            Ok(meta) => meta,
            Err(ClientError::Transport { url, reason }) => {
                return self.offline(runtime, reference, name, req, &format!("{url}: {reason}"));
            }
            Err(e) => return Err(fail(e)),
        };
        let bytes = match self.read_blob(&meta.sha256) {
            Some(bytes) => bytes,
            None => {
                let bytes = self
                    .client
                    .download(name, &meta.manifest.version)
                    .map_err(fail)?;
                self.store(name, &meta.manifest.version, &meta.sha256, &bytes)?;
                bytes
            }
        };
        // Keep the index current even when the blob was already cached under another name.
        write_atomically(
            &self.index(name).join(&meta.manifest.version),
            meta.sha256.as_bytes(),
        )?;
        Ok(runtime.load_named(
            &bytes,
            &format!("{reference} ({name}@{})", meta.manifest.version),
        )?)
    }

    fn offline(
        &self,
        runtime: &Runtime,
        reference: &str,
        name: &str,
        req: &semver::VersionReq,
        why: &str,
    ) -> Result<Plugin> {
        let Some((version, sha)) = self.cached(name, req) else {
            return Err(Error::InvalidComponent {
                origin: reference.to_string(),
                reason: format!(
                    "the registry is unreachable ({why}) and no cached version of {name} matches {req}"
                ),
            });
        };
        let bytes = self.read_blob(&sha).ok_or_else(|| Error::InvalidComponent {
            origin: reference.to_string(),
            reason: format!("the registry is unreachable ({why}) and the cached {name}@{version} is missing or corrupt (sha256 mismatch)"),
        })?;
        tracing::warn!(%reference, %version, "registry unreachable ({why}); starting from the cached {name}@{version}");
        Ok(runtime.load_named(&bytes, &format!("{reference} ({name}@{version}, cached)"))?)
    }
}

impl PluginResolver for RegistryResolver {
    fn resolve(&self, runtime: &Runtime, reference: &str) -> Result<Plugin> {
        if is_local_plugin(reference) {
            return Ok(runtime.load_file(Path::new(reference))?);
        }
        let (name, req) =
            parse_plugin_ref(reference).map_err(|reason| Error::InvalidComponent {
                origin: reference.to_string(),
                reason,
            })?;
        self.resolve_remote(runtime, reference, &name, &req)
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
