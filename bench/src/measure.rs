//! What a variant measures and how: the timed batch loop, batch-latency percentiles, peak
//! RSS (VmHWM) and CPU time read from `/proc`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::workload::MemorySource;

/// The figures of one variant, as a child process reports them to the driver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VariantResult {
    /// `native`, `fused`, `unfused-kafka`, `passthrough-kafka`, ...
    pub variant: String,
    /// Events per batch (per component call for the fused chain).
    pub batch: usize,
    /// Processors on the way (0 for a passthrough).
    pub stages: usize,
    pub events_in: u64,
    pub events_out: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    /// Wall time per input event divided by the number of stages.
    pub ns_per_event_stage: f64,
    /// Busy time of each stage per event it received.
    pub stage_ns_per_event: Vec<f64>,
    /// Latency of one batch from the source's hand-over to the sink, in microseconds.
    pub p50_batch_us: Option<f64>,
    pub p99_batch_us: Option<f64>,
    /// Highest resident set of the process (of the largest process over Kafka).
    pub peak_rss_mib: Option<f64>,
    /// Peak RSS of each `weft run` process over Kafka.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_rss_mib: Vec<f64>,
    /// CPU over Kafka: the timed events, and each steady rate (Kafka variants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuFigures>,
    /// Each timed run at saturation over Kafka; `events_per_s` and `cpu` are their medians.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<SaturationRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<LatencyFigures>,
    /// CPU with nothing produced, after the warm-up (Kafka variants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleFigures>,
    /// What a reader should know to interpret the figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl VariantResult {
    /// Fills the rates from counts and elapsed time.
    pub fn finish_rates(&mut self) {
        self.events_per_s = self.events_in as f64 / self.elapsed_s.max(1e-12);
        self.ns_per_event_stage = if self.stages == 0 || self.events_in == 0 {
            self.elapsed_s * 1e9 / self.events_in.max(1) as f64
        } else {
            self.elapsed_s * 1e9 / self.events_in as f64 / self.stages as f64
        };
    }
}

/// CPU-seconds per million events while the timed events went through, from `/proc`
/// (user + system of every thread, dead ones included).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuFigures {
    /// Every `weft run` process of the variant together.
    pub weft_s_per_million: f64,
    /// The broker.
    pub broker_s_per_million: f64,
}

/// One timed run over Kafka: a burst of events produced as fast as the client takes them,
/// from the first produced to the last read at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SaturationRun {
    pub events: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    /// Every weft process of the variant together (0 for the floor, which has none).
    pub weft_cpu_s_per_million: f64,
    pub broker_cpu_s_per_million: f64,
    /// Events per batch of the weft processes over the run (their progress lines); none for
    /// the floor, the relay, or a `weft` that does not count batches.
    #[serde(default)]
    pub events_per_batch: Option<f64>,
}

/// The idle cost over Kafka: CPU while nothing is produced, every client still connected
/// (consumers fetching, producers idle).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleFigures {
    pub seconds: f64,
    /// The variant's processes together (weft or the relay), in % of one core; none for the
    /// floor, which has no process between the bench's clients.
    pub process_core_pct: Option<f64>,
    /// The broker, in % of one core (the bench's reader keeps fetching too).
    pub broker_core_pct: f64,
}

/// Several runs of one figure: their median and range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    /// `None` without samples; the median of an even count is the mean of the middle two.
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.into_iter().filter(|x| x.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            runs: sorted.len(),
        })
    }
}

/// End-to-end latency at a steady rate: from just before the event is handed to the
/// producing client to when the reading client has it (both in the bench process).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyFigures {
    /// Events per second produced.
    pub rate: u64,
    /// The rate is the variant's own median throughput at saturation, not a fixed one.
    #[serde(default)]
    pub at_saturation: bool,
    /// Events timed (those that came out at the end).
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU of the variant's processes together (`weft run`, or the relay), in % of one core,
    /// over the phase.
    pub weft_core_pct: f64,
    /// CPU of the broker, in % of one core.
    pub broker_core_pct: f64,
    /// Highest resident set of a single `weft run` process, MiB.
    pub weft_peak_rss_mib: f64,
    /// Events per batch of the weft processes over the phase: at a steady rate a batch is
    /// what the source had ready, so this says how many events share each batch's fixed cost.
    #[serde(default)]
    pub events_per_batch: Option<f64>,
}

/// User + system CPU seconds of process `pid` so far, all its threads (`/proc/PID/stat`,
/// in clock ticks of 1/100 s: `USER_HZ` is 100 on every Linux this runs on).
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// What the timed loop saw.
#[derive(Debug, Default)]
pub struct Run {
    pub events_in: u64,
    pub events_out: u64,
    pub elapsed: Duration,
    /// One entry per batch, in nanoseconds.
    pub batch_ns: Vec<u64>,
}

impl Run {
    /// The `q` quantile (0..=1) of batch latency in microseconds.
    pub fn batch_quantile_us(&mut self, q: f64) -> Option<f64> {
        quantile_us(&mut self.batch_ns, q)
    }
}

/// The `q` quantile of `samples` (nanoseconds), in microseconds; sorts `samples`.
pub fn quantile_us(samples: &mut [u64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((samples.len() - 1) as f64 * q).round() as usize;
    Some(samples[rank.min(samples.len() - 1)] as f64 / 1e3)
}

/// Pulls batches of up to `batch` events from `source` until it is empty and hands each to
/// `process`, which returns how many events reached the sink. Each batch's latency covers
/// the source's copy, the processing and dropping the output (a null sink).
pub fn drive<E>(
    source: &mut MemorySource<'_>,
    batch: usize,
    make: impl Fn(Vec<u8>) -> E + Copy,
    mut process: impl FnMut(Vec<E>) -> anyhow::Result<usize>,
) -> anyhow::Result<Run> {
    let mut run = Run {
        batch_ns: Vec::with_capacity((source.remaining() / batch.max(1) as u64 + 1) as usize),
        ..Run::default()
    };
    let started = Instant::now();
    while source.remaining() > 0 {
        let t0 = Instant::now();
        let events = source.next_batch(batch, make);
        run.events_in += events.len() as u64;
        run.events_out += process(events)? as u64;
        run.batch_ns.push(t0.elapsed().as_nanos() as u64);
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// Peak resident set (VmHWM) of this process in MiB.
pub fn own_peak_rss_mib() -> Option<f64> {
    peak_rss_mib_of("self")
}

/// Peak resident set (VmHWM) of process `pid` (or `self`) in MiB, while it runs.
pub fn peak_rss_mib_of(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_ranks() {
        let mut samples: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_us(&mut samples, 0.5), Some(51.0));
        assert_eq!(quantile_us(&mut samples, 0.99), Some(99.0));
        assert_eq!(quantile_us(&mut [], 0.5), None);
    }

    #[test]
    fn spread_takes_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).expect("samples");
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of([4.0, 1.0]).map(|s| s.median), Some(2.5));
        assert_eq!(Spread::of([f64::NAN]), None);
        assert_eq!(Spread::of(Vec::new()), None);
    }

    #[test]
    fn own_cpu_time_is_readable_and_grows() {
        let before = cpu_seconds_of(std::process::id()).expect("own /proc stat");
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_seconds_of(std::process::id()).expect("own /proc stat");
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(own_peak_rss_mib().is_some_and(|mib| mib > 0.0));
    }
}
