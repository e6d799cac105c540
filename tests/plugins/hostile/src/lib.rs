//! `hostile`: misbehaves on purpose, on the events matching `when`, and keeps all other
//! events. Only tests use it, to prove that the host survives its processors.
//!
//! ```text
//! mode = "panic"   # panic | loop | oom | open-file | trap
//! when = "id=3"    # field=value over a string, enum, boolean or number field; every event if absent
//! ```
//!
//! - `panic`: panics with a message naming the event (`id=3`).
//! - `loop`: spins forever; only the host's deadline ends it.
//! - `oom`: allocates and touches memory until the host's memory limit stops it.
//! - `open-file`: reads `/etc/passwd`; without a filesystem the io error becomes a reject
//!   (`open-file: ...`). Should the read succeed, the event is emitted with a header
//!   `hostile-read-bytes` so a test can tell.
//! - `trap`: executes `unreachable`.

use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::{
    ConfigError, Configured, Event, EventMeta, FieldPath, Manifest, ParamSpec, Params, Record,
    RecordOutcome, RecordProcessor, unwrap_union,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Panic,
    Loop,
    Oom,
    OpenFile,
    Trap,
}

pub struct Hostile {
    mode: Mode,
    /// The field and the text its value must render as; `None` matches every event.
    when: Option<(FieldPath, String)>,
}

impl Hostile {
    fn matches(&self, record: &Record) -> bool {
        match &self.when {
            None => true,
            Some((path, expected)) => record
                .get(path)
                .and_then(render)
                .is_some_and(|text| text == *expected),
        }
    }
}

/// A scalar value as the `when` parameter would spell it.
fn render(value: &Value) -> Option<String> {
    Some(match unwrap_union(value) {
        Value::String(s) | Value::Enum(_, s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Long(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Float(n) => n.to_string(),
        Value::Double(n) => n.to_string(),
        Value::Null => "null".to_owned(),
        _ => return None,
    })
}

impl RecordProcessor for Hostile {
    const MANIFEST: Manifest = Manifest {
        name: "hostile",
        version: env!("CARGO_PKG_VERSION"),
        description: "Misbehaves on purpose on matching events (panic, endless loop, memory hog, \
                      file access, trap) and keeps the others; for tests of host isolation.",
        params: &[
            ParamSpec::required("mode", "panic, loop, oom, open-file or trap."),
            ParamSpec::optional(
                "when",
                "field=value: misbehave only on events whose field has this value (all if absent).",
            ),
        ],
    };

    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError> {
        let mode = match params.require("mode")? {
            "panic" => Mode::Panic,
            "loop" => Mode::Loop,
            "oom" => Mode::Oom,
            "open-file" => Mode::OpenFile,
            "trap" => Mode::Trap,
            other => {
                return Err(ConfigError::param(
                    "mode",
                    format!("unknown mode '{other}'; expected panic, loop, oom, open-file or trap"),
                ));
            }
        };
        let when = match params.get("when") {
            None => None,
            Some(when) => {
                let (field, value) = when.split_once('=').ok_or_else(|| {
                    ConfigError::param("when", format!("'{when}' is not of the form field=value"))
                })?;
                let path = FieldPath::resolve(input_schema, field.trim())
                    .map_err(|e| e.in_param("when"))?;
                Some((path, value.trim().to_owned()))
            }
        };
        Ok(Configured::same_schema(Self { mode, when }))
    }

    fn process(&mut self, record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        if !self.matches(&record) {
            return RecordOutcome::Keep;
        }
        let event = match &self.when {
            Some((path, value)) => format!("{}={value}", path.as_str()),
            None => record
                .field("id")
                .and_then(render)
                .map_or_else(|| "?".to_owned(), |id| format!("id={id}")),
        };
        match self.mode {
            Mode::Panic => panic!("hostile processor panics on event {event}"),
            Mode::Loop => spin(),
            Mode::Oom => hog_memory(),
            Mode::OpenFile => match std::fs::read("/etc/passwd") {
                Err(e) => RecordOutcome::reject(format!("open-file: {e}")),
                Ok(bytes) => RecordOutcome::EmitEvents(vec![
                    Event::new(record).with_header("hostile-read-bytes", bytes.len().to_string()),
                ]),
            },
            Mode::Trap => trap(),
        }
    }
}

/// Spins forever; `black_box` keeps the optimiser from proving the loop useless.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates 16 MiB chunks forever, writing to every page so they are really committed.
fn hog_memory() -> ! {
    const CHUNK: usize = 16 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for page in chunk.iter_mut().step_by(4096) {
            *page = 1;
        }
        hoard.push(std::hint::black_box(chunk));
    }
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::process::abort()
    }
}

weft_guest::export_record!(Hostile);

#[cfg(test)]
mod tests {
    use weft_guest::testing::{TestOutcome, configure_record};

    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "E", "fields": [
        {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"]}]}"#;

    fn event(id: i64, name: &str) -> Value {
        Value::Record(vec![
            ("id".into(), Value::Long(id)),
            (
                "name".into(),
                Value::Union(1, Box::new(Value::String(name.into()))),
            ),
        ])
    }

    #[test]
    fn panics_only_on_the_matching_event_naming_it() {
        let mut stage = configure_record::<Hostile>(&[("mode", "panic"), ("when", "id=3")], SCHEMA)
            .expect("configure");
        assert_eq!(
            stage
                .process(vec![event(1, "a"), event(2, "b")])
                .expect("process"),
            [TestOutcome::Keep, TestOutcome::Keep]
        );
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            stage.process_one(event(3, "c"))
        }))
        .expect_err("panics");
        assert_eq!(
            panic.downcast_ref::<String>().map(String::as_str),
            Some("hostile processor panics on event id=3")
        );
    }

    #[test]
    fn open_file_rejects_or_proves_the_read() {
        let mut stage =
            configure_record::<Hostile>(&[("mode", "open-file"), ("when", "name=x")], SCHEMA)
                .expect("configure");
        assert_eq!(
            stage.process_one(event(1, "y")).expect("process"),
            TestOutcome::Keep
        );
        // Natively the file may exist; either way the outcome says what happened.
        match stage.process_one(event(2, "x")).expect("process") {
            TestOutcome::Reject(reason) => assert!(reason.starts_with("open-file: "), "{reason}"),
            TestOutcome::Emit(values) => assert_eq!(values, [event(2, "x")]),
            TestOutcome::Keep => panic!("open-file must not keep a matching event"),
        }
    }

    #[test]
    fn config_errors() {
        let err = |params: &[(&str, &str)]| {
            configure_record::<Hostile>(params, SCHEMA)
                .map(|_| ())
                .expect_err("configuration error")
                .to_string()
        };
        assert_eq!(
            err(&[("mode", "nap")]),
            "parameter 'mode': unknown mode 'nap'; expected panic, loop, oom, open-file or trap"
        );
        assert_eq!(
            err(&[("mode", "loop"), ("when", "id")]),
            "parameter 'when': 'id' is not of the form field=value"
        );
        assert_eq!(
            err(&[("mode", "loop"), ("when", "ident=3")]),
            "parameter 'when': unknown field 'ident': no field 'ident'; available: id, name"
        );
    }
}
