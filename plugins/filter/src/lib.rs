//! `filter`: keeps the events whose fields match a condition, drops the others.
//!
//! ```text
//! condition = "kind == 'movie' and (rating >= 7.5 or rating is null) and owner.email ends_with '@example.com'"
//! ```
//!
//! Comparisons `== != < <= > >=` over numbers (int, long, float, double, dates and
//! timestamps as numbers), strings and enums (`==`/`!=` also for booleans); `and`, `or`,
//! `not`, parentheses; `is null` / `is not null`; `contains`, `starts_with`, `ends_with`
//! over strings, and `contains` over arrays; literals `42`, `-1.5e3`, `'text'` or
//! `"text"`, `true`, `false`, `null`. Fields are dotted paths into nested records. The
//! condition is checked against the input schema in `configure`: unknown fields and
//! comparisons that cannot make sense are configuration errors. The event passes through
//! unchanged (`keep`) or not at all.

use weft_guest::avro::Schema;
use weft_guest::{
    ConfigError, Configured, EventMeta, Manifest, ParamSpec, Params, Record, RecordOutcome,
    RecordProcessor,
};

pub mod condition;
pub mod parse;

pub use condition::Condition;

pub struct Filter {
    condition: Condition,
}

impl Filter {
    /// Parses `source` and checks it against the record `schema`.
    pub fn new(source: &str, schema: &Schema) -> Result<Self, ConfigError> {
        let ast =
            parse::parse(source).map_err(|e| ConfigError::param("condition", e.to_string()))?;
        let condition = Condition::compile(ast, schema)
            .map_err(|e| ConfigError::param("condition", e.to_string()))?;
        Ok(Self { condition })
    }

    pub fn matches(&self, record: &Record) -> bool {
        self.condition.matches(record)
    }

    /// The fields the condition tests: all the filter reads.
    pub fn reads(&self) -> Vec<String> {
        self.condition.fields()
    }
}

impl RecordProcessor for Filter {
    const MANIFEST: Manifest = Manifest {
        name: "filter",
        version: env!("CARGO_PKG_VERSION"),
        description: "Keeps the events whose fields match a condition and drops the others.",
        params: &[ParamSpec::required(
            "condition",
            "Condition over dotted field paths, e.g. \"year >= 2000 and (rating > 7.5 or rating is null)\": \
             == != < <= > >=, and, or, not, parentheses, is [not] null, contains, starts_with, ends_with.",
        )],
    };

    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError> {
        let source = params.require("condition")?;
        let filter = Self::new(source, input_schema)?;
        let reads = filter.reads();
        Ok(Configured::same_schema(filter).reading(reads))
    }

    fn process(&mut self, record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        if self.matches(&record) {
            RecordOutcome::Keep
        } else {
            RecordOutcome::Drop
        }
    }
}

weft_guest::export_record!(Filter);

#[cfg(test)]
mod tests;
