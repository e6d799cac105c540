//! Replacing parts of a running pipeline between two steps, for `weft serve`'s hot reload:
//! the chain (processors and limits) and the sinks change while the source, its position and
//! its Kafka group membership stay. A step leaves its batch written but in flight; a swap
//! first flushes it and acknowledges it to the source ("finish, flush, commit, swap"), so
//! nothing is in flight across the swap and nothing can be lost or repeated.

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use weft_runtime::Chain;

use super::RunningPipeline;
use crate::Result;
use crate::config::{DeadLetterConfig, Limits, SinkConfig};
use crate::io::{PartitionLag, Stall, open_dead_letter, open_sink};

/// What to replace. Each part is opened before anything is closed, so a swap that fails
/// leaves the pipeline as it was.
#[derive(Default)]
pub struct Swap {
    /// A chain built against [`RunningPipeline::source_schema`] (`pipeline::build_chain`),
    /// with the sha256 of each stage.
    pub chain: Option<(Chain, Vec<String>)>,
    /// A new sink; needed too when the new chain emits another schema.
    pub sink: Option<SinkConfig>,
    pub dead_letter: Option<DeadLetterConfig>,
    /// Batch size and linger for the next steps (the chain's own limits are built into it).
    pub limits: Option<Limits>,
    /// A new reader schema for the source, with its registry id (a subject's new latest
    /// version); `chain` must then be built against it.
    pub reader: Option<(u32, Arc<Schema>)>,
}

/// What a swap replaced, so a canary can swap it back.
#[derive(Default)]
pub struct Replaced {
    /// The chain that ran before, with the sha256 of each stage.
    pub chain: Option<(Chain, Vec<String>)>,
    /// The source's reader schema before, with its id.
    pub reader: Option<(u32, Arc<Schema>)>,
}

impl RunningPipeline {
    /// The schema the source's events are written with: what a new chain is built against.
    pub fn source_schema(&self) -> Arc<Schema> {
        self.source.schema()
    }

    /// The schema the sink receives.
    pub fn output_schema(&self) -> Arc<Schema> {
        self.output_schema.clone()
    }

    /// The running chain (its stages' schemas and reads, for the registry's lineage).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// sha256 of each processor's component, in chain order.
    pub fn stage_digests(&self) -> &[String] {
        &self.digests
    }

    /// How the source is named in errors and summaries.
    pub fn source_name(&self) -> String {
        self.source.name()
    }

    /// The source's lag per partition (Kafka), for `weft serve`'s status and metrics.
    pub fn source_lag(&self) -> Vec<PartitionLag> {
        self.source.lag()
    }

    /// Why a sink is waiting while it retries (a broker that is down), read by `weft serve`'s
    /// status while the pipeline's thread is blocked in that sink; sinks a swap opens share it.
    pub fn stall(&self) -> Stall {
        self.stall.clone()
    }

    /// Partition assignments the source received (Kafka rebalances), for `weft serve`: a
    /// swap keeps the source, so it adds none.
    pub fn source_assignments(&self) -> u64 {
        self.source.assignments()
    }

    /// The registry id of the source's reader schema when it follows a subject's latest.
    pub fn reader_schema_id(&self) -> Option<u32> {
        self.source.reader_schema_id()
    }

    /// Events per batch from the next step on (a canary window takes small batches, so a
    /// version that traps on everything fails few events before it is rolled back).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Applies `swap` between two steps. The batch in flight is flushed and acknowledged
    /// first (a failure there fails the run as a step would). New sinks are opened next, then
    /// the source's new reader schema is set; only then are the old sinks closed (flushed and
    /// finished), so on an error nothing has changed. The counters of the run go on; the
    /// stage stats start again with the new chain. Returns what it replaced.
    pub fn swap(&mut self, swap: Swap) -> Result<Replaced> {
        self.refuse_after_failure()?;
        match self.finish_in_flight() {
            Ok(done) => self.unreported.add(&done),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        }
        let input = match &swap.reader {
            Some((_, schema)) => schema.clone(),
            None => self.source.schema(),
        };
        let output_schema = match &swap.chain {
            Some((chain, _)) => chain.output_schema().unwrap_or(input),
            None if swap.reader.is_some() && self.chain.output_schema().is_none() => input,
            None => self.output_schema.clone(),
        };
        let max_depth = swap.limits.map_or(self.max_depth, |l| l.max_depth);
        let sink = match &swap.sink {
            Some(config) => Some(open_sink(
                config,
                output_schema.clone(),
                max_depth,
                &self.stall,
            )?),
            None => None,
        };
        let dead_sink = match &swap.dead_letter {
            Some(config) => Some(open_dead_letter(config, max_depth, &self.stall)?),
            None => None,
        };
        let mut replaced = Replaced::default();
        if let Some((id, schema)) = swap.reader {
            let before = (self.source.reader_schema_id(), self.source.schema());
            // The last fallible part: the new sinks opened above are dropped unused on an error.
            self.source.set_reader(id, schema)?;
            if let (Some(id), schema) = before {
                replaced.reader = Some((id, schema));
            }
        }
        let new_sinks = sink.is_some() || dead_sink.is_some();
        if let Some(mut sink) = sink {
            std::mem::swap(&mut self.sink, &mut sink);
            self.summary.sink = self.sink.name();
            // Everything written was flushed above; closing finishes the file.
            sink.close()?;
        }
        if let Some(mut dead_sink) = dead_sink {
            std::mem::swap(&mut self.dead_sink, &mut dead_sink);
            self.summary.dead_letter = self.dead_sink.name().to_string();
            dead_sink.flush()?;
        }
        if new_sinks {
            self.source
                .watch_deliveries(super::gates(self.sink.as_ref(), &self.dead_sink));
        }
        if let Some((chain, digests)) = swap.chain {
            self.summary.processors = chain.stage_ids();
            let chain = std::mem::replace(&mut self.chain, chain);
            let digests = std::mem::replace(&mut self.digests, digests);
            replaced.chain = Some((chain, digests));
        }
        self.output_schema = output_schema;
        if let Some(limits) = swap.limits {
            self.batch_size = limits.batch_size;
            self.linger = Duration::from_millis(limits.linger_ms);
            self.max_depth = limits.max_depth;
        }
        Ok(replaced)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use weft_runtime::{Runtime, RuntimeOptions};

    use super::*;
    use crate::config;
    use crate::pipeline::{LocalOnly, Pipeline, build_chain};

    const SCHEMA: &str = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"}]}"#;
    const WIDER: &str = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"},{"name":"lang","type":"string","default":"en"}]}"#;

    fn open(dir: &Path, runtime: &Runtime) -> (RunningPipeline, config::PipelineConfig) {
        std::fs::write(dir.join("row.avsc"), SCHEMA).expect("write schema");
        std::fs::write(dir.join("in.jsonl"), "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n")
            .expect("write input");
        let text = "[[source]]\nkind = \"jsonl\"\npath = \"in.jsonl\"\nschema = \"row.avsc\"\n\n\
                    [sink]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n\n[limits]\nbatch_size = 1\n";
        let config = config::parse_str(text, &dir.join("p.toml"), dir).expect("valid");
        let running = Pipeline::build(config.clone(), runtime, &LocalOnly)
            .expect("builds")
            .open()
            .expect("opens");
        (running, config)
    }

    #[test]
    fn a_source_with_a_fixed_schema_refuses_a_new_reader_and_nothing_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).expect("runtime");
        let (mut running, config) = open(dir.path(), &runtime);
        running.step().expect("first batch");
        let wider = Arc::new(Schema::parse_str(WIDER).expect("schema"));
        let mut other_sink = config.sink.clone();
        if let config::SinkConfig::Jsonl { path } = &mut other_sink {
            *path = dir.path().join("other.jsonl");
        }
        let chain = build_chain(&config, &runtime, &LocalOnly, wider.clone()).expect("chain");
        let refused = running.swap(Swap {
            chain: Some(chain),
            reader: Some((7, wider)),
            sink: Some(other_sink),
            ..Swap::default()
        });
        let Err(e) = refused else {
            panic!("a jsonl source switched its schema");
        };
        assert!(e.to_string().contains("fixed schema"), "{e}");
        // Still reading with its own schema into its own sink.
        assert_eq!(running.reader_schema_id(), None);
        assert_eq!(
            running.output_schema().canonical_form(),
            Schema::parse_str(SCHEMA).expect("schema").canonical_form()
        );
        running.step().expect("second batch");
        let out = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("out");
        assert_eq!(out.lines().count(), 2, "{out}");
    }

    #[test]
    fn a_swap_hands_back_the_chain_it_replaced_and_batch_sizes_can_shrink() {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(RuntimeOptions { cache_dir: None }).expect("runtime");
        let (mut running, config) = open(dir.path(), &runtime);
        let chain =
            build_chain(&config, &runtime, &LocalOnly, running.source_schema()).expect("chain");
        let replaced = running
            .swap(Swap {
                chain: Some(chain),
                ..Swap::default()
            })
            .expect("swaps");
        assert!(replaced.chain.is_some(), "the old chain comes back");
        assert!(replaced.reader.is_none());
        running.set_batch_size(0);
        assert_eq!(running.batch_size(), 1, "never below one event");
    }
}
