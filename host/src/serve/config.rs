//! `weftd.toml`, the daemon's own config: where it listens, which folder of pipeline files it
//! runs, and the defaults its pipelines share. Typed serde with every error reported at once,
//! each with the file and the key, like a pipeline file.
//!
//! ```toml
//! listen = "127.0.0.1:7070"          # admin API, /metrics, /health, /ready
//! pipelines = "pipelines"            # folder of *.toml pipeline files (relative to this file)
//! data_dir = "data"                  # daemon state
//! admin_tokens = ["s3cret"]          # bearer tokens for writes; or admin_token_env = "WEFT_ADMIN_TOKEN"
//!
//! [registry]
//! url = "http://127.0.0.1:8081"      # for `name@version` plugins of pipelines without [registry]
//! token = "..."
//!
//! [kafka]
//! brokers = "127.0.0.1:9092"         # for Kafka tables that name no brokers
//!
//! [restart]
//! initial_ms = 500                   # first wait before a FAILED pipeline is built again
//! max_ms = 60000                     # the wait doubles up to this
//!
//! [cluster]
//! name = "prod-eu"                   # also follow the pipelines deployed to this cluster
//!
//! [upgrades]
//! enabled = true                     # follow new plugin versions and source schemas
//! interval_ms = 1000                 # how often each running pipeline asks the registry
//! canary_events = 200                # a new plugin version's first M events are watched...
//! canary_max_traps = 5               # ...and more than N traps in them roll it back
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigErrors, ConfigIssue, section};

/// A whole `weftd.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// `listen = "127.0.0.1:7070"`: address of the admin API, `/metrics`, `/health` and `/ready`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `pipelines = "pipelines"`: the folder whose `*.toml` files are the pipelines, each named
    /// after its file stem. Relative to the folder of `weftd.toml`; created when missing.
    #[serde(default = "default_pipelines")]
    pub pipelines: PathBuf,
    /// `data_dir = "data"`: where the daemon keeps its state. Relative to `weftd.toml`'s folder.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `admin_tokens = ["..."]`: bearer tokens accepted for writes through the admin API.
    #[serde(default)]
    pub admin_tokens: Vec<String>,
    /// `admin_token_env = "WEFT_ADMIN_TOKEN"`: an environment variable holding one more token,
    /// so the secret need not be in the file.
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// `[registry]`: the registry for pipelines that name plugins `name@version` and have no
    /// `[registry]` of their own.
    #[serde(default)]
    pub registry: Option<DaemonRegistry>,
    /// `[kafka]`: defaults for the pipelines' Kafka tables.
    #[serde(default)]
    pub kafka: KafkaDefaults,
    /// `[restart]`: exponential backoff of a FAILED pipeline.
    #[serde(default)]
    pub restart: RestartConfig,
    /// `[cluster]`: also run the pipelines the registry deploys to this cluster.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// `[upgrades]`: automatic upgrades of running pipelines to new plugin versions within
    /// their semver requirement and to new schema versions of their source subject.
    #[serde(default)]
    pub upgrades: UpgradesConfig,
    /// The folder of `weftd.toml`, which relative paths were anchored to (not a key).
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[registry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonRegistry {
    /// `url = "http://127.0.0.1:8081"`
    pub url: String,
    /// `token = "..."`: bearer token for registry writes (lineage, pipeline registration).
    #[serde(default)]
    pub token: Option<String>,
}

/// `[kafka]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaDefaults {
    /// `brokers = "127.0.0.1:9092"`: used by a pipeline's Kafka source, sink or dead-letter
    /// table that names no `brokers` (before `WEFT_KAFKA_BROKERS`).
    #[serde(default)]
    pub brokers: Option<String>,
}

/// `[restart]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// `initial_ms = 500`: wait before the first retry of a FAILED pipeline.
    #[serde(default = "default_initial_ms")]
    pub initial_ms: u64,
    /// `max_ms = 60000`: the wait doubles after each failure up to this.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            initial_ms: default_initial_ms(),
            max_ms: default_max_ms(),
        }
    }
}

impl RestartConfig {
    /// The wait before retry number `failures` (1 = the first retry): `initial_ms` doubled
    /// for each earlier failure, capped at `max_ms`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let ms = self.initial_ms.saturating_mul(1u64 << doublings);
        Duration::from_millis(ms.min(self.max_ms))
    }
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `name = "prod-eu"`
    pub name: String,
}

/// `[upgrades]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradesConfig {
    /// `enabled = true`: check every running pipeline against the registry. A pipeline whose
    /// plugins are local files and whose source schema is pinned has nothing to follow.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `interval_ms = 1000`: how often each running pipeline's registry references
    /// (`mask@^1`) and source subject (latest schema) are resolved again. An upgrade is
    /// applied at the first batch boundary after the check that found it.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// `canary_events = 200`: after an upgrade that changed a plugin version, that stage's
    /// first `canary_events` events are its canary window (0: no canary).
    #[serde(default = "default_canary_events")]
    pub canary_events: u64,
    /// `canary_max_traps = 5`: more traps than this in the canary window swap the previous
    /// chain back, exclude the version for this pipeline and annotate it in the registry.
    #[serde(default = "default_canary_max_traps")]
    pub canary_max_traps: u64,
}

impl Default for UpgradesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_ms: default_interval_ms(),
            canary_events: default_canary_events(),
            canary_max_traps: default_canary_max_traps(),
        }
    }
}

impl UpgradesConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

fn default_true() -> bool {
    true
}
fn default_interval_ms() -> u64 {
    1000
}
fn default_canary_events() -> u64 {
    200
}
fn default_canary_max_traps() -> u64 {
    5
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}
fn default_pipelines() -> PathBuf {
    PathBuf::from("pipelines")
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_initial_ms() -> u64 {
    500
}
fn default_max_ms() -> u64 {
    60_000
}

/// The shortest `[upgrades] interval_ms`.
const MIN_UPGRADE_INTERVAL_MS: u64 = 100;

const KEYS: &[&str] = &[
    "listen",
    "pipelines",
    "data_dir",
    "admin_tokens",
    "admin_token_env",
    "registry",
    "kafka",
    "restart",
    "cluster",
    "upgrades",
];

impl DaemonConfig {
    /// Reads and checks `weftd.toml`; relative paths are made relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: path.to_path_buf(),
            issues: vec![ConfigIssue::new("", format!("cannot read: {e}"))],
        })?;
        Self::parse(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses `weftd.toml` text; `file` names it in errors, `base` anchors relative paths.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Self, ConfigErrors> {
        let fail = |issues| ConfigErrors {
            file: file.to_path_buf(),
            issues,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            fail(vec![ConfigIssue::new(
                "",
                format!("not valid TOML: {}", e.to_string().trim_end()),
            )])
        })?;
        let mut issues = Vec::new();
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                issues.push(ConfigIssue::new(
                    key,
                    format!("unknown key; expected one of {}", KEYS.join(", ")),
                ));
            }
        }
        let defaults = DaemonConfig::default();
        let mut config = DaemonConfig {
            listen: section(&table, "listen", &mut issues).unwrap_or(defaults.listen),
            pipelines: section(&table, "pipelines", &mut issues).unwrap_or(defaults.pipelines),
            data_dir: section(&table, "data_dir", &mut issues).unwrap_or(defaults.data_dir),
            admin_tokens: section(&table, "admin_tokens", &mut issues).unwrap_or_default(),
            admin_token_env: section(&table, "admin_token_env", &mut issues),
            registry: section(&table, "registry", &mut issues),
            kafka: section(&table, "kafka", &mut issues).unwrap_or_default(),
            restart: section(&table, "restart", &mut issues).unwrap_or_default(),
            cluster: section(&table, "cluster", &mut issues),
            upgrades: section(&table, "upgrades", &mut issues).unwrap_or_default(),
            base: base.to_path_buf(),
        };
        config.check(&mut issues);
        config.pipelines = base.join(&config.pipelines);
        config.data_dir = base.join(&config.data_dir);
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(fail(issues))
        }
    }

    fn check(&self, issues: &mut Vec<ConfigIssue>) {
        if self.restart.initial_ms == 0 {
            issues.push(ConfigIssue::new(
                "restart.initial_ms",
                "must be at least 1 (a failing pipeline retried in a busy loop would starve the others)",
            ));
        }
        if self.restart.max_ms < self.restart.initial_ms {
            issues.push(ConfigIssue::new(
                "restart.max_ms",
                format!(
                    "must be at least restart.initial_ms ({})",
                    self.restart.initial_ms
                ),
            ));
        }
        for (i, token) in self.admin_tokens.iter().enumerate() {
            if token.trim().len() < 8 {
                issues.push(ConfigIssue::new(
                    format!("admin_tokens[{i}]"),
                    "a token must have at least 8 characters",
                ));
            }
        }
        if let Some(env) = &self.admin_token_env
            && env.trim().is_empty()
        {
            issues.push(ConfigIssue::new(
                "admin_token_env",
                "must name an environment variable",
            ));
        }
        if let Some(r) = &self.registry
            && !(r.url.starts_with("http://") || r.url.starts_with("https://"))
        {
            issues.push(ConfigIssue::new(
                "registry.url",
                format!("{:?} is not an http:// or https:// URL", r.url),
            ));
        }
        if let Some(b) = &self.kafka.brokers
            && b.trim().is_empty()
        {
            issues.push(ConfigIssue::new("kafka.brokers", "must not be empty"));
        }
        if let Some(c) = &self.cluster
            && c.name.trim().is_empty()
        {
            issues.push(ConfigIssue::new("cluster.name", "must not be empty"));
        }
        if self.upgrades.interval_ms < MIN_UPGRADE_INTERVAL_MS {
            issues.push(ConfigIssue::new(
                "upgrades.interval_ms",
                format!(
                    "must be at least {MIN_UPGRADE_INTERVAL_MS} (each check asks the registry once per plugin and source of every pipeline)"
                ),
            ));
        }
        if self.upgrades.canary_events > 0
            && self.upgrades.canary_max_traps >= self.upgrades.canary_events
        {
            issues.push(ConfigIssue::new(
                "upgrades.canary_max_traps",
                format!(
                    "must be below upgrades.canary_events ({}): a version may trap that often only if it can fail the canary at all",
                    self.upgrades.canary_events
                ),
            ));
        }
    }

    /// The defaults this file gives every pipeline (below the pipeline's own values): Kafka
    /// brokers and the registry with its token.
    pub fn settings(&self) -> crate::config::Settings {
        crate::config::Settings {
            brokers: self.kafka.brokers.clone(),
            registry_url: self.registry.as_ref().map(|r| r.url.clone()),
            registry_token: self.registry.as_ref().and_then(|r| r.token.clone()),
            cache_dir: None,
        }
    }

    /// Every bearer token accepted for writes: `admin_tokens` and the one in `admin_token_env`.
    pub fn tokens(&self) -> Vec<String> {
        let mut tokens = self.admin_tokens.clone();
        if let Some(env) = &self.admin_token_env
            && let Ok(token) = std::env::var(env)
            && !token.trim().is_empty()
        {
            tokens.push(token);
        }
        tokens
    }
}

impl Default for DaemonConfig {
    /// The defaults of every key, anchored at the current folder.
    fn default() -> Self {
        Self {
            listen: default_listen(),
            pipelines: default_pipelines(),
            data_dir: default_data_dir(),
            admin_tokens: Vec::new(),
            admin_token_env: None,
            registry: None,
            kafka: KafkaDefaults::default(),
            restart: RestartConfig::default(),
            cluster: None,
            upgrades: UpgradesConfig::default(),
            base: PathBuf::from("."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, ConfigErrors> {
        DaemonConfig::parse(text, Path::new("weftd.toml"), Path::new("/etc/weft"))
    }

    #[test]
    fn an_empty_file_takes_every_default_anchored_at_its_folder() {
        let c = parse("").expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(c.pipelines, Path::new("/etc/weft/pipelines"));
        assert_eq!(c.data_dir, Path::new("/etc/weft/data"));
        assert_eq!(c.restart, RestartConfig::default());
        assert_eq!(c.upgrades, UpgradesConfig::default());
        assert!(c.upgrades.enabled);
        assert_eq!(c.upgrades.interval_ms, 1000);
    }

    #[test]
    fn upgrade_settings_that_cannot_work_are_refused() {
        let err = parse("[upgrades]\ninterval_ms = 0\ncanary_events = 10\ncanary_max_traps = 10\n")
            .expect_err("invalid");
        let keys: Vec<_> = err.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["upgrades.interval_ms", "upgrades.canary_max_traps"],
            "{err}"
        );
        let err = parse("[upgrades]\nenable = false\n").expect_err("typo");
        assert!(err.to_string().contains("upgrades.enable"), "{err}");
    }

    #[test]
    fn the_contract_example_parses() {
        let c = parse(
            r#"
            listen = "127.0.0.1:7171"
            pipelines = "/srv/pipelines"
            data_dir = "state"
            admin_tokens = ["0123456789"]
            [registry]
            url = "http://127.0.0.1:8081"
            token = "t"
            [kafka]
            brokers = "127.0.0.1:9092"
            [restart]
            initial_ms = 100
            max_ms = 1000
            [cluster]
            name = "prod-eu"
            [upgrades]
            interval_ms = 250
            canary_events = 50
            canary_max_traps = 2
            "#,
        )
        .expect("valid");
        assert_eq!(
            c.upgrades,
            UpgradesConfig {
                enabled: true,
                interval_ms: 250,
                canary_events: 50,
                canary_max_traps: 2,
            }
        );
        assert_eq!(c.listen.port(), 7171);
        assert_eq!(c.pipelines, Path::new("/srv/pipelines"));
        assert_eq!(c.data_dir, Path::new("/etc/weft/state"));
        assert_eq!(c.kafka.brokers.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(c.cluster.as_ref().map(|c| c.name.as_str()), Some("prod-eu"));
        assert_eq!(c.tokens(), vec!["0123456789".to_string()]);
    }

    #[test]
    fn every_error_is_reported_at_once_with_file_and_key() {
        let err = parse(
            r#"
            listen = "not an address"
            listn = "typo"
            admin_tokens = ["short"]
            [restart]
            initial_ms = 1000
            max_ms = 10
            [kafka]
            brokers = "b:9092"
            group = "g"
            "#,
        )
        .expect_err("invalid");
        let keys: Vec<_> = err.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listn",
                "listen",
                "kafka.group",
                "restart.max_ms",
                "admin_tokens[0]"
            ],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.starts_with("weftd.toml: 5 errors"), "{text}");
        assert!(text.contains("listn: unknown key"), "{text}");
        assert!(
            text.contains("kafka.group: unknown field `group`"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_from_initial_up_to_max() {
        let r = RestartConfig {
            initial_ms: 500,
            max_ms: 5_000,
        };
        let waits: Vec<_> = (1..=6).map(|n| r.backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000]);
        // A pipeline failing for months never overflows the wait.
        assert_eq!(r.backoff(u32::MAX).as_millis(), 5000);
    }
}
