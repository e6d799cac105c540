//! The real `weft-registry` binary on a free port over a data directory the test keeps, so
//! it can be killed (`SIGKILL`) and started again on the same data.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "real-token-123456";

/// A running registry; killed when dropped.
pub struct RealRegistry {
    child: Child,
    pub url: String,
}

impl RealRegistry {
    /// Starts the binary on `data_dir` and waits for its address on stdout.
    /// `WEFT_REGISTRY_BIN` runs another build instead (to compare against an older one).
    pub fn start(data_dir: &Path) -> Self {
        let binary = std::env::var_os("WEFT_REGISTRY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weft-registry")));
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--token", TOKEN, "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start weft-registry");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the bound address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line of weft-registry: {line:?}"))
            .to_string();
        Self { child, url }
    }

    /// `kill -9`: no shutdown hook runs, nothing is flushed on the way out.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL the registry");
        self.child.wait().expect("reap the registry");
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace root (the registry crate's parent).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("registry/ has a parent")
        .to_path_buf()
}
