//! The generic record API: schema-agnostic processors over `apache_avro` values.

use apache_avro::Schema;
use apache_avro::schema::{NamesRef, ResolvedSchema, SchemaKind};
use apache_avro::to_avro_datum;
use apache_avro::types::Value;

use crate::bindings::weft::processor::types as wit;
use crate::codec;
use crate::encode::{self, Names};
use crate::event::{Event, EventMeta, Outcome};
use crate::manifest::{ConfigError, Manifest, Params};
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
#[derive(Debug, Clone, PartialEq)]
pub struct Record(Value);

static NULL: Value = Value::Null;

impl Record {
    /// Wraps `value` if it is a record.
    pub fn new(value: Value) -> Option<Self> {
        matches!(value, Value::Record(_)).then_some(Self(value))
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
    }

    /// The fields in schema order.
    pub fn fields(&self) -> &[(String, Value)] {
        match &self.0 {
            Value::Record(fields) => fields,
            _ => unreachable!("Record always holds Value::Record"),
        }
    }

    /// The fields in schema order, to change or reorder.
    pub fn fields_mut(&mut self) -> &mut Vec<(String, Value)> {
        match &mut self.0 {
            Value::Record(fields) => fields,
            _ => unreachable!("Record always holds Value::Record"),
        }
    }

    /// The top-level field `name`, with a union unwrapped to its branch's value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| unwrap_union(v))
    }

    /// The value at `path`, with unions unwrapped; `Value::Null` when a record on the
    /// way is null. `None` only if the record does not have the shape of the schema
    /// the path was resolved against.
    pub fn get(&self, path: &FieldPath) -> Option<&Value> {
        let mut current = &self.0;
        for step in &path.steps {
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
        let mut current = &mut self.0;
        for step in &path.steps {
            match unwrap_union_mut(current) {
                Value::Record(fields) => current = &mut field_at_mut(fields, step)?.1,
                _ => return None,
            }
        }
        Some(unwrap_union_mut(current))
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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    index: usize,
}

/// A dotted field path (`owner.email`) checked against a schema once, in `configure`,
/// so each event is read by position.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    path: String,
    steps: Vec<Step>,
    /// The field's schema with a top-level named reference (and those of union
    /// branches) replaced by the definition.
    schema: Box<Schema>,
    /// Whether a record on the way can be null.
    through_null: bool,
}

impl FieldPath {
    /// Resolves `path` in `schema` (a record). Records inside nullable unions can be
    /// traversed. The error names the unknown field and the fields that exist there.
    pub fn resolve(schema: &Schema, path: &str) -> Result<Self, ConfigError> {
        let resolved = ResolvedSchema::try_from(schema)
            .map_err(|e| ConfigError::new(format!("the input schema is invalid: {e}")))?;
        let names = resolved.get_names();
        let mut current = deref(schema, names);
        let mut steps = Vec::new();
        let mut through_null = false;
        for (depth, name) in path.split('.').enumerate() {
            let so_far = path.split('.').take(depth).collect::<Vec<_>>().join(".");
            let (record, nullable) = match as_record(current, names) {
                Some(found) => found,
                None => {
                    return Err(ConfigError::new(format!(
                        "field '{path}': '{so_far}' is not a record"
                    )));
                }
            };
            through_null |= nullable;
            let Some(&index) = record.lookup.get(name) else {
                let known: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
                let place = if so_far.is_empty() {
                    String::new()
                } else {
                    format!(" in '{so_far}'")
                };
                return Err(ConfigError::new(format!(
                    "unknown field '{path}': no field '{name}'{place}; available: {}",
                    known.join(", ")
                )));
            };
            steps.push(Step {
                name: name.to_owned(),
                index,
            });
            current = deref(&record.fields[index].schema, names);
        }
        Ok(Self {
            path: path.to_owned(),
            steps,
            schema: Box::new(deref_branches(current, names)),
            through_null,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The field's schema (unions kept; named references replaced by definitions).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The field's schema without a null branch, and whether the field can be null
    /// (it is a union with null, or a record on the way can be null).
    pub fn value_schema(&self) -> (&Schema, bool) {
        match self.schema.as_ref() {
            Schema::Union(union) => {
                let non_null: Vec<&Schema> = union
                    .variants()
                    .iter()
                    .filter(|v| SchemaKind::from(*v) != SchemaKind::Null)
                    .collect();
                let nullable = union.is_nullable() || self.through_null;
                match non_null.as_slice() {
                    [single] => (single, nullable),
                    _ => (&self.schema, nullable),
                }
            }
            other => (other, self.through_null),
        }
    }

    /// The names of the record fields on the way, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|step| step.name.as_str())
    }
}

fn deref<'a>(schema: &'a Schema, names: &'a NamesRef<'a>) -> &'a Schema {
    match schema {
        Schema::Ref { name } => names.get(name).copied().unwrap_or(schema),
        other => other,
    }
}

fn deref_branches(schema: &Schema, names: &NamesRef<'_>) -> Schema {
    match schema {
        Schema::Union(union) => {
            let branches = union
                .variants()
                .iter()
                .map(|v| deref(v, names).clone())
                .collect();
            apache_avro::schema::UnionSchema::new(branches)
                .map(Schema::Union)
                .unwrap_or_else(|_| schema.clone())
        }
        other => other.clone(),
    }
}

/// The record `schema` is, or the record branch of a nullable union.
fn as_record<'a>(
    schema: &'a Schema,
    names: &'a NamesRef<'a>,
) -> Option<(&'a apache_avro::schema::RecordSchema, bool)> {
    match schema {
        Schema::Record(record) => Some((record, false)),
        Schema::Union(union) => {
            let mut records = union
                .variants()
                .iter()
                .map(|v| deref(v, names))
                .filter_map(|v| match v {
                    Schema::Record(record) => Some(record),
                    _ => None,
                });
            let record = records.next()?;
            let others_null = union
                .variants()
                .iter()
                .all(|v| matches!(deref(v, names), Schema::Record(_) | Schema::Null));
            (records.next().is_none() && others_null).then_some((record, union.is_nullable()))
        }
        _ => None,
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
        let stage = Self {
            processor,
            input,
            input_names,
            output: output_schema,
            names,
        };
        let answer = wit::Configured {
            output_schema: output_json,
            reads,
        };
        Ok((stage, answer))
    }

    fn process_one(&mut self, event: wit::Event) -> wit::Outcome {
        let record = match codec::decode(&self.input, &self.input_names, None, &event.value) {
            Ok(value) => match Record::new(value) {
                Some(record) => record,
                None => return wit::Outcome::Reject("the input event is not a record".to_owned()),
            },
            Err(reason) => return wit::Outcome::Reject(reason),
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
        let (schema, names) = (self.output.as_ref().unwrap_or(&self.input), &self.names);
        codec::emit(outcome, event, |record: Record, buffer| {
            if encode::encode(record.value(), schema, names, buffer).is_err() {
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
