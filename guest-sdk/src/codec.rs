//! The Avro side of the hot path: decoding input datums, encoding outputs into events,
//! and the schema checks `configure` runs once so `process` need not.

use std::error::Error as _;

use apache_avro::schema::{NamesRef, ResolvedSchema, SchemaKind};
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum};

use crate::ConfigError;
use crate::bindings::weft::processor::types as wit;
use crate::decode;
use crate::encode::Names;
use crate::event::Outcome;

/// Parses a schema the processor declares; a failure is a bug in the processor.
pub(crate) fn parse_declared(which: &str, json: &str) -> Result<Schema, ConfigError> {
    Schema::parse_str(json).map_err(|e| {
        ConfigError::new(format!(
            "the processor's declared {which} schema is invalid: {e}"
        ))
    })
}

/// Parses the schema the host says the events are written with.
pub(crate) fn parse_input(json: &str) -> Result<Schema, ConfigError> {
    Schema::parse_str(json)
        .map_err(|e| ConfigError::new(format!("the input schema is not a valid Avro schema: {e}")))
}

/// Checks that datums written with `writer` can be read with `reader`; the error names
/// the field at fault.
pub(crate) fn check_readable(writer: &Schema, reader: &Schema) -> Result<(), String> {
    SchemaCompatibility::can_read(writer, reader).map_err(|e| {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    })
}

/// `schema` as JSON. apache-avro leaves out the `doc` of record fields; a derived
/// schema should keep the docs of the fields it carries over, so they are put back.
pub(crate) fn schema_json(schema: &Schema) -> Result<String, ConfigError> {
    let mut json = serde_json::to_value(schema)
        .map_err(|e| ConfigError::new(format!("cannot write the output schema: {e}")))?;
    restore_field_docs(schema, &mut json);
    Ok(json.to_string())
}

fn restore_field_docs(schema: &Schema, json: &mut serde_json::Value) {
    match (schema, json) {
        (Schema::Record(record), serde_json::Value::Object(object)) => {
            let Some(serde_json::Value::Array(fields)) = object.get_mut("fields") else {
                return;
            };
            for (field, json) in record.fields.iter().zip(fields.iter_mut()) {
                let serde_json::Value::Object(json) = json else {
                    continue;
                };
                if let Some(doc) = &field.doc {
                    json.insert("doc".to_owned(), serde_json::Value::String(doc.clone()));
                }
                if let Some(ty) = json.get_mut("type") {
                    restore_field_docs(&field.schema, ty);
                }
            }
        }
        (Schema::Union(union), serde_json::Value::Array(variants)) => {
            for (schema, json) in union.variants().iter().zip(variants.iter_mut()) {
                restore_field_docs(schema, json);
            }
        }
        (Schema::Array(array), serde_json::Value::Object(object)) => {
            if let Some(items) = object.get_mut("items") {
                restore_field_docs(&array.items, items);
            }
        }
        (Schema::Map(map), serde_json::Value::Object(object)) => {
            if let Some(values) = object.get_mut("values") {
                restore_field_docs(&map.types, values);
            }
        }
        _ => {}
    }
}

/// Decodes one datum written with `writer` (whose named types are `names`), resolved to
/// `reader` when given.
///
/// Without a reader schema the SDK's lean decoder reads the datum, falling back to
/// apache-avro for the types it leaves; schema resolution is apache-avro's.
pub(crate) fn decode(
    writer: &Schema,
    names: &Names,
    reader: Option<&Schema>,
    bytes: &[u8],
) -> Result<Value, String> {
    let mut rest = bytes;
    let lean = match reader {
        None => decode::decode(writer, names, &mut rest),
        Some(_) => Err(decode::Error::Unsupported),
    };
    let value = match lean {
        Ok(value) => value,
        Err(decode::Error::Malformed(reason)) => {
            return Err(format!("cannot decode the input event: {reason}"));
        }
        Err(decode::Error::Unsupported) => {
            rest = bytes;
            from_avro_datum(writer, &mut rest, reader)
                .map_err(|e| format!("cannot decode the input event: {e}"))?
        }
    };
    if !rest.is_empty() {
        return Err(format!(
            "cannot decode the input event: {} bytes left after the datum; was it written with another schema?",
            rest.len()
        ));
    }
    Ok(value)
}

/// The reject reason for a datum the SDK's decoder (or its scan) refused.
pub(crate) fn decode_error(error: decode::Error) -> String {
    match error {
        decode::Error::Malformed(reason) => format!("cannot decode the input event: {reason}"),
        decode::Error::Unsupported => {
            "cannot decode the input event: a type the SDK's decoder leaves to apache-avro"
                .to_owned()
        }
    }
}

/// Whether `schema` refers to a named type by name somewhere. Serde encoding
/// (`write_avro_datum_ref`) cannot follow such references.
pub(crate) fn has_refs(schema: &Schema) -> bool {
    match schema {
        Schema::Ref { .. } => true,
        Schema::Array(array) => has_refs(&array.items),
        Schema::Map(map) => has_refs(&map.types),
        Schema::Union(union) => union.variants().iter().any(has_refs),
        Schema::Record(record) => record.fields.iter().any(|field| has_refs(&field.schema)),
        _ => false,
    }
}

/// Turns a processor's answer into the WIT outcome, encoding each output with `encode`.
///
/// A single output reuses the input event's value buffer and moves its key and headers:
/// the common one-in-one-out case allocates nothing here.
pub(crate) fn emit<T>(
    outcome: Outcome<T>,
    input: wit::Event,
    mut encode: impl FnMut(T, &mut Vec<u8>) -> Result<(), String>,
) -> wit::Outcome {
    let mut encode = |value: T, buffer: &mut Vec<u8>| {
        encode(value, buffer).map_err(|e| format!("output does not match the output schema: {e}"))
    };
    match outcome {
        Outcome::Drop => wit::Outcome::Emit(Vec::new()),
        Outcome::Reject(reason) => wit::Outcome::Reject(reason),
        Outcome::Emit(value) => {
            let mut buffer = input.value;
            buffer.clear();
            match encode(value, &mut buffer) {
                Ok(()) => wit::Outcome::Emit(vec![wit::Event {
                    value: buffer,
                    ..input
                }]),
                Err(reason) => wit::Outcome::Reject(reason),
            }
        }
        Outcome::EmitMany(values) => {
            let mut events = Vec::with_capacity(values.len());
            for value in values {
                let mut buffer = Vec::with_capacity(input.value.len());
                if let Err(reason) = encode(value, &mut buffer) {
                    return wit::Outcome::Reject(reason);
                }
                events.push(wit::Event {
                    key: input.key.clone(),
                    value: buffer,
                    headers: input.headers.clone(),
                    timestamp: input.timestamp,
                });
            }
            wit::Outcome::Emit(events)
        }
        Outcome::EmitEvents(outputs) => {
            let mut events = Vec::with_capacity(outputs.len());
            for mut output in outputs {
                let headers = output.headers_from(&input.headers);
                let key = output.key.take().unwrap_or_else(|| input.key.clone());
                let timestamp = output.timestamp.unwrap_or(input.timestamp);
                let mut buffer = Vec::with_capacity(input.value.len());
                if let Err(reason) = encode(output.value, &mut buffer) {
                    return wit::Outcome::Reject(reason);
                }
                events.push(wit::Event {
                    key,
                    value: buffer,
                    headers,
                    timestamp,
                });
            }
            wit::Outcome::Emit(events)
        }
    }
}

/// Sample values of `schema` used to check, in `configure`, that a processor's serde
/// input type can hold what the schema describes. Two samples: one taking the first
/// non-null branch of every union, one taking null where a union allows it, so both an
/// `Option` missing on a nullable field and a wrong non-null type are caught.
///
/// `None` when the schema holds types whose serde mapping is a matter of taste (bytes,
/// fixed, decimals, durations, uuids): those are left to the first event.
pub(crate) fn samples(schema: &Schema) -> Option<[Value; 2]> {
    let resolved = ResolvedSchema::try_from(schema).ok()?;
    let names = resolved.get_names();
    Some([
        sample(schema, names, false, 0)?,
        sample(schema, names, true, 0)?,
    ])
}

fn sample(schema: &Schema, names: &NamesRef<'_>, prefer_null: bool, depth: usize) -> Option<Value> {
    // Recursive schemas end in an empty array, map or null union branch.
    let deep = depth > 16;
    Some(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(false),
        Schema::Int => Value::Int(0),
        Schema::Long => Value::Long(0),
        Schema::Float => Value::Float(0.0),
        Schema::Double => Value::Double(0.0),
        Schema::String => Value::String(String::new()),
        Schema::Date => Value::Date(0),
        Schema::TimeMillis => Value::TimeMillis(0),
        Schema::TimeMicros => Value::TimeMicros(0),
        Schema::TimestampMillis => Value::TimestampMillis(0),
        Schema::TimestampMicros => Value::TimestampMicros(0),
        Schema::TimestampNanos => Value::TimestampNanos(0),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(0),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(0),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(0),
        Schema::Enum(schema) => Value::Enum(0, schema.symbols.first()?.clone()),
        Schema::Array(array) if deep => {
            let _ = array;
            Value::Array(Vec::new())
        }
        Schema::Array(array) => {
            Value::Array(vec![sample(&array.items, names, prefer_null, depth + 1)?])
        }
        Schema::Map(_) if deep => Value::Map(Default::default()),
        Schema::Map(map) => Value::Map(
            [(
                "key".to_owned(),
                sample(&map.types, names, prefer_null, depth + 1)?,
            )]
            .into_iter()
            .collect(),
        ),
        Schema::Union(union) => {
            let variants = union.variants();
            let null = variants
                .iter()
                .position(|v| SchemaKind::from(v) == SchemaKind::Null);
            let other = variants
                .iter()
                .position(|v| SchemaKind::from(v) != SchemaKind::Null);
            let index = match (null, other) {
                (Some(null), _) if prefer_null || deep => null,
                (_, Some(other)) => other,
                (Some(null), None) => null,
                (None, None) => return None,
            };
            let value = sample(&variants[index], names, prefer_null, depth + 1)?;
            Value::Union(u32::try_from(index).ok()?, Box::new(value))
        }
        Schema::Record(record) => Value::Record(
            record
                .fields
                .iter()
                .map(|field| {
                    Some((
                        field.name.clone(),
                        sample(&field.schema, names, prefer_null, depth + 1)?,
                    ))
                })
                .collect::<Option<_>>()?,
        ),
        Schema::Ref { name } => sample(names.get(name)?, names, prefer_null, depth + 1)?,
        Schema::Bytes
        | Schema::Fixed(_)
        | Schema::Decimal(_)
        | Schema::BigDecimal
        | Schema::Uuid
        | Schema::Duration => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITLE: &str = include_str!("../../plugins/enrich/schemas/title.avsc");

    #[test]
    fn incompatible_field_is_named() {
        let reader = Schema::parse_str(TITLE).expect("title schema");
        let writer = Schema::parse_str(&TITLE.replace(
            r#""name": "year", "type": "int""#,
            r#""name": "year", "type": "string""#,
        ))
        .expect("modified schema");
        let err = check_readable(&writer, &reader).expect_err("string cannot be read as int");
        assert!(err.contains("Field 'year'"), "{err}");
    }

    #[test]
    fn samples_take_both_sides_of_nullable_unions() {
        let schema = Schema::parse_str(TITLE).expect("title schema");
        let [non_null, null] = samples(&schema).expect("title has only simple types");
        let rating = |v: &Value| match v {
            Value::Record(fields) => fields[4].1.clone(),
            other => panic!("not a record: {other:?}"),
        };
        assert_eq!(
            rating(&non_null),
            Value::Union(1, Box::new(Value::Double(0.0)))
        );
        assert_eq!(rating(&null), Value::Union(0, Box::new(Value::Null)));
        assert!(non_null.validate(&schema) && null.validate(&schema));
    }

    #[test]
    fn schema_json_keeps_field_docs() {
        let schema = Schema::parse_str(TITLE).expect("title schema");
        let json = schema_json(&schema).expect("serializable");
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["fields"][0]["doc"], "Catalogue id, unique per title.");
        assert_eq!(value["fields"][4]["default"], serde_json::Value::Null);
        assert_eq!(value["fields"][5]["default"], serde_json::json!([]));
        let again = Schema::parse_str(&json).expect("reparses");
        assert_eq!(again.canonical_form(), schema.canonical_form());
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let schema = Schema::parse_str(r#""long""#).expect("long");
        let names = Names::of(&schema);
        assert_eq!(decode(&schema, &names, None, &[2]), Ok(Value::Long(1)));
        assert_eq!(
            decode(&schema, &names, None, &[2, 0]).expect_err("trailing byte"),
            "cannot decode the input event: 1 bytes left after the datum; was it written with another schema?"
        );
    }

    #[test]
    fn what_the_lean_decoder_leaves_apache_avro_decodes() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"},
                {"name": "d", "type": {"type": "fixed", "name": "D", "size": 12, "logicalType": "duration"}}]}"#,
        )
        .expect("schema");
        let bytes = [&[4][..], &[1; 12]].concat();
        assert_eq!(
            decode(&schema, &Names::of(&schema), None, &bytes),
            from_avro_datum(&schema, &mut &bytes[..], None).map_err(|e| e.to_string())
        );
        assert!(decode(&schema, &Names::of(&schema), None, &bytes[..5]).is_err());
    }

    #[test]
    fn malformed_events_are_named_as_such() {
        let schema = Schema::parse_str(TITLE).expect("title schema");
        assert_eq!(
            decode(&schema, &Names::of(&schema), None, &[2, 8, b'A']).expect_err("truncated"),
            "cannot decode the input event: the datum ends early: 4 bytes wanted, 1 left"
        );
    }
}
