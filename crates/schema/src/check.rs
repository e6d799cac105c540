//! The compatibility walk over a (writer, reader) pair of schemas, bounded in depth and work.
//!
//! Like Java's `ReaderWriterCompatibilityChecker`, each (writer type, reader type) pair is
//! checked once per call and its answer reused (memoized): without it, a reader union tries
//! every branch and then explains through one of them again, so nested unions cost ×2 per
//! level, and a recursive writer against records chained by reference goes exponential. A
//! pair met again while it is being checked is assumed compatible (recursive types), as
//! Java does. On top of that, two bounds make a hostile pair answer quickly: at most
//! [`MAX_CHECK_STEPS`] pair visits and at most [`MAX_CHECK_DEPTH`] nested pairs, past
//! which the check answers [`IncompatibilityKind::TooComplex`].

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use apache_avro::Schema;
use apache_avro::schema::{EnumSchema, FixedSchema, Name, RecordField, RecordSchema};

use super::{Incompatibility, IncompatibilityKind};

/// Most (writer type, reader type) pair visits one check may make (memoized visits count
/// too). Real schemas take a few hundred to a few thousand; a check that runs out of steps
/// took under 0.2 s of one core (release build), where checks took minutes before memoization.
pub const MAX_CHECK_STEPS: usize = 100_000;

/// Most pairs nested inside each other in one check. Types nest at most
/// [`super::MAX_TYPE_DEPTH`] levels on each side, so only two recursive schemas whose
/// cycles keep out of step come near. 256 nested pairs fit in 1 MiB of stack even in an
/// unoptimised build (512 did not), half of what tokio's threads have.
pub const MAX_CHECK_DEPTH: usize = 256;

/// Most problems one check lists (all of them still count for the answer); also bounds the
/// memory a problem list reused at many places can take.
pub const MAX_PROBLEMS: usize = 100;

/// A problem found under a pair, with its path relative to that pair.
#[derive(Debug, Clone)]
struct Problem {
    path: String,
    kind: IncompatibilityKind,
    message: String,
}

type Problems = Rc<Vec<Problem>>;

enum Memo {
    /// Being checked further up the stack: met again, it is assumed compatible.
    InProgress,
    Done(Problems),
}

/// Which bound a check ran into.
#[derive(Debug, Clone, Copy)]
enum Exceeded {
    Steps,
    Depth,
}

/// Every reason data written with `writer` cannot be read with `reader`, at most
/// [`MAX_PROBLEMS`]; `memoize` is off only in tests, to compare with the plain walk.
pub(super) fn problems(writer: &Schema, reader: &Schema, memoize: bool) -> Vec<Incompatibility> {
    let mut checker = Checker {
        writer_names: named_types(writer),
        reader_names: named_types(reader),
        memo: HashMap::new(),
        memoize,
        steps: 0,
        depth: 0,
        exceeded: None,
    };
    let found = checker.check(writer, reader);
    if let Some(exceeded) = checker.exceeded {
        let message = match exceeded {
            Exceeded::Steps => format!(
                "schema too complex to check: more than {MAX_CHECK_STEPS} steps (pairs of writer and reader types)"
            ),
            Exceeded::Depth => format!(
                "schema too complex to check: writer and reader types nest more than {MAX_CHECK_DEPTH} levels"
            ),
        };
        return vec![Incompatibility {
            path: String::new(),
            kind: IncompatibilityKind::TooComplex,
            message,
            against: None,
        }];
    }
    found
        .iter()
        .map(|p| Incompatibility {
            path: p.path.clone(),
            kind: p.kind,
            message: p.message.clone(),
            against: None,
        })
        .collect()
}

/// Named types of a schema by full name and by alias (apache-avro resolves a reference to
/// an alias too), so `Schema::Ref`s can be followed. Iterative: a schema built in code (not
/// parsed) has no depth bound.
fn named_types(schema: &Schema) -> HashMap<String, &Schema> {
    let mut names = HashMap::new();
    let mut aliases = Vec::new();
    let mut todo = vec![schema];
    while let Some(schema) = todo.pop() {
        let (name, alias_list) = match schema {
            Schema::Record(record) => {
                todo.extend(record.fields.iter().map(|f| &f.schema));
                (&record.name, &record.aliases)
            }
            Schema::Enum(e) => (&e.name, &e.aliases),
            Schema::Fixed(fixed) => (&fixed.name, &fixed.aliases),
            Schema::Decimal(decimal) => {
                todo.push(&decimal.inner);
                continue;
            }
            Schema::Array(array) => {
                todo.push(&array.items);
                continue;
            }
            Schema::Map(map) => {
                todo.push(&map.types);
                continue;
            }
            Schema::Union(union) => {
                todo.extend(union.variants());
                continue;
            }
            _ => continue,
        };
        names.insert(name.fullname(None), schema);
        aliases.extend(
            aliases_of(alias_list, name)
                .into_iter()
                .map(|a| (a, schema)),
        );
    }
    // A type's own name wins over another type's alias.
    for (alias, schema) in aliases {
        names.entry(alias).or_insert(schema);
    }
    names
}

/// A schema with references followed and logical types replaced by what they annotate.
#[derive(Clone, Copy)]
enum Shape<'a> {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a [Schema]),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    /// The fixed type (absent for `duration`, whose underlying fixed the library does not
    /// keep) and its size.
    Fixed(Option<&'a FixedSchema>, usize),
    /// A reference the schema does not define (cannot come from a parsed schema).
    Unknown(&'a Name),
}

impl Shape<'_> {
    fn describe(&self) -> String {
        match self {
            Shape::Null => "null".into(),
            Shape::Boolean => "boolean".into(),
            Shape::Int => "int".into(),
            Shape::Long => "long".into(),
            Shape::Float => "float".into(),
            Shape::Double => "double".into(),
            Shape::Bytes => "bytes".into(),
            Shape::String => "string".into(),
            Shape::Array(_) => "array".into(),
            Shape::Map(_) => "map".into(),
            Shape::Union(_) => "union".into(),
            Shape::Record(r) => format!("record {}", r.name.fullname(None)),
            Shape::Enum(e) => format!("enum {}", e.name.fullname(None)),
            Shape::Fixed(Some(f), size) => format!("fixed {}({size})", f.name.fullname(None)),
            Shape::Fixed(None, size) => format!("fixed({size})"),
            Shape::Unknown(name) => format!("undefined type {}", name.fullname(None)),
        }
    }

    /// Same kind of type, and the same name for named types: the branch a reader union
    /// would pick, used to explain why it could not read.
    fn same_kind(&self, other: &Shape<'_>) -> bool {
        match (self, other) {
            (Shape::Record(a), Shape::Record(b)) => a.name.name == b.name.name,
            (Shape::Enum(a), Shape::Enum(b)) => a.name.name == b.name.name,
            (Shape::Fixed(a, _), Shape::Fixed(b, _)) => {
                a.map(|f| &f.name.name) == b.map(|f| &f.name.name)
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

fn aliases_of(aliases: &Option<Vec<apache_avro::schema::Alias>>, name: &Name) -> Vec<String> {
    aliases
        .iter()
        .flatten()
        .map(|alias| alias.fully_qualified_name(&name.namespace).fullname(None))
        .collect()
}

/// A record's field by name, through the record's lookup table when it is filled in (a
/// parsed schema's is; one built in code may not be).
fn field<'s>(record: &'s RecordSchema, name: &str) -> Option<&'s RecordField> {
    if record.lookup.len() == record.fields.len() {
        record
            .lookup
            .get(name)
            .and_then(|&i| record.fields.get(i))
            .filter(|f| f.name == name)
    } else {
        record.fields.iter().find(|f| f.name == name)
    }
}

/// `rel` (a path under a step) seen from the step's parent: `items` + `[].id`.
fn prefixed(step: &str, rel: &str) -> String {
    if rel.is_empty() {
        step.to_string()
    } else if rel.starts_with('[') || rel.starts_with('{') {
        format!("{step}{rel}")
    } else {
        format!("{step}.{rel}")
    }
}

struct Checker<'a> {
    writer_names: HashMap<String, &'a Schema>,
    reader_names: HashMap<String, &'a Schema>,
    /// Pairs by the address of their (reference-resolved) writer and reader types.
    memo: HashMap<(usize, usize), Memo>,
    memoize: bool,
    steps: usize,
    depth: usize,
    exceeded: Option<Exceeded>,
}

impl<'a> Checker<'a> {
    /// The schema a reference stands for; any other schema itself.
    fn resolve(&self, schema: &'a Schema, writer_side: bool) -> &'a Schema {
        if let Schema::Ref { name } = schema {
            let names = if writer_side {
                &self.writer_names
            } else {
                &self.reader_names
            };
            if let Some(target) = names.get(&name.fullname(None)) {
                return target;
            }
        }
        schema
    }

    fn shape(&self, schema: &'a Schema, writer_side: bool) -> Shape<'a> {
        match self.resolve(schema, writer_side) {
            Schema::Null => Shape::Null,
            Schema::Boolean => Shape::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Shape::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Shape::Long,
            Schema::Float => Shape::Float,
            Schema::Double => Shape::Double,
            Schema::Bytes | Schema::BigDecimal => Shape::Bytes,
            Schema::String | Schema::Uuid => Shape::String,
            Schema::Array(array) => Shape::Array(&array.items),
            Schema::Map(map) => Shape::Map(&map.types),
            Schema::Union(union) => Shape::Union(union.variants()),
            Schema::Record(record) => Shape::Record(record),
            Schema::Enum(e) => Shape::Enum(e),
            Schema::Fixed(fixed) => Shape::Fixed(Some(fixed), fixed.size),
            Schema::Duration => Shape::Fixed(None, 12),
            // A decimal's inner schema is bytes or fixed, never a decimal or a reference.
            Schema::Decimal(decimal) => self.shape(&decimal.inner, writer_side),
            Schema::Ref { name } => Shape::Unknown(name),
        }
    }

    /// Named types of one kind whose names [`check_names`] would refuse.
    fn names_clash(&self, w: &Shape<'a>, r: &Shape<'a>) -> bool {
        let (w_name, r_name, r_aliases) = match (w, r) {
            (Shape::Record(w), Shape::Record(r)) => (&w.name, &r.name, &r.aliases),
            (Shape::Enum(w), Shape::Enum(r)) => (&w.name, &r.name, &r.aliases),
            (Shape::Fixed(Some(w), _), Shape::Fixed(Some(r), _)) => (&w.name, &r.name, &r.aliases),
            _ => return false,
        };
        w_name.name != r_name.name
            && !aliases_of(r_aliases, r_name).contains(&w_name.fullname(None))
    }

    /// The problems reading `writer` data with `reader`, relative to this pair.
    fn check(&mut self, writer: &'a Schema, reader: &'a Schema) -> Problems {
        if self.exceeded.is_some() {
            return Problems::default();
        }
        self.steps += 1;
        if self.steps > MAX_CHECK_STEPS {
            self.exceeded = Some(Exceeded::Steps);
            return Problems::default();
        }
        let key = (
            std::ptr::from_ref(self.resolve(writer, true)) as usize,
            std::ptr::from_ref(self.resolve(reader, false)) as usize,
        );
        match self.memo.get(&key) {
            Some(Memo::InProgress) => return Problems::default(),
            Some(Memo::Done(found)) => return found.clone(),
            None => {}
        }
        if self.depth >= MAX_CHECK_DEPTH {
            self.exceeded = Some(Exceeded::Depth);
            return Problems::default();
        }
        self.memo.insert(key, Memo::InProgress);
        self.depth += 1;
        let mut found = Vec::new();
        self.compare(writer, reader, &mut found);
        self.depth -= 1;
        found.truncate(MAX_PROBLEMS);
        let found = Rc::new(found);
        if self.memoize {
            self.memo.insert(key, Memo::Done(found.clone()));
        } else {
            self.memo.remove(&key);
        }
        found
    }

    /// Adds the problems under `step` of a child pair to `found`.
    fn child(
        &mut self,
        step: &str,
        writer: &'a Schema,
        reader: &'a Schema,
        found: &mut Vec<Problem>,
    ) {
        let below = self.check(writer, reader);
        let room = MAX_PROBLEMS.saturating_sub(found.len());
        found.extend(below.iter().take(room).map(|p| Problem {
            path: prefixed(step, &p.path),
            kind: p.kind,
            message: p.message.clone(),
        }));
    }

    fn report(found: &mut Vec<Problem>, kind: IncompatibilityKind, message: String) {
        found.push(Problem {
            path: String::new(),
            kind,
            message,
        });
    }

    fn compare(&mut self, writer: &'a Schema, reader: &'a Schema, found: &mut Vec<Problem>) {
        let w = self.shape(writer, true);
        let r = self.shape(reader, false);

        // Every branch a writer union may have written must be readable.
        if let Shape::Union(branches) = w {
            for branch in branches {
                let below = self.check(branch, reader);
                found.extend(below.iter().cloned());
            }
            return;
        }
        if let Shape::Union(branches) = r {
            for branch in branches {
                // A named branch whose name cannot match fails anyway: skip its walk, which
                // for a union of many records would be most of the work.
                if !self.names_clash(&w, &self.shape(branch, false))
                    && self.check(writer, branch).is_empty()
                {
                    return;
                }
            }
            // Explain through the branch of the same kind, if there is one: "field `email`
            // has no default" says more than "no branch matches".
            let same = branches
                .iter()
                .find(|branch| self.shape(branch, false).same_kind(&w));
            match same {
                Some(branch) => {
                    let below = self.check(writer, branch);
                    found.extend(below.iter().cloned());
                }
                None => {
                    let message = format!(
                        "the reader union has no branch that can read the writer's {}",
                        w.describe()
                    );
                    Self::report(found, IncompatibilityKind::MissingUnionBranch, message);
                }
            }
            return;
        }

        match (w, r) {
            (Shape::Null, Shape::Null)
            | (Shape::Boolean, Shape::Boolean)
            | (Shape::Int, Shape::Int)
            | (Shape::Long, Shape::Long | Shape::Float | Shape::Double)
            | (Shape::Int, Shape::Long | Shape::Float | Shape::Double)
            | (Shape::Float, Shape::Float | Shape::Double)
            | (Shape::Double, Shape::Double)
            | (Shape::Bytes | Shape::String, Shape::Bytes | Shape::String) => {}
            (Shape::Array(wi), Shape::Array(ri)) => self.child("[]", wi, ri, found),
            (Shape::Map(wv), Shape::Map(rv)) => self.child("{}", wv, rv, found),
            (Shape::Fixed(wf, wsize), Shape::Fixed(rf, rsize)) => {
                if let (Some(wf), Some(rf)) = (wf, rf) {
                    let aliases = aliases_of(&rf.aliases, &rf.name);
                    check_names("fixed", &wf.name, &rf.name, &aliases, found);
                }
                if wsize != rsize {
                    let message =
                        format!("fixed size changed from {wsize} (writer) to {rsize} (reader)");
                    Self::report(found, IncompatibilityKind::FixedSizeMismatch, message);
                }
            }
            (Shape::Enum(we), Shape::Enum(re)) => {
                let aliases = aliases_of(&re.aliases, &re.name);
                check_names("enum", &we.name, &re.name, &aliases, found);
                let known: HashSet<&str> = re.symbols.iter().map(String::as_str).collect();
                let missing: Vec<&str> = we
                    .symbols
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !known.contains(s))
                    .collect();
                let has_default = re
                    .default
                    .as_ref()
                    .is_some_and(|d| known.contains(d.as_str()));
                if !missing.is_empty() && !has_default {
                    let message = format!(
                        "enum {} lacks the writer's symbols [{}] and has no default symbol",
                        re.name.name,
                        missing.join(", ")
                    );
                    Self::report(found, IncompatibilityKind::MissingEnumSymbols, message);
                }
            }
            (Shape::Record(wr), Shape::Record(rr)) => self.compare_records(wr, rr, found),
            (w, r) => {
                let message = format!(
                    "type changed from {} (writer) to {} (reader)",
                    w.describe(),
                    r.describe()
                );
                Self::report(found, IncompatibilityKind::TypeMismatch, message);
            }
        }
    }

    fn compare_records(
        &mut self,
        w: &'a RecordSchema,
        r: &'a RecordSchema,
        found: &mut Vec<Problem>,
    ) {
        let aliases = aliases_of(&r.aliases, &r.name);
        check_names("record", &w.name, &r.name, &aliases, found);
        for reader_field in &r.fields {
            let writer_field = field(w, &reader_field.name).or_else(|| {
                reader_field
                    .aliases
                    .iter()
                    .flatten()
                    .find_map(|alias| field(w, alias))
            });
            match writer_field {
                Some(writer_field) => self.child(
                    &reader_field.name,
                    &writer_field.schema,
                    &reader_field.schema,
                    found,
                ),
                None if reader_field.default.is_some() => {}
                None => found.push(Problem {
                    path: reader_field.name.clone(),
                    kind: IncompatibilityKind::ReaderFieldMissingDefaultValue,
                    message: format!(
                        "field `{}` has no default in the reader and is missing from the writer",
                        reader_field.name
                    ),
                }),
            }
        }
    }
}

/// Java compares unqualified names, or the writer's full name against the reader's aliases.
fn check_names(what: &str, w: &Name, r: &Name, aliases: &[String], found: &mut Vec<Problem>) {
    let writer_full = w.fullname(None);
    if w.name != r.name && !aliases.contains(&writer_full) {
        let message = format!(
            "{what} name changed from {writer_full} (writer) to {} (reader), which has no alias for it",
            r.fullname(None)
        );
        Checker::report(found, IncompatibilityKind::NameMismatch, message);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IncompatibilityKind, check_can_read};
    use super::*;

    /// Built without `parse_schema`'s depth bound, to reach the checker's own bounds.
    fn unbounded(text: &str) -> Schema {
        Schema::parse_str(text).unwrap_or_else(|e| panic!("test schema parses: {e}"))
    }

    /// Records nested `depth` deep through `["null", record]` unions, `leaf` innermost.
    fn nested_unions(depth: usize, leaf: &str) -> Schema {
        let mut s = format!(
            r#"{{"type":"record","name":"R{depth}","fields":[{{"name":"x","type":"{leaf}"}}]}}"#
        );
        for i in (0..depth).rev() {
            s = format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":["null",{s}]}}]}}"#
            );
        }
        unbounded(&s)
    }

    const LIST: &str = r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"long"},{"name":"next","type":["null","Node"]}]}"#;

    /// A reader `Node` whose `next` is the last of `n` records chained by reference (each
    /// defined in an optional field first), all readable: the walk goes `n` records deep.
    fn chained_reader(n: usize) -> Schema {
        let mut fields = vec![
            r#"{"name":"value","type":"long"}"#.to_string(),
            r#"{"name":"d0","type":["null",{"type":"record","name":"n0.Node","fields":[{"name":"value","type":"long"}]}],"default":null}"#.to_string(),
        ];
        for i in 1..n {
            fields.push(format!(
                r#"{{"name":"d{i}","type":["null",{{"type":"record","name":"n{i}.Node","fields":[{{"name":"value","type":"long"}},{{"name":"next","type":["null","n{}.Node"]}}]}}],"default":null}}"#,
                i - 1
            ));
        }
        fields.push(format!(
            r#"{{"name":"next","type":["null","n{}.Node"]}}"#,
            n - 1
        ));
        unbounded(&format!(
            r#"{{"type":"record","name":"Node","fields":[{}]}}"#,
            fields.join(",")
        ))
    }

    #[test]
    fn nested_unions_thirty_deep_get_the_real_answer() {
        // Without memoization this takes 2^30 pair visits, far past the step budget.
        let e = check_can_read(&nested_unions(30, "int"), &nested_unions(30, "string"))
            .expect_err("int is not readable as string");
        assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
        assert_eq!(e.path, format!("{}x", "f.".repeat(30)));
        check_can_read(&nested_unions(30, "int"), &nested_unions(30, "long"))
            .expect("int promotes to long");
    }

    #[test]
    fn a_list_against_records_chained_by_reference_is_bounded_not_a_stack_overflow() {
        let list = unbounded(LIST);
        // Within the bound: a real answer.
        check_can_read(&list, &chained_reader(20)).expect("every link is readable");
        // Far past it (the test thread has a 2 MiB stack): a clear refusal.
        for n in [1_000, 10_000] {
            let e = check_can_read(&list, &chained_reader(n)).expect_err("too deep");
            assert_eq!(e.kind, IncompatibilityKind::TooComplex);
            assert_eq!(
                e.message,
                format!(
                    "schema too complex to check: writer and reader types nest more than {MAX_CHECK_DEPTH} levels"
                )
            );
        }
    }

    #[test]
    fn the_deepest_check_allowed_fits_a_small_stack() {
        // 3 nested pairs per chained record: just under the depth bound, on a thread with a
        // smaller stack than tokio's blocking threads (2 MiB).
        let list = unbounded(LIST);
        let reader = chained_reader(MAX_CHECK_DEPTH / 3 - 1);
        let answer = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || check_can_read(&list, &reader))
            .expect("thread starts")
            .join()
            .expect("no overflow");
        answer.expect("every link is readable");
    }

    #[test]
    fn too_many_steps_answer_too_complex() {
        // Two unions of 600 records named `R` in 600 namespaces (so no branch is skipped by
        // name) whose field types clash: every writer branch is tried against every reader
        // branch, 360,000 pairs.
        let union = |ty: &str| {
            let branches: Vec<String> = (0..600)
                .map(|i| {
                    format!(r#"{{"type":"record","name":"n{i}.R","fields":[{{"name":"x{i}","type":"{ty}"}}]}}"#)
                })
                .collect();
            unbounded(&format!("[{}]", branches.join(",")))
        };
        let e = check_can_read(&union("int"), &union("boolean")).expect_err("too many pairs");
        assert_eq!(e.kind, IncompatibilityKind::TooComplex);
        assert_eq!(
            e.message,
            format!(
                "schema too complex to check: more than {MAX_CHECK_STEPS} steps (pairs of writer and reader types)"
            )
        );
        // Branches named apart are matched by name, not walked: 600 of them are cheap.
        let named_apart = |ty: &str| {
            let branches: Vec<String> = (0..600)
                .map(|i| format!(r#"{{"type":"record","name":"R{i}","fields":[{{"name":"x","type":"{ty}"}}]}}"#))
                .collect();
            unbounded(&format!("[{}]", branches.join(",")))
        };
        let e = check_can_read(&named_apart("int"), &named_apart("boolean")).expect_err("clash");
        assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
    }

    #[test]
    fn references_through_an_alias_are_followed() {
        // apache-avro resolves `C` to the record aliased `C`; found by the property tests.
        let schema = unbounded(
            r#"[{"type":"record","name":"A","aliases":["C"],"fields":[]},
                {"type":"array","items":"C"}]"#,
        );
        check_can_read(&schema, &schema).expect("a schema reads its own data");
    }

    #[test]
    fn problems_are_capped() {
        let fields: Vec<String> = (0..500)
            .map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#))
            .collect();
        let reader = unbounded(&format!(
            r#"{{"type":"record","name":"R","fields":[{}]}}"#,
            fields.join(",")
        ));
        let writer = unbounded(r#"{"type":"record","name":"R","fields":[]}"#);
        assert_eq!(problems(&writer, &reader, true).len(), MAX_PROBLEMS);
    }
}
