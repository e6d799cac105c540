//! Walks a datum without building values: checks it exactly as [`decode`](crate::decode)
//! would, and notes where each top-level field of a record starts and ends.
//!
//! A lazy [`Record`](crate::Record) is built on this: a processor that reads two fields of
//! a record pays for decoding those two, while an event that is not a datum of the schema
//! is still rejected with the reason the full decoder gives (the checks and their order
//! are the decoder's own: the same primitives, depth first, fields in schema order).

use std::collections::HashSet;
use std::ops::Range;

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use crate::decode::{self, Error, malformed};
use crate::encode::Names;

/// Deepest nesting of records, arrays and maps walked. The host refuses events nested
/// deeper than 256 levels before they reach a processor; this bounds the walk's stack for
/// whatever else calls the export.
pub(crate) const MAX_DEPTH: usize = 512;

/// Whether every datum of `schema` can be walked and decoded here (no decimals, big
/// decimals, uuids or durations, every named reference known), so the full decoder never
/// falls back to apache-avro on it.
pub(crate) fn supported(schema: &Schema, names: &Names) -> bool {
    fn walk(schema: &Schema, names: &Names, seen: &mut HashSet<String>) -> bool {
        match schema {
            Schema::Ref { name } => match names.get(name) {
                Some(definition) => {
                    !seen.insert(name.fullname(None)) || walk(definition, names, seen)
                }
                None => false,
            },
            Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid | Schema::Duration => false,
            Schema::Array(array) => walk(&array.items, names, seen),
            Schema::Map(map) => walk(&map.types, names, seen),
            Schema::Union(union) => union.variants().iter().all(|v| walk(v, names, seen)),
            Schema::Record(record) => {
                seen.insert(record.name.fullname(None));
                record.fields.iter().all(|f| walk(&f.schema, names, seen))
            }
            _ => true,
        }
    }
    walk(schema, names, &mut HashSet::new())
}

/// Checks the datum of `record` in `datum` and hands the byte range of each of its
/// fields to `span`, in schema order. Bytes left after the datum are an error.
pub(crate) fn record_spans(
    record: &RecordSchema,
    names: &Names,
    datum: &[u8],
    mut span: impl FnMut(Range<usize>),
) -> Result<(), Error> {
    let mut rest = datum;
    for field in &record.fields {
        let start = datum.len() - rest.len();
        skip(&field.schema, names, &mut rest, 1)?;
        span(start..datum.len() - rest.len());
    }
    if !rest.is_empty() {
        return malformed(format!(
            "{} bytes left after the datum; was it written with another schema?",
            rest.len()
        ));
    }
    Ok(())
}

/// Moves `input` past one datum of `schema`, checking it as the decoder would.
pub(crate) fn skip(
    schema: &Schema,
    names: &Names,
    input: &mut &[u8],
    depth: usize,
) -> Result<(), Error> {
    match schema {
        Schema::Ref { name } => {
            skip(
                names.get(name).ok_or(Error::Unsupported)?,
                names,
                input,
                depth,
            )?;
        }
        Schema::Null => {}
        Schema::Boolean => match decode::take(input, 1)?[0] {
            0 | 1 => {}
            other => return malformed(format!("invalid boolean byte {other}")),
        },
        Schema::Int | Schema::Date | Schema::TimeMillis => {
            decode::int(input)?;
        }
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => {
            decode::long(input)?;
        }
        Schema::Float => {
            decode::take(input, 4)?;
        }
        Schema::Double => {
            decode::take(input, 8)?;
        }
        Schema::Bytes => {
            let len = decode::len(input)?;
            decode::take(input, len)?;
        }
        Schema::String => {
            decode::str(input)?;
        }
        Schema::Fixed(fixed) => {
            decode::take(input, fixed.size)?;
        }
        Schema::Enum(e) => {
            let index = decode::int(input)?;
            if usize::try_from(index).map_or(true, |i| i >= e.symbols.len()) {
                return malformed(format!(
                    "enum index {index} out of range for {} symbols",
                    e.symbols.len()
                ));
            }
        }
        Schema::Union(union) => {
            let index = decode::long(input)?;
            let variants = union.variants();
            match usize::try_from(index).ok().and_then(|i| variants.get(i)) {
                Some(variant) => skip(variant, names, input, depth)?,
                None => {
                    return malformed(format!(
                        "union index {index} out of range for {} variants",
                        variants.len()
                    ));
                }
            }
        }
        Schema::Array(array) => {
            let depth = deeper(depth)?;
            let empty = zero_width(&array.items);
            loop {
                let count = decode::block_count(input)?;
                if count == 0 {
                    break;
                }
                // Nulls take no bytes: a huge count of them costs nothing to walk.
                if !empty {
                    for _ in 0..count {
                        skip(&array.items, names, input, depth)?;
                    }
                }
            }
        }
        Schema::Map(map) => {
            let depth = deeper(depth)?;
            loop {
                let count = decode::block_count(input)?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    decode::str(input)?;
                    skip(&map.types, names, input, depth)?;
                }
            }
        }
        Schema::Record(record) => {
            let depth = deeper(depth)?;
            for field in &record.fields {
                skip(&field.schema, names, input, depth)?;
            }
        }
        Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid | Schema::Duration => {
            return Err(Error::Unsupported);
        }
    }
    Ok(())
}

fn deeper(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        return malformed(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(depth + 1)
}

/// Whether a datum of `schema` always takes no bytes (an array of them is all count).
fn zero_width(schema: &Schema) -> bool {
    match schema {
        Schema::Null => true,
        Schema::Record(record) => record.fields.iter().all(|f| zero_width(&f.schema)),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests;
