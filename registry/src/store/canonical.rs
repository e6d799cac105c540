//! A schema's canonical form: what decides whether two schema texts are the same schema.
//!
//! Confluent's registry compares the *parsed* schema printed back, not the text, so writing
//! `{"name":"com.acme.N"}` or `{"name":"N","namespace":"com.acme"}` gives one id. The form
//! here is that idea made explicit over the JSON: every named type's name and every name
//! reference is fully qualified and `namespace` disappears, `{"type":"int"}` is `"int"`, a
//! field's `"order":"ascending"` (the default) is dropped, keys come in a fixed order
//! (`type`, `name`, `fields`/`items`/`values`/`symbols`/`size`, then the rest sorted).
//! Docs, defaults, aliases and custom properties stay: changing a default or a doc is a new
//! schema, as in Confluent's registry (Avro's Parsing Canonical Form would strip them and
//! merge schemas whose defaults differ, which changes what readers decode).
//!
//! The walk is recursive over JSON that serde_json parsed (nesting at most 128 deep), and
//! bounded again by [`MAX_DEPTH`] so no caller can overflow the stack with it.

use serde_json::{Map, Value};

/// Deeper than serde_json's own parse limit (128): only reachable with a hand-built value.
pub const MAX_DEPTH: usize = 256;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Keys printed first, in this order; all others follow sorted.
const LEADING: [&str; 7] = [
    "type", "name", "fields", "items", "values", "symbols", "size",
];

/// The canonical form of a schema given as JSON; `Err` names why it cannot be one.
pub fn canonical_form(schema: &Value) -> Result<Value, String> {
    walk(schema, None, 0)
}

fn walk(value: &Value, namespace: Option<&str>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("schema nested deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::String(name) => Ok(Value::String(reference(name, namespace))),
        Value::Array(branches) => branches
            .iter()
            .map(|b| walk(b, namespace, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => object(map, namespace, depth),
        other => Err(format!("{other} is not a schema")),
    }
}

fn object(
    map: &Map<String, Value>,
    namespace: Option<&str>,
    depth: usize,
) -> Result<Value, String> {
    let Some(kind) = map.get("type") else {
        return Err("a schema object needs a \"type\"".into());
    };
    let kind = match kind {
        Value::String(kind) => kind.as_str(),
        // `{"type": {...}}` or `{"type": [...]}`: the inner schema, with any extra keys.
        nested => {
            let inner = walk(nested, namespace, depth + 1)?;
            if map.len() == 1 {
                return Ok(inner);
            }
            return Ok(ordered(map, |_| true, [("type", inner)]));
        }
    };
    match kind {
        "record" | "error" | "enum" | "fixed" => named(map, kind, namespace, depth),
        "array" | "map" => {
            let key = if kind == "array" { "items" } else { "values" };
            let inner = map
                .get(key)
                .ok_or_else(|| format!("an {kind} needs \"{key}\""))?;
            let inner = walk(inner, namespace, depth + 1)?;
            Ok(ordered(
                map,
                |_| true,
                [("type", Value::String(kind.into())), (key, inner)],
            ))
        }
        // A primitive or a reference to a named type, possibly with properties.
        _ => {
            let kind = Value::String(reference(kind, namespace));
            if map.len() == 1 {
                Ok(kind)
            } else {
                Ok(ordered(map, |_| true, [("type", kind)]))
            }
        }
    }
}

fn named(
    map: &Map<String, Value>,
    kind: &str,
    namespace: Option<&str>,
    depth: usize,
) -> Result<Value, String> {
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a {kind} needs a \"name\""))?;
    let fullname = if name.contains('.') {
        name.to_string()
    } else {
        // An explicit empty namespace is the null namespace, not the enclosing one.
        let own = match map.get("namespace") {
            Some(Value::String(ns)) if ns.is_empty() => None,
            Some(Value::String(ns)) => Some(ns.as_str()),
            _ => namespace,
        };
        qualify(name, own)
    };
    let inner_ns = fullname.rsplit_once('.').map(|(ns, _)| ns.to_string());
    let inner_ns = inner_ns.as_deref();
    let mut leading = vec![
        ("type", Value::String(kind.into())),
        ("name", Value::String(fullname.clone())),
    ];
    if kind == "record" || kind == "error" {
        let fields = map
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("record {fullname} needs \"fields\""))?;
        let fields = fields
            .iter()
            .map(|f| field(f, inner_ns, depth))
            .collect::<Result<Vec<_>, _>>()?;
        leading.push(("fields", Value::Array(fields)));
    }
    if let Some(Value::Array(aliases)) = map.get("aliases") {
        let aliases = aliases
            .iter()
            .map(|a| match a {
                Value::String(a) => Value::String(reference(a, inner_ns)),
                other => other.clone(),
            })
            .collect();
        leading.push(("aliases", Value::Array(aliases)));
    }
    Ok(ordered(map, |k| k != "namespace", leading))
}

fn field(value: &Value, namespace: Option<&str>, depth: usize) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return Err(format!("field {value} is not an object"));
    };
    let name = map
        .get("name")
        .cloned()
        .ok_or_else(|| "a field needs a \"name\"".to_string())?;
    let kind = map
        .get("type")
        .ok_or_else(|| format!("field {name} needs a \"type\""))?;
    let kind = walk(kind, namespace, depth + 1)?;
    let keep = |k: &str| k != "order" || map.get("order") != Some(&Value::from("ascending"));
    Ok(ordered(map, keep, [("name", name), ("type", kind)]))
}

/// `leading` entries first, then every other key of `map` that `keep` allows, sorted.
fn ordered<'a>(
    map: &Map<String, Value>,
    keep: impl Fn(&str) -> bool,
    leading: impl IntoIterator<Item = (&'a str, Value)>,
) -> Value {
    let mut out = Map::new();
    for (key, value) in leading {
        out.insert(key.to_string(), value);
    }
    let mut rest: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| !out.contains_key(k.as_str()) && keep(k))
        .collect();
    rest.sort_by(|a, b| {
        let rank = |k: &str| {
            LEADING
                .iter()
                .position(|l| *l == k)
                .unwrap_or(LEADING.len())
        };
        (rank(a.0), a.0).cmp(&(rank(b.0), b.0))
    });
    for (key, value) in rest {
        out.insert(key.clone(), value.clone());
    }
    Value::Object(out)
}

/// A type name as written, resolved against the enclosing namespace.
fn reference(name: &str, namespace: Option<&str>) -> String {
    if PRIMITIVES.contains(&name) || name.contains('.') {
        name.to_string()
    } else {
        qualify(name, namespace)
    }
}

fn qualify(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(v: Value) -> String {
        canonical_form(&v).expect("canonical").to_string()
    }

    #[test]
    fn dotted_name_and_namespace_are_one_schema() {
        let dotted = json!({"type":"record","name":"com.acme.N","fields":[
            {"name":"next","type":["null","N"]},
            {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A"]}}]});
        let split = json!({"namespace":"com.acme","fields":[
            {"type":["null","com.acme.N"],"name":"next"},
            {"name":"kind","type":{"name":"Kind","type":"enum","symbols":["A"],"namespace":"com.acme"}}],
            "name":"N","type":"record"});
        assert_eq!(form(dotted), form(split));
    }

    #[test]
    fn primitives_in_objects_collapse_and_ascending_order_is_the_default() {
        let a = json!({"type":"record","name":"R","fields":[{"name":"x","type":{"type":"int"},"order":"ascending"}]});
        let b = json!({"type":"record","name":"R","fields":[{"name":"x","type":"int"}]});
        assert_eq!(form(a), form(b));
    }

    #[test]
    fn defaults_docs_and_properties_still_count() {
        let base =
            json!({"type":"record","name":"R","fields":[{"name":"x","type":"int","default":1}]});
        let other_default =
            json!({"type":"record","name":"R","fields":[{"name":"x","type":"int","default":2}]});
        let with_doc = json!({"type":"record","name":"R","doc":"d","fields":[{"name":"x","type":"int","default":1}]});
        let with_prop = json!({"type":"record","name":"R","fields":[{"name":"x","type":{"type":"string","avro.java.string":"String"},"default":1}]});
        let forms = [
            form(base),
            form(other_default),
            form(with_doc),
            form(with_prop),
        ];
        for (i, a) in forms.iter().enumerate() {
            for b in &forms[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn empty_namespace_is_the_null_namespace() {
        let inner = json!({"type":"record","name":"outer.R","fields":[
            {"name":"x","type":{"type":"fixed","name":"F","namespace":"","size":2}}]});
        let printed = form(inner);
        assert!(printed.contains(r#""name":"F""#), "{printed}");
    }

    #[test]
    fn too_deep_values_are_refused_not_overflowed() {
        let mut v = json!("int");
        for _ in 0..(MAX_DEPTH + 10) {
            v = json!({"type":"array","items":v});
        }
        let err = canonical_form(&v).expect_err("too deep");
        assert!(err.contains("deeper than"), "{err}");
    }
}
