//! A lean Avro decoder into `Value`s, the counterpart of the [`encode`](crate::encode) module.
//!
//! `apache_avro::from_avro_datum` re-resolves the schema's names on every call (hashing
//! and cloning every name in the schema) and reads through `io::Read` a byte at a time;
//! profiles put that at about a fifth of a processor's time. This decoder uses names
//! resolved once (at configure) and reads the event's bytes as a slice. For the types it
//! covers it produces exactly the `Value` apache-avro does; on decimals, big decimals,
//! uuids and durations, or a reference it cannot find, it gives up and the caller decodes
//! the datum with apache-avro instead.
//!
//! Malformed input is an error, never a panic. A datum cut short is always an error here,
//! whereas apache-avro 0.21 reads a datum ending inside a boolean, a string's bytes or a
//! union's index as null and returns a value.

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::encode::Names;

/// apache-avro's default limit on a length or block count (`util::safe_len`), kept so a
/// count of zero-width items (nulls) cannot ask for more than apache-avro would allow.
const MAX_LEN: usize = 512 * 1024 * 1024;

/// Why a datum was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The schema holds a type left to apache-avro.
    Unsupported,
    /// The bytes are not a datum of the schema.
    Malformed(String),
}

pub(crate) fn malformed<T>(reason: impl Into<String>) -> Result<T, Error> {
    Err(Error::Malformed(reason.into()))
}

/// Decodes one datum of `schema` from the front of `input`, leaving the rest in `input`.
pub(crate) fn decode(schema: &Schema, names: &Names, input: &mut &[u8]) -> Result<Value, Error> {
    Ok(match schema {
        Schema::Ref { name } => decode(names.get(name).ok_or(Error::Unsupported)?, names, input)?,
        Schema::Null => Value::Null,
        Schema::Boolean => match take(input, 1)?[0] {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            other => return malformed(format!("invalid boolean byte {other}")),
        },
        Schema::Int => Value::Int(int(input)?),
        Schema::Date => Value::Date(int(input)?),
        Schema::TimeMillis => Value::TimeMillis(int(input)?),
        Schema::Long => Value::Long(long(input)?),
        Schema::TimeMicros => Value::TimeMicros(long(input)?),
        Schema::TimestampMillis => Value::TimestampMillis(long(input)?),
        Schema::TimestampMicros => Value::TimestampMicros(long(input)?),
        Schema::TimestampNanos => Value::TimestampNanos(long(input)?),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(long(input)?),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(long(input)?),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(long(input)?),
        Schema::Float => Value::Float(f32::from_le_bytes(array(input)?)),
        Schema::Double => Value::Double(f64::from_le_bytes(array(input)?)),
        Schema::Bytes => {
            let len = len(input)?;
            Value::Bytes(take(input, len)?.to_vec())
        }
        Schema::String => Value::String(string(input)?),
        Schema::Fixed(fixed) => Value::Fixed(fixed.size, take(input, fixed.size)?.to_vec()),
        Schema::Enum(e) => {
            let index = int(input)?;
            match usize::try_from(index).ok().and_then(|i| e.symbols.get(i)) {
                Some(symbol) => Value::Enum(index as u32, symbol.clone()),
                None => {
                    return malformed(format!(
                        "enum index {index} out of range for {} symbols",
                        e.symbols.len()
                    ));
                }
            }
        }
        Schema::Union(union) => {
            let index = long(input)?;
            let variants = union.variants();
            match usize::try_from(index).ok().and_then(|i| variants.get(i)) {
                Some(variant) => {
                    Value::Union(index as u32, Box::new(decode(variant, names, input)?))
                }
                None => {
                    return malformed(format!(
                        "union index {index} out of range for {} variants",
                        variants.len()
                    ));
                }
            }
        }
        Schema::Array(array) => {
            let mut items = Vec::new();
            loop {
                let count = block_count(input)?;
                if count == 0 {
                    break;
                }
                // Most items take a byte at least: do not trust a count beyond the bytes left.
                items.reserve(count.min(input.len()));
                for _ in 0..count {
                    items.push(decode(&array.items, names, input)?);
                }
            }
            Value::Array(items)
        }
        Schema::Map(map) => {
            let mut entries = std::collections::HashMap::new();
            loop {
                let count = block_count(input)?;
                if count == 0 {
                    break;
                }
                entries.reserve(count.min(input.len()));
                for _ in 0..count {
                    let key = string(input)?;
                    entries.insert(key, decode(&map.types, names, input)?);
                }
            }
            Value::Map(entries)
        }
        Schema::Record(record) => {
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                fields.push((field.name.clone(), decode(&field.schema, names, input)?));
            }
            Value::Record(fields)
        }
        Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid | Schema::Duration => {
            return Err(Error::Unsupported);
        }
    })
}

/// The first `n` bytes of `input`, which moves past them.
#[inline]
pub(crate) fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if n > input.len() {
        return ends_early(n, input.len());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

#[cold]
fn ends_early<T>(wanted: usize, left: usize) -> Result<T, Error> {
    malformed(format!(
        "the datum ends early: {wanted} bytes wanted, {left} left"
    ))
}

pub(crate) fn array<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], Error> {
    Ok(take(input, N)?.try_into().expect("take returned N bytes"))
}

/// A zig-zag varint, read as apache-avro reads it: at most ten bytes, bits past the
/// 64th dropped.
///
/// Most are one byte (small numbers, short lengths, union indexes): that case is inlined
/// into the walk and the decoder, the loop is not.
#[inline(always)]
pub(crate) fn long(input: &mut &[u8]) -> Result<i64, Error> {
    if let Some((&byte, rest)) = input.split_first()
        && byte < 0x80
    {
        *input = rest;
        let z = u64::from(byte);
        return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
    }
    long_from_bytes(input)
}

#[inline(never)]
fn long_from_bytes(input: &mut &[u8]) -> Result<i64, Error> {
    let mut z = 0u64;
    for (i, &byte) in input.iter().enumerate() {
        if i > 9 {
            return malformed("a variable-length integer is longer than ten bytes");
        }
        z |= u64::from(byte & 0x7f) << (i * 7);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    malformed("the datum ends inside a variable-length integer")
}

pub(crate) fn int(input: &mut &[u8]) -> Result<i32, Error> {
    let n = long(input)?;
    i32::try_from(n).or_else(|_| malformed(format!("{n} does not fit an int")))
}

/// The length of bytes or a string.
#[inline]
pub(crate) fn len(input: &mut &[u8]) -> Result<usize, Error> {
    let n = long(input)?;
    match usize::try_from(n) {
        Ok(len) if len <= MAX_LEN => Ok(len),
        _ => malformed(format!("invalid length {n}")),
    }
}

/// The item count of an array or map block; a negative count is followed by the block's
/// size in bytes, which is not needed here.
pub(crate) fn block_count(input: &mut &[u8]) -> Result<usize, Error> {
    let n = long(input)?;
    let count = if n < 0 {
        long(input)?;
        n.checked_neg()
    } else {
        Some(n)
    };
    match count.and_then(|c| usize::try_from(c).ok()) {
        Some(count) if count <= MAX_LEN => Ok(count),
        _ => malformed(format!("invalid block count {n}")),
    }
}

fn string(input: &mut &[u8]) -> Result<String, Error> {
    str(input).map(str::to_owned)
}

/// A string, borrowed from `input`.
pub(crate) fn str<'a>(input: &mut &'a [u8]) -> Result<&'a str, Error> {
    let len = len(input)?;
    std::str::from_utf8(take(input, len)?)
        .or_else(|e| malformed(format!("a string is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use apache_avro::{Decimal, from_avro_datum, to_avro_datum};

    use super::*;

    const TITLE: &str = include_str!("../../plugins/enrich/schemas/title.avsc");

    /// Every type the plugins' schemas use, named references included.
    const ALL: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
        {"name": "n", "type": "null"}, {"name": "t", "type": "boolean"},
        {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
        {"name": "f", "type": "float"}, {"name": "d", "type": "double"},
        {"name": "b", "type": "bytes"}, {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "Kind", "symbols": ["movie", "series", "book"]}},
        {"name": "x", "type": {"type": "fixed", "name": "Two", "namespace": "u", "size": 2}},
        {"name": "a", "type": {"type": "array", "items": "string"}},
        {"name": "m", "type": {"type": "map", "values": ["null", "long"]}},
        {"name": "o", "type": {"type": "record", "name": "Owner", "fields": [
            {"name": "name", "type": "string"}, {"name": "email", "type": ["null", "string"]}]}},
        {"name": "u", "type": ["null", "Owner", "double"]},
        {"name": "again", "type": "Kind"}, {"name": "two", "type": "u.Two"},
        {"name": "owners", "type": {"type": "array", "items": "Owner"}},
        {"name": "date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}"#;

    fn owner(name: &str, email: Option<&str>) -> Value {
        Value::Record(vec![
            ("name".into(), Value::String(name.into())),
            (
                "email".into(),
                match email {
                    Some(e) => Value::Union(1, Box::new(Value::String(e.into()))),
                    None => Value::Union(0, Box::new(Value::Null)),
                },
            ),
        ])
    }

    fn all(i: i32, l: i64, f: f32, d: f64, n: usize) -> Value {
        Value::Record(vec![
            ("n".into(), Value::Null),
            ("t".into(), Value::Boolean(n.is_multiple_of(2))),
            ("i".into(), Value::Int(i)),
            ("l".into(), Value::Long(l)),
            ("f".into(), Value::Float(f)),
            ("d".into(), Value::Double(d)),
            ("b".into(), Value::Bytes((0..n as u8).collect())),
            ("s".into(), Value::String("é€😀".repeat(n))),
            ("e".into(), Value::Enum(2, "book".into())),
            ("x".into(), Value::Fixed(2, vec![0, 255])),
            (
                "a".into(),
                Value::Array((0..n).map(|k| Value::String(k.to_string())).collect()),
            ),
            (
                "m".into(),
                Value::Map(
                    (0..n)
                        .map(|k| {
                            let v = match k % 2 {
                                0 => Value::Union(0, Box::new(Value::Null)),
                                _ => Value::Union(1, Box::new(Value::Long(-(k as i64)))),
                            };
                            (format!("k{k}"), v)
                        })
                        .collect(),
                ),
            ),
            ("o".into(), owner("Ada", Some("ada@example.com"))),
            (
                "u".into(),
                match n % 3 {
                    0 => Value::Union(0, Box::new(Value::Null)),
                    1 => Value::Union(1, Box::new(owner("Bo", None))),
                    _ => Value::Union(2, Box::new(Value::Double(d))),
                },
            ),
            ("again".into(), Value::Enum(0, "movie".into())),
            ("two".into(), Value::Fixed(2, vec![7, 8])),
            (
                "owners".into(),
                Value::Array((0..n).map(|_| owner("C", None)).collect()),
            ),
            ("date".into(), Value::Date(i)),
            ("ts".into(), Value::TimestampMicros(l)),
        ])
    }

    fn ours(schema: &Schema, bytes: &[u8]) -> Result<Value, Error> {
        let mut rest = bytes;
        let value = decode(schema, &Names::of(schema), &mut rest)?;
        assert!(rest.is_empty(), "{} bytes left", rest.len());
        Ok(value)
    }

    /// Decodes `bytes` both ways and checks the values are equal.
    fn same_as_apache_avro(schema: &Schema, bytes: &[u8]) -> Value {
        let theirs = from_avro_datum(schema, &mut &bytes[..], None).expect("apache-avro decodes");
        let value = ours(schema, bytes).expect("decodes");
        assert_eq!(value, theirs);
        value
    }

    #[test]
    fn matches_apache_avro_on_every_type() {
        let schema = Schema::parse_str(ALL).expect("schema");
        let edges = [
            (0, 0, 0.0, 0.0),
            (-1, -1, -0.0, -0.0),
            (63, 64, 1.5, 8.5),
            (-64, -65, f32::MIN_POSITIVE, f64::MIN_POSITIVE),
            (i32::MAX, i64::MAX, f32::MAX, f64::INFINITY),
            (i32::MIN, i64::MIN, f32::NEG_INFINITY, f64::MIN),
        ];
        for (n, (i, l, f, d)) in edges.into_iter().enumerate() {
            let value = all(i, l, f, d, n * 7);
            let bytes = to_avro_datum(&schema, value.clone()).expect("encodes");
            assert_eq!(same_as_apache_avro(&schema, &bytes), value);
        }
    }

    #[test]
    fn matches_apache_avro_on_titles() {
        let schema = Schema::parse_str(TITLE).expect("schema");
        for (rating, genres) in [(None, 0), (Some(7.25), 1), (Some(-1.0), 300)] {
            let value = Value::Record(vec![
                ("id".into(), Value::Long(42)),
                ("title".into(), Value::String("Amélie".into())),
                ("kind".into(), Value::String("movie".into())),
                ("year".into(), Value::Int(2001)),
                (
                    "rating".into(),
                    match rating {
                        Some(r) => Value::Union(1, Box::new(Value::Double(r))),
                        None => Value::Union(0, Box::new(Value::Null)),
                    },
                ),
                (
                    "genres".into(),
                    Value::Array(vec![Value::String("drama".into()); genres]),
                ),
                (
                    "owner".into(),
                    Value::Record(vec![
                        ("name".into(), Value::String("Ada".into())),
                        ("email".into(), Value::String("ada@example.com".into())),
                    ]),
                ),
            ]);
            let bytes = to_avro_datum(&schema, value.clone()).expect("encodes");
            assert_eq!(same_as_apache_avro(&schema, &bytes), value);
        }
    }

    #[test]
    fn nan_keeps_its_bits() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "R", "fields": [
            {"name": "f", "type": "float"}, {"name": "d", "type": "double"}]}"#,
        )
        .expect("schema");
        let bytes = to_avro_datum(
            &schema,
            Value::Record(vec![
                ("f".into(), Value::Float(f32::NAN)),
                ("d".into(), Value::Double(-f64::NAN)),
            ]),
        )
        .expect("encodes");
        let value = ours(&schema, &bytes).expect("decodes");
        assert_eq!(to_avro_datum(&schema, value).expect("encodes"), bytes);
    }

    #[test]
    fn recursive_named_types() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "Node", "namespace": "n",
            "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]}"#,
        )
        .expect("schema");
        let node =
            |v, next| Value::Record(vec![("v".into(), Value::Int(v)), ("next".into(), next)]);
        let null = Value::Union(0, Box::new(Value::Null));
        let list = node(1, Value::Union(1, Box::new(node(2, null))));
        let bytes = to_avro_datum(&schema, list.clone()).expect("encodes");
        assert_eq!(same_as_apache_avro(&schema, &bytes), list);
    }

    #[test]
    fn blocks_with_negative_counts_and_sizes() {
        let schema = Schema::parse_str(r#"{"type": "array", "items": "int"}"#).expect("schema");
        // Two items (count -2, then the block's size: 2 bytes), one more, end.
        let value = same_as_apache_avro(&schema, &[3, 4, 2, 4, 2, 6, 0]);
        assert_eq!(
            value,
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
        );
        let schema = Schema::parse_str(r#"{"type": "map", "values": "boolean"}"#).expect("schema");
        // A duplicate key keeps the last value, as in apache-avro.
        let value =
            same_as_apache_avro(&schema, &[3, 12, 2, b'a', 0, 2, b'b', 1, 2, 2, b'a', 1, 0]);
        assert_eq!(
            value,
            Value::Map(
                [
                    ("a".to_owned(), Value::Boolean(true)),
                    ("b".to_owned(), Value::Boolean(true))
                ]
                .into_iter()
                .collect()
            )
        );
    }

    #[test]
    fn truncated_datums_are_errors() {
        let schema = Schema::parse_str(ALL).expect("schema");
        let bytes = to_avro_datum(&schema, all(-5, 1 << 40, 2.5, -3.5, 4)).expect("encodes");
        for end in 0..bytes.len() {
            match ours(&schema, &bytes[..end]) {
                Err(Error::Malformed(reason)) => assert!(!reason.is_empty()),
                other => panic!("{end} of {} bytes: {other:?}", bytes.len()),
            }
        }
    }

    #[test]
    fn malformed_datums_are_errors() {
        let malformed = |schema: &str, bytes: &[u8]| {
            let schema = Schema::parse_str(schema).expect("schema");
            match ours(&schema, bytes) {
                Err(Error::Malformed(reason)) => reason,
                other => panic!("{bytes:?}: {other:?}"),
            }
        };
        assert_eq!(malformed(r#""boolean""#, &[2]), "invalid boolean byte 2");
        assert_eq!(
            malformed(r#"["null", "int"]"#, &[4]),
            "union index 2 out of range for 2 variants"
        );
        assert_eq!(
            malformed(r#"["null", "int"]"#, &[1]),
            "union index -1 out of range for 2 variants"
        );
        assert_eq!(
            malformed(r#"{"type": "enum", "name": "E", "symbols": ["a"]}"#, &[2]),
            "enum index 1 out of range for 1 symbols"
        );
        assert_eq!(
            malformed(r#""int""#, &[0x80, 0x80, 0x80, 0x80, 0x10]),
            "2147483648 does not fit an int"
        );
        assert_eq!(
            malformed(r#""long""#, &[0xff; 11]),
            "a variable-length integer is longer than ten bytes"
        );
        assert_eq!(malformed(r#""bytes""#, &[1]), "invalid length -1");
        assert_eq!(
            malformed(r#""string""#, &[4, 0xc3, 0x28]),
            "a string is not UTF-8: invalid utf-8 sequence of 1 bytes from index 0"
        );
        assert_eq!(
            malformed(
                r#"{"type": "array", "items": "null"}"#,
                &[0xff, 0xff, 0xff, 0xff, 0x7f, 0]
            ),
            "invalid block count -17179869184"
        );
        // A huge count with few bytes fails on the bytes, without reserving for the count.
        assert_eq!(
            malformed(
                r#"{"type": "array", "items": "long"}"#,
                &[0xfe, 0xff, 0xff, 0xff, 0x03, 2]
            ),
            "the datum ends inside a variable-length integer"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let schema = Schema::parse_str(ALL).expect("schema");
        let names = Names::of(&schema);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode(&schema, &names, &mut &bytes[..]);
        }
    }

    #[test]
    fn leaves_decimals_to_apache_avro() {
        let schema = Schema::parse_str(
            r#"{"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}"#,
        )
        .expect("schema");
        let bytes =
            to_avro_datum(&schema, Value::Decimal(Decimal::from(vec![1, 2]))).expect("encodes");
        assert_eq!(ours(&schema, &bytes), Err(Error::Unsupported));
    }
}
