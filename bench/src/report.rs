//! The report: the Kafka tables (throughput, CPU per event and idle cost; latency beside
//! the no-weft floor and relay), the in-memory native/fused table, the targets of issue 12,
//! the machine, as Markdown and as the JSON document written with `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::{LatencyFigures, Spread, VariantResult};
use crate::targets::{self, Target};

/// Start-up costs, from the `startup` child.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Startup {
    /// Loading one component with no code cache (Cranelift compiles it), median over the
    /// chain's plugins, milliseconds.
    pub load_cold_ms: f64,
    /// Loading one component whose compiled code is in the on-disk cache, median, ms.
    pub load_warm_ms: f64,
    /// A fresh store plus one instantiation of a pre-linked component, median, µs.
    pub instantiate_us: f64,
    /// Instantiation plus `configure`, median, µs.
    pub instantiate_configure_us: f64,
    /// `Chain::build` of the whole chain from loaded plugins (store, instances, configure,
    /// link checks), median, µs.
    pub chain_build_us: f64,
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub memory_gib: f64,
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            memory_gib,
        }
    }
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// When the run began, UTC (`YYYY-MM-DD HH:MM`).
    pub date: String,
    pub command: String,
    /// Events per in-memory run.
    pub events: u64,
    /// Events per saturation run over Kafka.
    pub kafka_events: u64,
    /// Runs per figure where runs repeat (in memory, saturation over Kafka).
    pub runs: usize,
    /// Seconds each steady rate is produced for, and the rate at saturation.
    pub rate_seconds: u64,
    pub saturation_seconds: u64,
    /// Seconds each Kafka variant sat idle for its idle cost.
    #[serde(default)]
    pub idle_seconds: u64,
    pub event_mean_bytes: f64,
    pub chain: Vec<String>,
    /// Wall time of the whole run.
    pub duration_s: f64,
    /// Every run of every variant (in memory: one entry per run; over Kafka: one per
    /// variant, with its saturation runs inside).
    pub variants: Vec<VariantResult>,
    pub startup: Option<Startup>,
    pub targets: Vec<Target>,
}

impl Report {
    /// The runs of an in-memory variant at `batch`, in the order they ran.
    pub fn runs<'a>(
        &'a self,
        variant: &'a str,
        batch: usize,
    ) -> impl Iterator<Item = &'a VariantResult> + 'a {
        self.variants
            .iter()
            .filter(move |v| v.variant == variant && v.batch == batch && v.events_in > 0)
    }

    /// A figure of an in-memory variant at `batch` over its runs.
    pub fn spread(
        &self,
        variant: &str,
        batch: usize,
        f: fn(&VariantResult) -> f64,
    ) -> Option<Spread> {
        Spread::of(self.runs(variant, batch).map(f))
    }

    /// A figure comparing the i-th run of `a` with the i-th run of `b` at `batch` (they run
    /// back to back, so a pair shares the machine's load of the moment).
    pub fn paired(
        &self,
        a: &str,
        b: &str,
        batch: usize,
        f: impl Fn(&VariantResult, &VariantResult) -> f64,
    ) -> Option<Spread> {
        Spread::of(
            self.runs(a, batch)
                .zip(self.runs(b, batch))
                .map(|(x, y)| f(x, y)),
        )
    }

    /// A Kafka variant (`fused-kafka`, `floor-kafka`, ...) that ran.
    pub fn kafka(&self, variant: &str) -> Option<&VariantResult> {
        self.variants
            .iter()
            .find(|v| v.variant == variant && (!v.runs.is_empty() || !v.latency.is_empty()))
    }

    /// Fills the targets from the figures.
    pub fn evaluate(&mut self) {
        self.targets = targets::evaluate(self);
    }

    /// The report as Markdown, ready for the README: header, the Kafka tables, the in-memory
    /// table, start-up, targets, and what failed.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let minutes = self.duration_s / 60.0;
        let _ = writeln!(
            out,
            "Run {} UTC on {} cores (`nproc` = {}, {}), {:.0} GiB; `{}`, {minutes:.1} min.\n\
             Workload: `weft.demo.Title` ({:.0} bytes of Avro on average), chain {}. In memory \
             {} events per run; over Kafka {} events per saturation run, {} s per steady \
             rate, {} s at saturation and {} s idle. {}",
            self.date,
            m.nproc,
            m.nproc,
            m.cpu,
            m.memory_gib,
            self.command,
            self.event_mean_bytes,
            self.chain.join(" → "),
            thousands(self.events as f64),
            thousands(self.kafka_events as f64),
            self.rate_seconds,
            self.saturation_seconds,
            self.idle_seconds,
            if self.runs > 1 {
                format!(
                    "Figures with a range are the median (min–max) of {} runs.",
                    self.runs
                )
            } else {
                "One run per figure.".to_owned()
            },
        );
        self.kafka_table(&mut out);
        self.latency_table(&mut out);
        self.memory_table(&mut out);
        if let Some(s) = &self.startup {
            let _ = writeln!(
                out,
                "\nStart-up: plugin load cold {:.1} ms, warm {:.2} ms; store + instantiation {:.0} µs, \
                 + configure {:.0} µs; whole chain build {:.0} µs.",
                s.load_cold_ms,
                s.load_warm_ms,
                s.instantiate_us,
                s.instantiate_configure_us,
                s.chain_build_us
            );
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\n| target (issue 12) | goal | figure | met |");
            let _ = writeln!(out, "|---|---|---:|---|");
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "not measured",
                };
                let _ = writeln!(out, "| {} | {} | {} | {met} |", t.what, t.goal, t.figure);
            }
        }
        let failed: Vec<String> = self
            .variants
            .iter()
            .filter(|v| v.events_in == 0 && v.latency.is_empty())
            .map(|v| {
                let note = v.note.as_deref().unwrap_or("not run");
                if v.variant.ends_with("-kafka") {
                    format!("- {}: {note}", v.variant)
                } else {
                    format!("- {} (batch {}): {note}", v.variant, v.batch)
                }
            })
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "\nNot measured:\n{}", failed.join("\n"));
        }
        out
    }

    /// Over Kafka at saturation: throughput, CPU per event, peak RSS per process.
    fn kafka_table(&self, out: &mut String) {
        let rows: Vec<&VariantResult> = KAFKA_VARIANTS
            .iter()
            .filter_map(|v| self.kafka(v))
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nOver Kafka: tansu with in-memory storage on the same machine, 3 partitions per \
             topic, bare Avro. Saturation: events produced as fast as the bench's client takes \
             them, timed from the first produced to the last read at the end; CPU-seconds from \
             `/proc` of every weft process together (the relay's for the relay) and of the \
             broker, per million events; the floor is the bench's producer → broker → reader \
             with no weft (one hop), the relay a hand-written rdkafka consume → produce loop \
             with weft's client defaults and no weft (two hops, as a pipeline). Idle: CPU while \
             nothing is produced, every client connected."
        );
        let _ = writeln!(
            out,
            "\n| over Kafka, saturation | weft processes | events/s | weft CPU-s / M events | \
             broker CPU-s / M events | peak RSS per weft process | idle: weft % of a core | \
             idle: broker % of a core |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for v in rows {
            let eps = Spread::of(v.runs.iter().map(|r| r.events_per_s));
            let weft = Spread::of(v.runs.iter().map(|r| r.weft_cpu_s_per_million));
            let broker = Spread::of(v.runs.iter().map(|r| r.broker_cpu_s_per_million));
            let floor = v.variant == "floor-kafka";
            let rss: Vec<String> = v
                .process_rss_mib
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect();
            let idle = v.idle.as_ref();
            let pct = |x: Option<f64>| x.map_or("—".to_owned(), |x| format!("{x:.1}%"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                label(&v.variant),
                // The relay's one process is no weft process.
                if v.variant == "relay-kafka" {
                    0
                } else {
                    v.process_rss_mib.len()
                },
                spread_with(eps, thousands, kilo),
                if floor {
                    "—".to_owned()
                } else {
                    spread(weft, |x| format!("{x:.2}"))
                },
                spread(broker, |x| format!("{x:.2}")),
                if rss.is_empty() {
                    "—".to_owned()
                } else {
                    format!("{} MiB", rss.join(" / "))
                },
                pct(idle.and_then(|i| i.process_core_pct)),
                pct(idle.map(|i| i.broker_core_pct)),
            );
        }
    }

    /// Over Kafka at steady rates: latency beside the floor's and the relay's at the same
    /// rate, CPU shares.
    fn latency_table(&self, out: &mut String) {
        let floor = self.kafka("floor-kafka");
        let relay = self.kafka("relay-kafka");
        let rows: Vec<&VariantResult> = KAFKA_VARIANTS
            .iter()
            .filter(|v| **v != "floor-kafka")
            .filter_map(|v| self.kafka(v))
            .filter(|v| !v.latency.is_empty())
            .collect();
        if rows.is_empty() && floor.is_none_or(|f| f.latency.is_empty()) {
            return;
        }
        let _ = writeln!(
            out,
            "\nLatency: each event carries its send time; p50/p99 of produce → read at the end, \
             beside the floor (one hop) and the relay (two hops, no weft) at the same rate. \
             Saturation: produced at the variant's own median throughput above, so queues build."
        );
        let _ = writeln!(
            out,
            "\n| over Kafka, latency | rate (events/s) | p50 | p99 | floor p50 | floor p99 | \
             relay p50 | relay p99 | weft % of a core | broker % of a core | events per batch |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let ms = |x: Option<f64>| x.map_or("—".to_owned(), |x| format!("{x:.1} ms"));
        for v in &rows {
            for l in &v.latency {
                let f = floor.and_then(|f| same_phase(f, l));
                let r = relay
                    .filter(|r| r.variant != v.variant)
                    .and_then(|r| same_phase(r, l));
                let rate = rate_label(l);
                let _ = writeln!(
                    out,
                    "| {} | {rate} | {:.1} ms | {:.1} ms | {} | {} | {} | {} | {:.1}% | {:.1}% | {} |",
                    label(&v.variant),
                    l.p50_ms,
                    l.p99_ms,
                    ms(f.map(|f| f.p50_ms)),
                    ms(f.map(|f| f.p99_ms)),
                    ms(r.map(|r| r.p50_ms)),
                    ms(r.map(|r| r.p99_ms)),
                    l.weft_core_pct,
                    l.broker_core_pct,
                    l.events_per_batch
                        .map_or("—".to_owned(), |b| format!("{b:.1}")),
                );
            }
        }
        if let Some(f) = floor {
            for l in &f.latency {
                let rate = rate_label(l);
                let _ = writeln!(
                    out,
                    "| floor (no weft) | {rate} | {:.1} ms | {:.1} ms | — | — | — | — | — | {:.1}% | — |",
                    l.p50_ms, l.p99_ms, l.broker_core_pct,
                );
            }
        }
    }

    /// In memory: native against the fused Wasm chain at each batch size.
    fn memory_table(&self, out: &mut String) {
        let batches: Vec<usize> = [1, 64, 1024]
            .into_iter()
            .filter(|b| {
                self.runs("native", *b).next().is_some() || self.runs("fused", *b).next().is_some()
            })
            .collect();
        if batches.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nIn memory (source → chain → null sink, one process per run): native is the \
             same chain in plain Rust over the same bytes (`bench/src/native.rs`); fused is the shipped components in one `Store`, \
             one call per stage per batch. Overhead and ratio are taken run by run (native and \
             fused at a batch size run back to back)."
        );
        let _ = writeln!(
            out,
            "\n| in memory, batch | native events/s | fused events/s | native ns/event/stage | \
             fused ns/event/stage | Wasm overhead ns/event/stage | fused / native | fused peak RSS |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        for batch in batches {
            let eps = |v: &VariantResult| v.events_per_s;
            let ns = |v: &VariantResult| v.ns_per_event_stage;
            let rss = self.spread("fused", batch, |v| v.peak_rss_mib.unwrap_or(f64::NAN));
            let _ = writeln!(
                out,
                "| {batch} | {} | {} | {} | {} | {} | {} | {} |",
                spread_with(self.spread("native", batch, eps), thousands, kilo),
                spread_with(self.spread("fused", batch, eps), thousands, kilo),
                spread(self.spread("native", batch, ns), |x| format!("{x:.0}")),
                spread(self.spread("fused", batch, ns), |x| format!("{x:.0}")),
                spread(
                    self.paired("native", "fused", batch, |n, f| f.ns_per_event_stage
                        - n.ns_per_event_stage),
                    |x| format!("{x:.0}")
                ),
                spread(
                    self.paired("native", "fused", batch, |n, f| f.events_per_s
                        / n.events_per_s),
                    |x| format!("{x:.2}×")
                ),
                rss.map_or("—".to_owned(), |r| format!("{:.1} MiB", r.median)),
            );
        }
    }
}

/// The Kafka variants in the order the tables show them.
const KAFKA_VARIANTS: [&str; 5] = [
    "passthrough-kafka",
    "fused-kafka",
    "unfused-kafka",
    "relay-kafka",
    "floor-kafka",
];

/// The latency phase of `of` that compares with `l`: the same fixed rate, or saturation
/// with saturation (each at its own rate).
fn same_phase<'a>(of: &'a VariantResult, l: &LatencyFigures) -> Option<&'a LatencyFigures> {
    of.latency
        .iter()
        .find(|x| x.at_saturation == l.at_saturation && (l.at_saturation || x.rate == l.rate))
}

/// A Kafka variant's name for a table row.
fn label(variant: &str) -> &str {
    match variant {
        "floor-kafka" => "floor (no weft)",
        "relay-kafka" => "relay (no weft, 2 hops)",
        other => targets::short(other),
    }
}

/// `median (min–max)` with `f` for each number, or the median alone for one run.
pub fn spread(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    spread_with(s, &f, &f)
}

/// As [`spread`], the median written with `median` and the range with `range`.
pub fn spread_with(
    s: Option<Spread>,
    median: impl Fn(f64) -> String,
    range: impl Fn(f64) -> String,
) -> String {
    match s {
        None => "—".to_owned(),
        Some(s) if s.runs < 2 => median(s.median),
        Some(s) => format!("{} ({}–{})", median(s.median), range(s.min), range(s.max)),
    }
}

/// `117,400` as `117k` (ranges of events/s).
fn kilo(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k", x / 1e3)
    } else {
        thousands(x)
    }
}

/// The current time, UTC, as `YYYY-MM-DD HH:MM`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `1234567.8` as `1,234,568`.
/// The rate column of a latency row: the fixed rate, or the saturation rate it was paced at.
fn rate_label(l: &LatencyFigures) -> String {
    if l.at_saturation {
        format!("saturation ({})", thousands(l.rate as f64))
    } else {
        thousands(l.rate as f64)
    }
}

pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
    }
}
