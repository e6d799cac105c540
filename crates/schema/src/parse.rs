//! The one safe way to turn schema text into apache-avro's model: every schema weft reads
//! (files, plugin manifests, the registry's requests, Kafka writer schemas) comes through
//! [`parse_schema`], which refuses what would crash or bog down a process before apache-avro
//! sees it.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use apache_avro::Schema;
use serde_json::{Map, Value};

use super::names::{NameKind, is_valid, printable};

/// How deeply types may nest: records, arrays, maps and unions each count one level, and a
/// reference to a named type counts as deep as that type's definition (so a chain of records
/// each referring to the previous one is as deep as the chain is long). Recursive references
/// (a linked list's `next`) count nothing. Real schemas stay far below; every walk over a
/// schema (apache-avro's own, the compatibility check) recurses at most this deep.
pub const MAX_TYPE_DEPTH: usize = 64;

/// Why a schema text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Not JSON, or JSON nested deeper than serde_json's limit of 128 levels.
    #[error("not a JSON schema: {0}")]
    Json(String),
    /// Types nested deeper than [`MAX_TYPE_DEPTH`].
    #[error(
        "types nest deeper than {limit} levels{}; records, arrays, maps and unions each count one level, a named type referred to counts as deep as its definition",
        at.as_ref().map(|name| format!(" (at {name})")).unwrap_or_default()
    )]
    TooDeep {
        limit: usize,
        /// The named type in which the limit was crossed, if any.
        at: Option<String>,
    },
    /// A name that breaks the Avro specification's name rule.
    #[error("invalid {kind} `{name}`: {rule}", rule = kind.rule())]
    InvalidName {
        kind: NameKind,
        /// The name, with control characters escaped and cut at 80 characters.
        name: String,
    },
    /// A name list (`aliases`, `symbols`) that is not a list of strings.
    #[error("`{0}` must be a list of strings")]
    NotStrings(&'static str),
    /// apache-avro refused the schema.
    #[error("{0}")]
    Avro(String),
    /// apache-avro panicked on it (a library bug the checks above did not foresee).
    #[error("the Avro library failed on this schema: {0}")]
    Panicked(String),
}

/// Parses an Avro schema from its JSON text, refusing first what apache-avro would panic on
/// (invalid names, aliases, symbols) and schemas nested deeper than [`MAX_TYPE_DEPTH`].
///
/// Use this instead of `Schema::parse_str` wherever the text comes from outside the
/// process: a file, a plugin, a request, a registry.
pub fn parse_schema(text: &str) -> Result<Schema, SchemaError> {
    // serde_json refuses nesting beyond 128 levels with an error, so this recursion and the
    // walk below are bounded by it.
    let value: Value = serde_json::from_str(text).map_err(|e| SchemaError::Json(e.to_string()))?;
    check_value(&value)?;
    // The walk above refuses every input known to make apache-avro 0.21 panic (its name
    // parsing `unwrap`s). A panic the walk does not foresee must still not take down a
    // registry serving other clients or a host running pipelines, so it is caught here and
    // answered as an invalid schema. (The panic hook still logs it, which is wanted: it is a
    // bug to report.)
    match catch_unwind(AssertUnwindSafe(|| Schema::parse(&value))) {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(SchemaError::Avro(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            Err(SchemaError::Panicked(printable(message)))
        }
    }
}

/// Checks names and depth of a schema's JSON form without building the schema.
pub fn check_value(value: &Value) -> Result<(), SchemaError> {
    Walker::default().walk(value, "").map(|_| ())
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

#[derive(Default)]
struct Walker {
    /// Named types by full name: their depth once their definition is walked, `None` while
    /// it is being walked (a reference then is recursion and counts nothing).
    defined: HashMap<String, Option<usize>>,
}

impl Walker {
    /// Walks one schema in namespace `ns`; returns how deeply it nests.
    fn walk(&mut self, value: &Value, ns: &str) -> Result<usize, SchemaError> {
        match value {
            Value::String(name) => self.reference(name, ns),
            Value::Array(branches) => {
                let mut deepest = 0;
                for branch in branches {
                    deepest = deepest.max(self.walk(branch, ns)?);
                }
                self.level(deepest + 1, None)
            }
            Value::Object(map) => self.complex(map, ns),
            // Not a schema: apache-avro says so.
            _ => Ok(0),
        }
    }

    fn level(&self, depth: usize, at: Option<&str>) -> Result<usize, SchemaError> {
        if depth > MAX_TYPE_DEPTH {
            Err(SchemaError::TooDeep {
                limit: MAX_TYPE_DEPTH,
                at: at.map(printable),
            })
        } else {
            Ok(depth)
        }
    }

    fn reference(&self, name: &str, ns: &str) -> Result<usize, SchemaError> {
        if PRIMITIVES.contains(&name) {
            return Ok(0);
        }
        check_name(NameKind::TypeReference, name)?;
        let found = if name.contains('.') || ns.is_empty() {
            self.defined.get(name)
        } else {
            self.defined
                .get(&format!("{ns}.{name}"))
                .or_else(|| self.defined.get(name))
        };
        Ok(found.copied().flatten().unwrap_or(0))
    }

    fn complex(&mut self, map: &Map<String, Value>, ns: &str) -> Result<usize, SchemaError> {
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            // `{"type": {...}}` and `{"type": [...]}` wrap a schema.
            Some(inner @ (Value::Object(_) | Value::Array(_))) => return self.walk(inner, ns),
            _ => return Ok(0),
        };
        match kind {
            "record" | "error" | "enum" | "fixed" => self.named(kind, map, ns),
            "array" => match map.get("items") {
                Some(items) => {
                    let depth = self.walk(items, ns)?;
                    self.level(depth + 1, None)
                }
                None => Ok(0),
            },
            "map" => match map.get("values") {
                Some(values) => {
                    let depth = self.walk(values, ns)?;
                    self.level(depth + 1, None)
                }
                None => Ok(0),
            },
            // A primitive with attributes (a logical type), or a reference written as an object.
            other => self.reference(other, ns),
        }
    }

    fn named(
        &mut self,
        kind: &str,
        map: &Map<String, Value>,
        ns: &str,
    ) -> Result<usize, SchemaError> {
        let Some(Value::String(name)) = map.get("name") else {
            return Ok(0); // apache-avro refuses a named type without a name
        };
        check_name(NameKind::TypeName, name)?;
        let own_ns = match (name.rsplit_once('.'), map.get("namespace")) {
            (Some((prefix, _)), _) => prefix.to_string(),
            (None, Some(Value::String(namespace))) => {
                check_name(NameKind::Namespace, namespace)?;
                namespace.clone()
            }
            (None, _) => ns.to_string(),
        };
        check_names(map, "aliases", NameKind::TypeAlias)?;
        let qualify = |name: &str| match name.rsplit_once('.') {
            Some(_) => name.to_string(),
            None if own_ns.is_empty() => name.to_string(),
            None => format!("{own_ns}.{name}"),
        };
        let full = qualify(name);
        // apache-avro resolves a reference to an alias too.
        let aliases: Vec<String> = match map.get("aliases") {
            Some(Value::Array(list)) => {
                list.iter().filter_map(Value::as_str).map(qualify).collect()
            }
            _ => Vec::new(),
        };
        self.defined.insert(full.clone(), None);
        for alias in &aliases {
            self.defined.entry(alias.clone()).or_insert(None);
        }
        let depth = match kind {
            "enum" => {
                check_names(map, "symbols", NameKind::EnumSymbol)?;
                if let Some(Value::String(default)) = map.get("default") {
                    check_name(NameKind::EnumSymbol, default)?;
                }
                0
            }
            "fixed" => 0,
            _ => {
                let mut deepest = 0;
                let fields = map.get("fields").and_then(Value::as_array);
                for field in fields.into_iter().flatten() {
                    let Value::Object(field) = field else {
                        continue; // apache-avro refuses it
                    };
                    if let Some(Value::String(field_name)) = field.get("name") {
                        check_name(NameKind::FieldName, field_name)?;
                    }
                    check_names(field, "aliases", NameKind::FieldAlias)?;
                    if let Some(ty) = field.get("type") {
                        deepest = deepest.max(self.walk(ty, &own_ns)?);
                    }
                }
                self.level(deepest + 1, Some(&full))?
            }
        };
        for alias in aliases {
            if self.defined.get(&alias) == Some(&None) {
                self.defined.insert(alias, Some(depth));
            }
        }
        self.defined.insert(full, Some(depth));
        Ok(depth)
    }
}

fn check_name(kind: NameKind, name: &str) -> Result<(), SchemaError> {
    if is_valid(kind, name) {
        Ok(())
    } else {
        Err(SchemaError::InvalidName {
            kind,
            name: printable(name),
        })
    }
}

/// Checks a list of names (`aliases`, `symbols`) if present.
fn check_names(
    map: &Map<String, Value>,
    key: &'static str,
    kind: NameKind,
) -> Result<(), SchemaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) => items.iter().try_for_each(|item| match item {
            Value::String(name) => check_name(kind, name),
            _ => Err(SchemaError::NotStrings(key)),
        }),
        Some(_) => Err(SchemaError::NotStrings(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_named(name: &str) -> String {
        format!(
            r#"{{"type":"record","name":{},"fields":[{{"name":"a","type":"int"}}]}}"#,
            serde_json::to_string(name).expect("a string serialises")
        )
    }

    fn refused(text: &str) -> SchemaError {
        match parse_schema(text) {
            Ok(_) => panic!("expected a refusal: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn valid_schemas_parse_as_apache_avro_parses_them() {
        for text in [
            r#""long""#,
            r#"{"type":"record","name":"com.acme.User","aliases":["com.acme.OldUser"],"fields":[
                {"name":"id","type":"long","aliases":["key"]},
                {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"],"default":"A"}},
                {"name":"tags","type":{"type":"map","values":{"type":"array","items":"string"}}},
                {"name":"next","type":["null","User"]},
                {"name":"when","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
        ] {
            let ours = parse_schema(text).expect("valid schema");
            let theirs = Schema::parse_str(text).expect("valid schema");
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn invalid_type_names_are_refused_with_the_name_and_the_rule() {
        for name in ["a-b", "", "../../etc", "naïve", "a\0b", "1abc", "a..b"] {
            let e = refused(&record_named(name));
            assert_eq!(
                e,
                SchemaError::InvalidName {
                    kind: NameKind::TypeName,
                    name: printable(name)
                },
                "{name:?}"
            );
        }
        assert_eq!(
            refused(&record_named("a-b")).to_string(),
            "invalid type name `a-b`: must be dot-separated parts each matching [A-Za-z_][A-Za-z0-9_]*"
        );
        assert_eq!(
            refused(&record_named("a\0b")).to_string(),
            "invalid type name `a\\0b`: must be dot-separated parts each matching [A-Za-z_][A-Za-z0-9_]*"
        );
    }

    #[test]
    fn every_kind_of_name_is_checked() {
        let cases = [
            (
                r#"{"type":"record","name":"R","aliases":["ok","bad-alias"],"fields":[]}"#,
                NameKind::TypeAlias,
                "bad-alias",
            ),
            (
                r#"{"type":"record","name":"R","namespace":"com.-x","fields":[]}"#,
                NameKind::Namespace,
                "com.-x",
            ),
            (
                r#"{"type":"record","name":"R","fields":[{"name":"a.b","type":"int"}]}"#,
                NameKind::FieldName,
                "a.b",
            ),
            (
                r#"{"type":"record","name":"R","fields":[{"name":"a","aliases":["x y"],"type":"int"}]}"#,
                NameKind::FieldAlias,
                "x y",
            ),
            (
                r#"{"type":"enum","name":"E","symbols":["A","B-C"]}"#,
                NameKind::EnumSymbol,
                "B-C",
            ),
            (
                r#"{"type":"enum","name":"E","symbols":["A"],"default":"é"}"#,
                NameKind::EnumSymbol,
                "é",
            ),
            (
                r#"{"type":"fixed","name":"../../etc","size":4}"#,
                NameKind::TypeName,
                "../../etc",
            ),
            (
                r#"{"type":"array","items":"no/such"}"#,
                NameKind::TypeReference,
                "no/such",
            ),
        ];
        for (text, kind, name) in cases {
            assert_eq!(
                refused(text),
                SchemaError::InvalidName {
                    kind,
                    name: name.to_string()
                },
                "{text}"
            );
        }
        assert_eq!(
            refused(r#"{"type":"record","name":"R","aliases":[1],"fields":[]}"#),
            SchemaError::NotStrings("aliases")
        );
    }

    #[test]
    fn nesting_is_bounded_and_the_limit_itself_parses() {
        let arrays = |n: usize| {
            format!(
                "{}\"int\"{}",
                r#"{"type":"array","items":"#.repeat(n),
                "}".repeat(n)
            )
        };
        parse_schema(&arrays(MAX_TYPE_DEPTH)).expect("at the limit");
        assert!(matches!(
            refused(&arrays(MAX_TYPE_DEPTH + 1)),
            SchemaError::TooDeep {
                limit: MAX_TYPE_DEPTH,
                at: None
            }
        ));
        // Beyond serde_json's own limit: an error, not a stack overflow.
        assert!(matches!(refused(&arrays(10_000)), SchemaError::Json(_)));
        assert!(matches!(
            refused(&"[".repeat(100_000)),
            SchemaError::Json(_)
        ));
    }

    /// Records chained by reference nest deeply with shallow JSON: R1 refers to R0, R2 to
    /// R1, ..., each defined in a field of the top record.
    fn chained(n: usize) -> String {
        let mut fields =
            vec![r#"{"name":"f0","type":{"type":"record","name":"R0","fields":[]}}"#.to_string()];
        for i in 1..n {
            fields.push(format!(
                r#"{{"name":"f{i}","type":{{"type":"record","name":"R{i}","fields":[{{"name":"next","type":["null","R{}"]}}]}}}}"#,
                i - 1
            ));
        }
        format!(
            r#"{{"type":"record","name":"Top","fields":[{}]}}"#,
            fields.join(",")
        )
    }

    #[test]
    fn depth_counts_through_references_to_named_types() {
        parse_schema(&chained(30)).expect("30 records chained by reference");
        assert_eq!(
            refused(&chained(1000)),
            SchemaError::TooDeep {
                limit: MAX_TYPE_DEPTH,
                at: Some("R32".to_string())
            }
        );
    }

    #[test]
    fn recursion_counts_nothing() {
        let list = r#"{"type":"record","name":"Node","fields":[
            {"name":"value","type":"long"},{"name":"next","type":["null","Node"]}]}"#;
        parse_schema(list).expect("a linked list");
    }

    #[test]
    fn apache_avro_errors_pass_through() {
        assert!(matches!(refused(r#""nosuchtype""#), SchemaError::Avro(_)));
        assert!(matches!(
            refused(r#"{"type":"record"}"#),
            SchemaError::Avro(_)
        ));
        assert!(matches!(refused("not json"), SchemaError::Json(_)));
    }
}

#[cfg(test)]
mod stack_tests {
    use super::*;

    /// The deepest JSON serde_json takes (128 levels), in the shapes that make apache-avro's
    /// parser recurse most, parses or is refused on a thread with half of tokio's 2 MiB.
    #[test]
    fn the_deepest_accepted_json_fits_a_small_stack() {
        let wrappers = format!("{}\"int\"{}", r#"{"type":"#.repeat(126), "}".repeat(126));
        let mut records = r#""int""#.to_string();
        for i in 0..42 {
            records = format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{records}}}]}}"#
            );
        }
        let mut mixed = r#""int""#.to_string();
        for i in 0..31 {
            mixed = format!(
                r#"{{"type":"record","name":"M{i}","fields":[{{"name":"f","type":["null",{mixed}]}}]}}"#
            );
        }
        for text in [wrappers, records, mixed] {
            let outcome = std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || parse_schema(&text).map(|_| ()))
                .expect("thread starts")
                .join()
                .expect("no stack overflow");
            outcome.expect("within both limits, so it parses");
        }
    }
}
