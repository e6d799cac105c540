//! The output shape: which fields of each (nested) record survive under which name,
//! derived once from the schema and applied to every record by position.

use std::collections::{BTreeMap, BTreeSet};

use weft_guest::avro::Schema;
use weft_guest::avro::schema::{NamesRef, RecordField, RecordSchema, UnionSchema};
use weft_guest::avro::types::Value;
use weft_guest::{ConfigError, Record};

/// What the parameters say about one record level, by field name.
#[derive(Debug, Default)]
pub struct Selection {
    children: BTreeMap<String, Selection>,
    /// Listed in `keep` itself (not only through a nested path).
    keep_whole: bool,
    /// Whether some `keep` path ends at or passes through this field.
    kept: bool,
    drop: bool,
    rename: Option<String>,
    /// The `param` and path that mentioned this field first, for error messages.
    source: (&'static str, String),
}

impl Selection {
    pub fn add(&mut self, param: &'static str, path: &str, apply: impl FnOnce(&mut Selection)) {
        let mut node = self;
        for (depth, segment) in path.split('.').enumerate() {
            let so_far = path
                .split('.')
                .take(depth + 1)
                .collect::<Vec<_>>()
                .join(".");
            node = node
                .children
                .entry(segment.to_owned())
                .or_insert_with(|| Selection {
                    source: (param, so_far),
                    ..Selection::default()
                });
            if param == "keep" {
                node.kept = true;
            }
        }
        apply(node);
    }

    pub fn mark_keep(&mut self) {
        self.keep_whole = true;
    }

    pub fn mark_drop(&mut self) {
        self.drop = true;
    }

    pub fn mark_rename(&mut self, new_name: &str) {
        self.rename = Some(new_name.to_owned());
    }

    /// Whether `keep` restricts the fields at this level.
    fn filters(&self) -> bool {
        !self.keep_whole && self.children.values().any(|child| child.kept)
    }
}

/// How to build one output record from an input record.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    fields: Vec<FieldPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct FieldPlan {
    index: usize,
    name: String,
    nested: Option<Plan>,
}

/// Derives the output record schema and the plan for `record` under `selection`.
/// `referenced` holds the full names of types the schema refers to by name: such a
/// type is shared, so it cannot be reshaped in one place.
pub fn derive(
    record: &RecordSchema,
    selection: &Selection,
    referenced: &BTreeSet<String>,
    at: &str,
) -> Result<(RecordSchema, Plan), ConfigError> {
    for (name, child) in &selection.children {
        if !record.lookup.contains_key(name) {
            let known: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            let (param, path) = &child.source;
            let place = if at.is_empty() {
                String::new()
            } else {
                format!(" in '{at}'")
            };
            return Err(ConfigError::param(
                *param,
                format!(
                    "unknown field '{path}': no field '{name}'{place}; available: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    let filters = selection.filters();
    let mut fields = Vec::new();
    let mut plan = Vec::new();
    for (index, field) in record.fields.iter().enumerate() {
        let child = selection.children.get(&field.name);
        let kept = !filters || child.is_some_and(|c| c.kept);
        if !kept || child.is_some_and(|c| c.drop) {
            continue;
        }
        let mut out = field.clone();
        let mut nested = None;
        if let Some(child) = child {
            if let Some(new_name) = &child.rename {
                out.aliases
                    .get_or_insert_with(Vec::new)
                    .push(field.name.clone());
                out.name = new_name.clone();
            }
            if !child.children.is_empty() {
                let path = child.source.1.as_str();
                let (schema, nested_plan) = reshape(&field.schema, child, referenced, path)?;
                out.schema = schema;
                // The default was written for the old shape.
                out.default = None;
                nested = Some(nested_plan);
            }
        }
        if let Some(clash) = fields.iter().find(|f: &&RecordField| f.name == out.name) {
            return Err(ConfigError::param(
                "rename",
                format!(
                    "two fields would be named '{}'{}",
                    clash.name,
                    if at.is_empty() {
                        String::new()
                    } else {
                        format!(" in '{at}'")
                    }
                ),
            ));
        }
        out.position = fields.len();
        plan.push(FieldPlan {
            index,
            name: out.name.clone(),
            nested,
        });
        fields.push(out);
    }
    if fields.is_empty() {
        let what = if at.is_empty() {
            "the record".to_owned()
        } else {
            format!("'{at}'")
        };
        return Err(ConfigError::new(format!(
            "no field of {what} would be left"
        )));
    }
    let mut out = record.clone();
    out.lookup = fields
        .iter()
        .map(|f| (f.name.clone(), f.position))
        .collect();
    out.fields = fields;
    Ok((out, Plan { fields: plan }))
}

/// Reshapes the record (or nullable record) a nested path goes through.
fn reshape(
    schema: &Schema,
    selection: &Selection,
    referenced: &BTreeSet<String>,
    path: &str,
) -> Result<(Schema, Plan), ConfigError> {
    let param = selection.source.0;
    let not_a_record = || {
        ConfigError::param(
            param,
            format!("'{path}' is not a record, so it has no fields to select"),
        )
    };
    match schema {
        Schema::Record(record) => {
            if referenced.contains(&record.name.fullname(None)) {
                return Err(ConfigError::param(
                    param,
                    format!(
                        "'{path}' is of type {}, which the schema uses in several places; \
                         project only reshapes records used once",
                        record.name
                    ),
                ));
            }
            let (record, plan) = derive(record, selection, referenced, path)?;
            Ok((Schema::Record(record), plan))
        }
        Schema::Union(union) => {
            let mut plan = None;
            let mut variants = Vec::new();
            for variant in union.variants() {
                match variant {
                    Schema::Record(_) if plan.is_none() => {
                        let (schema, p) = reshape(variant, selection, referenced, path)?;
                        variants.push(schema);
                        plan = Some(p);
                    }
                    Schema::Null => variants.push(Schema::Null),
                    _ => return Err(not_a_record()),
                }
            }
            let plan = plan.ok_or_else(not_a_record)?;
            let union = UnionSchema::new(variants).map_err(|e| ConfigError::new(e.to_string()))?;
            Ok((Schema::Union(union), plan))
        }
        _ => Err(not_a_record()),
    }
}

/// The full names of the types `schema` refers to by name.
pub fn referenced_names(schema: &Schema, names: &mut BTreeSet<String>) {
    match schema {
        Schema::Ref { name } => {
            names.insert(name.fullname(None));
        }
        Schema::Array(array) => referenced_names(&array.items, names),
        Schema::Map(map) => referenced_names(&map.types, names),
        Schema::Union(union) => union
            .variants()
            .iter()
            .for_each(|v| referenced_names(v, names)),
        Schema::Record(record) => record
            .fields
            .iter()
            .for_each(|f| referenced_names(&f.schema, names)),
        _ => {}
    }
}

/// Replaces each reference to a named type whose definition was dropped by that
/// definition (at its first remaining use), so the output schema stands on its own.
pub fn inline_dropped_definitions(
    schema: &mut Schema,
    defined: &mut BTreeSet<String>,
    names: &NamesRef<'_>,
) {
    match schema {
        Schema::Ref { name } => {
            let fullname = name.fullname(None);
            if !defined.contains(&fullname)
                && let Some(definition) = names.get(name)
            {
                *schema = (*definition).clone();
                inline_dropped_definitions(schema, defined, names);
            }
        }
        Schema::Record(record) => {
            defined.insert(record.name.fullname(None));
            for field in &mut record.fields {
                inline_dropped_definitions(&mut field.schema, defined, names);
            }
        }
        Schema::Enum(e) => {
            defined.insert(e.name.fullname(None));
        }
        Schema::Fixed(f) => {
            defined.insert(f.name.fullname(None));
        }
        Schema::Array(array) => inline_dropped_definitions(&mut array.items, defined, names),
        Schema::Map(map) => inline_dropped_definitions(&mut map.types, defined, names),
        Schema::Union(union) => {
            let mut variants = union.variants().to_vec();
            for variant in &mut variants {
                inline_dropped_definitions(variant, defined, names);
            }
            if let Ok(rebuilt) = UnionSchema::new(variants) {
                *union = rebuilt;
            }
        }
        _ => {}
    }
}

impl Plan {
    /// Reshapes a top-level `record` in place: picks the output fields by position (the
    /// fields left out are never decoded), then reshapes the nested records it changes.
    pub fn apply_to(&self, record: &mut Record) {
        record.select(
            self.fields
                .iter()
                .map(|field| (field.index, field.name.as_str())),
        );
        for (position, field) in self.fields.iter().enumerate() {
            if let Some(nested) = &field.nested
                && let Some(value) = record.field_at_mut(position)
            {
                reshape_value(nested, value);
            }
        }
    }

    /// Builds the output fields from `input` (a record's fields in schema order),
    /// moving values, not copying them.
    pub fn apply(&self, input: &mut [(String, Value)]) -> Vec<(String, Value)> {
        self.fields
            .iter()
            .map(|field| {
                let mut value = input
                    .get_mut(field.index)
                    .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null));
                if let Some(nested) = &field.nested {
                    reshape_value(nested, &mut value);
                }
                (field.name.clone(), value)
            })
            .collect()
    }
}

fn reshape_value(plan: &Plan, value: &mut Value) {
    match value {
        Value::Record(fields) => *fields = plan.apply(fields),
        Value::Union(_, inner) => reshape_value(plan, inner),
        _ => {}
    }
}
