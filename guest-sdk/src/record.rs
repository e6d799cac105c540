//! The generic record API: schema-agnostic processors over `apache_avro` values.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema::SchemaKind;
use apache_avro::to_avro_datum;
use apache_avro::types::Value;

use crate::bindings::weft::processor::types as wit;
use crate::codec;
use crate::encode::{self, Names};
use crate::event::{Event, EventMeta, Outcome};
use crate::lazy::{self, Layout, Lazy, Target};
use crate::manifest::{ConfigError, Manifest, Params};
pub use crate::path::FieldPath;
use crate::path::Step;
use crate::stage::Stage;

/// A processor that accepts any record schema and sees events as [`Record`]s.
///
/// `configure` receives the input schema and says which schema the processor emits
/// (the same one, or one it derives). Export it with [`export_record!`](crate::export_record).
pub trait RecordProcessor: Sized + 'static {
    const MANIFEST: Manifest;

    /// Builds the processor for records of `input_schema` (always an Avro record).
    /// Resolve field paths here with [`FieldPath::resolve`], once, not per event.
    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError>;

    /// Processes one input record.
    fn process(&mut self, record: Record, meta: &EventMeta<'_>) -> RecordOutcome;
}

/// A configured record processor, the schema it emits and the input fields it reads.
#[derive(Debug)]
pub struct Configured<P> {
    processor: P,
    output_schema: Option<Schema>,
    reads: Option<Vec<String>>,
}

impl<P> Configured<P> {
    /// The processor emits records of its input schema.
    pub fn same_schema(processor: P) -> Self {
        Self {
            processor,
            output_schema: None,
            reads: None,
        }
    }

    /// The processor emits records of `output_schema`.
    pub fn with_output_schema(processor: P, output_schema: Schema) -> Self {
        Self {
            processor,
            output_schema: Some(output_schema),
            reads: None,
        }
    }

    /// Says which fields of the input the processor reads: top-level field names or dotted
    /// paths (a [`FieldPath::as_str`]). Without it the host takes the processor to read every
    /// field. The host uses it for field-level lineage: a schema change that drops a field
    /// no stage reads blocks no pipeline's upgrade, so list every field whose presence or
    /// value changes what the processor emits (fields merely passed through are not reads).
    ///
    /// ```
    /// # use weft_guest::Configured;
    /// let configured = Configured::same_schema(()).reading(["year", "address.city"]);
    /// ```
    pub fn reading<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.reads = Some(fields.into_iter().map(Into::into).collect());
        self
    }
}

/// What a record processor made of one input record.
#[derive(Debug, Clone)]
pub enum RecordOutcome {
    /// Pass the input event on unchanged, without re-encoding it. Only for processors
    /// configured with [`Configured::same_schema`].
    Keep,
    /// Emit one record with the input event's key, headers and timestamp.
    Emit(Record),
    /// Emit several records, each with the input event's key, headers and timestamp.
    EmitMany(Vec<Record>),
    /// Emit records with their own key, headers or timestamp.
    EmitEvents(Vec<Event<Record>>),
    /// Emit nothing: the event is filtered out (not an error).
    Drop,
    /// The event cannot be processed: it goes to the dead-letter sink with this reason.
    Reject(String),
}

impl RecordOutcome {
    /// Shorthand for [`RecordOutcome::Reject`].
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }
}

/// An Avro record value (`Value::Record`) with field access by [`FieldPath`].
///
/// A record the SDK hands to [`RecordProcessor::process`] is decoded on demand: `get`,
/// `get_mut`, `field` and [`select`](Self::select) decode only the top-level fields they
/// touch, and emitting it copies the bytes of the fields left unchanged. `get_mut` of a
/// path through nested records (`owner.email`) decodes that field alone, the first time
/// in a record (a second such path decodes its top-level field). `value`, `fields`,
/// `fields_mut` and `into_value` decode all of it.
#[derive(Clone)]
pub struct Record(Repr);

#[derive(Clone)]
enum Repr {
    Value(Value),
    Lazy(Lazy),
}

static NULL: Value = Value::Null;

impl Record {
    /// Wraps `value` if it is a record.
    pub fn new(value: Value) -> Option<Self> {
        matches!(value, Value::Record(_)).then_some(Self(Repr::Value(value)))
    }

    pub(crate) fn lazy(lazy: Lazy) -> Self {
        Self(Repr::Lazy(lazy))
    }

    pub fn value(&self) -> &Value {
        match &self.0 {
            Repr::Value(value) => value,
            Repr::Lazy(lazy) => lazy.whole(),
        }
    }

    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Value(value) => value,
            Repr::Lazy(lazy) => lazy.into_value(),
        }
    }

    /// The fields in schema order.
    pub fn fields(&self) -> &[(String, Value)] {
        match self.value() {
            Value::Record(fields) => fields,
            _ => unreachable!("Record always holds Value::Record"),
        }
    }

    /// The fields in schema order, to change or reorder.
    pub fn fields_mut(&mut self) -> &mut Vec<(String, Value)> {
        match self.plain() {
            Value::Record(fields) => fields,
            _ => unreachable!("Record always holds Value::Record"),
        }
    }

    /// The record as a plain value, decoding what was not yet.
    fn plain(&mut self) -> &mut Value {
        if let Repr::Lazy(_) = self.0
            && let Repr::Lazy(lazy) = std::mem::replace(&mut self.0, Repr::Value(Value::Null))
        {
            self.0 = Repr::Value(lazy.into_value());
        }
        match &mut self.0 {
            Repr::Value(value) => value,
            Repr::Lazy(_) => unreachable!("just decoded"),
        }
    }

    /// Whether access may go through the lazy form (nothing decoded it whole through
    /// `&self`, which `&mut` access would leave stale).
    fn is_lazy(&self) -> bool {
        matches!(&self.0, Repr::Lazy(lazy) if !lazy.is_whole())
    }

    fn lazy_mut(&mut self) -> Option<&mut Lazy> {
        match &mut self.0 {
            Repr::Lazy(lazy) if !lazy.is_whole() => Some(lazy),
            _ => None,
        }
    }

    /// The top-level field `name`, with a union unwrapped to its branch's value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        let value = match &self.0 {
            Repr::Lazy(lazy) if !lazy.is_whole() => lazy.get(lazy.position(name, 0)?)?,
            _ => &self.fields().iter().find(|(n, _)| n == name)?.1,
        };
        Some(unwrap_union(value))
    }

    /// The top-level field at `index` (a position in [`fields`](Self::fields)) to change
    /// in place, unions kept; decodes that field alone.
    pub fn field_at_mut(&mut self, index: usize) -> Option<&mut Value> {
        if self.is_lazy() {
            return self.lazy_mut()?.get_mut(index);
        }
        self.fields_mut().get_mut(index).map(|(_, value)| value)
    }

    /// Keeps only the fields `picks` lists, in that order: each pick is the position of a
    /// current field and the name it gets. The others are dropped without being decoded,
    /// so a projection costs nothing for the fields it leaves out. A position out of range,
    /// or picked a second time, gives a null field.
    pub fn select<'a>(&mut self, picks: impl IntoIterator<Item = (usize, &'a str)>) {
        if self.is_lazy() {
            if let Some(lazy) = self.lazy_mut() {
                lazy.select(picks);
            }
            return;
        }
        let fields = self.fields_mut();
        let selected = picks
            .into_iter()
            .map(|(index, name)| {
                let value = fields
                    .get_mut(index)
                    .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null));
                (name.to_owned(), value)
            })
            .collect();
        *fields = selected;
    }

    /// The value at `path`, with unions unwrapped; `Value::Null` when a record on the
    /// way is null. `None` only if the record does not have the shape of the schema
    /// the path was resolved against.
    pub fn get(&self, path: &FieldPath) -> Option<&Value> {
        let (first, rest) = path.steps.split_first()?;
        let top = match &self.0 {
            Repr::Lazy(lazy) if !lazy.is_whole() => {
                lazy.get(lazy.position(&first.name, first.index)?)?
            }
            _ => &field_at(self.fields(), first)?.1,
        };
        let mut current = top;
        for step in rest {
            match unwrap_union(current) {
                Value::Record(fields) => current = &field_at(fields, step)?.1,
                Value::Null => return Some(&NULL),
                _ => return None,
            }
        }
        Some(unwrap_union(current))
    }

    /// The value at `path` to change in place, with unions unwrapped (so assigning a
    /// value of the branch's type keeps the union); `None` when a record on the way is
    /// null or the record does not have the expected shape.
    pub fn get_mut(&mut self, path: &FieldPath) -> Option<&mut Value> {
        let (first, rest) = path.steps.split_first()?;
        let top = if self.is_lazy() {
            let lazy = self.lazy_mut()?;
            let index = lazy.position(&first.name, first.index)?;
            if lazy.can_edit(index, rest) {
                // Through records alone: the field is decoded and changed by itself, and
                // the bytes around it in its top-level field are copied (see `lazy`).
                return lazy.nested_mut(index, rest).map(unwrap_union_mut);
            }
            lazy.get_mut(index)?
        } else {
            &mut field_at_mut(self.fields_mut(), first)?.1
        };
        let mut current = top;
        for step in rest {
            match unwrap_union_mut(current) {
                Value::Record(fields) => current = &mut field_at_mut(fields, step)?.1,
                _ => return None,
            }
        }
        Some(unwrap_union_mut(current))
    }

    /// Appends the encoding of the record (of `schema`, which `target` describes when it
    /// is a record) to `out`; unchanged fields of a lazy record are copied as bytes.
    pub(crate) fn encode(
        &self,
        schema: &Schema,
        target: Option<&Target>,
        names: &Names,
        out: &mut Vec<u8>,
    ) -> Result<(), encode::Unsupported> {
        match (&self.0, target) {
            (Repr::Lazy(lazy), Some(target)) if !lazy.is_whole() => {
                // Room for the input and some growth (a hashed value is 64 bytes), so the
                // buffer is allocated once: growing it copies it.
                out.reserve(lazy.len() + lazy.len() / 2 + 64);
                lazy.encode(target, out)
            }
            _ => encode::encode(self.value(), schema, names, out),
        }
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Record").field(self.value()).finish()
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

fn field_at<'a>(fields: &'a [(String, Value)], step: &Step) -> Option<&'a (String, Value)> {
    // Decoded records hold their fields in schema order, so the index normally hits;
    // the name check keeps a record built by hand in another order correct.
    match fields.get(step.index) {
        Some(field) if field.0 == step.name => Some(field),
        _ => fields.iter().find(|(name, _)| *name == step.name),
    }
}

fn field_at_mut<'a>(
    fields: &'a mut [(String, Value)],
    step: &Step,
) -> Option<&'a mut (String, Value)> {
    let index = match fields.get(step.index) {
        Some(field) if field.0 == step.name => step.index,
        _ => fields.iter().position(|(name, _)| *name == step.name)?,
    };
    fields.get_mut(index)
}

/// The value inside a union, or `value` itself.
pub fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

fn unwrap_union_mut(value: &mut Value) -> &mut Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

/// A configured record processor with the schemas it decodes and encodes with.
pub(crate) struct RecordStage<P> {
    processor: P,
    input: Schema,
    /// Named types of the input schema, for the decoder.
    input_names: Names,
    /// `None` when the output schema is the input schema.
    output: Option<Schema>,
    /// Named types of the output schema, for the encoder.
    names: Names,
    /// The input schema for lazy records; `None` when it holds types the SDK's decoder
    /// leaves to apache-avro (every event is then decoded whole).
    layout: Option<Arc<Layout>>,
    /// The output schema as lazy records are encoded into it.
    target: Option<Target>,
}

impl<P: RecordProcessor> RecordStage<P> {
    pub(crate) fn configure(
        params: Vec<(String, String)>,
        input_schema: &str,
    ) -> Result<(Self, wit::Configured), ConfigError> {
        let params = Params::new(P::MANIFEST.params, params)?;
        let input = codec::parse_input(input_schema)?;
        if !matches!(input, Schema::Record(_)) {
            return Err(ConfigError::new(format!(
                "{} processes records, but the input schema is {}",
                P::MANIFEST.name,
                format!("{:?}", SchemaKind::from(&input)).to_lowercase()
            )));
        }
        let Configured {
            processor,
            output_schema,
            reads,
        } = P::configure(&params, &input)?;
        let output_json = match &output_schema {
            None => input_schema.to_owned(),
            Some(schema) => codec::schema_json(schema)?,
        };
        let input_names = Names::of(&input);
        let names = match &output_schema {
            None => input_names.clone(),
            Some(output) => Names::of(output),
        };
        let layout = Layout::of(&input, &input_names);
        let target = layout.as_ref().and_then(|layout| {
            Target::new(layout, output_schema.as_ref().unwrap_or(&input), &names)
        });
        let stage = Self {
            processor,
            input,
            input_names,
            output: output_schema,
            names,
            layout,
            target,
        };
        let answer = wit::Configured {
            output_schema: output_json,
            reads,
        };
        Ok((stage, answer))
    }

    fn process_one(&mut self, event: wit::Event) -> wit::Outcome {
        // A field that failed to decode (a string that is not UTF-8, which the scan leaves
        // to the decoder) rejects the event as a full decode would have.
        lazy::take_failure();
        let outcome = self.process_decoded(event);
        match lazy::take_failure() {
            Some(e) => wit::Outcome::Reject(codec::decode_error(e)),
            None => outcome,
        }
    }

    fn process_decoded(&mut self, mut event: wit::Event) -> wit::Outcome {
        let record = match &self.layout {
            // The record owns the event's bytes: its unchanged fields are copied from them.
            Some(layout) => match Lazy::new(std::mem::take(&mut event.value), layout.clone()) {
                Ok(lazy) => Record::lazy(lazy),
                Err(e) => return wit::Outcome::Reject(codec::decode_error(e)),
            },
            None => match codec::decode(&self.input, &self.input_names, None, &event.value) {
                Ok(value) => match Record::new(value) {
                    Some(record) => record,
                    None => {
                        return wit::Outcome::Reject("the input event is not a record".to_owned());
                    }
                },
                Err(reason) => return wit::Outcome::Reject(reason),
            },
        };
        let meta = EventMeta::new(event.key.as_deref(), &event.headers, event.timestamp);
        let outcome = match self.processor.process(record, &meta) {
            RecordOutcome::Keep if self.output.is_none() => return wit::Outcome::Keep,
            RecordOutcome::Keep => {
                return wit::Outcome::Reject(format!(
                    "{} answered keep, but its output schema differs from its input schema",
                    P::MANIFEST.name
                ));
            }
            RecordOutcome::Emit(record) => Outcome::Emit(record),
            RecordOutcome::EmitMany(records) => Outcome::EmitMany(records),
            RecordOutcome::EmitEvents(events) => Outcome::EmitEvents(events),
            RecordOutcome::Drop => Outcome::Drop,
            RecordOutcome::Reject(reason) => Outcome::Reject(reason),
        };
        let schema = self.output.as_ref().unwrap_or(&self.input);
        let (names, target) = (&self.names, self.target.as_ref());
        codec::emit(outcome, event, |record: Record, buffer| {
            if record.encode(schema, target, names, buffer).is_err() {
                // apache-avro encodes what the lean encoder leaves, or says what is wrong.
                *buffer = to_avro_datum(schema, record.into_value()).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

impl<P: RecordProcessor> Stage for RecordStage<P> {
    fn process_batch(&mut self, batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String> {
        Ok(batch
            .into_iter()
            .map(|event| self.process_one(event))
            .collect())
    }
}
