//! Avro schema compatibility: whether data written with one schema can be read with another.
//!
//! The rules are the Avro specification's schema resolution, applied the way the Java
//! reference implementation (`SchemaCompatibility`, used by the Confluent Schema Registry)
//! applies them, so the registry and the host answer exactly what existing tooling answers:
//! - primitives promote `int → long → float → double`, and `string ↔ bytes`;
//! - named types (record, enum, fixed) match on their unqualified name, or when the reader
//!   lists the writer's full name among its aliases;
//! - a reader field missing from the writer (by name or by the reader field's aliases)
//!   needs a default; writer fields the reader lacks are skipped;
//! - every writer enum symbol must exist in the reader, unless the reader has a default symbol;
//! - fixed sizes must be equal;
//! - every branch of a writer union must be readable; a non-union writer must be readable by
//!   some branch of a reader union;
//! - logical types are resolved on their underlying type (as Java does).
//!
//! Both services trust this module, so it is tested rule by rule, both ways.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema::{EnumSchema, FixedSchema, Name, RecordSchema};
use serde::{Deserialize, Serialize};

mod names;
mod parse;

pub use names::NameKind;
pub use parse::{MAX_TYPE_DEPTH, SchemaError, check_value, parse_schema};

/// A compatibility level, as the Confluent Schema Registry names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema can read data written with the latest previous one.
    Backward,
    /// The new schema can read data written with every previous one.
    BackwardTransitive,
    /// The latest previous schema can read data written with the new one.
    Forward,
    /// Every previous schema can read data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest previous schema.
    Full,
    /// Backward and forward against every previous schema.
    FullTransitive,
}

impl CompatibilityLevel {
    /// All levels, in the order the Confluent documentation lists them.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The upper-case name used on the wire, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Which way data must be readable between a new schema and the earlier ones.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            CompatibilityLevel::None => &[],
            CompatibilityLevel::Backward | CompatibilityLevel::BackwardTransitive => {
                &[Direction::NewReadsOld]
            }
            CompatibilityLevel::Forward | CompatibilityLevel::ForwardTransitive => {
                &[Direction::OldReadsNew]
            }
            CompatibilityLevel::Full | CompatibilityLevel::FullTransitive => {
                &[Direction::NewReadsOld, Direction::OldReadsNew]
            }
        }
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level name was none of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid compatibility level `{0}`: valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
)]
pub struct InvalidLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = InvalidLevel;

    /// Case-insensitive, as the Confluent registry accepts `backward` as well as `BACKWARD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| InvalidLevel(s.to_string()))
    }
}

/// Which way a level check read data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The new schema reads data written with a previous one (backward).
    NewReadsOld,
    /// A previous schema reads data written with the new one (forward).
    OldReadsNew,
}

/// The rule an incompatibility breaks; names match the Java implementation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncompatibilityKind {
    /// Writer and reader types cannot be resolved (no promotion applies).
    TypeMismatch,
    /// Named types whose names differ, with no reader alias for the writer's name.
    NameMismatch,
    /// Fixed types of different sizes.
    FixedSizeMismatch,
    /// Writer enum symbols the reader lacks, and the reader has no default symbol.
    MissingEnumSymbols,
    /// A reader field absent from the writer and without a default.
    ReaderFieldMissingDefaultValue,
    /// A writer type no branch of the reader union can read.
    MissingUnionBranch,
}

impl IncompatibilityKind {
    /// The Java implementation's name for the rule, e.g. `READER_FIELD_MISSING_DEFAULT_VALUE`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncompatibilityKind::TypeMismatch => "TYPE_MISMATCH",
            IncompatibilityKind::NameMismatch => "NAME_MISMATCH",
            IncompatibilityKind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            IncompatibilityKind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            IncompatibilityKind::ReaderFieldMissingDefaultValue => {
                "READER_FIELD_MISSING_DEFAULT_VALUE"
            }
            IncompatibilityKind::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

/// One reason a reader cannot read a writer's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// Where, as a dotted path of field names: `owner.email`; `[]` steps into array items
    /// and `{}` into map values; empty at the root.
    pub path: String,
    /// The rule broken.
    pub kind: IncompatibilityKind,
    /// The rule broken, in words, e.g. "type changed from `string` (writer) to `int` (reader)".
    pub message: String,
    /// Set by [`check_level`]: the index (in the slice it was given) of the previous schema
    /// involved, and which way the data was read.
    pub against: Option<(usize, Direction)>,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "at the root: {}", self.message)?;
        } else {
            write!(f, "at `{}`: {}", self.path, self.message)?;
        }
        match self.against {
            Some((_, Direction::NewReadsOld)) => {
                f.write_str(" (new schema reading data written with an earlier schema)")
            }
            Some((_, Direction::OldReadsNew)) => {
                f.write_str(" (earlier schema reading data written with the new schema)")
            }
            None => Ok(()),
        }
    }
}

impl std::error::Error for Incompatibility {}

/// Whether data written with `writer` can be read with `reader`; the first problem if not.
pub fn check_can_read(writer: &Schema, reader: &Schema) -> Result<(), Incompatibility> {
    match incompatibilities(writer, reader).into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// Every reason data written with `writer` cannot be read with `reader`; empty if it can.
pub fn incompatibilities(writer: &Schema, reader: &Schema) -> Vec<Incompatibility> {
    let mut checker = Checker {
        writer_names: named_types(writer),
        reader_names: named_types(reader),
        in_progress: HashSet::new(),
        found: Vec::new(),
    };
    checker.check(writer, reader, "");
    checker.found
}

/// Checks `new` against the previous schemas of a subject (oldest first) under `level`.
///
/// Non-transitive levels look at the latest previous schema only, transitive ones at all.
pub fn check_level(
    level: CompatibilityLevel,
    new: &Schema,
    previous_oldest_first: &[Schema],
) -> Result<(), Vec<Incompatibility>> {
    let targets: Vec<(usize, &Schema)> = if level.is_transitive() {
        previous_oldest_first.iter().enumerate().collect()
    } else {
        previous_oldest_first
            .iter()
            .enumerate()
            .next_back()
            .into_iter()
            .collect()
    };
    let mut found = Vec::new();
    // Newest first, so the most relevant problem is reported first.
    for (index, old) in targets.into_iter().rev() {
        for &direction in level.directions() {
            let (writer, reader) = match direction {
                Direction::NewReadsOld => (old, new),
                Direction::OldReadsNew => (new, old),
            };
            found.extend(incompatibilities(writer, reader).into_iter().map(|mut i| {
                i.against = Some((index, direction));
                i
            }));
        }
    }
    if found.is_empty() { Ok(()) } else { Err(found) }
}

/// Named types of a schema by full name, so `Schema::Ref`s can be followed.
fn named_types(schema: &Schema) -> HashMap<String, &Schema> {
    fn walk<'a>(schema: &'a Schema, names: &mut HashMap<String, &'a Schema>) {
        match schema {
            Schema::Record(record) => {
                // A recursive record is walked once.
                let first_visit = names.insert(record.name.fullname(None), schema).is_none();
                if first_visit {
                    for field in &record.fields {
                        walk(&field.schema, names);
                    }
                }
            }
            Schema::Enum(e) => {
                names.insert(e.name.fullname(None), schema);
            }
            Schema::Fixed(fixed) => {
                names.insert(fixed.name.fullname(None), schema);
            }
            Schema::Decimal(decimal) => walk(&decimal.inner, names),
            Schema::Array(array) => walk(&array.items, names),
            Schema::Map(map) => walk(&map.types, names),
            Schema::Union(union) => {
                for branch in union.variants() {
                    walk(branch, names);
                }
            }
            _ => {}
        }
    }
    let mut names = HashMap::new();
    walk(schema, &mut names);
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

struct Checker<'a> {
    writer_names: HashMap<String, &'a Schema>,
    reader_names: HashMap<String, &'a Schema>,
    /// Record pairs being checked further up the stack: recursive types are assumed
    /// compatible on re-entry (as Java does), which terminates the walk.
    in_progress: HashSet<(String, String)>,
    found: Vec<Incompatibility>,
}

impl<'a> Checker<'a> {
    fn shape(&self, schema: &'a Schema, writer_side: bool) -> Shape<'a> {
        match schema {
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
            Schema::Decimal(decimal) => self.shape(&decimal.inner, writer_side),
            Schema::Ref { name } => {
                let names = if writer_side {
                    &self.writer_names
                } else {
                    &self.reader_names
                };
                match names.get(&name.fullname(None)) {
                    Some(target) => self.shape(target, writer_side),
                    None => Shape::Unknown(name),
                }
            }
        }
    }

    fn report(&mut self, path: &str, kind: IncompatibilityKind, message: String) {
        self.found.push(Incompatibility {
            path: path.to_string(),
            kind,
            message,
            against: None,
        });
    }

    /// Whether `writer` data is readable by `reader`, without recording anything.
    fn probe(&mut self, writer: &'a Schema, reader: &'a Schema, path: &str) -> bool {
        let before = self.found.len();
        self.check(writer, reader, path);
        let ok = self.found.len() == before;
        self.found.truncate(before);
        ok
    }

    fn check(&mut self, writer: &'a Schema, reader: &'a Schema, path: &str) {
        let w = self.shape(writer, true);
        let r = self.shape(reader, false);

        // Every branch a writer union may have written must be readable.
        if let Shape::Union(branches) = w {
            for branch in branches {
                self.check(branch, reader, path);
            }
            return;
        }
        if let Shape::Union(branches) = r {
            if branches
                .iter()
                .any(|branch| self.probe(writer, branch, path))
            {
                return;
            }
            // Explain through the branch of the same kind, if there is one: "field `email`
            // has no default" says more than "no branch matches".
            let same = branches
                .iter()
                .find(|branch| self.shape(branch, false).same_kind(&w));
            match same {
                Some(branch) => self.check(writer, branch, path),
                None => {
                    let message = format!(
                        "the reader union has no branch that can read the writer's {}",
                        w.describe()
                    );
                    self.report(path, IncompatibilityKind::MissingUnionBranch, message);
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
            (Shape::Array(wi), Shape::Array(ri)) => self.check(wi, ri, &join(path, "[]")),
            (Shape::Map(wv), Shape::Map(rv)) => self.check(wv, rv, &join(path, "{}")),
            (Shape::Fixed(wf, wsize), Shape::Fixed(rf, rsize)) => {
                if let (Some(wf), Some(rf)) = (wf, rf) {
                    let aliases = aliases_of(&rf.aliases, &rf.name);
                    self.check_names("fixed", &wf.name, &rf.name, &aliases, path);
                }
                if wsize != rsize {
                    let message =
                        format!("fixed size changed from {wsize} (writer) to {rsize} (reader)");
                    self.report(path, IncompatibilityKind::FixedSizeMismatch, message);
                }
            }
            (Shape::Enum(we), Shape::Enum(re)) => {
                let aliases = aliases_of(&re.aliases, &re.name);
                self.check_names("enum", &we.name, &re.name, &aliases, path);
                let missing: Vec<&str> = we
                    .symbols
                    .iter()
                    .filter(|s| !re.symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                let has_default = re.default.as_ref().is_some_and(|d| re.symbols.contains(d));
                if !missing.is_empty() && !has_default {
                    let message = format!(
                        "enum {} lacks the writer's symbols [{}] and has no default symbol",
                        re.name.name,
                        missing.join(", ")
                    );
                    self.report(path, IncompatibilityKind::MissingEnumSymbols, message);
                }
            }
            (Shape::Record(wr), Shape::Record(rr)) => self.check_records(wr, rr, path),
            (w, r) => {
                let message = format!(
                    "type changed from {} (writer) to {} (reader)",
                    w.describe(),
                    r.describe()
                );
                self.report(path, IncompatibilityKind::TypeMismatch, message);
            }
        }
    }

    /// Java compares unqualified names, or the writer's full name against the reader's aliases.
    fn check_names(&mut self, what: &str, w: &Name, r: &Name, aliases: &[String], path: &str) {
        let writer_full = w.fullname(None);
        if w.name != r.name && !aliases.contains(&writer_full) {
            let message = format!(
                "{what} name changed from {writer_full} (writer) to {} (reader), which has no alias for it",
                r.fullname(None)
            );
            self.report(path, IncompatibilityKind::NameMismatch, message);
        }
    }

    fn check_records(&mut self, w: &'a RecordSchema, r: &'a RecordSchema, path: &str) {
        let aliases = aliases_of(&r.aliases, &r.name);
        self.check_names("record", &w.name, &r.name, &aliases, path);
        let key = (w.name.fullname(None), r.name.fullname(None));
        if !self.in_progress.insert(key.clone()) {
            return;
        }
        for field in &r.fields {
            let field_path = join(path, &field.name);
            let writer_field = w.fields.iter().find(|f| f.name == field.name).or_else(|| {
                field
                    .aliases
                    .iter()
                    .flatten()
                    .find_map(|alias| w.fields.iter().find(|f| &f.name == alias))
            });
            match writer_field {
                Some(writer_field) => self.check(&writer_field.schema, &field.schema, &field_path),
                None if field.default.is_some() => {}
                None => {
                    let message = format!(
                        "field `{}` has no default in the reader and is missing from the writer",
                        field.name
                    );
                    self.report(
                        &field_path,
                        IncompatibilityKind::ReaderFieldMissingDefaultValue,
                        message,
                    );
                }
            }
        }
        self.in_progress.remove(&key);
    }
}

fn join(path: &str, step: &str) -> String {
    match (path.is_empty(), step) {
        (true, _) => step.to_string(),
        (false, "[]" | "{}") => format!("{path}{step}"),
        (false, _) => format!("{path}.{step}"),
    }
}

#[cfg(test)]
mod tests;
