//! The Kafka variants: one `weft run` process per processor with topics between them, and
//! a passthrough (source → sink, no processor) as the broker's I/O ceiling here.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::measure::VariantResult;

/// `weft` beside this binary (both are built into the same target folder).
pub fn default_weft_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    Ok(exe.with_file_name("weft"))
}

/// Runs the Kafka variants.
pub fn run_all(_weft: &Path, _plugins: &Path, _events: u64) -> anyhow::Result<Vec<VariantResult>> {
    let blocked = |variant: &str, stages| VariantResult {
        variant: variant.into(),
        batch: 1024,
        stages,
        note: Some("blocked: weft has no Kafka source/sink yet".into()),
        ..VariantResult::default()
    };
    Ok(vec![
        blocked("unfused-kafka", 3),
        blocked("passthrough-kafka", 0),
    ])
}
