//! What a candidate schema changes for a stage configured with the previous one, field by
//! field: a field gone (by name: a stage looks fields up by name), or a field whose new
//! values the previous type cannot read (Avro resolution, the previous schema reading data
//! written with the new one). Added fields change nothing for a stage that does not read them.

use std::collections::{BTreeSet, HashMap};

use apache_avro::Schema;
use weft_schema::{IncompatibilityKind, incompatibilities};

/// Field paths collected per schema at most: a bound on the work a hostile schema can cause.
const MAX_PATHS: usize = 10_000;
/// Longest field path accepted in a request (`reads`, `passes`, the lineage route).
const MAX_PATH_LEN: usize = 1024;

/// One field the candidate changes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted path (`owner.email`); empty for the schema as a whole.
    pub path: String,
    /// `removed`, or `type changed (RULE: why)`.
    pub rule: String,
}

/// Whether `path` is Avro field names joined by dots: what `reads`, `passes` and the
/// lineage route take. Anything else (slashes, spaces, non-ASCII) names no field.
pub fn valid_path(path: &str) -> bool {
    let name = |s: &str| {
        let mut bytes = s.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    !path.is_empty() && path.len() <= MAX_PATH_LEN && path.split('.').all(name)
}

/// Every field the move from `old` to `new` removes or retypes, outermost first (a removed
/// record's own fields are not listed again). `Err` when the pair is too complex to check.
pub fn changes(old: &Schema, new: &Schema) -> Result<Vec<Change>, String> {
    let old_paths = paths(old);
    let new_paths = paths(new);
    let mut out: Vec<Change> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    for path in &old_paths {
        let inside_removed = removed.iter().any(|r| {
            path.len() > r.len() && path.starts_with(r) && path.as_bytes()[r.len()] == b'.'
        });
        if !new_paths.contains(path) && !inside_removed {
            removed.push(path);
            out.push(Change {
                path: path.clone(),
                rule: "removed".into(),
            });
        }
    }
    let mut retyped = BTreeSet::new();
    for problem in incompatibilities(new, old) {
        match problem.kind {
            IncompatibilityKind::TooComplex => return Err(problem.message),
            // A field the new schema lacks: listed above, by name.
            IncompatibilityKind::ReaderFieldMissingDefaultValue => continue,
            _ => {}
        }
        let path = problem.path.replace("[]", "").replace("{}", "");
        if removed.iter().any(|r| super::overlaps(&path, r)) || !retyped.insert(path.clone()) {
            continue;
        }
        out.push(Change {
            path,
            rule: format!(
                "type changed ({}: {})",
                problem.kind.as_str(),
                problem.message
            ),
        });
    }
    Ok(out)
}

/// Every field path of a schema, through records, unions, arrays and maps (array and map
/// steps add nothing to the path); a recursive type is followed once.
fn paths(schema: &Schema) -> BTreeSet<String> {
    let mut named = HashMap::new();
    records(schema, &mut named);
    let mut out = BTreeSet::new();
    collect(schema, "", &named, &mut Vec::new(), &mut out);
    out
}

/// Records by full name, so `Schema::Ref`s can be followed.
fn records<'a>(schema: &'a Schema, named: &mut HashMap<String, &'a Schema>) {
    let mut todo = vec![schema];
    while let Some(schema) = todo.pop() {
        match schema {
            Schema::Record(r) => {
                named.insert(r.name.fullname(None), schema);
                todo.extend(r.fields.iter().map(|f| &f.schema));
            }
            Schema::Array(a) => todo.push(&a.items),
            Schema::Map(m) => todo.push(&m.types),
            Schema::Union(u) => todo.extend(u.variants()),
            _ => {}
        }
    }
}

fn collect<'a>(
    schema: &'a Schema,
    prefix: &str,
    named: &HashMap<String, &'a Schema>,
    on_path: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) {
    match schema {
        Schema::Ref { name } => {
            if let Some(target) = named.get(&name.fullname(None)) {
                collect(target, prefix, named, on_path, out);
            }
        }
        Schema::Record(r) => {
            let name = r.name.fullname(None);
            if on_path.contains(&name) {
                return;
            }
            on_path.push(name);
            for field in &r.fields {
                if out.len() >= MAX_PATHS {
                    break;
                }
                let path = if prefix.is_empty() {
                    field.name.clone()
                } else {
                    format!("{prefix}.{}", field.name)
                };
                collect(&field.schema, &path, named, on_path, out);
                out.insert(path);
            }
            on_path.pop();
        }
        Schema::Union(u) => {
            for variant in u.variants() {
                collect(variant, prefix, named, on_path, out);
            }
        }
        Schema::Array(a) => collect(&a.items, prefix, named, on_path, out),
        Schema::Map(m) => collect(&m.types, prefix, named, on_path, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        weft_schema::parse_schema(&format!(
            r#"{{"type":"record","name":"Order","fields":[{fields}]}}"#
        ))
        .expect("schema")
    }

    const OWNER: &str = r#"{"name":"owner","type":{"type":"record","name":"Owner","fields":[{"name":"email","type":"string"},{"name":"name","type":"string"}]}}"#;

    #[test]
    fn removed_and_retyped_fields_are_named_added_ones_are_not() {
        let old = schema(&format!(
            r#"{{"name":"id","type":"long"}},{{"name":"year","type":"int"}},{{"name":"note","type":"string"}},{OWNER}"#
        ));
        let new = schema(
            r#"{"name":"id","type":"long"},{"name":"year","type":"long"},{"name":"extra","type":"int","default":0},{"name":"owner","type":{"type":"record","name":"Owner","fields":[{"name":"name","type":"string"}]}}"#,
        );
        let found = changes(&old, &new).expect("checked");
        let by_path: Vec<(&str, &str)> = found
            .iter()
            .map(|c| (c.path.as_str(), c.rule.split(' ').next().unwrap_or("")))
            .collect();
        assert!(by_path.contains(&("note", "removed")), "{found:?}");
        assert!(by_path.contains(&("owner.email", "removed")), "{found:?}");
        assert!(by_path.contains(&("year", "type")), "{found:?}");
        assert!(
            !by_path.iter().any(|(p, _)| *p == "extra" || *p == "id"),
            "{found:?}"
        );
        let year = found.iter().find(|c| c.path == "year").expect("year");
        assert!(year.rule.contains("TYPE_MISMATCH"), "{}", year.rule);
    }

    #[test]
    fn a_removed_record_is_one_change_and_a_recursive_type_ends() {
        let old = schema(&format!(r#"{{"name":"id","type":"long"}},{OWNER}"#));
        let new = schema(r#"{"name":"id","type":"long"}"#);
        let found = changes(&old, &new).expect("checked");
        assert_eq!(
            found,
            vec![Change {
                path: "owner".into(),
                rule: "removed".into()
            }]
        );
        let list = weft_schema::parse_schema(
            r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
        )
        .expect("recursive");
        assert_eq!(
            paths(&list).into_iter().collect::<Vec<_>>(),
            vec!["next".to_string(), "v".to_string()]
        );
        assert!(changes(&list, &list).expect("checked").is_empty());
    }

    #[test]
    fn only_dotted_avro_names_are_paths() {
        assert!(valid_path("year"));
        assert!(valid_path("owner.email"));
        assert!(valid_path("_x9"));
        for bad in ["", "a/b", "a..b", ".a", "é", "a b", "9a", &"a".repeat(2000)] {
            assert!(!valid_path(bad), "{bad:?}");
        }
    }
}
