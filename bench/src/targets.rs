//! The targets of issue 12 checked against one run's figures: each goal, the figure that
//! answers it, and whether it is met (not measured when a variant was left out or failed).
//! The latency targets are over the one-hop floor; the same bounds over the relay
//! (two hops, no weft) follow them, since a pipeline cannot pay fewer hops than the relay.

use serde::Serialize;

use crate::measure::{LatencyFigures, SaturationRun, Spread};
use crate::report::{Report, thousands};

/// Fused over Kafka before issue 12, events/s: the median of the 44–66k.
pub const BASELINE_FUSED_KAFKA_EVENTS_PER_S: f64 = 55_000.0;
/// The steady rate the latency and CPU-share targets are set at.
pub const TARGET_RATE: u64 = 2_000;

/// One target against its figure.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub goal: String,
    /// The figure as the report shows it (median, range, what it is compared with).
    pub figure: String,
    /// The number the goal is checked on.
    pub value: Option<f64>,
    /// `None` when the figure is missing.
    pub met: Option<bool>,
}

impl Target {
    fn new(what: impl Into<String>, goal: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            goal: goal.into(),
            figure: "—".into(),
            value: None,
            met: None,
        }
    }

    fn check(mut self, value: Option<f64>, figure: String, ok: impl Fn(f64) -> bool) -> Self {
        if let Some(v) = value {
            self.value = Some(v);
            self.figure = figure;
            self.met = Some(ok(v));
        }
        self
    }
}

/// A Kafka variant's figure over its saturation runs.
fn kafka_spread(report: &Report, variant: &str, f: fn(&SaturationRun) -> f64) -> Option<Spread> {
    let v = report.kafka(variant)?;
    Spread::of(v.runs.iter().map(f))
}

/// The latency phase of `variant` at the fixed `rate`.
fn at_rate<'a>(report: &'a Report, variant: &str, rate: u64) -> Option<&'a LatencyFigures> {
    report
        .kafka(variant)?
        .latency
        .iter()
        .find(|l| l.rate == rate && !l.at_saturation && l.samples > 0)
}

/// Every target of issue 12, in the order the issue lists them.
pub fn evaluate(report: &Report) -> Vec<Target> {
    let mut targets = Vec::new();
    for (variant, bound) in [("passthrough-kafka", 2.0), ("fused-kafka", 4.0)] {
        let cpu = kafka_spread(report, variant, |r| r.weft_cpu_s_per_million);
        targets.push(
            Target::new(
                format!("{}: weft CPU-s per million events", short(variant)),
                format!("≤ {bound}"),
            )
            .check(
                cpu.map(|s| s.median),
                crate::report::spread(cpu, |x| format!("{x:.2}")),
                |v| v <= bound,
            ),
        );
    }
    let goal = 3.0 * BASELINE_FUSED_KAFKA_EVENTS_PER_S;
    let eps = kafka_spread(report, "fused-kafka", |r| r.events_per_s);
    targets.push(
        Target::new(
            "fused over Kafka: events/s at saturation",
            format!(
                "≥ {} (3× the issue's {}, median of 44–66k)",
                thousands(goal),
                thousands(BASELINE_FUSED_KAFKA_EVENTS_PER_S)
            ),
        )
        .check(
            eps.map(|s| s.median),
            format!(
                "{} ({:.2}×)",
                crate::report::spread(eps, thousands),
                eps.map_or(0.0, |s| s.median) / BASELINE_FUSED_KAFKA_EVENTS_PER_S
            ),
            |v| v >= goal,
        ),
    );
    for (floor_variant, floor_name) in [("floor-kafka", "floor"), ("relay-kafka", "relay")] {
        let floor = at_rate(report, floor_variant, TARGET_RATE);
        for variant in ["passthrough-kafka", "fused-kafka"] {
            let at = at_rate(report, variant, TARGET_RATE);
            for (name, bound, pick) in [
                (
                    "p50",
                    5.0,
                    (|l: &LatencyFigures| l.p50_ms) as fn(&LatencyFigures) -> f64,
                ),
                ("p99", 15.0, |l: &LatencyFigures| l.p99_ms),
            ] {
                let added = at.zip(floor).map(|(a, f)| pick(a) - pick(f));
                let figure = at.zip(floor).map_or_else(String::new, |(a, f)| {
                    format!(
                        "{:+.1} ms ({:.1} vs {floor_name} {:.1})",
                        pick(a) - pick(f),
                        pick(a),
                        pick(f)
                    )
                });
                let what = if floor_name == "floor" {
                    "the floor".to_owned()
                } else {
                    "the relay floor (2 hops, no weft)".to_owned()
                };
                targets.push(
                    Target::new(
                        format!(
                            "{}: {name} added over {what} at {}/s",
                            short(variant),
                            thousands(TARGET_RATE as f64)
                        ),
                        format!("≤ +{bound} ms"),
                    )
                    // A floor far above weft's own figure is an outlier of the floor's run
                    // (one stalled fetch), not weft adding nothing: not counted as met.
                    .check(added, figure, |v| (-bound..=bound).contains(&v)),
                );
            }
        }
    }
    for variant in ["passthrough-kafka", "fused-kafka"] {
        let share = at_rate(report, variant, TARGET_RATE).map(|l| l.weft_core_pct);
        targets.push(
            Target::new(
                format!(
                    "{}: weft's share of a core at {}/s",
                    short(variant),
                    thousands(TARGET_RATE as f64)
                ),
                "< 5%",
            )
            .check(share, format!("{:.1}%", share.unwrap_or(0.0)), |v| v < 5.0),
        );
    }
    let largest = report
        .variants
        .iter()
        .filter(|v| v.variant.ends_with("-kafka") && v.variant != "relay-kafka")
        .filter_map(|v| v.peak_rss_mib.map(|r| (r, short(&v.variant))))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    targets.push(
        Target::new("peak RSS of each weft process over Kafka", "≤ 100 MiB").check(
            largest.map(|(r, _)| r),
            largest.map_or_else(String::new, |(r, v)| format!("{r:.1} MiB (largest: {v})")),
            |v| v <= 100.0,
        ),
    );
    let overhead = report.paired("native", "fused", 1024, |n, f| {
        f.ns_per_event_stage - n.ns_per_event_stage
    });
    targets.push(
        Target::new(
            "Wasm overhead per event per stage at batch 1024 (fused − native)",
            "≤ 150 ns",
        )
        .check(
            overhead.map(|s| s.median),
            crate::report::spread(overhead, |x| format!("{x:.0} ns")),
            |v| v <= 150.0,
        ),
    );
    let ratio = report.paired("native", "fused", 1024, |n, f| {
        f.events_per_s / n.events_per_s
    });
    targets.push(
        Target::new("fused / native events/s at batch 1024", "≥ 0.8×").check(
            ratio.map(|s| s.median),
            crate::report::spread(ratio, |x| format!("{x:.2}×")),
            |v| v >= 0.8,
        ),
    );
    targets
}

/// `fused-kafka` as `fused`.
pub fn short(variant: &str) -> &str {
    variant.strip_suffix("-kafka").unwrap_or(variant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{IdleFigures, VariantResult};
    use crate::report::Machine;

    fn kafka(variant: &str, eps: &[f64], weft_cpu: f64, at_2k: (f64, f64, f64)) -> VariantResult {
        VariantResult {
            variant: variant.into(),
            batch: 1024,
            events_in: 1000,
            runs: eps
                .iter()
                .map(|&e| SaturationRun {
                    events: 1000,
                    elapsed_s: 1000.0 / e,
                    events_per_s: e,
                    weft_cpu_s_per_million: weft_cpu,
                    broker_cpu_s_per_million: 1.5,
                    events_per_batch: None,
                })
                .collect(),
            latency: vec![LatencyFigures {
                rate: TARGET_RATE,
                samples: 100,
                p50_ms: at_2k.0,
                p99_ms: at_2k.1,
                weft_core_pct: at_2k.2,
                ..LatencyFigures::default()
            }],
            peak_rss_mib: Some(60.0),
            process_rss_mib: vec![60.0],
            idle: Some(IdleFigures {
                seconds: 10.0,
                process_core_pct: Some(0.8),
                broker_core_pct: 2.5,
            }),
            ..VariantResult::default()
        }
    }

    fn memory(variant: &str, eps: f64, ns: f64) -> VariantResult {
        VariantResult {
            variant: variant.into(),
            batch: 1024,
            stages: 3,
            events_in: 1000,
            events_per_s: eps,
            ns_per_event_stage: ns,
            ..VariantResult::default()
        }
    }

    fn report(variants: Vec<VariantResult>) -> Report {
        let mut report = Report {
            machine: Machine {
                nproc: 2,
                cpu: "Test CPU".into(),
                memory_gib: 1.0,
            },
            date: "2026-11-30 12:00".into(),
            command: "weft-bench".into(),
            events: 1000,
            kafka_events: 1000,
            runs: 3,
            rate_seconds: 1,
            saturation_seconds: 1,
            idle_seconds: 10,
            event_mean_bytes: 93.0,
            chain: vec!["filter()".into()],
            duration_s: 60.0,
            variants,
            startup: None,
            targets: Vec::new(),
        };
        report.evaluate();
        report
    }

    fn met(report: &Report, what: &str) -> Option<bool> {
        report
            .targets
            .iter()
            .find(|t| t.what.starts_with(what))
            .unwrap_or_else(|| panic!("no target {what:?}"))
            .met
    }

    #[test]
    fn each_target_is_checked_against_its_bound() {
        let mut unfused = kafka("unfused-kafka", &[60_000.0], 9.0, (60.0, 90.0, 20.0));
        unfused.peak_rss_mib = Some(120.0);
        // The relay is no weft process: its RSS is not weft's.
        let mut relay = kafka("relay-kafka", &[150_000.0], 1.2, (22.0, 31.0, 3.0));
        relay.peak_rss_mib = Some(500.0);
        let r = report(vec![
            kafka(
                "passthrough-kafka",
                &[120_000.0, 100_000.0, 140_000.0],
                1.9,
                (30.0, 40.0, 6.0),
            ),
            kafka(
                "fused-kafka",
                &[170_000.0, 160_000.0, 180_000.0],
                4.5,
                (24.0, 43.9, 4.0),
            ),
            unfused,
            kafka("floor-kafka", &[200_000.0], 0.0, (20.0, 28.9, 0.0)),
            relay,
            memory("native", 500_000.0, 660.0),
            memory("fused", 420_000.0, 790.0),
        ]);
        assert_eq!(met(&r, "passthrough: weft CPU-s"), Some(true));
        assert_eq!(met(&r, "fused: weft CPU-s"), Some(false));
        // 170,000 ≥ 3 × 55,000.
        assert_eq!(met(&r, "fused over Kafka: events/s"), Some(true));
        // 24.0 − 20.0 = +4.0 ms ≤ +5; 43.9 − 28.9 = +15.0 ms ≤ +15.
        assert_eq!(met(&r, "fused: p50 added"), Some(true));
        assert_eq!(met(&r, "fused: p99 added"), Some(true));
        assert_eq!(
            met(&r, "passthrough: p50 added over the floor"),
            Some(false)
        );
        // Over the relay: 24.0 − 22.0 = +2.0 ms, 43.9 − 31.0 = +12.9 ms; passthrough's
        // 30.0 − 22.0 = +8.0 ms misses.
        assert_eq!(met(&r, "fused: p50 added over the relay"), Some(true));
        assert_eq!(met(&r, "fused: p99 added over the relay"), Some(true));
        assert_eq!(
            met(&r, "passthrough: p50 added over the relay"),
            Some(false)
        );
        assert_eq!(met(&r, "fused: weft's share"), Some(true));
        assert_eq!(met(&r, "passthrough: weft's share"), Some(false));
        assert_eq!(met(&r, "peak RSS"), Some(false));
        assert_eq!(met(&r, "Wasm overhead"), Some(true));
        assert_eq!(met(&r, "fused / native"), Some(true));
        let markdown = r.to_markdown();
        assert!(
            markdown.contains("2 cores (`nproc` = 2, Test CPU)"),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "| fused | 1 | 170,000 (160k–180k) | 4.50 (4.50–4.50) | 1.50 (1.50–1.50) | 60.0 MiB | 0.8% | 2.5% |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "| fused | 2,000 | 24.0 ms | 43.9 ms | 20.0 ms | 28.9 ms | 22.0 ms | 31.0 ms | 4.0% |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("| relay (no weft, 2 hops) | 2,000 | 22.0 ms | 31.0 ms | 20.0 ms | 28.9 ms | — | — | 3.0% |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| relay (no weft, 2 hops) | 0 | 150,000 | 1.20 | 1.50 | 60.0 MiB |"),
            "{markdown}"
        );
        assert!(markdown.contains("| fused: p50 added over the relay floor (2 hops, no weft) at 2,000/s | ≤ +5 ms | +2.0 ms (24.0 vs relay 22.0) | yes |"), "{markdown}");
        assert!(
            markdown.contains("| 1024 | 500,000 | 420,000 | 660 | 790 | 130 | 0.84× |"),
            "{markdown}"
        );
        assert!(markdown.contains("| fused: p50 added over the floor at 2,000/s | ≤ +5 ms | +4.0 ms (24.0 vs floor 20.0) | yes |"), "{markdown}");
        assert!(markdown.contains("| peak RSS of each weft process over Kafka | ≤ 100 MiB | 120.0 MiB (largest: unfused) | **no** |"), "{markdown}");
    }

    #[test]
    fn a_variant_left_out_is_not_measured_rather_than_met() {
        let r = report(vec![kafka(
            "fused-kafka",
            &[100_000.0],
            3.0,
            (22.0, 30.0, 2.0),
        )]);
        // No floor: latency over it cannot be judged; no passthrough, no in-memory runs.
        assert_eq!(met(&r, "fused: p50 added"), None);
        assert_eq!(met(&r, "passthrough: weft CPU-s"), None);
        assert_eq!(met(&r, "Wasm overhead"), None);
        assert_eq!(met(&r, "fused: weft CPU-s"), Some(true));
        assert!(r.to_markdown().contains("| not measured |"));
    }
}
