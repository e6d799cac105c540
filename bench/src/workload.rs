//! The workload every variant runs: events of the demo title schema from weft's seeded
//! generator, encoded once, then served from memory so that no variant pays for generation.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apache_avro::Schema;
use weft_host::io::Source;
use weft_host::io::generate::Generator;

/// The demo schema (`weft.demo.Title`).
pub const TITLE_SCHEMA: &str = include_str!("../../plugins/enrich/schemas/title.avsc");

/// Seed of the generator: every run and every variant sees the same events.
pub const SEED: u64 = 42;

/// Distinct events held in memory; the memory source cycles through them. Small enough
/// (a few MiB) not to dominate a variant's peak RSS, large enough to defeat caching of
/// any one event's branches.
pub const DISTINCT: usize = 16_384;

/// The encoded events (Avro binary datums, no framing) and their schema.
pub struct Workload {
    schema: Arc<Schema>,
    values: Vec<Vec<u8>>,
}

impl Workload {
    /// Generates `distinct` events with the weft generator (seed [`SEED`]).
    pub fn generate(distinct: usize) -> anyhow::Result<Self> {
        let schema = Arc::new(Schema::parse_str(TITLE_SCHEMA).context("parsing title.avsc")?);
        let mut generator = Generator::new(schema.clone(), distinct as u64, None, SEED)
            .context("building the generator")?;
        let mut batch = weft_host::io::Batch::default();
        let mut values = Vec::with_capacity(distinct);
        loop {
            batch.clear();
            let more = generator
                .poll(4096, Duration::ZERO, &mut batch)
                .context("generating events")?;
            values.extend(batch.events.drain(..).map(|e| e.value));
            if !more {
                break;
            }
        }
        anyhow::ensure!(!values.is_empty(), "the generator produced no events");
        Ok(Self { schema, values })
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Mean size of an event's value in bytes.
    pub fn mean_bytes(&self) -> f64 {
        self.values.iter().map(Vec::len).sum::<usize>() as f64 / self.values.len() as f64
    }

    pub fn values(&self) -> &[Vec<u8>] {
        &self.values
    }

    /// A source of `total` events cycling through the workload.
    pub fn source(&self, total: u64) -> MemorySource<'_> {
        MemorySource {
            values: &self.values,
            next: 0,
            remaining: total,
        }
    }
}

/// Serves copies of the workload's events, as a source hands over fresh buffers.
pub struct MemorySource<'a> {
    values: &'a [Vec<u8>],
    next: usize,
    remaining: u64,
}

impl MemorySource<'_> {
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Up to `max` events, each made from a copy of the next value by `make`.
    pub fn next_batch<E>(&mut self, max: usize, mut make: impl FnMut(Vec<u8>) -> E) -> Vec<E> {
        let n = (max as u64).min(self.remaining) as usize;
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            batch.push(make(self.values[self.next].clone()));
            self.next = (self.next + 1) % self.values.len();
        }
        self.remaining -= n as u64;
        batch
    }
}
