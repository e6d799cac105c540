//! Building a pipeline for the daemon: the resolver its registry references go through
//! (skipping the plugin versions rolled back for that pipeline, or pinned to the versions an
//! upgrade chose) and a build that turns a panic into an error like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use weft_runtime::{Plugin, Runtime};

use super::shared::Context;
use crate::config::{PipelineConfig, is_local_plugin, parse_plugin_ref};
use crate::pipeline::{LocalOnly, Pipeline, PluginResolver};
use crate::registry::RegistryResolver;
use crate::registry::client::{Client, ClientError, PluginVersion};

/// The newest version of `versions` matching `req` that is neither yanked nor in `excluded`
/// (`name@version` strings): what `mask@^1` runs for a pipeline. Pure, so tested alone.
pub(super) fn select(
    name: &str,
    req: &semver::VersionReq,
    versions: &[(semver::Version, bool)],
    excluded: &BTreeSet<String>,
) -> Option<semver::Version> {
    versions
        .iter()
        .filter(|(v, yanked)| {
            !yanked && req.matches(v) && !excluded.contains(&format!("{name}@{v}"))
        })
        .map(|(v, _)| v)
        .max()
        .cloned()
}

/// Every version of `name` the registry holds, with its yanked flag.
pub(super) fn versions(
    client: &Client,
    name: &str,
) -> Result<Vec<(semver::Version, bool)>, ClientError> {
    Ok(client
        .show(name, None)?
        .iter()
        .filter_map(|v: &PluginVersion| {
            semver::Version::parse(&v.manifest.version)
                .ok()
                .map(|s| (s, v.yanked))
        })
        .collect())
}

/// Resolves registry references through a [`RegistryResolver`] (cache, sha256 check), to the
/// version `pins` names for that reference, else to the newest match not rolled back for
/// this pipeline.
pub(super) struct Selecting {
    inner: RegistryResolver,
    client: Client,
    excluded: BTreeSet<String>,
    /// Reference (`mask@^1`) → exact version (`1.2.0`).
    pins: BTreeMap<String, String>,
}

impl Selecting {
    pub fn pinned(mut self, pins: BTreeMap<String, String>) -> Self {
        self.pins = pins;
        self
    }
}

impl PluginResolver for Selecting {
    fn resolve(&self, runtime: &Runtime, reference: &str) -> crate::Result<Plugin> {
        if is_local_plugin(reference) {
            return self.inner.resolve(runtime, reference);
        }
        let (name, req) =
            parse_plugin_ref(reference).map_err(|reason| crate::Error::InvalidComponent {
                origin: reference.to_string(),
                reason,
            })?;
        if let Some(version) = self.pins.get(reference) {
            return self.inner.resolve(runtime, &format!("{name}@={version}"));
        }
        if !self
            .excluded
            .iter()
            .any(|e| e.starts_with(&format!("{name}@")))
        {
            return self.inner.resolve(runtime, reference);
        }
        match versions(&self.client, &name) {
            Ok(all) => match select(&name, &req, &all, &self.excluded) {
                Some(version) => self.inner.resolve(runtime, &format!("{name}@={version}")),
                None => Err(crate::Error::InvalidComponent {
                    origin: reference.to_string(),
                    reason: format!(
                        "no version of {name} matches {req} apart from the ones rolled back for this pipeline ({})",
                        self.excluded
                            .iter()
                            .filter(|e| e.starts_with(&format!("{name}@")))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            },
            // Unreachable: the resolver falls back to its cache (which may hold anything).
            Err(ClientError::Transport { .. }) => self.inner.resolve(runtime, reference),
            Err(e) => Err(crate::Error::InvalidComponent {
                origin: reference.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The message of a panic payload.
pub(super) fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {message}")
}

/// Every problem an error lists (a chain build lists one per processor).
pub(super) fn problems(e: &crate::Error) -> Vec<String> {
    match e {
        crate::Error::Processors { problems } => problems.clone(),
        other => vec![other.to_string()],
    }
}

/// Builds a pipeline as `weft validate` does: sources opened, plugins loaded, every link
/// checked; registry references skip the versions in `excluded`. A panic inside is an error
/// like any other.
pub(super) fn build(
    ctx: &Context,
    config: PipelineConfig,
    excluded: &BTreeSet<String>,
) -> Result<Pipeline, String> {
    let resolver = resolver(ctx, &config, excluded)?;
    catch_unwind(AssertUnwindSafe(|| {
        Pipeline::build(config, &ctx.runtime, resolver.as_ref())
    }))
    .map_err(|panic| panicked(&*panic))?
    .map_err(|e| problems(&e).join("; "))
}

/// Local paths need nothing; registry references the registry the pipeline's settings name
/// (environment, else its `[registry]`, else the daemon's).
pub(super) fn resolver(
    ctx: &Context,
    config: &PipelineConfig,
    excluded: &BTreeSet<String>,
) -> Result<Box<dyn PluginResolver>, String> {
    if config.processors.iter().all(|p| is_local_plugin(&p.plugin)) {
        return Ok(Box::new(LocalOnly));
    }
    Ok(Box::new(selecting(ctx, config, excluded)?))
}

/// The registry resolver of a pipeline with registry references.
pub(super) fn selecting(
    ctx: &Context,
    config: &PipelineConfig,
    excluded: &BTreeSet<String>,
) -> Result<Selecting, String> {
    let access = config.settings.registry().ok_or(
        "registry references need a registry: add [registry] url to the pipeline or to weftd.toml",
    )?;
    let client = Client::new(&access.url, access.token).map_err(|e| e.to_string())?;
    let cache = config
        .settings
        .cache_dir
        .clone()
        .or_else(weft_runtime::default_cache_dir)
        .unwrap_or_else(|| ctx.daemon.data_dir.join("cache"));
    Ok(Selecting {
        inner: RegistryResolver::new(client.clone(), &cache),
        client,
        excluded: excluded.clone(),
        pins: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        semver::Version::parse(text).expect("version")
    }

    #[test]
    fn the_newest_match_skips_yanked_and_rolled_back_versions() {
        let all = [
            (v("1.0.0"), false),
            (v("1.1.0"), false),
            (v("1.2.0"), false),
            (v("1.3.0"), true),
            (v("2.0.0"), false),
        ];
        let req = semver::VersionReq::parse("^1").expect("req");
        let none = BTreeSet::new();
        assert_eq!(select("mask", &req, &all, &none), Some(v("1.2.0")));
        let rolled_back = BTreeSet::from(["mask@1.2.0".to_string()]);
        assert_eq!(select("mask", &req, &all, &rolled_back), Some(v("1.1.0")));
        // Another plugin's exclusion does not count.
        let other = BTreeSet::from(["stamp@1.2.0".to_string()]);
        assert_eq!(select("mask", &req, &all, &other), Some(v("1.2.0")));
        let nothing = semver::VersionReq::parse("^3").expect("req");
        assert_eq!(select("mask", &nothing, &all, &none), None);
    }
}
