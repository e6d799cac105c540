//! Property tests of schema identity: however a schema's names are spelled (dotted full
//! names, or `namespace` keys inherited or repeated; primitives bare or wrapped), it has one
//! canonical form; that form is stable and is itself a valid schema of the same identity.

use proptest::prelude::*;
use serde_json::{Value, json};
use weft_registry::store::{canonical_schema, parse_schema};

/// A schema tree; named types get unique names when rendered.
#[derive(Debug, Clone)]
enum Shape {
    Prim(&'static str),
    Array(Box<Shape>),
    Map(Box<Shape>),
    /// `null` or the inner type (unions may not nest directly).
    Optional(Box<Shape>),
    Enum(Option<&'static str>),
    Record(Option<&'static str>, Vec<Shape>),
}

fn shape() -> impl Strategy<Value = Shape> {
    let namespace = prop::option::of(prop::sample::select(vec!["a", "a.b", "c"]));
    let leaf = prop_oneof![
        prop::sample::select(vec!["int", "long", "string", "bytes", "boolean", "double"])
            .prop_map(Shape::Prim),
        namespace.clone().prop_map(Shape::Enum),
    ];
    leaf.prop_recursive(5, 40, 4, move |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Shape::Array(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Map(Box::new(s))),
            inner
                .clone()
                .prop_filter("no nested unions", |s| !matches!(s, Shape::Optional(_)))
                .prop_map(|s| Shape::Optional(Box::new(s))),
            (namespace.clone(), prop::collection::vec(inner, 1..4))
                .prop_map(|(ns, fields)| Shape::Record(ns, fields)),
        ]
    })
}

/// Renders a shape. `dotted`: every named type as a dotted full name, primitives bare.
/// Otherwise: `name` + `namespace` (omitted when inherited), primitives as `{"type": p}`.
fn render(shape: &Shape, enclosing: Option<&str>, dotted: bool, counter: &mut usize) -> Value {
    let mut named = |ns: Option<&str>, prefix: &str| {
        *counter += 1;
        let ns = ns.or(enclosing).map(str::to_string);
        let name = format!("{prefix}{counter}");
        (ns, name)
    };
    let name_keys =
        |obj: &mut serde_json::Map<String, Value>, ns: &Option<String>, name: &str| match (
            dotted, ns,
        ) {
            (true, Some(ns)) => {
                obj.insert("name".into(), json!(format!("{ns}.{name}")));
            }
            (false, Some(ns)) if Some(ns.as_str()) != enclosing => {
                obj.insert("namespace".into(), json!(ns));
                obj.insert("name".into(), json!(name));
            }
            _ => {
                obj.insert("name".into(), json!(name));
            }
        };
    match shape {
        Shape::Prim(p) if dotted => json!(p),
        Shape::Prim(p) => json!({ "type": p }),
        Shape::Array(items) => {
            json!({"type": "array", "items": render(items, enclosing, dotted, counter)})
        }
        Shape::Map(values) => {
            json!({"values": render(values, enclosing, dotted, counter), "type": "map"})
        }
        Shape::Optional(inner) => json!(["null", render(inner, enclosing, dotted, counter)]),
        Shape::Enum(ns) => {
            let (ns, name) = named(*ns, "E");
            let mut obj = serde_json::Map::new();
            obj.insert("type".into(), json!("enum"));
            name_keys(&mut obj, &ns, &name);
            obj.insert("symbols".into(), json!(["X", "Y"]));
            Value::Object(obj)
        }
        Shape::Record(ns, fields) => {
            let (ns, name) = named(*ns, "R");
            let fields: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"name": format!("f{i}"), "type": render(f, ns.as_deref(), dotted, counter)}))
                .collect();
            let mut obj = serde_json::Map::new();
            if !dotted {
                obj.insert("fields".into(), json!(fields));
            }
            obj.insert("type".into(), json!("record"));
            name_keys(&mut obj, &ns, &name);
            if dotted {
                obj.insert("fields".into(), json!(fields));
            }
            Value::Object(obj)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn one_schema_has_one_canonical_form_whatever_the_spelling(
        fields in prop::collection::vec(shape(), 1..4),
        ns in prop::option::of(prop::sample::select(vec!["top", "a.b"])),
    ) {
        let top = Shape::Record(ns, fields);
        let dotted = render(&top, None, true, &mut 0).to_string();
        let split = render(&top, None, false, &mut 0).to_string();
        prop_assert!(parse_schema(&dotted).is_ok(), "dotted spelling invalid: {dotted}");
        prop_assert!(parse_schema(&split).is_ok(), "split spelling invalid: {split}");
        let a = canonical_schema(&dotted).expect("canonical");
        let b = canonical_schema(&split).expect("canonical");
        prop_assert_eq!(&a.identity, &b.identity);
        // The form is a valid schema whose own form is itself.
        prop_assert!(parse_schema(&a.identity).is_ok(), "canonical form invalid: {}", a.identity);
        let again = canonical_schema(&a.identity).expect("canonical of canonical");
        prop_assert_eq!(&again.identity, &a.identity);
    }

    #[test]
    fn canonical_form_never_panics_on_arbitrary_json(text in "[\\[\\]{}\",:a-z0-9 .]{0,80}") {
        let _ = canonical_schema(&text);
    }
}
