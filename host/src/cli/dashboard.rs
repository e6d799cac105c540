//! `weft dashboard`: writes a pipeline's Grafana dashboard and Prometheus alert rules.

use std::path::{Path, PathBuf};

use anyhow::Context;
use weft_host::{config, dashboard};

/// Writes `<out>/<name>.dashboard.json` and `<out>/<name>.rules.yml`, the pipeline named after
/// its file as `weft serve` names it; returns the two paths.
pub fn write(pipeline: &Path, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let config = config::load_file(pipeline)?;
    let name = pipeline
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .with_context(|| format!("{}: no file name", pipeline.display()))?;
    let generated = dashboard::generate(&name, &config, &[]);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join(format!("{name}.dashboard.json"));
    let rules_path = out.join(format!("{name}.rules.yml"));
    std::fs::write(&json_path, generated.dashboard_json())
        .with_context(|| format!("writing {}", json_path.display()))?;
    let yaml = generated
        .alerts_yaml()
        .context("encoding the alert rules")?;
    std::fs::write(&rules_path, yaml)
        .with_context(|| format!("writing {}", rules_path.display()))?;
    Ok((json_path, rules_path))
}
