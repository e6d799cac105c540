//! Property tests over generated schemas (recursive, deeply nested, with hostile names):
//! parsing never panics, checking never overflows, and memoization never changes an answer.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::check::problems;
use super::names::{NameKind, is_valid};
use super::*;

const POOL: [&str; 4] = ["A", "B", "C", "D"];

/// A schema's JSON, named types drawn from [`POOL`] (so references, recursion and clashes
/// happen); [`unique_names`] then makes definitions distinct.
fn schema_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "null", "boolean", "int", "long", "float", "double", "bytes", "string"
        ])
        .prop_map(|p| json!(p)),
        prop::sample::select(POOL.to_vec()).prop_map(|n| json!(n)),
        (
            prop::sample::select(POOL.to_vec()),
            prop::sample::subsequence(vec!["X", "Y", "Z"], 1..=3),
            any::<bool>()
        )
            .prop_map(|(name, symbols, default)| {
                let mut e = json!({"type": "enum", "name": name, "symbols": symbols});
                if default {
                    e["default"] = json!(symbols[0]);
                }
                e
            }),
        (prop::sample::select(POOL.to_vec()), 1..4usize)
            .prop_map(|(name, size)| json!({"type": "fixed", "name": name, "size": size})),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|items| json!({"type": "array", "items": items})),
            inner
                .clone()
                .prop_map(|values| json!({"type": "map", "values": values})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
            (
                prop::sample::select(POOL.to_vec()),
                prop::collection::vec((prop::sample::select(vec!["a", "b", "c"]), inner), 0..4),
                prop::sample::subsequence(vec!["A", "B", "C"], 0..=1),
                any::<bool>(),
            )
                .prop_map(|(name, fields, aliases, linked)| {
                    let mut fields: Vec<Value> = fields
                        .into_iter()
                        .map(|(field, ty)| {
                            // A union led by null, or null itself, gets a null default.
                            let nullable = ty == json!("null")
                                || ty
                                    .as_array()
                                    .is_some_and(|b| b.first() == Some(&json!("null")));
                            let mut f = json!({"name": field, "type": ty});
                            if nullable {
                                f["default"] = Value::Null;
                            }
                            f
                        })
                        .collect();
                    if linked {
                        // A linked list's `next`: the record refers to itself.
                        fields
                            .push(json!({"name": "next", "type": ["null", name], "default": null}));
                    }
                    json!({"type": "record", "name": name, "aliases": aliases, "fields": fields})
                }),
        ]
    })
    .prop_map(|mut v| {
        unique_names(&mut v, &mut Vec::new());
        v
    })
}

/// The first definition of a name keeps it (references resolve to it); later ones get a
/// suffix, so most generated schemas parse.
fn unique_names(value: &mut Value, seen: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| unique_names(v, seen)),
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("name").cloned()
                && matches!(map.get("type"), Some(t) if t == "record" || t == "enum" || t == "fixed")
            {
                if seen.contains(&name) {
                    let renamed = format!("{name}{}", seen.len());
                    map.insert("name".into(), json!(renamed));
                    seen.push(renamed);
                } else {
                    seen.push(name);
                }
            }
            for key in ["items", "values"] {
                if let Some(v) = map.get_mut(key) {
                    unique_names(v, seen);
                }
            }
            if let Some(Value::Array(fields)) = map.get_mut("fields") {
                for field in fields {
                    if let Some(ty) = field.get_mut("type") {
                        unique_names(ty, seen);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Nesting of `layers` (0 array, 1 map, 2 union, 3 record) around `int`.
fn nested(layers: &[u8]) -> Value {
    layers.iter().enumerate().rev().fold(json!("int"), |inner, (i, layer)| match layer {
        0 => json!({"type": "array", "items": inner}),
        1 => json!({"type": "map", "values": inner}),
        2 => json!(["null", inner]),
        _ => json!({"type": "record", "name": format!("R{i}"), "fields": [{"name": "f", "type": inner}]}),
    })
}

/// A name: valid ones, near misses and anything at all (unicode, NUL, dots, dashes).
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,6}",
        "[A-Za-z_][A-Za-z0-9_]{0,3}(\\.[A-Za-z_][A-Za-z0-9_]{0,3}){1,2}",
        "[A-Za-z0-9_.\\-/ ]{0,6}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Memoized answers are the plain walk's answers, and a schema reads its own data.
    #[test]
    fn memoization_changes_no_answer(writer_json in schema_json(), reader_json in schema_json()) {
        let (Ok(writer), Ok(reader)) =
            (parse_schema(&writer_json.to_string()), parse_schema(&reader_json.to_string()))
        else {
            return Ok(());
        };
        let memoized = problems(&writer, &reader, true);
        let plain = problems(&writer, &reader, false);
        // The answer is always the same. The problems listed are too, unless a recursive
        // type was met again while being checked: a pair checked inside it is then answered
        // once for all its places (as in Java), so a problem repeated under the recursion
        // is listed once.
        prop_assert_eq!(memoized.is_empty(), plain.is_empty(), "{:?} vs {:?}", memoized, plain);
        let recursive = is_recursive(&writer_json, &mut Vec::new())
            || is_recursive(&reader_json, &mut Vec::new());
        if !recursive {
            prop_assert_eq!(memoized, plain);
        }
        prop_assert_eq!(incompatibilities(&writer, &writer), vec![]);
        prop_assert_eq!(incompatibilities(&reader, &reader), vec![]);
    }

    /// Any name anywhere: never a panic; refused exactly when the Avro rule says so.
    #[test]
    fn names_are_refused_exactly_when_invalid(name in any_name(), place in 0..7usize) {
        let (schema, kind) = match place {
            0 => (json!({"type":"record","name":name,"fields":[]}), NameKind::TypeName),
            1 => (json!({"type":"record","name":"R","namespace":name,"fields":[]}), NameKind::Namespace),
            2 => (json!({"type":"record","name":"R","aliases":[name],"fields":[]}), NameKind::TypeAlias),
            3 => (json!({"type":"record","name":"R","fields":[{"name":name,"type":"int"}]}), NameKind::FieldName),
            4 => (json!({"type":"record","name":"R","fields":[{"name":"a","aliases":[name],"type":"int"}]}), NameKind::FieldAlias),
            5 => (json!({"type":"enum","name":"E","symbols":[name]}), NameKind::EnumSymbol),
            _ => (json!({"type":"fixed","name":name,"size":2}), NameKind::TypeName),
        };
        let parsed = parse_schema(&schema.to_string());
        let is_panic = matches!(&parsed, Err(SchemaError::Panicked(_)));
        prop_assert!(!is_panic, "apache-avro panicked: {:?}", parsed);
        if is_valid(kind, &name) {
            // Valid names may still clash with what apache-avro reserves (a primitive's name
            // as a type name): its error, not ours.
            let ours = matches!(&parsed, Err(SchemaError::InvalidName { .. }));
            prop_assert!(!ours, "{:?} refused: {:?}", name, parsed);
        } else {
            let refused = matches!(&parsed, Err(SchemaError::InvalidName { kind: k, .. }) if *k == kind);
            prop_assert!(refused, "{:?} accepted as {}: {:?}", name, kind, parsed);
        }
    }

    /// Nesting up to well past the limit: accepted exactly up to it, checked without
    /// overflowing, never a panic.
    #[test]
    fn deep_nesting_is_bounded(layers in prop::collection::vec(0..4u8, 0..120)) {
        let text = nested(&layers).to_string();
        let depth = layers.len();
        match parse_schema(&text) {
            Ok(schema) => {
                prop_assert!(depth <= MAX_TYPE_DEPTH, "{} levels accepted", depth);
                prop_assert_eq!(incompatibilities(&schema, &schema), vec![]);
            }
            Err(SchemaError::TooDeep { .. }) => prop_assert!(depth > MAX_TYPE_DEPTH),
            // Deeper JSON than serde_json takes, or two unions in a row (not Avro).
            Err(SchemaError::Json(_) | SchemaError::Avro(_)) => {}
            Err(e) => prop_assert!(false, "unexpected: {}", e),
        }
    }
}

/// Whether a schema refers to a record it is inside of.
fn is_recursive(value: &Value, enclosing: &mut Vec<String>) -> bool {
    match value {
        Value::String(name) => enclosing.contains(name),
        Value::Array(items) => items.iter().any(|v| is_recursive(v, enclosing)),
        Value::Object(map) => {
            let record = map.get("type") == Some(&json!("record"));
            if record {
                enclosing.push(map["name"].as_str().unwrap_or_default().to_string());
            }
            let fields = map
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let found = ["items", "values"]
                .iter()
                .filter_map(|k| map.get(*k))
                .chain(fields.filter_map(|f| f.get("type")))
                .any(|v| is_recursive(v, enclosing));
            if record {
                enclosing.pop();
            }
            found
        }
        _ => false,
    }
}

#[test]
fn generated_schemas_mostly_parse_and_some_are_recursive() {
    // Guards the generator: the properties above skip what does not parse.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = schema_json();
    let (mut parsed, mut recursive) = (0, 0);
    for _ in 0..200 {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        if parse_schema(&value.to_string()).is_ok() {
            parsed += 1;
            recursive += usize::from(is_recursive(&value, &mut Vec::new()));
        }
    }
    assert!(parsed > 100, "only {parsed} of 200 generated schemas parse");
    assert!(recursive > 10, "only {recursive} of {parsed} are recursive");
}
