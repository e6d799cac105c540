//! Settings of the registry: command-line flags, environment variables and an optional TOML file.
//!
//! A flag wins over its environment variable, which wins over the file, which wins over the
//! default. Tokens are kept in [`Token`], whose `Debug` never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// Default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// Default largest component upload: plugins are small; this bounds memory per request.
pub const DEFAULT_MAX_PLUGIN_BYTES: usize = 32 << 20;
/// Default largest JSON body (schemas, pipelines).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// A bearer token. Its `Debug` is redacted so settings can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The registry's command line.
#[derive(Debug, Parser)]
#[command(
    name = "weft-registry",
    version,
    about = "The weft plugin and schema registry"
)]
pub struct Cli {
    /// TOML settings file (same keys as the flags, in snake_case).
    #[arg(long, env = "WEFT_REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the sled database (created if missing).
    #[arg(long, env = "WEFT_REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port. The bound address is printed on stdout.
    #[arg(long, env = "WEFT_REGISTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Bearer token accepted for writes (repeat the flag, or comma-separate in the variable).
    #[arg(
        long = "token",
        env = "WEFT_REGISTRY_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Require a token for reads too.
    #[arg(long, env = "WEFT_REGISTRY_AUTH_READS")]
    pub auth_reads: Option<bool>,
    /// Largest component upload, in bytes.
    #[arg(long, env = "WEFT_REGISTRY_MAX_PLUGIN_BYTES")]
    pub max_plugin_bytes: Option<usize>,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "WEFT_REGISTRY_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
}

/// The optional TOML file.
///
/// ```toml
/// data_dir = "/var/lib/weft-registry"
/// listen = "0.0.0.0:8081"
/// tokens = ["s3cr3t"]
/// auth_reads = false
/// max_plugin_bytes = 33554432
/// max_body_bytes = 4194304
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Directory of the sled database: `data_dir = "./registry-data"`.
    pub data_dir: Option<PathBuf>,
    /// Listening address: `listen = "127.0.0.1:8081"`.
    pub listen: Option<SocketAddr>,
    /// Tokens accepted for writes: `tokens = ["s3cr3t"]`.
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Require a token for reads too: `auth_reads = true`.
    pub auth_reads: Option<bool>,
    /// Largest component upload in bytes: `max_plugin_bytes = 33554432`.
    pub max_plugin_bytes: Option<usize>,
    /// Largest JSON body in bytes: `max_body_bytes = 4194304`.
    pub max_body_bytes: Option<usize>,
}

impl FileSettings {
    /// Reads and checks a settings file; unknown keys are errors.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading settings file {path:?}"))?;
        toml::from_str(&text).with_context(|| format!("parsing settings file {path:?}"))
    }
}

/// Effective settings of a running registry.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tokens: Vec<Token>,
    pub auth_reads: bool,
    pub max_plugin_bytes: usize,
    pub max_body_bytes: usize,
}

impl Settings {
    /// Settings for a registry whose data lives in `data_dir`, everything else default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: default_listen(),
            tokens: Vec::new(),
            auth_reads: false,
            max_plugin_bytes: DEFAULT_MAX_PLUGIN_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Same, accepting `token` for writes.
    pub fn with_token(mut self, token: &str) -> Self {
        self.tokens.push(Token(token.to_string()));
        self
    }

    /// Merges flags and environment (already merged by clap) over the file over defaults.
    pub fn resolve(cli: Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("weft-registry-data"));
        let mut tokens: Vec<Token> = cli
            .tokens
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .map(Token)
            .collect();
        if tokens.is_empty() {
            tokens = file.tokens;
        }
        if tokens.iter().any(|t| t.0.len() < 8) {
            anyhow::bail!("tokens must be at least 8 characters long");
        }
        let auth_reads = cli.auth_reads.or(file.auth_reads).unwrap_or(false);
        if auth_reads && tokens.is_empty() {
            anyhow::bail!("auth_reads needs at least one token, or nothing could be read");
        }
        Ok(Self {
            data_dir,
            listen: cli.listen.or(file.listen).unwrap_or_else(default_listen),
            tokens,
            auth_reads,
            max_plugin_bytes: cli
                .max_plugin_bytes
                .or(file.max_plugin_bytes)
                .unwrap_or(DEFAULT_MAX_PLUGIN_BYTES),
            max_body_bytes: cli
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("DEFAULT_LISTEN is a valid socket address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("weft-registry").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.toml");
        std::fs::write(
            &path,
            "data_dir = \"from-file\"\nlisten = \"127.0.0.1:9000\"\ntokens = [\"file-token-123\"]\n",
        )
        .expect("write");
        let config = path.to_str().expect("utf-8 path");
        let settings =
            Settings::resolve(cli(&["--config", config, "--data-dir", "flag"])).expect("valid");
        assert_eq!(settings.data_dir, PathBuf::from("flag"));
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(settings.tokens, vec![Token("file-token-123".into())]);
        assert!(!format!("{settings:?}").contains("file-token-123"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.toml");
        std::fs::write(&path, "data_dri = \"typo\"\n").expect("write");
        let err = FileSettings::load(&path).expect_err("typo must fail");
        assert!(
            format!("{err:#}").contains("unknown field `data_dri`"),
            "{err:#}"
        );
    }

    #[test]
    fn short_tokens_are_refused() {
        let err = Settings::resolve(cli(&["--token", "short"])).expect_err("too short");
        assert!(err.to_string().contains("at least 8"));
    }
}
