//! A record decoded on demand: the event's bytes, checked once by [`scan`](crate::scan),
//! with each top-level field decoded into a `Value` only when the processor reads it.
//!
//! Encoding the output copies the bytes of every field the processor did not change
//! (when the output field has the same binary layout as the input field it came from) and
//! encodes only the changed ones, so a filter reading `year` decodes one int, a projection
//! dropping `genres` copies bytes, and a mask rewriting `owner.email` decodes `owner` alone.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use apache_avro::Schema;
use apache_avro::schema::{RecordField, RecordSchema};
use apache_avro::types::Value;

use crate::decode;
use crate::encode::{self, Names, Unsupported};
use crate::path::Step;
use crate::scan::Walker;

thread_local! {
    /// The first field of the current event that failed to decode. The scan leaves UTF-8 to
    /// the decoder (see [`scan`](crate::scan)), so a field's decode can fail after the
    /// record was handed out; the record API has no error to return, so the failure is
    /// kept here and the SDK rejects the event with it once the processor returns.
    static FAILURE: RefCell<Option<decode::Error>> = const { RefCell::new(None) };
}

/// Takes the decode failure recorded since the last call, if any.
pub(crate) fn take_failure() -> Option<decode::Error> {
    FAILURE.with_borrow_mut(Option::take)
}

/// `bytes` decoded as a datum of `schema`. The scan checked their structure and
/// `Layout::of` that the decoder covers the schema: only a string that is not UTF-8 fails
/// here, and that failure is kept in `FAILURE` for the SDK to reject the event with.
fn decode_or_note(schema: &Schema, names: &Names, mut bytes: &[u8]) -> Value {
    decode::decode(schema, names, &mut bytes).unwrap_or_else(|e| {
        FAILURE.with_borrow_mut(|failure| {
            failure.get_or_insert(e);
        });
        Value::Null
    })
}

/// An input record schema, prepared once per configured stage.
#[derive(Debug)]
pub(crate) struct Layout {
    record: RecordSchema,
    names: Names,
    /// The binary layout of each field (see [`layout_keys`]).
    keys: Vec<Option<String>>,
    /// Each field's layout as the position of the first field of the same layout.
    classes: Vec<Option<usize>>,
    walker: Walker,
}

impl Layout {
    /// `None` unless `schema` is a record every datum of which the SDK's own decoder reads.
    pub(crate) fn of(schema: &Schema, names: &Names) -> Option<Arc<Self>> {
        let Schema::Record(record) = schema else {
            return None;
        };
        let walker = Walker::new(record, names)?;
        let keys = layout_keys(&record.fields, names);
        Some(Arc::new(Self {
            classes: keys
                .iter()
                .map(|key| class_of(&keys, key.as_ref()))
                .collect(),
            keys,
            record: record.clone(),
            names: names.clone(),
            walker,
        }))
    }
}

/// The position of the first of `keys` equal to `key`.
fn class_of(keys: &[Option<String>], key: Option<&String>) -> Option<usize> {
    let key = key?;
    keys.iter().position(|k| k.as_ref() == Some(key))
}

/// An output record schema, prepared once per stage for encoding lazy records into it.
#[derive(Debug)]
pub(crate) struct Target {
    record: RecordSchema,
    names: Names,
    /// Per output field: the input field of the same name, if any.
    named: Vec<Option<usize>>,
    /// Per output field: its layout as a class of the input's (`Layout::classes`); `None`
    /// when no input field has it.
    classes: Vec<Option<usize>>,
}

impl Target {
    /// `None` unless `output` is a record.
    pub(crate) fn new(layout: &Layout, output: &Schema, names: &Names) -> Option<Self> {
        let Schema::Record(record) = output else {
            return None;
        };
        let keys = layout_keys(&record.fields, names);
        Some(Self {
            named: record
                .fields
                .iter()
                .map(|field| layout.record.lookup.get(&field.name).copied())
                .collect(),
            classes: keys
                .iter()
                .map(|key| class_of(&layout.keys, key.as_ref()))
                .collect(),
            record: record.clone(),
            names: names.clone(),
        })
    }
}

/// For each field, a text that is equal for two fields exactly when their datums have the
/// same bytes (named references spelled out); `None` for recursive types, whose bytes are
/// never copied from one schema to another.
pub(crate) fn layout_keys(fields: &[RecordField], names: &Names) -> Vec<Option<String>> {
    fields
        .iter()
        .map(|field| {
            let mut key = String::new();
            write_key(&field.schema, names, 0, &mut key).then_some(key)
        })
        .collect()
}

fn write_key(schema: &Schema, names: &Names, depth: usize, out: &mut String) -> bool {
    use std::fmt::Write;
    if depth > 32 {
        return false;
    }
    match schema {
        Schema::Ref { name } => match names.get(name) {
            Some(definition) => write_key(definition, names, depth + 1, out),
            None => false,
        },
        Schema::Record(record) => {
            out.push('{');
            for field in &record.fields {
                if !write_key(&field.schema, names, depth + 1, out) {
                    return false;
                }
                out.push(',');
            }
            out.push('}');
            true
        }
        Schema::Array(array) => {
            out.push('[');
            write_key(&array.items, names, depth + 1, out) && {
                out.push(']');
                true
            }
        }
        Schema::Map(map) => {
            out.push('<');
            write_key(&map.types, names, depth + 1, out) && {
                out.push('>');
                true
            }
        }
        Schema::Union(union) => {
            out.push('(');
            for variant in union.variants() {
                if !write_key(variant, names, depth + 1, out) {
                    return false;
                }
                out.push('|');
            }
            out.push(')');
            true
        }
        // Symbols matter to the decoded value, so they are part of the key.
        Schema::Enum(e) => write!(out, "enum{:?}", e.symbols).is_ok(),
        Schema::Fixed(fixed) => write!(out, "fixed{}", fixed.size).is_ok(),
        // Primitives and logical types: the kind says it all.
        other => write!(out, "{:?}", apache_avro::schema::SchemaKind::from(other)).is_ok(),
    }
}

/// The `from` of a slot that holds no input field (a null made by `select`).
const TAKEN: usize = usize::MAX;

/// One field of a lazy record.
#[derive(Debug, Clone)]
struct Slot {
    /// Position of the input field it holds.
    from: usize,
    span: Range<usize>,
    /// A name given by [`Lazy::select`], when it differs from the input field's.
    name: Option<String>,
    value: OnceLock<Value>,
    /// Handed out mutably (or emptied): encoded from `value`, not copied from `span`.
    changed: bool,
}

impl Slot {
    /// What `select` leaves where it moved a slot out: never read again.
    fn taken() -> Self {
        Self {
            from: TAKEN,
            span: 0..0,
            name: None,
            value: OnceLock::new(),
            changed: true,
        }
    }

    /// A null field named `name`, holding no input field.
    fn null(name: String) -> Self {
        Self {
            from: TAKEN,
            span: 0..0,
            name: Some(name),
            value: OnceLock::from(Value::Null),
            changed: true,
        }
    }
}

/// Most levels of records an [`Edit`] reaches into below a top-level field.
const EDIT_DEPTH: usize = 4;

/// A field nested in records of a top-level field, changed in place without decoding the
/// rest of that top-level field: a mask of `owner.email` decodes and re-encodes the email
/// alone and copies the bytes around it. While the top-level field's slot has no value,
/// its bytes with this edit spliced in are the field; once it has one (decoded with the
/// edit applied), the value is.
#[derive(Debug, Clone)]
struct Edit {
    /// The input field (`Slot::from`) it is inside.
    from: usize,
    /// Field positions from that field's record down to the changed field.
    path: [usize; EDIT_DEPTH],
    depth: usize,
    /// Where the changed field's input bytes are in the datum.
    span: Range<usize>,
    value: Value,
}

impl Edit {
    fn path(&self) -> &[usize] {
        &self.path[..self.depth]
    }

    /// Puts the changed value into `field`, the whole top-level field decoded.
    fn apply(&self, field: &mut Value) {
        let mut current = field;
        for &position in self.path() {
            match current {
                Value::Record(fields) => match fields.get_mut(position) {
                    Some((_, value)) => current = value,
                    None => return,
                },
                _ => return,
            }
        }
        *current = self.value.clone();
    }
}

/// A record of a [`Layout`] over the bytes of one event.
#[derive(Debug, Clone)]
pub(crate) struct Lazy {
    datum: Vec<u8>,
    layout: Arc<Layout>,
    slots: Vec<Slot>,
    /// The whole record, decoded for a caller asking for all of it through `&self`.
    whole: OnceLock<Value>,
    /// At most one nested field changed in place (see [`Edit`]); boxed, so a record
    /// that has none stays small to move.
    edit: Option<Box<Edit>>,
}

impl Lazy {
    /// Checks `datum` against `layout` and wraps it; the error is the decoder's.
    pub(crate) fn new(datum: Vec<u8>, layout: Arc<Layout>) -> Result<Self, decode::Error> {
        let mut slots = Vec::with_capacity(layout.record.fields.len());
        layout.walker.record_spans(&datum, |span| {
            slots.push(Slot {
                from: slots.len(),
                span,
                name: None,
                value: OnceLock::new(),
                changed: false,
            });
        })?;
        Ok(Self {
            datum,
            layout,
            slots,
            whole: OnceLock::new(),
            edit: None,
        })
    }

    /// Whether the whole record was decoded through `&self` (so `&mut` access must turn
    /// the record into a plain value first, or the two copies would disagree).
    pub(crate) fn is_whole(&self) -> bool {
        self.whole.get().is_some()
    }

    fn name<'a>(&'a self, slot: &'a Slot) -> &'a str {
        match &slot.name {
            Some(name) => name,
            None => &self.layout.record.fields[slot.from].name,
        }
    }

    /// Position of the field named `name`, trying `hint` first.
    pub(crate) fn position(&self, name: &str, hint: usize) -> Option<usize> {
        match self.slots.get(hint) {
            Some(slot) if self.name(slot) == name => Some(hint),
            _ => self.slots.iter().position(|slot| self.name(slot) == name),
        }
    }

    /// The edit inside `slot`'s field, if there is one.
    fn edit_of(&self, slot: &Slot) -> Option<&Edit> {
        self.edit
            .as_deref()
            .filter(|edit| slot.from != TAKEN && edit.from == slot.from)
    }

    /// `slot`'s field decoded, with the edit inside it applied.
    fn decode_slot(&self, slot: &Slot) -> Value {
        let mut value = self.decode_bytes(slot);
        if let Some(edit) = self.edit_of(slot) {
            edit.apply(&mut value);
        }
        value
    }

    /// `slot`'s field decoded from its input bytes.
    fn decode_bytes(&self, slot: &Slot) -> Value {
        let schema = &self.layout.record.fields[slot.from].schema;
        decode_or_note(schema, &self.layout.names, &self.datum[slot.span.clone()])
    }

    /// The schema of the field `steps` names below top-level field `from`, and the field
    /// positions on the way, if every level is a record (no union) and the names agree.
    fn nested(&self, from: usize, steps: &[Step]) -> Option<(&Schema, [usize; EDIT_DEPTH])> {
        if steps.is_empty() || steps.len() > EDIT_DEPTH {
            return None;
        }
        let mut schema = &self.layout.record.fields.get(from)?.schema;
        let mut path = [0; EDIT_DEPTH];
        for (level, step) in steps.iter().enumerate() {
            if let Schema::Ref { name } = schema {
                schema = self.layout.names.get(name)?;
            }
            let Schema::Record(record) = schema else {
                return None;
            };
            let field = record.fields.get(step.index)?;
            if field.name != step.name {
                return None;
            }
            path[level] = step.index;
            schema = &field.schema;
        }
        Some((schema, path))
    }

    /// The schema of the field at `path` (field positions through records) below the
    /// top-level field `from`.
    fn schema_at(&self, from: usize, path: &[usize]) -> Option<&Schema> {
        let mut schema = &self.layout.record.fields.get(from)?.schema;
        for &position in path {
            if let Schema::Ref { name } = schema {
                schema = self.layout.names.get(name)?;
            }
            let Schema::Record(record) = schema else {
                return None;
            };
            schema = &record.fields.get(position)?.schema;
        }
        Some(schema)
    }

    /// Whether [`nested_mut`](Self::nested_mut) can change the field `steps` names below
    /// the top-level field at `index` in place: the way down is records alone, that
    /// top-level field is not decoded, and no other field was changed this way (one edit
    /// per record; the others go through the decoded value).
    pub(crate) fn can_edit(&self, index: usize, steps: &[Step]) -> bool {
        let Some(slot) = self.slots.get(index) else {
            return false;
        };
        let Some((_, path)) = self.nested(slot.from, steps) else {
            return false;
        };
        slot.from != TAKEN
            && slot.value.get().is_none()
            && self.whole.get().is_none()
            && self
                .edit
                .as_ref()
                .is_none_or(|edit| edit.from == slot.from && edit.path() == &path[..steps.len()])
    }

    /// The field `steps` names below the top-level field at `index`, decoded alone, to
    /// change in place; only when [`can_edit`](Self::can_edit) says so.
    pub(crate) fn nested_mut(&mut self, index: usize, steps: &[Step]) -> Option<&mut Value> {
        if self.edit.is_none() {
            let slot = self.slots.get(index)?;
            let (schema, path) = self.nested(slot.from, steps)?;
            let span = self.layout.walker.nested_span(
                slot.from,
                &self.datum,
                slot.span.clone(),
                &path[..steps.len()],
            )?;
            let value = decode_or_note(schema, &self.layout.names, &self.datum[span.clone()]);
            self.edit = Some(Box::new(Edit {
                from: slot.from,
                path,
                depth: steps.len(),
                span,
                value,
            }));
        }
        self.edit.as_mut().map(|edit| &mut edit.value)
    }

    /// The field at `index`, decoded on first use.
    pub(crate) fn get(&self, index: usize) -> Option<&Value> {
        let slot = self.slots.get(index)?;
        Some(slot.value.get_or_init(|| self.decode_slot(slot)))
    }

    /// The field at `index` to change in place; its bytes are no longer copied.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Value> {
        let slot = self.slots.get(index)?;
        if slot.value.get().is_none() {
            let value = self.decode_slot(slot);
            let _ = self.slots[index].value.set(value);
        }
        // The value now holds the edit inside it, if any, and is what changes from here.
        if self.edit_of(&self.slots[index]).is_some() {
            self.edit = None;
        }
        let slot = &mut self.slots[index];
        slot.changed = true;
        slot.value.get_mut()
    }

    /// The whole record as a value, decoded once.
    pub(crate) fn whole(&self) -> &Value {
        self.whole.get_or_init(|| {
            Value::Record(
                self.slots
                    .iter()
                    .map(|slot| {
                        let value = match slot.value.get() {
                            Some(value) => value.clone(),
                            None => self.decode_slot(slot),
                        };
                        (self.name(slot).to_owned(), value)
                    })
                    .collect(),
            )
        })
    }

    pub(crate) fn into_value(mut self) -> Value {
        if let Some(whole) = self.whole.take() {
            return whole;
        }
        let slots = std::mem::take(&mut self.slots);
        Value::Record(
            slots
                .into_iter()
                .map(|mut slot| {
                    let value = match slot.value.take() {
                        Some(value) => value,
                        None => self.decode_slot(&slot),
                    };
                    let name = match slot.name.take() {
                        Some(name) => name,
                        None => self.layout.record.fields[slot.from].name.clone(),
                    };
                    (name, value)
                })
                .collect(),
        )
    }

    /// Keeps the fields `picks` names, in that order: each is a current position and the
    /// name the field gets. A position out of range, or picked twice, gives a null.
    pub(crate) fn select<'a>(&mut self, picks: impl IntoIterator<Item = (usize, &'a str)>) {
        let mut old = std::mem::take(&mut self.slots);
        let fields = &self.layout.record.fields;
        self.slots = picks
            .into_iter()
            .map(|(index, name)| match old.get_mut(index) {
                Some(slot) if slot.from != TAKEN => {
                    let mut slot = std::mem::replace(slot, Slot::taken());
                    if fields[slot.from].name != name {
                        slot.name = Some(name.to_owned());
                    }
                    slot
                }
                _ => Slot::null(name.to_owned()),
            })
            .collect();
    }

    /// Appends the record's encoding as a record of `target` to `out`. Unchanged fields
    /// are copied as bytes when the output field has the layout of the input field they
    /// hold.
    pub(crate) fn encode(&self, target: &Target, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        let fields = &target.record.fields;
        if fields.len() != self.slots.len() {
            return Err(Unsupported);
        }
        // Input bytes to copy next: runs of fields copied in input order (most of a
        // projection or a mask) are copied at once, since each copy of a guest is a call
        // out of Wasm (`memory.copy`).
        let mut pending = 0..0;
        for (position, field) in fields.iter().enumerate() {
            // Slots normally come in output order, each holding the input field of the
            // same name: then no name needs comparing.
            let index = match self.slots.get(position) {
                Some(slot) if slot.name.is_none() && Some(slot.from) == target.named[position] => {
                    position
                }
                _ => self.position(&field.name, position).ok_or(Unsupported)?,
            };
            let slot = &self.slots[index];
            let class = self.layout.classes.get(slot.from).copied().flatten();
            let same_layout = class.is_some() && class == target.classes[position];
            if let Some(edit) = self.edit_of(slot)
                && same_layout
                && slot.value.get().is_none()
            {
                // The field's bytes with the changed one spliced in.
                let schema = self.schema_at(edit.from, edit.path()).ok_or(Unsupported)?;
                self.copy(&mut pending, slot.span.start..edit.span.start, out);
                self.flush(&mut pending, out);
                encode::encode(&edit.value, schema, &self.layout.names, out)?;
                pending = edit.span.end..slot.span.end;
            } else if !slot.changed && same_layout && self.edit_of(slot).is_none() {
                self.copy(&mut pending, slot.span.clone(), out);
            } else {
                self.flush(&mut pending, out);
                let value = self.get(index).ok_or(Unsupported)?;
                encode::encode(value, &field.schema, &target.names, out)?;
            }
        }
        self.flush(&mut pending, out);
        Ok(())
    }

    /// Adds `span` of the input to the bytes to copy, copying what was pending first if
    /// `span` does not follow it.
    fn copy(&self, pending: &mut Range<usize>, span: Range<usize>, out: &mut Vec<u8>) {
        if pending.end != span.start {
            self.flush(pending, out);
            pending.start = span.start;
        }
        pending.end = span.end;
    }

    fn flush(&self, pending: &mut Range<usize>, out: &mut Vec<u8>) {
        if pending.start < pending.end {
            out.extend_from_slice(&self.datum[pending.clone()]);
        }
        *pending = pending.end..pending.end;
    }

    /// Length of the input datum, a good guess at the output's.
    pub(crate) fn len(&self) -> usize {
        self.datum.len()
    }
}

#[cfg(test)]
mod tests;
