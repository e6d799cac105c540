//! A tansu broker for the Kafka variants and the bench's examples: in-memory storage on a
//! free local port, topics of [`PARTITIONS`] partitions, stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Partitions of every topic.
pub const PARTITIONS: u32 = 3;

/// `$TANSU`, else `tansu` on the `PATH`, else `~/.cargo/bin/tansu`.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").map(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    if let Some(Some(path)) = on_path {
        return path;
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
        .unwrap_or_else(|| PathBuf::from("tansu"))
}

/// A tansu broker with in-memory storage on a free local port, stopped on drop.
pub struct Broker {
    child: Child,
    tansu: PathBuf,
    port: u16,
}

impl Broker {
    pub fn start(log: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let tansu = tansu_binary();
        let log = std::fs::File::create(log).context("creating the broker log")?;
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (the Kafka variants need tansu)",
                    tansu.display()
                )
            })?;
        let broker = Self { child, tansu, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on port {port} within 20 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`, as Kafka clients take it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str) -> anyhow::Result<()> {
        let output = Command::new(&self.tansu)
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &PARTITIONS.to_string()])
            .output()
            .context("running tansu topic create")?;
        if !output.status.success() {
            bail!(
                "creating topic {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
