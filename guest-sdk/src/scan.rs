//! Walks a datum without building values: checks its structure as [`decode`](crate::decode)
//! would, and notes where each top-level field of a record starts and ends.
//!
//! A lazy [`Record`](crate::Record) is built on this: a processor that reads two fields of
//! a record pays for decoding those two, while an event that is not a datum of the schema
//! is still rejected with the reason the full decoder gives (the checks and their order
//! are the decoder's own: the same primitives, depth first, fields in schema order).
//!
//! One check is left to the decoder: whether a string is UTF-8. The host checked every
//! datum in full before a stage sees it (and checks what the stage emits), so the walk does
//! not pay again for strings the processor never reads; a string it reads is checked when
//! decoded, and a failure there rejects the event with the decoder's reason (see
//! [`lazy`](crate::lazy)).

use std::collections::HashMap;
use std::ops::Range;

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use crate::decode::{self, Error, malformed};
use crate::encode::Names;

/// Deepest nesting of records, arrays and maps walked. The host refuses events nested
/// deeper than 256 levels before they reach a processor; this bounds the walk's stack for
/// whatever else calls the export.
pub(crate) const MAX_DEPTH: usize = 512;

/// A record schema compiled for walking its datums: one node per type, named references
/// resolved to positions, so the walk follows small vectors instead of apache-avro's schema
/// structs (and never looks a name up per event).
#[derive(Debug)]
pub(crate) struct Walker {
    nodes: Vec<Node>,
    /// The nodes of the record's fields, in schema order.
    fields: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    /// The number of symbols.
    Enum(usize),
    Union(Vec<usize>),
    /// The items' node, and whether an item takes no bytes (nulls: a huge count of them
    /// costs nothing to walk).
    Array(usize, bool),
    Map(usize),
    Record(Vec<usize>),
}

impl Walker {
    /// `None` unless every datum of `record` can be walked and decoded here (no decimals,
    /// big decimals, uuids or durations, every named reference known), so the full
    /// decoder never falls back to apache-avro on it.
    pub(crate) fn new(record: &RecordSchema, names: &Names) -> Option<Self> {
        let mut walker = Self {
            nodes: Vec::new(),
            fields: Vec::new(),
        };
        // The record comes first: its fields may refer to it (a recursive type).
        let mut defined = HashMap::new();
        defined.insert(record.name.fullname(None), walker.push(Node::Null));
        walker.fields = record
            .fields
            .iter()
            .map(|field| walker.compile(&field.schema, names, &mut defined))
            .collect::<Option<Vec<_>>>()?;
        walker.nodes[0] = Node::Record(walker.fields.clone());
        Some(walker)
    }

    fn compile(
        &mut self,
        schema: &Schema,
        names: &Names,
        defined: &mut HashMap<String, usize>,
    ) -> Option<usize> {
        let node = match schema {
            Schema::Ref { name } => {
                let fullname = name.fullname(None);
                return match defined.get(&fullname) {
                    Some(&index) => Some(index),
                    None => self.compile(names.get(name)?, names, defined),
                };
            }
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes => Node::Bytes,
            Schema::String => Node::String,
            Schema::Fixed(fixed) => {
                let index = self.push(Node::Fixed(fixed.size));
                defined.insert(fixed.name.fullname(None), index);
                return Some(index);
            }
            Schema::Enum(e) => {
                let index = self.push(Node::Enum(e.symbols.len()));
                defined.insert(e.name.fullname(None), index);
                return Some(index);
            }
            Schema::Union(union) => Node::Union(
                union
                    .variants()
                    .iter()
                    .map(|v| self.compile(v, names, defined))
                    .collect::<Option<_>>()?,
            ),
            Schema::Array(array) => {
                let items = self.compile(&array.items, names, defined)?;
                Node::Array(items, self.zero_width(items, 0))
            }
            Schema::Map(map) => Node::Map(self.compile(&map.types, names, defined)?),
            Schema::Record(record) => {
                // Reserved first: the record's fields may refer to it.
                let index = self.push(Node::Null);
                defined.insert(record.name.fullname(None), index);
                let fields = record
                    .fields
                    .iter()
                    .map(|f| self.compile(&f.schema, names, defined))
                    .collect::<Option<_>>()?;
                self.nodes[index] = Node::Record(fields);
                return Some(index);
            }
            Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid | Schema::Duration => {
                return None;
            }
        };
        Some(self.push(node))
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Whether a datum of `node` always takes no bytes.
    fn zero_width(&self, node: usize, depth: usize) -> bool {
        match self.nodes.get(node) {
            Some(Node::Null) => true,
            Some(Node::Record(fields)) if depth < 16 => {
                fields.iter().all(|f| self.zero_width(*f, depth + 1))
            }
            _ => false,
        }
    }

    /// Checks the record's datum in `datum` and hands the byte range of each of its
    /// fields to `span`, in schema order. Bytes left after the datum are an error.
    pub(crate) fn record_spans(
        &self,
        datum: &[u8],
        mut span: impl FnMut(Range<usize>),
    ) -> Result<(), Error> {
        let mut rest = datum;
        for &field in &self.fields {
            let start = datum.len() - rest.len();
            self.skip(field, &mut rest, 1)?;
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

    /// The byte range, in `datum`, of the field that `path` (field positions, one per
    /// level of records nested in top-level field `field`) names inside that field's datum
    /// at `span`. `None` when the way down is not records alone (a union, say) or the
    /// bytes do not walk.
    pub(crate) fn nested_span(
        &self,
        field: usize,
        datum: &[u8],
        span: Range<usize>,
        path: &[usize],
    ) -> Option<Range<usize>> {
        let mut node = *self.fields.get(field)?;
        let mut span = span;
        for &position in path {
            let Node::Record(fields) = self.nodes.get(node)? else {
                return None;
            };
            let mut rest = datum.get(span.clone())?;
            let mut start = span.start;
            for &before in fields.get(..position)? {
                let len = rest.len();
                self.skip(before, &mut rest, 1).ok()?;
                start += len - rest.len();
            }
            node = *fields.get(position)?;
            let len = rest.len();
            self.skip(node, &mut rest, 1).ok()?;
            span = start..start + (len - rest.len());
        }
        Some(span)
    }

    /// Moves `input` past one datum of `node`, checking it as the decoder would.
    fn skip(&self, node: usize, input: &mut &[u8], depth: usize) -> Result<(), Error> {
        match &self.nodes[node] {
            Node::Null => {}
            Node::Boolean => match decode::take(input, 1)?[0] {
                0 | 1 => {}
                other => return malformed(format!("invalid boolean byte {other}")),
            },
            Node::Int => {
                decode::int(input)?;
            }
            Node::Long => {
                decode::long(input)?;
            }
            Node::Float => {
                decode::take(input, 4)?;
            }
            Node::Double => {
                decode::take(input, 8)?;
            }
            // Its bytes only: UTF-8 is checked when a processor reads it (module doc).
            Node::String | Node::Bytes => {
                let len = decode::len(input)?;
                decode::take(input, len)?;
            }
            Node::Fixed(size) => {
                decode::take(input, *size)?;
            }
            Node::Enum(symbols) => {
                let index = decode::int(input)?;
                if usize::try_from(index).map_or(true, |i| i >= *symbols) {
                    return malformed(format!(
                        "enum index {index} out of range for {symbols} symbols"
                    ));
                }
            }
            Node::Union(variants) => {
                let index = decode::long(input)?;
                match usize::try_from(index).ok().and_then(|i| variants.get(i)) {
                    Some(&variant) => self.skip(variant, input, depth)?,
                    None => {
                        return malformed(format!(
                            "union index {index} out of range for {} variants",
                            variants.len()
                        ));
                    }
                }
            }
            Node::Array(items, empty) => {
                let depth = deeper(depth)?;
                loop {
                    let count = decode::block_count(input)?;
                    if count == 0 {
                        break;
                    }
                    if !*empty {
                        for _ in 0..count {
                            self.skip(*items, input, depth)?;
                        }
                    }
                }
            }
            Node::Map(values) => {
                let depth = deeper(depth)?;
                loop {
                    let count = decode::block_count(input)?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        let len = decode::len(input)?;
                        decode::take(input, len)?;
                        self.skip(*values, input, depth)?;
                    }
                }
            }
            Node::Record(fields) => {
                let depth = deeper(depth)?;
                for &field in fields {
                    self.skip(field, input, depth)?;
                }
            }
        }
        Ok(())
    }
}

fn deeper(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        return malformed(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(depth + 1)
}

#[cfg(test)]
pub(crate) mod tests;
