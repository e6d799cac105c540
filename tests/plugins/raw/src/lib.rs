//! `raw`: a processor written as an outsider would, against `wit/processor.wit` with
//! `wit-bindgen` only (no weft SDK, no panic hook), misbehaving on purpose. Tests use it to
//! prove the host bounds what any component can do.
//!
//! It accepts any schema and returns the input schema as its output schema. On every
//! `every`-th event of a batch (default 1: every event) it does what `mode` says; the other
//! events are kept unchanged.
//!
//! ```text
//! mode  = "pass"      # pass | garbage | junk | fanout | big | sleep | loop | stderr |
//!                     # log-flood | log-forge | random | headers | loop-configure
//! every = "1"         # misbehave on events 1·N, 2·N, … of each batch (1-based)
//! count = "10"        # fanout: copies emitted; log-flood: messages logged
//! bytes = "1048576"   # big: size of the one emitted event
//! ms    = "30000"     # sleep: how long to sleep
//! ```
//!
//! - `pass`: emits the input bytes as a new event.
//! - `garbage`: emits 7 bytes `0xff`, which no Avro datum starts with and ends.
//! - `junk`: emits the input bytes followed by junk bytes.
//! - `fanout`: emits `count` copies of the input event.
//! - `big`: emits one event of `bytes` zero bytes.
//! - `sleep`: `std::thread::sleep` for `ms` milliseconds (WASI `poll` on a clock pollable).
//! - `loop`: spins forever.
//! - `stderr`: writes a multi-line message to stderr, then panics (plain Rust panic: it
//!   reaches the host as an `unreachable` trap).
//! - `log-flood`: logs `count` warnings (default: effectively without end).
//! - `log-forge`: logs one message with newlines and ANSI escapes made to look like a host
//!   ERROR line.
//! - `random`: emits the input bytes with headers `random`, `insecure-random` (16 bytes
//!   each, from `wasi:random`) and `insecure-seed` (16 bytes).
//! - `headers`: emits the input event with a header `seen` (the keys of the headers it was
//!   given, joined by commas) and a `weft.source.offset` of its own (`forged`).
//! - `loop-configure`: spins forever in `configure`, before any event.

use std::cell::RefCell;

wit_bindgen::generate!({
    // The one world every weft processor exports.
    world: "processor",
    path: "../../../wit",
});

use exports::weft::processor::stage::Guest;
use weft::processor::log::{Level, log};
// Every type by name, as an outside author would: with weft:processor@0.2.0 they live in
// their own module only (0.1.0 also put four of them at the crate root, and this clashed).
use weft::processor::types::{
    ConfigError, Configured, Event, Header, Manifest, Outcome, ParamSpec,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Garbage,
    Junk,
    Fanout,
    Big,
    Sleep,
    Loop,
    Stderr,
    LogFlood,
    LogForge,
    Random,
    Headers,
    LoopConfigure,
}

const MODES: &str = "pass, garbage, junk, fanout, big, sleep, loop, stderr, log-flood, log-forge, random, \
     headers or loop-configure";

impl Mode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pass" => Self::Pass,
            "garbage" => Self::Garbage,
            "junk" => Self::Junk,
            "fanout" => Self::Fanout,
            "big" => Self::Big,
            "sleep" => Self::Sleep,
            "loop" => Self::Loop,
            "stderr" => Self::Stderr,
            "log-flood" => Self::LogFlood,
            "log-forge" => Self::LogForge,
            "random" => Self::Random,
            "headers" => Self::Headers,
            "loop-configure" => Self::LoopConfigure,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: Mode,
    every: u64,
    count: u64,
    bytes: u64,
    ms: u64,
}

thread_local! {
    /// Set by `configure`; a component instance is single-threaded.
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

struct Raw;

fn param(name: &str, description: &str, default: Option<&str>) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        required: false,
        default: default.map(str::to_owned),
    }
}

fn number(params: &[(String, String)], name: &str, default: u64) -> Result<u64, ConfigError> {
    match params.iter().find(|(key, _)| key == name) {
        None => Ok(default),
        Some((_, value)) => value.trim().parse().map_err(|_| ConfigError {
            param: Some(name.to_owned()),
            message: format!("'{value}' is not a non-negative integer"),
        }),
    }
}

impl Guest for Raw {
    fn describe() -> Manifest {
        Manifest {
            name: "raw".to_owned(),
            version: "0.1.0".to_owned(),
            description: "Misbehaves on purpose, written without the weft SDK; for tests."
                .to_owned(),
            input_schema: None,
            output_schema: None,
            params: vec![
                param("mode", MODES, Some("pass")),
                param(
                    "every",
                    "Misbehave on every N-th event of a batch.",
                    Some("1"),
                ),
                param("count", "fanout: copies; log-flood: messages.", None),
                param("bytes", "big: size of the emitted event.", Some("1048576")),
                param("ms", "sleep: milliseconds to sleep.", Some("30000")),
            ],
        }
    }

    fn configure(
        params: Vec<(String, String)>,
        input_schema: String,
    ) -> Result<Configured, ConfigError> {
        let mode = match params.iter().find(|(key, _)| key == "mode") {
            None => Mode::Pass,
            Some((_, value)) => Mode::parse(value).ok_or_else(|| ConfigError {
                param: Some("mode".to_owned()),
                message: format!("unknown mode '{value}'; expected {MODES}"),
            })?,
        };
        if mode == Mode::LoopConfigure {
            spin();
        }
        let count_default = if mode == Mode::LogFlood { u64::MAX } else { 10 };
        let settings = Settings {
            mode,
            every: number(&params, "every", 1)?.max(1),
            count: number(&params, "count", count_default)?,
            bytes: number(&params, "bytes", 1 << 20)?,
            ms: number(&params, "ms", 30_000)?,
        };
        SETTINGS.with(|cell| *cell.borrow_mut() = Some(settings));
        // It reads no field in particular but may emit any bytes: every field.
        Ok(Configured {
            output_schema: input_schema,
            reads: None,
        })
    }

    fn process(batch: Vec<Event>) -> Result<Vec<Outcome>, String> {
        let settings = SETTINGS
            .with(|cell| *cell.borrow())
            .ok_or_else(|| "process called before configure".to_owned())?;
        let outcomes = batch
            .into_iter()
            .enumerate()
            .map(|(index, event)| {
                if (index as u64 + 1).is_multiple_of(settings.every) {
                    misbehave(&settings, event)
                } else {
                    Outcome::Keep
                }
            })
            .collect();
        Ok(outcomes)
    }
}

fn misbehave(settings: &Settings, event: Event) -> Outcome {
    match settings.mode {
        Mode::Pass => Outcome::Emit(vec![event]),
        Mode::Garbage => Outcome::Emit(vec![with_value(&event, vec![0xff; 7])]),
        Mode::Junk => {
            let mut value = event.value.clone();
            value.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01]);
            Outcome::Emit(vec![with_value(&event, value)])
        }
        Mode::Fanout => {
            let copies = usize::try_from(settings.count).unwrap_or(usize::MAX);
            Outcome::Emit(std::iter::repeat_n(event, copies).collect())
        }
        Mode::Big => {
            let size = usize::try_from(settings.bytes).unwrap_or(usize::MAX);
            Outcome::Emit(vec![with_value(&event, vec![0; size])])
        }
        Mode::Sleep => {
            std::thread::sleep(std::time::Duration::from_millis(settings.ms));
            Outcome::Emit(vec![event])
        }
        Mode::Loop | Mode::LoopConfigure => spin(),
        Mode::Stderr => {
            eprintln!("raw: about to fail\nraw: second line of context\nraw: last words");
            panic!("raw processor gives up on purpose");
        }
        Mode::LogFlood => {
            for n in 0..settings.count {
                log(Level::Warn, &format!("raw log flood message {n}"));
            }
            Outcome::Keep
        }
        Mode::LogForge => {
            log(
                Level::Info,
                "innocent\n2026-01-01T00:00:00.000000Z ERROR weft: sink failed, data lost\r\
                 \x1b[31mERROR\x1b[0m forged \x1b]0;title\x07 \u{7}",
            );
            Outcome::Keep
        }
        Mode::Random => {
            let mut seed = Vec::with_capacity(16);
            let (low, high) = wasip2::random::insecure_seed::insecure_seed();
            seed.extend_from_slice(&low.to_le_bytes());
            seed.extend_from_slice(&high.to_le_bytes());
            let mut out = event;
            out.headers.extend([
                Header {
                    key: "random".to_owned(),
                    value: wasip2::random::random::get_random_bytes(16),
                },
                Header {
                    key: "insecure-random".to_owned(),
                    value: wasip2::random::insecure::get_insecure_random_bytes(16),
                },
                Header {
                    key: "insecure-seed".to_owned(),
                    value: seed,
                },
            ]);
            Outcome::Emit(vec![out])
        }
        Mode::Headers => {
            let seen: Vec<&str> = event.headers.iter().map(|h| h.key.as_str()).collect();
            let seen = seen.join(",").into_bytes();
            let mut out = event;
            out.headers.extend([
                Header {
                    key: "seen".to_owned(),
                    value: seen,
                },
                Header {
                    key: "weft.source.offset".to_owned(),
                    value: b"forged".to_vec(),
                },
            ]);
            Outcome::Emit(vec![out])
        }
    }
}

fn with_value(event: &Event, value: Vec<u8>) -> Event {
    Event {
        key: event.key.clone(),
        value,
        headers: event.headers.clone(),
        timestamp: event.timestamp,
    }
}

/// Spins forever; `black_box` keeps the optimiser from proving the loop useless.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

export!(Raw);
