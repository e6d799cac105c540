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

/// Events read and batches completed so far by every `weft run` of `launches` together, from
/// the last progress line of each log (`[  12.0s] in 24000 · … · 2210 batches`, once a
/// second); `None` when there is no weft process or a log has no such line yet (a `weft`
/// from before batches were counted).
pub fn batch_counts(launches: &[Launch]) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    let mut any = false;
    for launch in launches {
        let Launch::Weft(_) = launch else { continue };
        let text = std::fs::read_to_string(launch.log()).ok()?;
        let (events, batches) = text.lines().rev().find_map(progress_counts)?;
        total = (total.0 + events, total.1 + batches);
        any = true;
    }
    any.then_some(total)
}

/// `in N` and `M batches` of one progress line of `weft run`.
fn progress_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let events = rest.split(" in ").nth(1)?.split(' ').next()?.parse().ok()?;
    let batches = rest
        .strip_suffix(" batches")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()?;
    Some((events, batches))
}

/// Events per batch between two [`batch_counts`]; `None` without both, or without a batch.
pub fn events_per_batch(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((e0, b0), (e1, b1)) = (before?, after?);
    (b1 > b0).then(|| e1.saturating_sub(e0) as f64 / (b1 - b0) as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_gives_events_and_batches() {
        let line = "[  12.0s] in 24000 · out 20871 · dead letters 0 · 2000 events/s · 2210 batches";
        assert_eq!(progress_counts(line), Some((24000, 2210)));
        // A `weft` from before batches were counted, and lines that are no progress.
        let old = "[  12.0s] in 24000 · out 20871 · dead letters 0 · 2000 events/s";
        assert_eq!(progress_counts(old), None);
        assert_eq!(progress_counts("subscribed"), None);
    }

    #[test]
    fn events_per_batch_is_the_phase_delta() {
        assert_eq!(
            events_per_batch(Some((1000, 10)), Some((3000, 30))),
            Some(100.0)
        );
        assert_eq!(events_per_batch(Some((1000, 10)), Some((1000, 10))), None);
        assert_eq!(events_per_batch(None, Some((1000, 10))), None);
    }
}
