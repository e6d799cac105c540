//! Reading a pipeline file: every problem found in one pass, each with its key, and its
//! settings settled between flags, environment and defaults ([`Layers`]).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::issue::{ConfigErrors, ConfigIssue, one_line, section};
use super::settings::{Layers, Settings};
use super::types::*;

/// Sections a pipeline file may have.
const SECTIONS: &[&str] = &[
    "pipeline",
    "source",
    "processor",
    "sink",
    "dead_letter",
    "limits",
    "registry",
];

/// Reads and checks a pipeline file alone: no flags, no environment, no defaults. A run loads
/// its file with [`Layers::load_file`] instead, so flags and environment apply.
pub fn load_file(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
    Layers::default().load_file(path)
}

/// Parses pipeline TOML alone (see [`load_file`]); `file` names it in errors, `base` anchors
/// relative paths.
pub fn parse_str(text: &str, file: &Path, base: &Path) -> Result<PipelineConfig, ConfigErrors> {
    Layers::default().parse_str(text, file, base)
}

impl Layers {
    /// Reads, settles and checks a pipeline file: what a run uses. Relative paths in it are
    /// made relative to its folder; brokers and the registry are settled between these layers.
    pub fn load_file(&self, path: &Path) -> Result<PipelineConfig, ConfigErrors> {
        read_file(path, self)
    }

    /// Parses, settles and checks pipeline TOML; `file` names it in errors, `base` anchors
    /// relative paths.
    pub fn parse_str(
        &self,
        text: &str,
        file: &Path,
        base: &Path,
    ) -> Result<PipelineConfig, ConfigErrors> {
        parse(text, file, base, self)
    }
}

fn read_file(path: &Path, layers: &Layers) -> Result<PipelineConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.to_path_buf(),
        issues: vec![ConfigIssue {
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, path, base, layers)
}

fn parse(
    text: &str,
    file: &Path,
    base: &Path,
    layers: &Layers,
) -> Result<PipelineConfig, ConfigErrors> {
    let mut issues = Vec::new();
    let fail = |issues: Vec<ConfigIssue>| ConfigErrors {
        file: file.to_path_buf(),
        issues,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        fail(vec![ConfigIssue {
            key: String::new(),
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        }])
    })?;

    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            issues.push(issue(
                key,
                format!("unknown section; expected one of {}", SECTIONS.join(", ")),
            ));
        }
    }

    let pipeline = section::<PipelineMeta>(&table, "pipeline", &mut issues).unwrap_or_default();
    if !table.contains_key("source") {
        issues.push(issue(
            "source",
            "missing: a pipeline needs at least one [[source]]".into(),
        ));
    }
    let sources = list_section::<SourceConfig>(&table, "source", &mut issues);
    let mut processors = list_section::<ProcessorConfig>(&table, "processor", &mut issues);
    super::value::keep_float_text(text, processors.iter_mut().map(|p| &mut p.params));
    if !table.contains_key("sink") {
        issues.push(issue("sink", "missing: a pipeline needs a [sink]".into()));
    }
    let sink = section::<SinkConfig>(&table, "sink", &mut issues);
    let dead_letter =
        section::<DeadLetterConfig>(&table, "dead_letter", &mut issues).unwrap_or_default();
    let limits = section::<Limits>(&table, "limits", &mut issues).unwrap_or_default();
    let registry = section::<RegistryConfig>(&table, "registry", &mut issues);

    // Whatever did parse is still checked, so one run reports every problem.
    let mut config = PipelineConfig {
        pipeline,
        sources,
        processors,
        sink: sink.unwrap_or(SinkConfig::Null),
        dead_letter,
        settings: layers.settle(&Settings {
            registry_url: registry.as_ref().map(|r| r.url.clone()),
            ..Settings::default()
        }),
        limits,
        registry,
    };
    resolve_paths(&mut config, base);
    settle_kafka(&mut config, layers);
    check(&config, &mut issues);
    if issues.is_empty() {
        Ok(config)
    } else {
        Err(fail(issues))
    }
}

fn issue(key: impl Into<String>, message: String) -> ConfigIssue {
    ConfigIssue::new(key, message)
}

/// Deserializes an array of tables (`[[source]]`) element by element, so one bad element
/// does not hide the problems of the others.
fn list_section<T: DeserializeOwned>(
    table: &toml::Table,
    name: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<T> {
    let Some(value) = table.get(name) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        issues.push(issue(
            name,
            format!("must be an array of tables: write [[{name}]]"),
        ));
        return Vec::new();
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match serde_path_to_error::deserialize::<_, T>(item.clone()) {
            Ok(v) => parsed.push(v),
            Err(err) => {
                let path = err.path().to_string();
                let key = if path == "." {
                    format!("{name}[{i}]")
                } else {
                    format!("{name}[{i}].{path}")
                };
                issues.push(issue(key, one_line(&err.into_inner().to_string())));
            }
        }
    }
    parsed
}

/// Settles every Kafka table between `layers`: brokers per table, and the pipeline's
/// registry (already settled into `config.settings`).
fn settle_kafka(config: &mut PipelineConfig, layers: &Layers) {
    let registry = config.settings.registry();
    for source in &mut config.sources {
        if let SourceConfig::Kafka(k) = source {
            k.settle(layers, registry.clone());
        }
    }
    if let SinkConfig::Kafka(k) = &mut config.sink {
        k.settle(layers, registry);
    }
    if let DeadLetterConfig::Kafka(k) = &mut config.dead_letter {
        k.settle(layers);
    }
}

fn resolve_paths(config: &mut PipelineConfig, base: &Path) {
    let anchor = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    for source in &mut config.sources {
        match source {
            SourceConfig::AvroFile { path } => anchor(path),
            SourceConfig::Jsonl { path, schema } => {
                anchor(path);
                anchor(schema);
            }
            SourceConfig::Stdin { schema } | SourceConfig::Generate { schema, .. } => {
                anchor(schema)
            }
            SourceConfig::Kafka(k) => {
                if let Some(schema) = &mut k.schema {
                    anchor(schema);
                }
            }
        }
    }
    for p in &mut config.processors {
        if is_local_plugin(&p.plugin) {
            let path = Path::new(&p.plugin);
            if path.is_relative() {
                p.plugin = base.join(path).display().to_string();
            }
        }
    }
    match &mut config.sink {
        SinkConfig::AvroFile { path } | SinkConfig::Jsonl { path } => anchor(path),
        SinkConfig::Stdout | SinkConfig::Null | SinkConfig::Kafka(_) => {}
    }
    if let DeadLetterConfig::Jsonl { path } = &mut config.dead_letter {
        anchor(path);
    }
}

/// A plugin reference is a local component when it names a `.wasm` file.
pub fn is_local_plugin(reference: &str) -> bool {
    reference.ends_with(".wasm")
}

/// A registry reference `name@requirement`, e.g. `mask@^1` or `filter@0.1.0`.
pub fn parse_plugin_ref(
    reference: &str,
) -> std::result::Result<(String, semver::VersionReq), String> {
    let (name, req) = reference.split_once('@').ok_or_else(|| {
        format!("{reference:?} is neither a path to a .wasm file nor a registry reference NAME@VERSION (e.g. \"mask@^1\")")
    })?;
    let req = semver::VersionReq::parse(req)
        .map_err(|e| format!("{reference:?}: {req:?} is not a semver requirement: {e}"))?;
    Ok((name.to_string(), req))
}

/// Checks what serde cannot: files exist, numbers are in range, references are well-formed.
fn check(config: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    let mut file_exists = |key: String, path: &Path, what: &str| {
        if !path.is_file() {
            issues.push(issue(key, format!("{what} {} not found", path.display())));
        }
    };
    for (i, source) in config.sources.iter().enumerate() {
        match source {
            SourceConfig::AvroFile { path } => {
                file_exists(format!("source[{i}].path"), path, "file")
            }
            SourceConfig::Jsonl { path, schema } => {
                file_exists(format!("source[{i}].path"), path, "file");
                file_exists(format!("source[{i}].schema"), schema, "schema file");
            }
            SourceConfig::Stdin { schema } => {
                file_exists(format!("source[{i}].schema"), schema, "schema file")
            }
            SourceConfig::Generate { schema, .. } => {
                file_exists(format!("source[{i}].schema"), schema, "schema file")
            }
            SourceConfig::Kafka(k) => {
                if let Some(schema) = &k.schema {
                    file_exists(format!("source[{i}].schema"), schema, "schema file");
                }
            }
        }
    }
    for (i, p) in config.processors.iter().enumerate() {
        if is_local_plugin(&p.plugin) {
            file_exists(
                format!("processor[{i}].plugin"),
                Path::new(&p.plugin),
                "component",
            );
        }
    }
    for (i, source) in config.sources.iter().enumerate() {
        if let SourceConfig::Generate {
            rate: Some(rate), ..
        } = source
            && (!rate.is_finite() || *rate <= 0.0)
        {
            issues.push(issue(
                format!("source[{i}].rate"),
                format!("must be a positive number of events per second, got {rate}"),
            ));
        }
    }
    for (i, p) in config.processors.iter().enumerate() {
        if !is_local_plugin(&p.plugin)
            && let Err(message) = parse_plugin_ref(&p.plugin)
        {
            issues.push(issue(format!("processor[{i}].plugin"), message));
        }
    }
    for (i, source) in config.sources.iter().enumerate() {
        if let SourceConfig::Kafka(k) = source {
            k.check(&format!("source[{i}]"), issues);
        }
    }
    if let SinkConfig::Kafka(k) = &config.sink {
        k.check(issues);
    }
    if let DeadLetterConfig::Kafka(k) = &config.dead_letter {
        k.check(issues);
    }
    let limits = &config.limits;
    let positive = [
        ("limits.memory_mb", limits.memory_mb),
        ("limits.deadline_ms", limits.deadline_ms),
        ("limits.batch_size", limits.batch_size as u64),
        ("limits.max_depth", limits.max_depth as u64),
        (
            "limits.max_emit_per_event",
            limits.max_emit_per_event as u64,
        ),
        ("limits.max_batch_output_mb", limits.max_batch_output_mb),
    ];
    for (key, value) in positive {
        if value == 0 {
            issues.push(issue(key, "must be greater than 0".into()));
        }
    }
    if limits.max_depth > weft_schema::datum::MAX_DEPTH_LIMIT {
        issues.push(issue(
            "limits.max_depth",
            format!(
                "{} exceeds {}, the deepest nesting the host can decode within its stack",
                limits.max_depth,
                weft_schema::datum::MAX_DEPTH_LIMIT
            ),
        ));
    }
    if limits.memory_mb > 4096 {
        issues.push(issue(
            "limits.memory_mb",
            format!(
                "{} exceeds the 4096 MiB a 32-bit Wasm memory can address",
                limits.memory_mb
            ),
        ));
    }
}
