//! A lean Avro encoder for `Value`s, for the record API's hot path.
//!
//! `apache_avro::to_avro_datum` re-resolves the schema's names, validates the whole value
//! and allocates a new buffer on every call; this encoder resolves names once (at
//! configure) and writes into the event's buffer. It covers the types generic processors
//! meet; on anything else (decimals, durations, a value of the wrong type) it gives up
//! and the caller falls back to apache-avro, which also produces the proper error.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;

/// The schema's named types, resolved once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names(HashMap<Name, Schema>);

impl Names {
    pub(crate) fn of(schema: &Schema) -> Self {
        ResolvedSchema::try_from(schema)
            .map(|resolved| {
                Names(
                    resolved
                        .get_names()
                        .iter()
                        .map(|(name, schema)| (name.clone(), (*schema).clone()))
                        .collect(),
                )
            })
            .unwrap_or_default()
    }

    /// The definition of the named type `name` (fully qualified, as the parser leaves
    /// references).
    pub(crate) fn get(&self, name: &Name) -> Option<&Schema> {
        self.0.get(name)
    }
}

/// The encoder met something it leaves to apache-avro.
#[derive(Debug)]
pub(crate) struct Unsupported;

/// Appends the binary encoding of `value` (of `schema`) to `out`.
pub(crate) fn encode(
    value: &Value,
    schema: &Schema,
    names: &Names,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    match (value, schema) {
        (_, Schema::Ref { name }) => {
            encode(value, names.get(name).ok_or(Unsupported)?, names, out)?;
        }
        (Value::Null, Schema::Null) => {}
        (Value::Boolean(b), Schema::Boolean) => out.push(u8::from(*b)),
        (Value::Int(n), Schema::Int)
        | (Value::Date(n), Schema::Date)
        | (Value::TimeMillis(n), Schema::TimeMillis) => long(i64::from(*n), out),
        (Value::Long(n), Schema::Long)
        | (Value::TimeMicros(n), Schema::TimeMicros)
        | (Value::TimestampMillis(n), Schema::TimestampMillis)
        | (Value::TimestampMicros(n), Schema::TimestampMicros)
        | (Value::TimestampNanos(n), Schema::TimestampNanos)
        | (Value::LocalTimestampMillis(n), Schema::LocalTimestampMillis)
        | (Value::LocalTimestampMicros(n), Schema::LocalTimestampMicros)
        | (Value::LocalTimestampNanos(n), Schema::LocalTimestampNanos) => long(*n, out),
        (Value::Float(n), Schema::Float) => out.extend_from_slice(&n.to_le_bytes()),
        (Value::Double(n), Schema::Double) => out.extend_from_slice(&n.to_le_bytes()),
        (Value::String(s), Schema::String) => bytes(s.as_bytes(), out),
        (Value::Bytes(b), Schema::Bytes) => bytes(b, out),
        (Value::Fixed(size, b), Schema::Fixed(fixed))
            if *size == fixed.size && b.len() == fixed.size =>
        {
            out.extend_from_slice(b)
        }
        (Value::Enum(index, symbol), Schema::Enum(e))
            if e.symbols.get(*index as usize).is_some_and(|s| s == symbol) =>
        {
            long(i64::from(*index), out)
        }
        (Value::Union(index, inner), Schema::Union(union)) => {
            let variant = union.variants().get(*index as usize).ok_or(Unsupported)?;
            long(i64::from(*index), out);
            encode(inner, variant, names, out)?;
        }
        (Value::Array(items), Schema::Array(array)) => {
            if !items.is_empty() {
                long(items.len() as i64, out);
                for item in items {
                    encode(item, &array.items, names, out)?;
                }
            }
            out.push(0);
        }
        (Value::Map(entries), Schema::Map(map)) => {
            if !entries.is_empty() {
                long(entries.len() as i64, out);
                for (key, item) in entries {
                    bytes(key.as_bytes(), out);
                    encode(item, &map.types, names, out)?;
                }
            }
            out.push(0);
        }
        (Value::Record(fields), Schema::Record(record)) => {
            if fields.len() != record.fields.len() {
                return Err(Unsupported);
            }
            for (i, field) in record.fields.iter().enumerate() {
                // Fields are normally in schema order; find them by name otherwise.
                let value = match fields.get(i) {
                    Some((name, value)) if *name == field.name => value,
                    _ => {
                        &fields
                            .iter()
                            .find(|(name, _)| *name == field.name)
                            .ok_or(Unsupported)?
                            .1
                    }
                };
                encode(value, &field.schema, names, out)?;
            }
        }
        _ => return Err(Unsupported),
    }
    Ok(())
}

fn long(n: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    long(b.len() as i64, out);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use apache_avro::to_avro_datum;

    use super::*;

    /// The encoder must write exactly what apache-avro writes.
    fn same_as_apache_avro(schema: &str, value: Value) {
        let schema = Schema::parse_str(schema).expect("schema");
        let mut ours = Vec::new();
        encode(&value, &schema, &Names::of(&schema), &mut ours).expect("supported");
        assert_eq!(
            ours,
            to_avro_datum(&schema, value).expect("apache-avro encodes it")
        );
    }

    #[test]
    fn matches_apache_avro() {
        let title = include_str!("../../plugins/enrich/schemas/title.avsc");
        let owner = Value::Record(vec![
            ("name".into(), Value::String("Ada Lovelace".into())),
            ("email".into(), Value::String("ada@example.com".into())),
        ]);
        for (id, rating, genres) in [
            (0, None, vec![]),
            (-1, Some(8.5), vec!["a"]),
            (i64::MAX, Some(-0.0), vec!["x"; 200]),
        ] {
            same_as_apache_avro(
                title,
                Value::Record(vec![
                    ("id".into(), Value::Long(id)),
                    ("title".into(), Value::String("Amélie".into())),
                    ("kind".into(), Value::String("movie".into())),
                    ("year".into(), Value::Int(i32::MIN)),
                    (
                        "rating".into(),
                        match rating {
                            Some(r) => Value::Union(1, Box::new(Value::Double(r))),
                            None => Value::Union(0, Box::new(Value::Null)),
                        },
                    ),
                    (
                        "genres".into(),
                        Value::Array(
                            genres
                                .into_iter()
                                .map(|g| Value::String(g.into()))
                                .collect(),
                        ),
                    ),
                    ("owner".into(), owner.clone()),
                ]),
            );
        }
        same_as_apache_avro(
            r#"{"type": "record", "name": "R", "fields": [
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b"]}},
                {"name": "f", "type": {"type": "fixed", "name": "F", "size": 2}},
                {"name": "m", "type": {"type": "map", "values": "float"}},
                {"name": "b", "type": "bytes"}, {"name": "t", "type": "boolean"},
                {"name": "d", "type": {"type": "int", "logicalType": "date"}},
                {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "again", "type": "E"}]}"#,
            Value::Record(vec![
                ("e".into(), Value::Enum(1, "b".into())),
                ("f".into(), Value::Fixed(2, vec![1, 2])),
                (
                    "m".into(),
                    Value::Map([("k".to_owned(), Value::Float(1.5))].into_iter().collect()),
                ),
                ("b".into(), Value::Bytes(vec![0, 255])),
                ("t".into(), Value::Boolean(true)),
                ("d".into(), Value::Date(19000)),
                ("ts".into(), Value::TimestampMillis(1_700_000_000_000)),
                ("again".into(), Value::Enum(0, "a".into())),
            ]),
        );
    }

    #[test]
    fn gives_up_on_values_of_the_wrong_type() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "long"}]}"#,
        )
        .expect("schema");
        let value = Value::Record(vec![("x".into(), Value::String("no".into()))]);
        assert!(encode(&value, &schema, &Names::of(&schema), &mut Vec::new()).is_err());
    }
}
