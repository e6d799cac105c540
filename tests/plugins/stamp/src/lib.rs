//! `stamp`: the test plugin whose versions the upgrade tests push one after another. One
//! source, built as three packages (`v1.0/`, `v1.1/`, `v1.2/`) whose only difference is the
//! package version `describe()` reports, so the behaviour follows the version:
//!
//! - 1.0.0 and 1.1.0 append ` @<version>` to a string field, so the sink shows which version
//!   processed each event;
//! - 1.2.0 is a broken release: it panics on every event.
//!
//! ```text
//! field = "title"   # a top-level string field (default "title")
//! ```

use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::{
    ConfigError, Configured, EventMeta, FieldPath, Manifest, ParamSpec, Params, Record,
    RecordOutcome, RecordProcessor,
};

/// The version this build reports, and so how it behaves.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether this build is the broken release.
pub fn panics() -> bool {
    VERSION.starts_with("1.2.")
}

pub struct Stamp {
    field: FieldPath,
}

impl RecordProcessor for Stamp {
    const MANIFEST: Manifest = Manifest {
        name: "stamp",
        version: VERSION,
        description: "Appends ' @<its version>' to a string field (1.2.0 panics on every event); \
                      for tests of automatic plugin upgrades.",
        params: &[ParamSpec::optional(
            "field",
            "The string field to stamp (default title).",
        )],
    };

    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError> {
        let name = params.get("field").unwrap_or("title");
        let field = FieldPath::resolve(input_schema, name).map_err(|e| e.in_param("field"))?;
        if !matches!(field.value_schema().0, Schema::String) {
            return Err(ConfigError::param(
                "field",
                format!("field '{name}' is not a string"),
            ));
        }
        Ok(Configured::same_schema(Self { field }))
    }

    fn process(&mut self, mut record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        if panics() {
            panic!("stamp {VERSION} is broken: it panics on every event");
        }
        if let Some(Value::String(text)) = record.get_mut(&self.field) {
            text.push_str(" @");
            text.push_str(VERSION);
        }
        RecordOutcome::Emit(record)
    }
}

weft_guest::export_record!(Stamp);

#[cfg(test)]
mod tests {
    use weft_guest::testing::{TestOutcome, configure_record};

    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "E", "fields": [
        {"name": "id", "type": "long"}, {"name": "title", "type": "string"}]}"#;

    fn event(id: i64) -> Value {
        Value::Record(vec![
            ("id".into(), Value::Long(id)),
            ("title".into(), Value::String(format!("Title {id}"))),
        ])
    }

    #[test]
    fn stamps_its_version_or_panics_when_it_is_the_broken_release() {
        let mut stage = configure_record::<Stamp>(&[], SCHEMA).expect("configure");
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.process_one(event(1))));
        match outcome {
            Err(_) => assert!(panics(), "{VERSION} must not panic"),
            Ok(outcome) => {
                assert!(!panics(), "{VERSION} must panic");
                let Ok(TestOutcome::Emit(values)) = outcome else {
                    panic!("{VERSION}: {outcome:?}");
                };
                let record = Record::new(values[0].clone()).expect("a record");
                assert_eq!(
                    record.field("title"),
                    Some(&Value::String(format!("Title 1 @{VERSION}")))
                );
            }
        }
    }

    #[test]
    fn refuses_a_field_that_is_not_a_string() {
        let err = configure_record::<Stamp>(&[("field", "id")], SCHEMA).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("not a string")),
            "stamp must refuse a long field"
        );
    }
}
