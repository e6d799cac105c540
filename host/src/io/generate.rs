//! The synthetic source: events that follow any schema, repeatable from a seed, optionally
//! paced to a rate. For demos, load tests and benchmarks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_runtime::Event;

use super::stream::{Batch, Source};
use crate::{Error, Result};

const WORDS: &[&str] = &[
    "river", "stone", "night", "garden", "signal", "harbor", "winter", "echo", "paper", "orbit",
    "silver", "forest", "north", "glass", "ember", "tide", "atlas", "velvet", "cipher", "meadow",
];

/// Generates `count` events of `schema`.
pub struct Generator {
    schema: Arc<Schema>,
    /// Named types, so references to them resolve.
    names: HashMap<Name, Schema>,
    count: u64,
    produced: u64,
    rate: Option<f64>,
    started: Option<Instant>,
    rng: SmallRng,
    /// Records, arrays and maps open around the value being generated.
    depth: usize,
}

/// Nesting past which the generator takes the way out of a recursive type (the `null` of a
/// union, an empty array or map), so a linked list stays short. A type with no way out
/// (a record that requires itself) stops at `DEAD_END` with a value that fails to encode.
const SHALLOW: usize = 8;
const DEAD_END: usize = 32;

impl Generator {
    pub fn new(schema: Arc<Schema>, count: u64, rate: Option<f64>, seed: u64) -> Result<Self> {
        let names = ResolvedSchema::try_from(&*schema)
            .map_err(|e| Error::Schema {
                origin: "generate source".into(),
                reason: format!("named types do not resolve: {e}"),
            })?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(Self {
            schema,
            names,
            count,
            produced: 0,
            rate,
            started: None,
            rng: SmallRng::seed_from_u64(seed),
            depth: 0,
        })
    }

    /// One value of `schema`; `field` (the enclosing field's name) picks realistic ranges:
    /// `year` fields get years, `email` fields addresses, `id` fields the sequence number.
    fn value(&mut self, schema: &Schema, field: &str) -> Value {
        if self.depth >= DEAD_END {
            return Value::Null;
        }
        let nests = matches!(
            schema,
            Schema::Record(_) | Schema::Array(_) | Schema::Map(_)
        );
        self.depth += usize::from(nests);
        let value = self.value_within(schema, field);
        self.depth -= usize::from(nests);
        value
    }

    fn value_within(&mut self, schema: &Schema, field: &str) -> Value {
        let shallow = self.depth >= SHALLOW;
        let rng = &mut self.rng;
        let n = self.produced;
        match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => Value::Boolean(rng.random_bool(0.5)),
            Schema::Int if field.contains("year") => Value::Int(rng.random_range(1950..=2026)),
            Schema::Int => Value::Int(rng.random_range(0..10_000)),
            Schema::Long if field == "id" => Value::Long(n as i64),
            Schema::Long => Value::Long(rng.random_range(0..1_000_000)),
            Schema::Float => Value::Float(rng.random_range(0.0..10.0)),
            Schema::Double => Value::Double((rng.random_range(0.0..10.0f64) * 10.0).round() / 10.0),
            Schema::String if field.contains("email") => Value::String(format!(
                "{}{}@example.com",
                WORDS[rng.random_range(0..WORDS.len())],
                rng.random_range(0..1000)
            )),
            Schema::String => {
                let words = rng.random_range(1..=3);
                let text: Vec<&str> = (0..words)
                    .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                    .collect();
                Value::String(text.join(" "))
            }
            Schema::Bytes => Value::Bytes((0..8).map(|_| rng.random()).collect()),
            Schema::Uuid => Value::Uuid(uuid_from(rng.random())),
            Schema::Fixed(f) => Value::Fixed(f.size, (0..f.size).map(|_| rng.random()).collect()),
            Schema::Enum(e) => {
                let i = rng.random_range(0..e.symbols.len());
                Value::Enum(i as u32, e.symbols[i].clone())
            }
            Schema::Array(a) => {
                let len = if shallow { 0 } else { rng.random_range(0..=3) };
                let items = a.items.clone();
                Value::Array((0..len).map(|_| self.value(&items, field)).collect())
            }
            Schema::Map(m) => {
                let len = if shallow { 0 } else { rng.random_range(0..=2) };
                let types = m.types.clone();
                Value::Map(
                    (0..len)
                        .map(|i| (format!("k{i}"), self.value(&types, field)))
                        .collect(),
                )
            }
            Schema::Union(u) => {
                let variants = u.variants();
                // Optional fields are null one time in ten.
                let i = if shallow
                    && let Some(null) = variants.iter().position(|v| *v == Schema::Null)
                {
                    null
                } else if variants.len() > 1 && variants[0] == Schema::Null && !rng.random_bool(0.1)
                {
                    rng.random_range(1..variants.len())
                } else {
                    rng.random_range(0..variants.len())
                };
                let variant = variants[i].clone();
                Value::Union(i as u32, Box::new(self.value(&variant, field)))
            }
            Schema::Record(r) => {
                let fields = r.fields.clone();
                Value::Record(
                    fields
                        .iter()
                        .map(|f| (f.name.clone(), self.value(&f.schema, &f.name)))
                        .collect(),
                )
            }
            Schema::Ref { name } => match self.names.get(name).cloned() {
                Some(target) => self.value(&target, field),
                None => Value::Null,
            },
            Schema::Date => Value::Date(rng.random_range(0..20_000)),
            Schema::TimestampMillis => Value::TimestampMillis(1_700_000_000_000 + n as i64),
            Schema::TimestampMicros => Value::TimestampMicros(1_700_000_000_000_000 + n as i64),
            _ => Value::Null,
        }
    }
}

fn uuid_from(bits: u128) -> apache_avro::Uuid {
    apache_avro::Uuid::from_u128(bits)
}

impl Source for Generator {
    fn name(&self) -> String {
        format!("generate ({} events)", self.count)
    }

    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn poll(&mut self, max: usize, linger: Duration, batch: &mut Batch) -> Result<bool> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let schema = self.schema.clone();
        let poll_start = Instant::now();
        while batch.len() < max && self.produced < self.count {
            if let Some(rate) = self.rate {
                // Emit event n no earlier than n / rate seconds after the start.
                let due = started + Duration::from_secs_f64(self.produced as f64 / rate);
                let now = Instant::now();
                if due > now {
                    if now + (due - now) > poll_start + linger && !batch.is_empty() {
                        return Ok(true);
                    }
                    std::thread::sleep(due - now);
                }
            }
            let value = self.value(&schema, "");
            let bytes = to_avro_datum(&schema, value).map_err(|e| Error::Source {
                source_name: self.name(),
                reason: e.to_string(),
            })?;
            batch.events.push(Event {
                key: None,
                value: bytes,
                headers: Vec::new(),
                timestamp: None,
            });
            self.produced += 1;
        }
        Ok(self.produced < self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_valid_repeatable_events() {
        let schema = Arc::new(
            Schema::parse_str(
                r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"},
                {"name":"year","type":"int"},{"name":"tags","type":{"type":"array","items":"string"}},
                {"name":"rating","type":["null","double"]}]}"#,
            )
            .expect("schema"),
        );
        let mut a = Generator::new(schema.clone(), 5, None, 7).expect("generator");
        let mut b = Generator::new(schema.clone(), 5, None, 7).expect("generator");
        let (mut ba, mut bb) = (Batch::default(), Batch::default());
        assert!(!a.poll(10, Duration::ZERO, &mut ba).expect("poll"));
        b.poll(10, Duration::ZERO, &mut bb).expect("poll");
        assert_eq!(ba.events.len(), 5);
        for (i, (x, y)) in ba.events.iter().zip(&bb.events).enumerate() {
            assert_eq!(x.value, y.value);
            let v = apache_avro::from_avro_datum(&schema, &mut x.value.as_slice(), None)
                .expect("decodes");
            let Value::Record(fields) = v else {
                panic!("not a record")
            };
            assert_eq!(fields[0].1, Value::Long(i as i64));
            let Value::Int(year) = fields[1].1 else {
                panic!("year")
            };
            assert!((1950..=2026).contains(&year));
        }
    }
}
