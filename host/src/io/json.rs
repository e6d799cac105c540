//! JSON ⇄ Avro values, guided by the schema, with errors that name the field.

use apache_avro::Schema;
use apache_avro::schema::{RecordSchema, ResolvedSchema, UnionSchema};
use apache_avro::types::Value;
use base64::Engine as _;
use serde_json::{Map, Number, Value as Json};

/// Converts a JSON value to an Avro value of `schema`. The error names the dotted field
/// path and what was expected.
pub fn json_to_avro(json: &Json, schema: &Schema) -> Result<Value, String> {
    convert(json, schema, &mut Vec::new(), &Resolver::new(schema)?)
}

/// Named types of a schema, so references to them resolve (apache-avro's own resolution).
struct Resolver<'a> {
    resolved: ResolvedSchema<'a>,
}

impl<'a> Resolver<'a> {
    fn new(schema: &'a Schema) -> Result<Self, String> {
        ResolvedSchema::try_from(schema)
            .map(|resolved| Self { resolved })
            .map_err(|e| format!("the schema's named types do not resolve: {e}"))
    }
}

fn at(path: &[String]) -> String {
    if path.is_empty() {
        "the record".into()
    } else {
        format!("field `{}`", path.join("."))
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn convert(
    json: &Json,
    schema: &Schema,
    path: &mut Vec<String>,
    names: &Resolver,
) -> Result<Value, String> {
    let expected = |what: &str| format!("{}: expected {what}, found {}", at(path), kind(json));
    Ok(match (schema, json) {
        (Schema::Null, Json::Null) => Value::Null,
        (Schema::Boolean, Json::Bool(b)) => Value::Boolean(*b),
        (Schema::Int, Json::Number(n)) => Value::Int(
            n.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| format!("{}: {n} is not a 32-bit integer", at(path)))?,
        ),
        (Schema::Long, Json::Number(n)) => Value::Long(
            n.as_i64()
                .ok_or_else(|| format!("{}: {n} is not a 64-bit integer", at(path)))?,
        ),
        (Schema::Float, Json::Number(n)) => Value::Float(n.as_f64().unwrap_or(f64::NAN) as f32),
        (Schema::Double, Json::Number(n)) => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        (Schema::String | Schema::Uuid, Json::String(s)) => Value::String(s.clone()),
        (Schema::Bytes, Json::String(s)) => Value::Bytes(s.as_bytes().to_vec()),
        (Schema::Fixed(f), Json::String(s)) if s.len() == f.size => {
            Value::Fixed(f.size, s.as_bytes().to_vec())
        }
        (Schema::Enum(e), Json::String(s)) => match e.symbols.iter().position(|x| x == s) {
            Some(i) => Value::Enum(i as u32, s.clone()),
            None => {
                return Err(format!(
                    "{}: {s:?} is not a symbol of enum {} ({})",
                    at(path),
                    e.name.name,
                    e.symbols.join(", ")
                ));
            }
        },
        (Schema::Array(a), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                out.push(convert(item, &a.items, path, names)?);
                path.pop();
            }
            Value::Array(out)
        }
        (Schema::Map(m), Json::Object(obj)) => {
            let mut out = std::collections::HashMap::with_capacity(obj.len());
            for (k, v) in obj {
                path.push(k.clone());
                out.insert(k.clone(), convert(v, &m.types, path, names)?);
                path.pop();
            }
            Value::Map(out)
        }
        (Schema::Record(r), Json::Object(obj)) => record(r, obj, path, names)?,
        (Schema::Union(u), _) => union(u, json, path, names)?,
        (Schema::Ref { name }, _) => {
            let target = names
                .resolved
                .get_names()
                .get(name)
                .ok_or_else(|| format!("{}: unknown type {}", at(path), name.fullname(None)))?;
            convert(json, target, path, names)?
        }
        (Schema::Null, _) => return Err(expected("null")),
        (Schema::Boolean, _) => return Err(expected("a boolean")),
        (Schema::Int | Schema::Long | Schema::Float | Schema::Double, _) => {
            return Err(expected("a number"));
        }
        (Schema::Record(_) | Schema::Map(_), _) => return Err(expected("an object")),
        (Schema::Array(_), _) => return Err(expected("an array")),
        (Schema::Fixed(f), _) => return Err(expected(&format!("a string of {} bytes", f.size))),
        (Schema::String | Schema::Uuid | Schema::Bytes | Schema::Enum(_), _) => {
            return Err(expected("a string"));
        }
        (other, _) => {
            return Err(format!(
                "{}: Avro type {other:?} is not supported in JSON input",
                at(path)
            ));
        }
    })
}

fn record(
    r: &RecordSchema,
    obj: &Map<String, Json>,
    path: &mut Vec<String>,
    names: &Resolver,
) -> Result<Value, String> {
    for key in obj.keys() {
        if !r.lookup.contains_key(key) {
            let mut p = path.clone();
            p.push(key.clone());
            return Err(format!(
                "{}: not in schema {}",
                at(&p),
                r.name.fullname(None)
            ));
        }
    }
    let mut fields = Vec::with_capacity(r.fields.len());
    for field in &r.fields {
        path.push(field.name.clone());
        let value = match obj.get(&field.name) {
            Some(v) => convert(v, &field.schema, path, names)?,
            None => match &field.default {
                Some(default) => convert(default, &field.schema, path, names)?,
                None if matches!(&field.schema, Schema::Union(u) if u.variants().first() == Some(&Schema::Null)) => {
                    Value::Union(0, Box::new(Value::Null))
                }
                None => {
                    return Err(format!(
                        "{}: missing, and the schema gives no default",
                        at(path)
                    ));
                }
            },
        };
        path.pop();
        fields.push((field.name.clone(), value));
    }
    Ok(Value::Record(fields))
}

/// A union takes the first branch the JSON converts to (`null` for `null`).
fn union(
    u: &UnionSchema,
    json: &Json,
    path: &mut Vec<String>,
    names: &Resolver,
) -> Result<Value, String> {
    let mut errors = Vec::new();
    for (i, variant) in u.variants().iter().enumerate() {
        match convert(json, variant, path, names) {
            Ok(v) => return Ok(Value::Union(i as u32, Box::new(v))),
            Err(e) => errors.push(e),
        }
    }
    Err(errors
        .pop()
        .unwrap_or_else(|| format!("{}: empty union", at(path))))
}

/// Converts an Avro value to plain JSON: unions unwrapped, enums as strings, bytes as
/// strings when they are UTF-8 and base64 otherwise.
pub fn avro_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(*i),
        Value::Long(i)
        | Value::TimeMicros(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i) => Json::from(*i),
        Value::Float(x) => Number::from_f64(f64::from(*x)).map_or(Json::Null, Json::Number),
        Value::Double(x) => Number::from_f64(*x).map_or(Json::Null, Json::Number),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Bytes(b) | Value::Fixed(_, b) => match std::str::from_utf8(b) {
            Ok(s) => Json::String(s.to_string()),
            Err(_) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        },
        Value::Union(_, v) => avro_to_json(v),
        Value::Array(items) => Json::Array(items.iter().map(avro_to_json).collect()),
        Value::Map(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), avro_to_json(&m[k])))
                    .collect(),
            )
        }
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        other => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::parse_str(
            r#"{"type":"record","name":"T","fields":[
                {"name":"id","type":"long"},
                {"name":"rating","type":["null","double"]},
                {"name":"kind","type":{"type":"enum","name":"K","symbols":["a","b"]}},
                {"name":"owner","type":{"type":"record","name":"O","fields":[{"name":"email","type":"string"}]}}
            ]}"#,
        )
        .expect("valid schema")
    }

    #[test]
    fn round_trips_through_avro() {
        let json: Json =
            serde_json::from_str(r#"{"id":7,"rating":4.5,"kind":"b","owner":{"email":"x@y"}}"#)
                .expect("json");
        let value = json_to_avro(&json, &schema()).expect("converts");
        assert!(value.validate(&schema()));
        assert_eq!(avro_to_json(&value), json);
    }

    #[test]
    fn a_named_type_used_twice_resolves_by_reference() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"P","namespace":"n","fields":[
                {"name":"home","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"}]}},
                {"name":"work","type":"Addr"}]}"#,
        )
        .expect("valid schema");
        let json: Json =
            serde_json::from_str(r#"{"home":{"city":"A"},"work":{"city":"B"}}"#).expect("json");
        let value = json_to_avro(&json, &schema).expect("converts");
        assert!(value.validate(&schema));
        assert_eq!(avro_to_json(&value), json);
    }

    #[test]
    fn missing_optional_field_is_null() {
        let json: Json =
            serde_json::from_str(r#"{"id":1,"kind":"a","owner":{"email":""}}"#).expect("json");
        let value = json_to_avro(&json, &schema()).expect("converts");
        assert_eq!(avro_to_json(&value)["rating"], Json::Null);
    }

    #[test]
    fn errors_name_the_nested_field() {
        let json: Json =
            serde_json::from_str(r#"{"id":1,"kind":"a","owner":{"email":3}}"#).expect("json");
        assert_eq!(
            json_to_avro(&json, &schema()).expect_err("invalid input"),
            "field `owner.email`: expected a string, found a number"
        );
        let json: Json =
            serde_json::from_str(r#"{"id":1,"kind":"c","owner":{"email":""}}"#).expect("json");
        assert_eq!(
            json_to_avro(&json, &schema()).expect_err("invalid input"),
            "field `kind`: \"c\" is not a symbol of enum K (a, b)"
        );
        let json: Json =
            serde_json::from_str(r#"{"kind":"a","owner":{"email":""}}"#).expect("json");
        assert_eq!(
            json_to_avro(&json, &schema()).expect_err("invalid input"),
            "field `id`: missing, and the schema gives no default"
        );
    }
}
