//! Plugin versions: immutable metadata plus content-addressed bytes, yanking, and the
//! evolution rule between versions.

use weft_registry_api::{Annotation, PluginVersion};
use weft_schema::{CompatibilityLevel, Direction, check_can_read};

use super::schema::parse_schema;
use super::{Store, decode, encode, key2, split_key2};
use crate::error::{ApiError, ApiResult};

/// The parsed semver version of a stored plugin version (validated at upload).
pub fn semver_of(v: &PluginVersion) -> ApiResult<semver::Version> {
    semver::Version::parse(&v.manifest.version)
        .map_err(|e| ApiError::Store(format!("stored version {}: {e}", v.manifest.version)))
}

/// What an upload did.
#[derive(Debug)]
pub enum PutOutcome {
    /// A new version was stored.
    Created(PluginVersion),
    /// The same bytes were already stored under this version: nothing changed.
    Existing(PluginVersion),
}

/// Annotations kept per version: the newest, so a daemon that rolls back in a loop cannot
/// grow a record without bound.
pub const MAX_ANNOTATIONS: usize = 100;

/// The default evolution level of a plugin.
pub const DEFAULT_PLUGIN_LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

/// Whether two versions are meant to be compatible under semver: same major (same minor
/// for `0.x`). A new major version may break its schemas, as semver allows.
fn same_series(a: &semver::Version, b: &semver::Version) -> bool {
    a.major == b.major && (a.major != 0 || a.minor == b.minor)
}

/// Why `new` cannot replace `old` (BACKWARD: reads what `old` read, writes what `old`'s
/// consumers read) or be replaced by it (FORWARD), as messages.
fn evolution_problems(
    old: &PluginVersion,
    new: &PluginVersion,
    direction: Direction,
) -> Vec<String> {
    let (old, new) = (&old.manifest, &new.manifest);
    let (from, to) = match direction {
        Direction::NewReadsOld => (old, new),
        Direction::OldReadsNew => (new, old),
    };
    let mut problems = Vec::new();
    let what = format!("{} → {}", old.id(), new.id());
    // `to` replaces `from`: its input must read what `from`'s input accepted...
    match (&from.input_schema, &to.input_schema) {
        (_, None) => {}
        (None, Some(_)) => problems.push(format!(
            "{what}: input: {} accepts any record, {} declares an input schema",
            from.id(),
            to.id()
        )),
        (Some(f), Some(t)) => {
            if let Some(problem) = schema_problem(f, t) {
                problems.push(format!("{what}: input: {problem}"));
            }
        }
    }
    // ...and what it writes must be readable by whoever read `from`'s output.
    match (&to.output_schema, &from.output_schema) {
        (_, None) => {}
        (None, Some(_)) => problems.push(format!(
            "{what}: output: {} declares its output schema, {} does not",
            from.id(),
            to.id()
        )),
        (Some(t), Some(f)) => {
            if let Some(problem) = schema_problem(t, f) {
                problems.push(format!("{what}: output: {problem}"));
            }
        }
    }
    problems
}

fn schema_problem(writer: &str, reader: &str) -> Option<String> {
    let writer = parse_schema(writer).ok()?;
    let reader = parse_schema(reader).ok()?;
    check_can_read(&writer, &reader)
        .err()
        .map(|e| e.to_string())
}

fn plugin_key(name: &str, version: &str) -> Vec<u8> {
    key2(name, version.as_bytes())
}

impl Store {
    /// Every version of a plugin, lowest semver first.
    pub fn plugin_versions(&self, name: &str) -> ApiResult<Vec<PluginVersion>> {
        let mut out = self
            .plugins
            .scan_prefix(key2(name, &[]))
            .map(|item| decode::<PluginVersion>(&item?.1))
            .collect::<ApiResult<Vec<_>>>()?;
        out.sort_by_cached_key(|v| semver::Version::parse(&v.manifest.version).ok());
        Ok(out)
    }

    /// Names of every plugin, sorted.
    pub fn plugin_names(&self) -> ApiResult<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for item in self.plugins.iter() {
            let (key, _) = item?;
            if let Some((name, _)) = split_key2(&key)
                && names.last().map(String::as_str) != Some(name)
            {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// One version; 40410 if the plugin is unknown, 40411 if the version is.
    pub fn plugin_version(&self, name: &str, version: &str) -> ApiResult<PluginVersion> {
        match self.plugins.get(plugin_key(name, version))? {
            Some(bytes) => decode(&bytes),
            None if self.plugin_versions(name)?.is_empty() => {
                Err(ApiError::PluginNotFound(name.to_string()))
            }
            None => Err(ApiError::PluginVersionNotFound {
                name: name.to_string(),
                version: version.to_string(),
            }),
        }
    }

    /// The bytes stored under a digest.
    pub fn blob(&self, sha256: &str) -> ApiResult<Vec<u8>> {
        self.blobs
            .get(sha256.as_bytes())?
            .map(|v| v.to_vec())
            .ok_or_else(|| ApiError::Store(format!("blob {sha256} missing")))
    }

    /// The evolution level of a plugin.
    pub fn plugin_level(&self, name: &str) -> ApiResult<CompatibilityLevel> {
        match self.plugin_configs.get(name.as_bytes())? {
            Some(bytes) => decode(&bytes),
            None => Ok(DEFAULT_PLUGIN_LEVEL),
        }
    }

    /// Sets the evolution level of a plugin.
    pub fn set_plugin_level(&self, name: &str, level: CompatibilityLevel) -> ApiResult<()> {
        self.plugin_configs
            .insert(name.as_bytes(), encode(&level)?)?;
        Ok(())
    }

    /// Stores a validated upload. The same version with the same bytes is an idempotent
    /// success; with other bytes a 40901; a schema evolution the plugin's level forbids a 40902.
    pub fn put_plugin(&self, meta: PluginVersion, bytes: &[u8]) -> ApiResult<PutOutcome> {
        let key = plugin_key(&meta.manifest.name, &meta.manifest.version);
        let same_or_conflict = |existing: PluginVersion| {
            if existing.sha256 == meta.sha256 {
                Ok(PutOutcome::Existing(existing))
            } else {
                Err(ApiError::VersionExists {
                    name: meta.manifest.name.clone(),
                    version: meta.manifest.version.clone(),
                    existing: existing.sha256,
                })
            }
        };
        let _guard = self.lock();
        if let Some(existing) = self.plugins.get(&key)? {
            return same_or_conflict(decode(&existing)?);
        }
        self.check_evolution(&meta)?;
        // Content-addressed: storing the same bytes twice is harmless.
        self.blobs.insert(meta.sha256.as_bytes(), bytes)?;
        // The lock above serialises this process; compare-and-swap makes the version
        // immutable even so: only one writer can turn "absent" into "present".
        match self
            .plugins
            .compare_and_swap(&key, None as Option<&[u8]>, Some(encode(&meta)?))?
        {
            Ok(()) => Ok(PutOutcome::Created(meta)),
            Err(race) => match race.current {
                Some(current) => same_or_conflict(decode(&current)?),
                None => Err(ApiError::Internal(
                    "compare-and-swap lost to nothing".into(),
                )),
            },
        }
    }

    fn check_evolution(&self, new: &PluginVersion) -> ApiResult<()> {
        let level = self.plugin_level(&new.manifest.name)?;
        let new_version = semver_of(new)?;
        let mut earlier = Vec::new();
        for v in self.plugin_versions(&new.manifest.name)? {
            let version = semver_of(&v)?;
            if !v.yanked && version < new_version && same_series(&version, &new_version) {
                earlier.push(v);
            }
        }
        let targets: &[PluginVersion] = match level {
            CompatibilityLevel::BackwardTransitive
            | CompatibilityLevel::ForwardTransitive
            | CompatibilityLevel::FullTransitive => &earlier,
            _ => match earlier.len() {
                0 => &[],
                n => &earlier[n - 1..],
            },
        };
        let directions = level.directions();
        let problems: Vec<String> = targets
            .iter()
            .flat_map(|old| {
                directions
                    .iter()
                    .flat_map(|&d| evolution_problems(old, new, d))
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::IncompatiblePlugin(format!(
                "{} breaks the plugin's {level} compatibility (publish a new major version to break it on purpose): {}",
                new.manifest.id(),
                problems.join("; ")
            )))
        }
    }

    /// Yanks or un-yanks a version; returns its updated metadata.
    pub fn set_yanked(&self, name: &str, version: &str, yanked: bool) -> ApiResult<PluginVersion> {
        let _guard = self.lock();
        let mut meta = self.plugin_version(name, version)?;
        meta.yanked = yanked;
        self.plugins
            .insert(plugin_key(name, version), encode(&meta)?)?;
        Ok(meta)
    }

    /// Adds an annotation (stamped `at` now) to a version; returns its updated metadata.
    pub fn annotate(
        &self,
        name: &str,
        version: &str,
        mut note: Annotation,
    ) -> ApiResult<PluginVersion> {
        let _guard = self.lock();
        let mut meta = self.plugin_version(name, version)?;
        note.at = Some(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string());
        meta.annotations.push(note);
        let excess = meta.annotations.len().saturating_sub(MAX_ANNOTATIONS);
        meta.annotations.drain(..excess);
        self.plugins
            .insert(plugin_key(name, version), encode(&meta)?)?;
        Ok(meta)
    }
}
