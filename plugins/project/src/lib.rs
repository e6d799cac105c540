//! `project`: keeps, drops and renames fields, and derives the output schema from the
//! input schema in `configure`.
//!
//! ```text
//! keep   = "id, title, owner.email"     # only these (nested paths keep part of a record)
//! drop   = "genres, owner.email"        # all but these (not together with keep)
//! rename = "title:name, owner.email:contact"   # old path : new name
//! ```
//!
//! Output fields stay in input order. The output record keeps the input record's name,
//! and kept fields keep their docs and defaults; a renamed field lists its old name as an
//! alias. Records reached through nullable unions can be reshaped; a named record type
//! used in several places cannot (the change would apply to all of them).

use std::collections::BTreeSet;

use weft_guest::avro::Schema;
use weft_guest::avro::schema::ResolvedSchema;
use weft_guest::{
    ConfigError, Configured, EventMeta, Manifest, ParamSpec, Params, Record, RecordOutcome,
    RecordProcessor,
};

pub mod shape;

use shape::{Plan, Selection};

pub struct Project {
    plan: Plan,
}

impl Project {
    /// Derives the output schema of `input` under the `keep` / `drop` / `rename` lists.
    pub fn new(
        keep: &[&str],
        drop: &[&str],
        rename: &[&str],
        input: &Schema,
    ) -> Result<(Self, Schema), ConfigError> {
        let Schema::Record(record) = input else {
            return Err(ConfigError::new("project processes records"));
        };
        if !keep.is_empty() && !drop.is_empty() {
            return Err(ConfigError::param(
                "drop",
                "give either keep or drop, not both",
            ));
        }
        let mut selection = Selection::default();
        for path in keep {
            selection.add("keep", path, |node| node.mark_keep());
        }
        for path in drop {
            selection.add("drop", path, |node| node.mark_drop());
        }
        for pair in rename {
            let Some((old, new)) = pair.split_once(':').map(|(o, n)| (o.trim(), n.trim())) else {
                return Err(ConfigError::param(
                    "rename",
                    format!("'{pair}' is not of the form old:new"),
                ));
            };
            if !valid_name(new) {
                return Err(ConfigError::param(
                    "rename",
                    format!("'{new}' is not a valid Avro field name"),
                ));
            }
            selection.add("rename", old, |node| node.mark_rename(new));
        }
        let mut referenced = BTreeSet::new();
        shape::referenced_names(input, &mut referenced);
        let (output, plan) = shape::derive(record, &selection, &referenced, "")?;
        let mut output = Schema::Record(output);
        let resolved =
            ResolvedSchema::try_from(input).map_err(|e| ConfigError::new(e.to_string()))?;
        shape::inline_dropped_definitions(&mut output, &mut BTreeSet::new(), resolved.get_names());
        Ok((Self { plan }, output))
    }
}

/// The fields project reads: those its parameters name (kept, dropped, renamed), each of
/// which must exist for `configure` to succeed. The fields a `drop` list lets through are
/// passed on unread: their absence only shrinks the output.
pub fn reads(keep: &[&str], drop: &[&str], rename: &[&str]) -> Vec<String> {
    let renamed = rename
        .iter()
        .map(|pair| pair.split_once(':').map_or(*pair, |(old, _)| old).trim());
    let mut reads: Vec<String> = Vec::new();
    for path in keep
        .iter()
        .copied()
        .chain(drop.iter().copied())
        .chain(renamed)
    {
        if !reads.iter().any(|r| r == path) {
            reads.push(path.to_owned());
        }
    }
    reads
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RecordProcessor for Project {
    const MANIFEST: Manifest = Manifest {
        name: "project",
        version: env!("CARGO_PKG_VERSION"),
        description: "Keeps, drops and renames fields (dotted paths reach into nested records); \
                      the output schema is derived from the input schema.",
        params: &[
            ParamSpec::optional(
                "keep",
                "Comma-separated fields to keep, e.g. \"id, title, owner.email\"; all others are dropped.",
            ),
            ParamSpec::optional(
                "drop",
                "Comma-separated fields to drop, e.g. \"genres, owner.email\".",
            ),
            ParamSpec::optional(
                "rename",
                "Comma-separated old:new pairs, e.g. \"title:name, owner.email:contact\".",
            ),
        ],
    };

    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError> {
        let (keep, drop, rename) = (
            params.list("keep"),
            params.list("drop"),
            params.list("rename"),
        );
        if keep.is_empty() && drop.is_empty() && rename.is_empty() {
            return Err(ConfigError::new(
                "give at least one of keep, drop or rename",
            ));
        }
        let (project, output) = Self::new(&keep, &drop, &rename, input_schema)?;
        let reads = reads(&keep, &drop, &rename);
        Ok(Configured::with_output_schema(project, output).reading(reads))
    }

    fn process(&mut self, mut record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        self.plan.apply_to(&mut record);
        RecordOutcome::Emit(record)
    }
}

weft_guest::export_record!(Project);

#[cfg(test)]
mod tests;
