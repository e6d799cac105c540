//! The benchmarked chain: filter → project → mask over the demo title schema, with the
//! parameters every variant uses, and where the built plugin components are.

use std::path::{Path, PathBuf};

/// One processor of the benchmarked chain.
#[derive(Debug, Clone, Copy)]
pub struct StageDef {
    /// Plugin name, also the stem of its component file (`filter.wasm`).
    pub plugin: &'static str,
    pub params: &'static [(&'static str, &'static str)],
}

/// The chain. The filter keeps most events (about 85% of generated years are 1960 or later)
/// so the later stages have work; project changes the schema (so its events are re-encoded
/// and copied back); mask rewrites a nested string field.
pub const STAGES: &[StageDef] = &[
    StageDef {
        plugin: "filter",
        params: &[("condition", "year >= 1960")],
    },
    StageDef {
        plugin: "project",
        params: &[("drop", "genres")],
    },
    StageDef {
        plugin: "mask",
        params: &[
            ("fields", "owner.email"),
            ("mode", "hash"),
            ("salt", "weft-bench"),
        ],
    },
];

/// The parameters of `stage` as owned pairs, the shape `configure` takes.
pub fn owned_params(stage: &StageDef) -> Vec<(String, String)> {
    stage
        .params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The workspace root (this crate lives in `bench/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where `scripts/build-plugins.sh` puts the components: `$CARGO_TARGET_DIR` or the
/// workspace's `target/`, then `wasm32-wasip2/plugin/`.
pub fn default_plugin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("wasm32-wasip2")
        .join("plugin")
}

/// The arguments the profiling examples share, `[PLUGIN_DIR [EVENTS]]`, read from `args`
/// (the plugin folder defaults to [`default_plugin_dir`], the event count to 200,000).
pub fn plugin_dir_and_events(
    args: &mut impl Iterator<Item = String>,
) -> anyhow::Result<(PathBuf, u64)> {
    let dir = args.next().map_or_else(default_plugin_dir, PathBuf::from);
    let events = args
        .next()
        .map_or(Ok(200_000), |n| n.parse())
        .map_err(|e| anyhow::anyhow!("event count: {e}"))?;
    Ok((dir, events))
}

/// Path of the component of `plugin` in `dir`, or an error saying how to build it.
pub fn plugin_path(dir: &Path, plugin: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{plugin}.wasm"));
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh",
        path.display()
    );
    Ok(path)
}
