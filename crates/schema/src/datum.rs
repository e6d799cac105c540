//! Bounded checks of Avro binary datums: is this byte string exactly one datum of that schema,
//! nested no deeper than a limit?
//!
//! apache-avro decodes, encodes and converts values by recursion, one or more stack frames per
//! level of nesting, so a datum nested a few hundred levels deep (a linked list written by any
//! producer or plugin) overflows the stack and aborts the process. [`DatumCheck`] walks the
//! bytes with an explicit stack instead, allocates no values, and is compiled once per schema
//! (named types resolved to indices), so it is cheap enough to run on every event: every
//! datum apache-avro is given in the host has passed it first, which bounds apache-avro's
//! recursion by `limits.max_depth`. It also checks what a decoder would: varints of at most
//! ten bytes, lengths within the buffer, union and enum indices in range, UTF-8 strings, and
//! (with [`DatumCheck::check`]) no bytes after the datum.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, Namespace, ResolvedSchema};
use smallvec::SmallVec;

/// Default of `[limits] max_depth`: the deepest nesting of records, arrays and maps an event
/// may have. Deep enough for any hand-written schema's data; its stack cost is measured in
/// the host's run thread stack (`weft_host::pipeline::RUN_STACK_BYTES`) (about 100 KiB per level in a debug build).
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// The largest `[limits] max_depth` a pipeline may set: 256 levels take about 25 MiB of
/// the run thread's 64 MiB stack in a debug build.
pub const MAX_DEPTH_LIMIT: usize = 256;

/// Deepest a datum is walked past the limit to find where it ends (so the datums after it
/// in an Avro file block can still be read). Each level costs 16 bytes of heap here.
const SKIP_DEPTH: usize = 1 << 16;

/// Items of arrays and maps a datum may hold beyond one per byte: items of a type that
/// takes no bytes (`null`, an empty record) cost nothing to encode, so a hostile count
/// would otherwise keep a decoder busy (and its `Vec::reserve`) without end.
const FREE_ITEMS: usize = 1 << 16;

/// Why bytes are not a datum of the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatumError {
    /// Well-formed as far as it was walked, but nested past the limit.
    #[error("nested deeper than {limit} levels (limits.max_depth)")]
    TooDeep {
        limit: usize,
        /// Where the datum ends, when the rest of it could be walked.
        end: Option<usize>,
    },
    /// Not a datum of the schema.
    #[error("{what} at byte {offset}")]
    Invalid { what: String, offset: usize },
}

/// A schema compiled for [`DatumCheck::check`]: one node per type, references resolved.
#[derive(Debug, Clone)]
pub struct DatumCheck {
    nodes: Vec<Node>,
    max_depth: usize,
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
    Enum(usize),
    Array(usize),
    Map(usize),
    Record(Box<[usize]>),
    Union(Box<[usize]>),
}

/// An open record, array or map.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// A record node, and the index of its next field.
    Record { node: usize, next: usize },
    /// An array or map block: its item node and how many items are left in the block.
    Seq { item: usize, left: u64, map: bool },
}

/// The open frames of a check, on the stack up to [`INLINE_FRAMES`] deep. Every emitted
/// event is checked, and a `Vec` cost an allocation per event (a record opens a frame); the
/// common nesting of a few levels now allocates nothing.
type Frames = SmallVec<[Frame; INLINE_FRAMES]>;

/// Frames kept without allocating: records nested this deep are already unusual.
const INLINE_FRAMES: usize = 16;

impl DatumCheck {
    /// Compiles `schema`; `max_depth` bounds the nesting of records, arrays and maps.
    pub fn new(schema: &Schema, max_depth: usize) -> Result<Self, String> {
        let resolved = ResolvedSchema::try_from(schema)
            .map_err(|e| format!("the schema's named types do not resolve: {e}"))?;
        let mut compiler = Compiler {
            names: resolved.get_names(),
            nodes: Vec::new(),
            named: HashMap::new(),
        };
        compiler.compile(schema, &None, 0)?;
        Ok(Self {
            nodes: compiler.nodes,
            max_depth: max_depth.max(1),
        })
    }

    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Checks that `bytes` is exactly one datum: nothing missing, nothing after it.
    pub fn check(&self, bytes: &[u8]) -> Result<(), DatumError> {
        let end = self.datum_len(bytes)?;
        if end == bytes.len() {
            Ok(())
        } else {
            Err(DatumError::Invalid {
                what: format!("{} bytes after the end of the datum", bytes.len() - end),
                offset: end,
            })
        }
    }

    /// The length of the datum at the start of `bytes` (the rest may be other datums).
    pub fn datum_len(&self, bytes: &[u8]) -> Result<usize, DatumError> {
        let mut r = Reader { bytes, pos: 0 };
        let mut stack = Frames::new();
        let mut too_deep = false;
        let mut items_left = bytes.len().saturating_add(FREE_ITEMS);
        let mut node = 0;
        loop {
            // Visit `node`: a scalar is read whole; a container opens a frame and moves to
            // its first child (`continue`), or is empty and done.
            let opened = match &self.nodes[node] {
                Node::Null => None,
                Node::Boolean => {
                    let offset = r.pos;
                    if r.byte()? > 1 {
                        return Err(invalid("a boolean that is neither 0 nor 1", offset));
                    }
                    None
                }
                Node::Int => {
                    r.int()?;
                    None
                }
                Node::Long => {
                    r.long()?;
                    None
                }
                Node::Float => {
                    r.take(4)?;
                    None
                }
                Node::Double => {
                    r.take(8)?;
                    None
                }
                Node::Bytes => {
                    r.bytes()?;
                    None
                }
                Node::String => {
                    r.string()?;
                    None
                }
                Node::Fixed(size) => {
                    r.take(*size)?;
                    None
                }
                Node::Enum(symbols) => {
                    let offset = r.pos;
                    let index = r.int()?;
                    if usize::try_from(index).map_or(true, |i| i >= *symbols) {
                        return Err(invalid(
                            &format!("enum index {index} out of range (0..{symbols})"),
                            offset,
                        ));
                    }
                    None
                }
                Node::Union(variants) => {
                    let offset = r.pos;
                    let index = r.long()?;
                    match usize::try_from(index).ok().and_then(|i| variants.get(i)) {
                        Some(&variant) => {
                            node = variant;
                            continue;
                        }
                        None => {
                            return Err(invalid(
                                &format!(
                                    "union branch {index} out of range (0..{})",
                                    variants.len()
                                ),
                                offset,
                            ));
                        }
                    }
                }
                Node::Record(fields) => fields
                    .first()
                    .map(|&first| (Frame::Record { node, next: 1 }, first)),
                Node::Array(item) | Node::Map(item) => {
                    let map = matches!(self.nodes[node], Node::Map(_));
                    match r.block(&mut items_left)? {
                        0 => None,
                        left => {
                            if map {
                                r.string()?;
                            }
                            Some((
                                Frame::Seq {
                                    item: *item,
                                    left,
                                    map,
                                },
                                *item,
                            ))
                        }
                    }
                }
            };
            if let Some((frame, child)) = opened {
                if stack.len() >= self.max_depth {
                    too_deep = true;
                    if stack.len() >= SKIP_DEPTH.max(self.max_depth) {
                        return Err(DatumError::TooDeep {
                            limit: self.max_depth,
                            end: None,
                        });
                    }
                }
                stack.push(frame);
                node = child;
                continue;
            }
            // The value at `node` is complete: move to the next sibling, closing every
            // container that has none left.
            loop {
                let Some(top) = stack.last_mut() else {
                    return if too_deep {
                        Err(DatumError::TooDeep {
                            limit: self.max_depth,
                            end: Some(r.pos),
                        })
                    } else {
                        Ok(r.pos)
                    };
                };
                match top {
                    Frame::Record { node: record, next } => {
                        let Node::Record(fields) = &self.nodes[*record] else {
                            unreachable!("a record frame always points at a record node");
                        };
                        if let Some(&field) = fields.get(*next) {
                            *next += 1;
                            node = field;
                            break;
                        }
                    }
                    Frame::Seq { item, left, map } => {
                        *left -= 1;
                        if *left == 0 {
                            *left = r.block(&mut items_left)?;
                        }
                        if *left > 0 {
                            if *map {
                                r.string()?;
                            }
                            node = *item;
                            break;
                        }
                    }
                }
                stack.pop();
            }
        }
    }
}

#[cold]
#[inline(never)]
fn ends_early(needed: usize, left: usize, offset: usize) -> DatumError {
    invalid(
        &format!("the datum ends early ({needed} bytes needed, {left} left)"),
        offset,
    )
}

#[cold]
#[inline(never)]
fn too_long(offset: usize) -> DatumError {
    invalid("a varint longer than ten bytes", offset)
}

#[cold]
fn invalid(what: &str, offset: usize) -> DatumError {
    DatumError::Invalid {
        what: what.to_string(),
        offset,
    }
}

/// The bytes of one datum, read forward.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    // The readers are inlined into the check's loop and their errors built out of line:
    // every emitted event is checked, and calls per varint and per string were about a
    // third of the check's time in profiles of the fused chain.
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DatumError> {
        let rest = &self.bytes[self.pos..];
        if n > rest.len() {
            return Err(ends_early(n, rest.len(), self.pos));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DatumError> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(ends_early(1, 0, self.pos)),
        }
    }

    /// A zigzag varint of at most ten bytes, as apache-avro reads it.
    #[inline]
    fn long(&mut self) -> Result<i64, DatumError> {
        let start = self.pos;
        let mut z = 0u64;
        for shift in 0..10 {
            let b = self.byte()?;
            z |= u64::from(b & 0x7f) << (shift * 7);
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(too_long(start))
    }

    #[inline]
    fn int(&mut self) -> Result<i32, DatumError> {
        let start = self.pos;
        let n = self.long()?;
        i32::try_from(n).map_err(|_| invalid(&format!("{n} does not fit an int"), start))
    }

    #[inline]
    fn len(&mut self) -> Result<usize, DatumError> {
        let start = self.pos;
        let n = self.long()?;
        usize::try_from(n).map_err(|_| invalid(&format!("negative length {n}"), start))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], DatumError> {
        let n = self.len()?;
        self.take(n)
    }

    #[inline]
    fn string(&mut self) -> Result<(), DatumError> {
        let start = self.pos;
        let text = self.bytes()?;
        std::str::from_utf8(text)
            .map(|_| ())
            .map_err(|e| invalid(&format!("a string that is not UTF-8 ({e})"), start))
    }

    /// The item count of the next array or map block (a negative count is followed by the
    /// block's size in bytes), charged against the items the datum may still hold.
    fn block(&mut self, items_left: &mut usize) -> Result<u64, DatumError> {
        let start = self.pos;
        let count = self.long()?;
        if count < 0 {
            self.len()?;
        }
        let count = count.unsigned_abs();
        match usize::try_from(count).ok().filter(|&n| n <= *items_left) {
            Some(n) => {
                *items_left -= n;
                Ok(count)
            }
            None => Err(invalid(
                &format!("a block of {count} items, more than the datum can hold"),
                start,
            )),
        }
    }
}

/// Turns a schema into nodes. Schemas are trees bounded by the nesting their JSON text may
/// have (see [`crate::parse_schema`]), so this recursion is bounded too.
struct Compiler<'s> {
    names: &'s HashMap<Name, &'s Schema>,
    nodes: Vec<Node>,
    /// Named types already compiled, by full name.
    named: HashMap<Name, usize>,
}

impl Compiler<'_> {
    fn compile(
        &mut self,
        schema: &Schema,
        enclosing: &Namespace,
        depth: usize,
    ) -> Result<usize, String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels"
            ));
        }
        let scalar = match schema {
            Schema::Null => Some(Node::Null),
            Schema::Boolean => Some(Node::Boolean),
            Schema::Int | Schema::Date | Schema::TimeMillis => Some(Node::Int),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Some(Node::Long),
            Schema::Float => Some(Node::Float),
            Schema::Double => Some(Node::Double),
            // apache-avro reads a uuid as bytes: 16 raw bytes or its text.
            Schema::Bytes | Schema::BigDecimal | Schema::Uuid => Some(Node::Bytes),
            Schema::String => Some(Node::String),
            Schema::Duration => Some(Node::Fixed(12)),
            Schema::Decimal(d) => return self.compile(&d.inner, enclosing, depth + 1),
            _ => None,
        };
        if let Some(node) = scalar {
            return Ok(self.push(node));
        }
        match schema {
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(enclosing);
                if let Some(&index) = self.named.get(&full) {
                    return Ok(index);
                }
                let target = self
                    .names
                    .get(&full)
                    .copied()
                    .ok_or_else(|| format!("unknown type {}", full.fullname(None)))?;
                self.compile(target, &full.namespace, depth + 1)
            }
            Schema::Fixed(f) => Ok(self.named(&f.name, enclosing, Node::Fixed(f.size))),
            Schema::Enum(e) => Ok(self.named(&e.name, enclosing, Node::Enum(e.symbols.len()))),
            Schema::Array(a) => {
                let index = self.push(Node::Null);
                let item = self.compile(&a.items, enclosing, depth + 1)?;
                self.nodes[index] = Node::Array(item);
                Ok(index)
            }
            Schema::Map(m) => {
                let index = self.push(Node::Null);
                let item = self.compile(&m.types, enclosing, depth + 1)?;
                self.nodes[index] = Node::Map(item);
                Ok(index)
            }
            Schema::Union(u) => {
                let index = self.push(Node::Null);
                let mut variants = Vec::with_capacity(u.variants().len());
                for variant in u.variants() {
                    variants.push(self.compile(variant, enclosing, depth + 1)?);
                }
                self.nodes[index] = Node::Union(variants.into());
                Ok(index)
            }
            Schema::Record(r) => {
                // Registered before its fields, so a field referring back to the record
                // (a linked list) resolves to this node.
                let index = self.named(&r.name, enclosing, Node::Record(Box::default()));
                let full = r.name.fully_qualified_name(enclosing);
                let mut fields = Vec::with_capacity(r.fields.len());
                for field in &r.fields {
                    fields.push(self.compile(&field.schema, &full.namespace, depth + 1)?);
                }
                self.nodes[index] = Node::Record(fields.into());
                Ok(index)
            }
            other => Err(format!("unsupported Avro type {other:?}")),
        }
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn named(&mut self, name: &Name, enclosing: &Namespace, node: Node) -> usize {
        let index = self.push(node);
        self.named
            .insert(name.fully_qualified_name(enclosing), index);
        index
    }
}

/// Deepest a schema is walked when compiled: [`crate::parse_schema`] already
/// refuses schemas nested deeper than [`crate::MAX_TYPE_DEPTH`]; this only guards
/// against a `Schema` built some other way.
const MAX_SCHEMA_DEPTH: usize = 4 * crate::MAX_TYPE_DEPTH;

/// How deep arrays and objects nest in JSON text, without parsing it (strings skipped, so
/// brackets inside them do not count). Meaningful for valid JSON; never fails.
pub fn json_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests;
