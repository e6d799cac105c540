//! `wit01`: a processor as components were built before `weft:processor@0.2.0`, against the
//! 0.1.0 WIT kept in `crates/runtime/wit-0.1` (the world exports the three functions, and
//! `configure` returns only the output schema). The host must keep loading such components
//! and take them to read every field.
//!
//! It accepts any schema and passes every event on (`keep`), except as `mode` says:
//!
//! ```text
//! mode = "keep"   # keep | panic | loop | grow
//! ```
//!
//! - `panic`: logs `wit01 gives up on event of N bytes` at error level, then panics (a
//!   trap whose reason is that line, as the WIT documents).
//! - `loop`: spins forever (the host's deadline stops it).
//! - `grow`: allocates 1 MiB blocks until the memory limit traps it.

use std::cell::Cell;

wit_bindgen::generate!({
    world: "processor",
    path: "../../../crates/runtime/wit-0.1",
});

use weft::processor::log::{Level, log};
use weft::processor::types::ParamSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Keep,
    Panic,
    Loop,
    Grow,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Keep) };
}

struct Wit01;

impl Guest for Wit01 {
    fn describe() -> Manifest {
        Manifest {
            name: "wit01".to_owned(),
            version: "0.1.0".to_owned(),
            description: "Keeps every event; built against weft:processor@0.1.0.".to_owned(),
            input_schema: None,
            output_schema: None,
            params: vec![ParamSpec {
                name: "mode".to_owned(),
                description: "keep, panic, loop or grow.".to_owned(),
                required: false,
                default: Some("keep".to_owned()),
            }],
        }
    }

    fn configure(
        params: Vec<(String, String)>,
        input_schema: String,
    ) -> Result<String, ConfigError> {
        let mode = match params
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.as_str())
        {
            None | Some("keep") => Mode::Keep,
            Some("panic") => Mode::Panic,
            Some("loop") => Mode::Loop,
            Some("grow") => Mode::Grow,
            Some(other) => {
                return Err(ConfigError {
                    param: Some("mode".to_owned()),
                    message: format!("unknown mode {other:?}; expected keep, panic, loop or grow"),
                });
            }
        };
        MODE.set(mode);
        log(Level::Info, &format!("configured with mode {mode:?}"));
        Ok(input_schema)
    }

    fn process(batch: Vec<Event>) -> Result<Vec<Outcome>, String> {
        match MODE.get() {
            Mode::Keep => {}
            Mode::Panic => {
                let size = batch.first().map_or(0, |e| e.value.len());
                log(
                    Level::Error,
                    &format!("wit01 gives up on event of {size} bytes"),
                );
                panic!("wit01 gives up");
            }
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Grow => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(vec![1; 1 << 20]);
                    std::hint::black_box(&held);
                }
            }
        }
        Ok(batch.iter().map(|_| Outcome::Keep).collect())
    }
}

export!(Wit01);
