//! Dotted field paths (`owner.email`), checked against a record schema once, in
//! `configure`, so each event is read by position.

use apache_avro::Schema;
use apache_avro::schema::{NamesRef, ResolvedSchema, SchemaKind};

use crate::manifest::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) index: usize,
}

/// A dotted field path (`owner.email`) checked against a schema once, in `configure`,
/// so each event is read by position.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    path: String,
    pub(crate) steps: Vec<Step>,
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
