//! The processes a Kafka variant runs between the bench's producer and reader: one `weft run`
//! per pipeline file, or the hand-written relay (this binary's hidden `relay` subcommand);
//! started with their output in a log, sampled for peak RSS, stopped on drop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::measure::{cpu_seconds_of, peak_rss_mib_of};
use crate::relay::RelaySpec;

/// One process of a variant.
#[derive(Debug, Clone)]
pub enum Launch {
    /// `weft run` of this pipeline file; its log beside it (`name.log`).
    Weft(PathBuf),
    /// The relay floor, its log at the path given.
    Relay(RelaySpec, PathBuf),
}

impl Launch {
    /// Where the process's stdout and stderr go.
    pub fn log(&self) -> PathBuf {
        match self {
            Self::Weft(pipeline) => pipeline.with_extension("log"),
            Self::Relay(_, log) => log.clone(),
        }
    }

    fn command(&self, weft: &Path) -> anyhow::Result<Command> {
        Ok(match self {
            Self::Weft(pipeline) => {
                let mut command = Command::new(weft);
                command.arg("run").arg(pipeline);
                command
            }
            Self::Relay(spec, _) => {
                let mut command =
                    Command::new(std::env::current_exe().context("locating this binary")?);
                command.args(spec.args());
                command
            }
        })
    }
}

/// The last lines of each process's log, for a failure's note: the work dir is gone once
/// the run ends (unless `WEFT_BENCH_KEEP` is set).
pub fn log_tails(launches: &[Launch]) -> String {
    let mut out = String::new();
    for launch in launches {
        let log = launch.log();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
        if !tail.is_empty() {
            let name = log.file_stem().unwrap_or_default().to_string_lossy();
            let _ = write!(out, "; {name}: {tail}");
        }
    }
    out
}

/// The running processes of a variant; stopped (SIGINT, then kill) on drop.
pub struct Processes(Vec<Child>);

impl Processes {
    /// Starts every launch, `weft` being the binary of `weft run`.
    pub fn start(launches: &[Launch], weft: &Path) -> anyhow::Result<Self> {
        let mut processes = Self(Vec::new());
        for launch in launches {
            let log = std::fs::File::create(launch.log()).context("creating a process log")?;
            let child = launch
                .command(weft)?
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {launch:?}"))?;
            processes.0.push(child);
        }
        Ok(processes)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }

    /// CPU seconds so far of all the processes together.
    pub fn cpu_seconds(&self) -> f64 {
        self.0.iter().filter_map(|c| cpu_seconds_of(c.id())).sum()
    }

    /// The highest peak RSS of a single process so far, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.0
            .iter()
            .filter_map(|c| peak_rss_mib_of(&c.id().to_string()))
            .fold(0.0, f64::max)
    }

    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a process under test exited early ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Samples the peak RSS of processes while they run.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<f64>>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut peaks = vec![0.0f64; pids.len()];
            while !flag.load(Ordering::Relaxed) {
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    if let Some(mib) = peak_rss_mib_of(&pid.to_string()) {
                        *peak = peak.max(mib);
                    }
                }
                thread::sleep(Duration::from_millis(50));
            }
            peaks
        });
        Self { stop, handle }
    }

    /// Each process's peak, in the order of the pids.
    pub fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
