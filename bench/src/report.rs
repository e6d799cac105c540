//! The report: the table with ratios, the targets of issue 5 checked against the figures,
//! the machine, and the JSON document written with `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::VariantResult;

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

/// One target of issue 5 against its figure.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub goal: String,
    pub figure: Option<f64>,
    pub unit: String,
    /// `None` when the figure is missing (variant skipped or blocked).
    pub met: Option<bool>,
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub command: String,
    pub events: u64,
    pub event_mean_bytes: f64,
    pub chain: Vec<String>,
    pub variants: Vec<VariantResult>,
    pub startup: Option<Startup>,
    pub ratios: Vec<(String, f64)>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn find(&self, variant: &str, batch: usize) -> Option<&VariantResult> {
        self.variants
            .iter()
            .find(|v| v.variant == variant && v.batch == batch && v.events_in > 0)
    }

    /// Fills the ratios and the targets from the variants and start-up figures.
    pub fn evaluate(&mut self) {
        let native = self.find("native", 1024).cloned();
        let unfused = self.find("unfused-kafka", 1024).cloned();
        let fused_kafka = self.find("fused-kafka", 1024).cloned();
        let mut ratios = Vec::new();
        let fused: Vec<VariantResult> = self
            .variants
            .iter()
            .filter(|v| v.variant == "fused" && v.events_in > 0)
            .cloned()
            .collect();
        for f in &fused {
            if let Some(n) = &native {
                ratios.push((
                    format!("fused batch {} / native (events/s)", f.batch),
                    f.events_per_s / n.events_per_s,
                ));
            }
        }
        let fused_1024 = fused.iter().find(|f| f.batch == 1024).cloned();
        if let (Some(f), Some(u)) = (&fused_1024, &unfused) {
            ratios.push((
                "fused batch 1024 (memory) / unfused over Kafka (events/s)".into(),
                f.events_per_s / u.events_per_s,
            ));
        }
        if let (Some(f), Some(u)) = (&fused_kafka, &unfused) {
            ratios.push((
                "fused over Kafka / unfused over Kafka (events/s)".into(),
                f.events_per_s / u.events_per_s,
            ));
        }
        let overhead = match (&fused_1024, &native) {
            (Some(f), Some(n)) => Some(f.ns_per_event_stage - n.ns_per_event_stage),
            _ => None,
        };
        if let Some(o) = overhead {
            ratios.push(("Wasm overhead per stage at batch 1024 (ns/event)".into(), o));
        }
        self.ratios = ratios.clone();
        let ratio = |name: &str| {
            ratios
                .iter()
                .find(|(n, _)| n.starts_with(name))
                .map(|(_, r)| *r)
        };
        let at_most = |figure: Option<f64>, bound: f64| figure.map(|f| f <= bound);
        let at_least = |figure: Option<f64>, bound: f64| figure.map(|f| f >= bound);
        let fused_native = ratio("fused batch 1024 / native");
        let fused_unfused = ratio("fused batch 1024 (memory) / unfused");
        let startup = self.startup.clone();
        let rss = fused_1024.as_ref().and_then(|f| f.peak_rss_mib);
        self.targets = vec![
            Target {
                what: "fused / native events/s at batch 1024".into(),
                goal: ">= 0.5 (aim 0.8)".into(),
                figure: fused_native,
                unit: "x".into(),
                met: at_least(fused_native, 0.5),
            },
            Target {
                what: "fused / unfused over Kafka events/s".into(),
                goal: ">= 10".into(),
                figure: fused_unfused,
                unit: "x".into(),
                met: at_least(fused_unfused, 10.0),
            },
            Target {
                what: "Wasm overhead per stage at batch 1024".into(),
                goal: "<= 150".into(),
                figure: overhead,
                unit: "ns/event".into(),
                met: at_most(overhead, 150.0),
            },
            Target {
                what: "warm plugin load".into(),
                goal: "<= 10".into(),
                figure: startup.as_ref().map(|s| s.load_warm_ms),
                unit: "ms".into(),
                met: at_most(startup.as_ref().map(|s| s.load_warm_ms), 10.0),
            },
            Target {
                what: "instantiation".into(),
                goal: "<= 100".into(),
                figure: startup.as_ref().map(|s| s.instantiate_us),
                unit: "µs".into(),
                met: at_most(startup.as_ref().map(|s| s.instantiate_us), 100.0),
            },
            Target {
                what: "peak RSS of the 3-stage fused pipeline".into(),
                goal: "<= 100".into(),
                figure: rss,
                unit: "MiB".into(),
                met: at_most(rss, 100.0),
            },
        ];
    }

    /// The report as Markdown: machine, table, ratios, start-up, targets.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {} cores ({}), {:.0} GiB. Workload: {} events of `weft.demo.Title` \
             ({:.0} bytes Avro each on average), chain {}.\n",
            m.nproc,
            m.cpu,
            m.memory_gib,
            self.events,
            self.event_mean_bytes,
            self.chain.join(" → ")
        );
        let _ = writeln!(
            out,
            "| variant | batch | events/s | ns/event/stage | p50 batch | p99 batch | peak RSS | vs native |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let native = self.find("native", 1024).map(|n| n.events_per_s);
        for v in &self.variants {
            if v.events_in == 0 && !v.latency.is_empty() {
                // Latency only (the floor): in the Kafka table below.
                continue;
            }
            if v.events_in == 0 {
                let _ = writeln!(
                    out,
                    "| {} | {} | — | — | — | — | — | {} |",
                    v.variant,
                    v.batch,
                    v.note.as_deref().unwrap_or("not run")
                );
                continue;
            }
            let vs = native.map_or("—".to_owned(), |n| format!("{:.2}×", v.events_per_s / n));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                v.variant,
                v.batch,
                thousands(v.events_per_s),
                v.ns_per_event_stage,
                micros(v.p50_batch_us),
                micros(v.p99_batch_us),
                v.peak_rss_mib
                    .map_or("—".to_owned(), |r| format!("{r:.1} MiB")),
                vs
            );
        }
        self.kafka_table(&mut out);
        if !self.ratios.is_empty() {
            let _ = writeln!(out);
            for (name, value) in &self.ratios {
                let _ = writeln!(out, "- {name}: **{value:.2}**");
            }
        }
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
        let _ = writeln!(out, "\n| target | goal | figure | met |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for t in &self.targets {
            let figure = t
                .figure
                .map_or("—".to_owned(), |f| format!("{f:.2} {}", t.unit));
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(out, "| {} | {} | {} | {} |", t.what, t.goal, figure, met);
        }
        let notes: Vec<String> = self
            .variants
            .iter()
            .filter(|v| v.events_in > 0)
            .filter_map(|v| {
                v.note
                    .as_ref()
                    .map(|n| format!("- {} (batch {}): {n}", v.variant, v.batch))
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n{}", notes.join("\n"));
        }
        out
    }
}

impl Report {
    /// CPU per event over Kafka, and latency at each steady rate beside the no-weft floor.
    fn kafka_table(&self, out: &mut String) {
        let kafka: Vec<&VariantResult> = self
            .variants
            .iter()
            .filter(|v| v.cpu.is_some() || !v.latency.is_empty())
            .collect();
        if kafka.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n| over Kafka | events/s | weft CPU-s / M events | broker CPU-s / M events | rate | p50 | p99 | weft % of a core | broker % of a core | weft peak RSS |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let none = || "—".to_owned();
        for v in kafka {
            let (rate, cpu_w, cpu_b) = match &v.cpu {
                Some(c) => (
                    thousands(v.events_per_s),
                    format!("{:.2}", c.weft_s_per_million),
                    format!("{:.2}", c.broker_s_per_million),
                ),
                None => (none(), none(), none()),
            };
            let _ = writeln!(
                out,
                "| {} | {rate} | {cpu_w} | {cpu_b} | saturation | — | — | — | — | {} |",
                v.variant,
                v.peak_rss_mib.map_or_else(none, |r| format!("{r:.1} MiB"))
            );
            for l in &v.latency {
                let _ = writeln!(
                    out,
                    "| {} | — | — | — | {}/s | {:.1} ms | {:.1} ms | {:.1}% | {:.1}% | {:.1} MiB |",
                    v.variant,
                    thousands(l.rate as f64),
                    l.p50_ms,
                    l.p99_ms,
                    l.weft_core_pct,
                    l.broker_core_pct,
                    l.weft_peak_rss_mib
                );
            }
        }
    }
}

fn micros(us: Option<f64>) -> String {
    match us {
        None => "—".to_owned(),
        Some(us) if us >= 10_000.0 => format!("{:.1} ms", us / 1e3),
        Some(us) if us >= 100.0 => format!("{us:.0} µs"),
        Some(us) => format!("{us:.1} µs"),
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(x: f64) -> String {
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
