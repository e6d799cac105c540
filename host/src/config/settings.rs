//! Settings a run takes from several places — Kafka brokers, the registry's URL and token, the
//! cache folder — settled in one step with one precedence: a flag beats its environment
//! variable, which beats a file (as the registry's own settings do). Nothing else in the host
//! reads these variables, so what a run uses is what this step returned.
//!
//! How to call it:
//!
//! ```
//! use weft_host::config::{Layers, Settings, process_env};
//!
//! // What the command line gave (clap fills these; `None` = not given).
//! let flags = Settings { registry_url: Some("http://127.0.0.1:8081".into()), ..Settings::default() };
//! // A daemon's own file (weftd.toml), or `Settings::default()` when there is none.
//! let defaults = Settings { brokers: Some("kafka:9092".into()), ..Settings::default() };
//!
//! // Process-wide values (cache folder, the registry of `weft plugin`): flag > env > file.
//! let process = Settings::resolve(&flags, process_env, &defaults);
//!
//! // A pipeline file sits between the two: flags and environment override it, the daemon's
//! // file fills what it leaves out. Every table is settled as the file is read.
//! let layers = Layers::new(&flags, process_env, &defaults);
//! # let path = std::path::Path::new("titles.toml");
//! let pipeline = layers.load_file(path); // or layers.parse_str(text, file, base)
//! # let _ = (process, pipeline);
//! ```
//!
//! Tests pass their own environment: `Settings::resolve(&flags, |name| map.get(name).cloned(), &file)`.

use std::fmt;
use std::path::PathBuf;

/// Kafka bootstrap servers, under a table's `brokers`.
pub const BROKERS_ENV: &str = "WEFT_KAFKA_BROKERS";
/// The registry's URL, under the pipeline's `[registry] url`.
pub const REGISTRY_ENV: &str = "WEFT_REGISTRY_URL";
/// The registry's bearer token (schema registration, plugin pushes).
pub const REGISTRY_TOKEN_ENV: &str = "WEFT_REGISTRY_TOKEN";
/// The cache folder (compiled components, downloaded plugins).
pub const CACHE_DIR_ENV: &str = "WEFT_CACHE_DIR";

/// The real process environment, as the `env` argument of [`Settings::resolve`] and
/// [`Layers::new`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// One layer of settings (what flags, the environment or a file give; `None` = this layer
/// says nothing), or the settled result of several.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `host:port[,host:port]`: `--brokers`, `WEFT_KAFKA_BROKERS`, a Kafka table's `brokers`.
    pub brokers: Option<String>,
    /// `--registry`, `WEFT_REGISTRY_URL`, `[registry] url`.
    pub registry_url: Option<String>,
    /// `--token`, `WEFT_REGISTRY_TOKEN`. A token given with a URL goes to that registry only
    /// (see [`Settings::resolve`]).
    pub registry_token: Option<String>,
    /// `--cache-dir`, `WEFT_CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("brokers", &self.brokers)
            .field("registry_url", &self.registry_url)
            .field(
                "registry_token",
                &self.registry_token.as_ref().map(|_| "***"),
            )
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// The registry a run talks to (plugin references, Confluent schema ids) and its token.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAccess {
    pub url: String,
    pub token: Option<String>,
}

impl fmt::Debug for RegistryAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Settings {
    /// The layer the environment gives, read through `env` (a variable set to blanks counts
    /// as unset).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            brokers: env(BROKERS_ENV),
            registry_url: env(REGISTRY_ENV),
            registry_token: env(REGISTRY_TOKEN_ENV),
            cache_dir: env(CACHE_DIR_ENV).map(PathBuf::from),
        }
        .given()
    }

    /// Settles flag > environment > file, value by value: each comes from the first layer
    /// that gives it. Pure: the environment is read through `env` (pass [`process_env`]).
    ///
    /// One exception keeps a token with its registry: a layer's token is used only when that
    /// layer names no registry URL or names the settled one, so a file's token is never sent
    /// to the registry a flag names. Flags and environment count as one layer here, so
    /// `--registry X` with `WEFT_REGISTRY_TOKEN` set sends that token to X.
    pub fn resolve(
        flags: &Settings,
        env: impl Fn(&str) -> Option<String>,
        file: &Settings,
    ) -> Self {
        Layers::new(flags, env, &Settings::default()).settle(file)
    }

    /// The registry to use, when a URL was given.
    pub fn registry(&self) -> Option<RegistryAccess> {
        Some(RegistryAccess {
            url: self.registry_url.clone()?,
            token: self.registry_token.clone(),
        })
    }

    /// `self`'s values, and `lower`'s where `self` has none.
    fn or(&self, lower: &Settings) -> Settings {
        Settings {
            brokers: self.brokers.clone().or_else(|| lower.brokers.clone()),
            registry_url: self
                .registry_url
                .clone()
                .or_else(|| lower.registry_url.clone()),
            registry_token: self
                .registry_token
                .clone()
                .or_else(|| lower.registry_token.clone()),
            cache_dir: self.cache_dir.clone().or_else(|| lower.cache_dir.clone()),
        }
    }

    /// The same layer with blank values treated as not given, so `WEFT_KAFKA_BROKERS=` or
    /// `brokers = ""` falls through to the next layer instead of reaching librdkafka.
    fn given(self) -> Settings {
        let text = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Settings {
            brokers: text(self.brokers),
            registry_url: text(self.registry_url),
            registry_token: text(self.registry_token),
            cache_dir: self.cache_dir.filter(|p| !p.as_os_str().is_empty()),
        }
    }
}

/// The layers a pipeline file is settled between: flags and the environment above it (they
/// win), `defaults` below it (a daemon's own file: the pipeline file wins over it).
/// `Layers::default()` is the file alone, for tools and tests that must not depend on the
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    /// Flags over the environment.
    above: Settings,
    below: Settings,
}

impl Layers {
    pub fn new(
        flags: &Settings,
        env: impl Fn(&str) -> Option<String>,
        defaults: &Settings,
    ) -> Self {
        let flags = flags.clone().given();
        Self {
            above: flags.or(&Settings::from_env(env)),
            below: defaults.clone().given(),
        }
    }

    /// `file` settled: each value from flags, else the environment, else `file`, else the
    /// defaults; a token only from a layer that names no registry or the settled one.
    pub fn settle(&self, file: &Settings) -> Settings {
        let file = file.clone().given();
        let mut settled = self.above.or(&file).or(&self.below);
        settled.registry_token = [&self.above, &file, &self.below]
            .into_iter()
            .filter(|l| l.registry_url.is_none() || l.registry_url == settled.registry_url)
            .find_map(|l| l.registry_token.clone());
        settled
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A layer where every value names the layer, e.g. `brokers = "flag"`.
    fn layer(name: &str) -> Settings {
        Settings {
            brokers: Some(name.into()),
            registry_url: Some(name.into()),
            registry_token: Some(name.into()),
            cache_dir: Some(name.into()),
        }
    }

    fn env_of(layer: Option<Settings>) -> HashMap<String, String> {
        let mut env = HashMap::new();
        if let Some(l) = layer {
            env.insert(BROKERS_ENV.into(), l.brokers.unwrap_or_default());
            env.insert(REGISTRY_ENV.into(), l.registry_url.unwrap_or_default());
            env.insert(
                REGISTRY_TOKEN_ENV.into(),
                l.registry_token.unwrap_or_default(),
            );
            let dir = l.cache_dir.unwrap_or_default();
            env.insert(CACHE_DIR_ENV.into(), dir.display().to_string());
        }
        env
    }

    /// Every combination of the four layers giving a value or not: each value comes from the
    /// first layer, in the order flag, environment, file, defaults, that gives it.
    #[test]
    fn every_layer_combination_settles_flag_over_env_over_file_over_defaults() {
        let names = ["flag", "env", "file", "defaults"];
        for mask in 0..16u8 {
            let given = |i: usize| (mask >> i) & 1 == 1;
            let pick = |i: usize| {
                if given(i) {
                    layer(names[i])
                } else {
                    Settings::default()
                }
            };
            let env = env_of(given(1).then(|| layer("env")));
            let layers = Layers::new(&pick(0), |n| env.get(n).cloned(), &pick(3));
            let settled = layers.settle(&pick(2));
            let expected = (0..4).find(|&i| given(i)).map(|i| names[i].to_string());
            assert_eq!(settled.brokers, expected, "mask {mask:04b}");
            assert_eq!(settled.registry_url, expected, "mask {mask:04b}");
            assert_eq!(settled.registry_token, expected, "mask {mask:04b}");
            assert_eq!(
                settled.cache_dir,
                expected.as_ref().map(PathBuf::from),
                "mask {mask:04b}"
            );
            if !given(3) {
                let three = Settings::resolve(&pick(0), |n| env.get(n).cloned(), &pick(2));
                assert_eq!(three, settled, "mask {mask:04b}");
            }
        }
    }

    /// Each value is settled on its own: a flag for one does not hide the file's others.
    #[test]
    fn values_settle_independently() {
        let flags = Settings {
            brokers: Some("flag:9092".into()),
            ..Settings::default()
        };
        let env = HashMap::from([(CACHE_DIR_ENV.to_string(), "/env/cache".to_string())]);
        let file = Settings {
            brokers: Some("file:9092".into()),
            registry_url: Some("http://file".into()),
            ..Settings::default()
        };
        let settled = Settings::resolve(&flags, |n| env.get(n).cloned(), &file);
        assert_eq!(settled.brokers.as_deref(), Some("flag:9092"));
        assert_eq!(settled.registry_url.as_deref(), Some("http://file"));
        assert_eq!(settled.registry_token, None);
        assert_eq!(settled.cache_dir, Some(PathBuf::from("/env/cache")));
    }

    #[test]
    fn blank_values_fall_through_to_the_next_layer() {
        let flags = Settings {
            registry_url: Some(String::new()),
            ..Settings::default()
        };
        let env = HashMap::from([
            (BROKERS_ENV.to_string(), "  ".to_string()),
            (REGISTRY_TOKEN_ENV.to_string(), String::new()),
        ]);
        let file = layer("file");
        let settled = Settings::resolve(&flags, |n| env.get(n).cloned(), &file);
        assert_eq!(settled, file);
    }

    /// A token given with a registry URL goes to that registry only: a daemon's token is not
    /// sent to the registry a pipeline file or a flag names.
    #[test]
    fn a_token_is_not_sent_to_a_registry_named_above_it() {
        let daemon = Settings {
            registry_url: Some("http://daemon".into()),
            registry_token: Some("daemon-secret".into()),
            ..Settings::default()
        };
        let pipeline = Settings {
            registry_url: Some("http://elsewhere".into()),
            ..Settings::default()
        };
        let no_env = |_: &str| None;
        let layers = Layers::new(&Settings::default(), no_env, &daemon);
        let settled = layers.settle(&pipeline);
        assert_eq!(settled.registry_url.as_deref(), Some("http://elsewhere"));
        assert_eq!(settled.registry_token, None);
        // The daemon's own registry keeps its token, also when the pipeline names it again.
        assert_eq!(layers.settle(&Settings::default()), daemon);
        let same = Settings {
            registry_url: daemon.registry_url.clone(),
            ..Settings::default()
        };
        assert_eq!(layers.settle(&same), daemon);
        // A flag's URL with the environment's token: one layer, the token goes.
        let flags = Settings {
            registry_url: Some("http://flag".into()),
            ..Settings::default()
        };
        let env = HashMap::from([(REGISTRY_TOKEN_ENV.to_string(), "env-secret".to_string())]);
        let settled = Settings::resolve(&flags, |n| env.get(n).cloned(), &daemon);
        let access = settled.registry().expect("a registry");
        assert_eq!(access.url, "http://flag");
        assert_eq!(access.token.as_deref(), Some("env-secret"));
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let settings = Settings {
            registry_url: Some("http://r".into()),
            registry_token: Some("secret-token".into()),
            ..Settings::default()
        };
        let access = settings.registry().expect("a registry");
        for shown in [format!("{settings:?}"), format!("{access:?}")] {
            assert!(!shown.contains("secret-token"), "{shown}");
            assert!(shown.contains("http://r"), "{shown}");
        }
    }
}
