//! An Avro schema as the catalog shows it: one row per field (nested fields dotted), the
//! record names and docs search looks at, and the field-level diff between two versions.
//!
//! Works on the schema's JSON (serde_json refuses nesting past 128, which bounds the recursion
//! of the walk), which the registry parsed and checked when it stored it. The
//! walk is depth-bounded and stops after [`MAX_FIELDS`] rows, so a hostile schema (deep
//! nesting, a hundred thousand fields) costs a bounded page, and says it was cut.

use serde_json::Value;

/// Nesting followed into records; deeper fields are not listed (the page says so).
pub const MAX_DEPTH: usize = 16;
/// Rows listed per schema; the rest are not (the page says so).
pub const MAX_FIELDS: usize = 1000;
/// Enum symbols shown in a type before "…".
const MAX_SYMBOLS: usize = 8;

/// One field of a record, at any depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Dotted from the top-level record: `address.city`; `tags[].name` inside an array's
    /// records, `attrs{}.name` inside a map's.
    pub path: String,
    /// Readable type: `long`, `null | string`, `array<string>`, `int (date)`.
    pub type_name: String,
    /// The default as JSON text, when the field has one.
    pub default: Option<String>,
    pub doc: String,
}

/// What a schema holds, for tables and search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// Full name of the top-level named type, or the type itself (`string`).
    pub name: String,
    pub doc: String,
    pub fields: Vec<Field>,
    /// Full names of every named type defined (records, enums, fixed), with their docs.
    pub named: Vec<(String, String)>,
    /// Some fields were not listed (deeper than [`MAX_DEPTH`] or past [`MAX_FIELDS`]).
    pub truncated: bool,
}

/// Outlines a schema text; `Err` only when it is not JSON at all.
pub fn outline(text: &str) -> Result<Outline, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Outline::default();
    let mut walk = Walk { out: &mut out };
    let top = walk.type_of(&value, "", None, 0);
    out.name = top;
    if let Value::Object(map) = &value {
        out.doc = str_at(map.get("doc"));
    }
    Ok(out)
}

struct Walk<'a> {
    out: &'a mut Outline,
}

impl Walk<'_> {
    /// The readable name of a type; records met on the way list their fields under `prefix`.
    fn type_of(
        &mut self,
        ty: &Value,
        prefix: &str,
        namespace: Option<&str>,
        depth: usize,
    ) -> String {
        match ty {
            Value::String(name) => name.clone(),
            Value::Array(branches) => branches
                .iter()
                .map(|b| self.type_of(b, prefix, namespace, depth))
                .collect::<Vec<_>>()
                .join(" | "),
            Value::Object(map) => {
                let kind = str_at(map.get("type"));
                let full = full_name(map, namespace);
                match kind.as_str() {
                    "record" | "error" => {
                        self.out.named.push((full.clone(), str_at(map.get("doc"))));
                        let ns = full.rsplit_once('.').map(|(ns, _)| ns.to_string());
                        self.fields(map.get("fields"), prefix, ns.as_deref(), depth);
                        full
                    }
                    "enum" => {
                        self.out.named.push((full.clone(), str_at(map.get("doc"))));
                        let symbols: Vec<&str> = map
                            .get("symbols")
                            .and_then(Value::as_array)
                            .map(|s| s.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        let mut shown = symbols
                            .iter()
                            .take(MAX_SYMBOLS)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ");
                        if symbols.len() > MAX_SYMBOLS {
                            shown.push_str(", …");
                        }
                        format!("enum {full} {{{shown}}}")
                    }
                    "fixed" => {
                        self.out.named.push((full.clone(), str_at(map.get("doc"))));
                        let size = map.get("size").and_then(Value::as_u64).unwrap_or(0);
                        format!("fixed {full}({size})")
                    }
                    "array" => {
                        let items = map.get("items").unwrap_or(&Value::Null);
                        let child = format!("{prefix}[]");
                        format!("array<{}>", self.type_of(items, &child, namespace, depth))
                    }
                    "map" => {
                        let values = map.get("values").unwrap_or(&Value::Null);
                        let child = format!("{prefix}{{}}");
                        format!("map<{}>", self.type_of(values, &child, namespace, depth))
                    }
                    primitive => match map.get("logicalType").and_then(Value::as_str) {
                        Some(logical) => format!("{primitive} ({logical})"),
                        None => primitive.to_string(),
                    },
                }
            }
            other => other.to_string(),
        }
    }

    fn fields(
        &mut self,
        fields: Option<&Value>,
        prefix: &str,
        namespace: Option<&str>,
        depth: usize,
    ) {
        let Some(fields) = fields.and_then(Value::as_array) else {
            return;
        };
        if depth >= MAX_DEPTH {
            self.out.truncated |= !fields.is_empty();
            return;
        }
        for field in fields {
            if self.out.fields.len() >= MAX_FIELDS {
                self.out.truncated = true;
                return;
            }
            let Some(map) = field.as_object() else {
                continue;
            };
            let name = str_at(map.get("name"));
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            // The row goes in before the nested fields its type lists, so tables read top-down.
            let at = self.out.fields.len();
            self.out.fields.push(Field {
                path: path.clone(),
                type_name: String::new(),
                default: map.get("default").map(Value::to_string),
                doc: str_at(map.get("doc")),
            });
            let ty = map.get("type").unwrap_or(&Value::Null);
            self.out.fields[at].type_name = self.type_of(ty, &path, namespace, depth + 1);
        }
    }
}

fn str_at(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `namespace.name` as Avro resolves it: a dotted name is already full, else the type's own
/// namespace, else the enclosing one.
fn full_name(map: &serde_json::Map<String, Value>, enclosing: Option<&str>) -> String {
    let name = str_at(map.get("name"));
    if name.contains('.') {
        return name;
    }
    let ns = map.get("namespace").and_then(Value::as_str).or(enclosing);
    match ns {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name,
    }
}

/// How a field differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(Field),
    Removed(Field),
    /// Same path; `what` names the parts that differ (`type`, `default`, `doc`).
    Changed {
        old: Field,
        new: Field,
        what: Vec<&'static str>,
    },
    Same(Field),
}

/// The field-level diff from `old` to `new`: `new`'s fields in order, then the removed ones.
pub fn diff(old: &[Field], new: &[Field]) -> Vec<Change> {
    let by_path: std::collections::HashMap<&str, &Field> =
        old.iter().map(|f| (f.path.as_str(), f)).collect();
    let kept: std::collections::HashSet<&str> = new.iter().map(|f| f.path.as_str()).collect();
    let mut changes: Vec<Change> = new
        .iter()
        .map(|n| match by_path.get(n.path.as_str()) {
            None => Change::Added(n.clone()),
            Some(o) => {
                let mut what = Vec::new();
                if o.type_name != n.type_name {
                    what.push("type");
                }
                if o.default != n.default {
                    what.push("default");
                }
                if o.doc != n.doc {
                    what.push("doc");
                }
                if what.is_empty() {
                    Change::Same(n.clone())
                } else {
                    Change::Changed {
                        old: (*o).clone(),
                        new: n.clone(),
                        what,
                    }
                }
            }
        })
        .collect();
    changes.extend(
        old.iter()
            .filter(|o| !kept.contains(o.path.as_str()))
            .map(|o| Change::Removed(o.clone())),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","doc":"An order",
        "fields":[
          {"name":"id","type":"long","doc":"order id"},
          {"name":"note","type":["null","string"],"default":null},
          {"name":"day","type":{"type":"int","logicalType":"date"}},
          {"name":"address","type":{"type":"record","name":"Address","fields":[
              {"name":"city","type":"string","doc":"where"}]}},
          {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line",
              "fields":[{"name":"sku","type":"string"}]}}},
          {"name":"state","type":{"type":"enum","name":"State","symbols":["NEW","PAID"]}}
        ]}"#;

    #[test]
    fn fields_are_rows_with_dotted_paths_and_readable_types() {
        let o = outline(ORDER).expect("outline");
        assert_eq!(o.name, "shop.Order");
        assert_eq!(o.doc, "An order");
        let rows: Vec<(&str, &str)> = o
            .fields
            .iter()
            .map(|f| (f.path.as_str(), f.type_name.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("id", "long"),
                ("note", "null | string"),
                ("day", "int (date)"),
                ("address", "shop.Address"),
                ("address.city", "string"),
                ("lines", "array<shop.Line>"),
                ("lines[].sku", "string"),
                ("state", "enum shop.State {NEW, PAID}"),
            ]
        );
        assert_eq!(o.fields[1].default.as_deref(), Some("null"));
        assert_eq!(o.fields[4].doc, "where");
        let named: Vec<&str> = o.named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            named,
            ["shop.Order", "shop.Address", "shop.Line", "shop.State"]
        );
        assert!(!o.truncated);
    }

    #[test]
    fn deep_and_wide_schemas_are_cut_and_say_so() {
        let mut deep = r#"{"type":"string"}"#.to_string();
        for i in 0..30 {
            deep = format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{deep}}}]}}"#
            );
        }
        let o = outline(&deep).expect("outline");
        assert!(o.truncated);
        assert_eq!(o.fields.len(), MAX_DEPTH);

        let fields: Vec<String> = (0..5000)
            .map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#))
            .collect();
        let wide = format!(
            r#"{{"type":"record","name":"W","fields":[{}]}}"#,
            fields.join(",")
        );
        let o = outline(&wide).expect("outline");
        assert!(o.truncated);
        assert_eq!(o.fields.len(), MAX_FIELDS);
    }

    #[test]
    fn diff_names_added_removed_and_changed_fields() {
        let v1 = outline(
            r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},
                {"name":"b","type":"string"},{"name":"c","type":"int"}]}"#,
        )
        .expect("v1");
        let v2 = outline(
            r#"{"type":"record","name":"T","fields":[{"name":"a","type":"long"},
                {"name":"b","type":"string"},{"name":"d","type":"int","default":0}]}"#,
        )
        .expect("v2");
        let changes = diff(&v1.fields, &v2.fields);
        let summary: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Added(f) => format!("+{}", f.path),
                Change::Removed(f) => format!("-{}", f.path),
                Change::Changed { new, what, .. } => format!("~{}:{}", new.path, what.join(",")),
                Change::Same(f) => format!("={}", f.path),
            })
            .collect();
        assert_eq!(summary, ["~a:type", "=b", "+d", "-c"]);
    }
}
