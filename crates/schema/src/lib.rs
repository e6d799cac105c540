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
//!
//! It is also where hostile schemas stop: text from outside enters through [`parse_schema`]
//! (names checked, nesting bounded, apache-avro's panics caught; `parse.rs`), and the check
//! is memoized and bounded in steps and depth (`check.rs`), so no schema pair can overflow a
//! stack or hold a core for long.
//!
//! [`datum`] checks Avro binary datums against a schema with bounded depth; the runtime and the
//! host's connectors both run it before apache-avro sees a byte.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

mod check;
pub mod datum;
mod names;
mod parse;

pub use check::{MAX_CHECK_DEPTH, MAX_CHECK_STEPS, MAX_PROBLEMS};
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
    /// The pair was not checked: it needs more than [`MAX_CHECK_STEPS`] steps or nests more
    /// than [`MAX_CHECK_DEPTH`] levels (weft's, not Java's; Java has no bound).
    TooComplex,
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
            IncompatibilityKind::TooComplex => "SCHEMA_TOO_COMPLEX",
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

/// Every reason data written with `writer` cannot be read with `reader` (at most
/// [`MAX_PROBLEMS`]); empty if it can. A pair too complex to check within [`MAX_CHECK_STEPS`]
/// and [`MAX_CHECK_DEPTH`] answers one [`IncompatibilityKind::TooComplex`] problem instead.
pub fn incompatibilities(writer: &Schema, reader: &Schema) -> Vec<Incompatibility> {
    check::problems(writer, reader, true)
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
            let problems = incompatibilities(writer, reader).into_iter().map(|mut i| {
                i.against = Some((index, direction));
                i
            });
            found.extend(problems);
            // A pair too complex to check makes the whole answer that; checking the other
            // versions too would only multiply the work a request can cause.
            if let Some(last) = found.last()
                && last.kind == IncompatibilityKind::TooComplex
            {
                return Err(found.split_off(found.len() - 1));
            }
        }
    }
    if found.is_empty() { Ok(()) } else { Err(found) }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
