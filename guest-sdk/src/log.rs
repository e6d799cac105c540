//! Logging through the host: the only way a processor speaks to the outside world.
//!
//! ```
//! weft_guest::log::info!("configured with {} fields", 3);
//! weft_guest::log::log(weft_guest::log::Level::Warn, "plain message");
//! ```

use std::fmt;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// Sends `message` to the host's log. Outside a component (unit tests) it goes to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::weft::processor::log as wit;
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level}] {message}");
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_trace { ($($arg:tt)+) => { $crate::__weft_log!(Trace, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __weft_debug { ($($arg:tt)+) => { $crate::__weft_log!(Debug, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __weft_info { ($($arg:tt)+) => { $crate::__weft_log!(Info, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __weft_warn { ($($arg:tt)+) => { $crate::__weft_log!(Warn, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __weft_error { ($($arg:tt)+) => { $crate::__weft_log!(Error, $($arg)+) }; }

/// Logs at debug level, with `format!` arguments.
pub use crate::__weft_debug as debug;
/// Logs at error level, with `format!` arguments.
pub use crate::__weft_error as error;
/// Logs at info level, with `format!` arguments.
pub use crate::__weft_info as info;
/// Logs at trace level, with `format!` arguments.
pub use crate::__weft_trace as trace;
/// Logs at warn level, with `format!` arguments.
pub use crate::__weft_warn as warn;
