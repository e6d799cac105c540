//! What a processor logs, made safe to print: rate-limited per instance, cut to a bounded
//! length, control characters escaped, and always marked as the plugin's words.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Messages an instance may log per second once its burst is spent.
pub const LOG_RATE_PER_SEC: f64 = 100.0;
/// Messages an instance may log at once before the rate applies.
pub const LOG_BURST: f64 = 200.0;
/// Longest message printed, in bytes; the rest is cut with a note of how much.
pub const LOG_MESSAGE_MAX: usize = 4 << 10;
/// How often at most the "messages suppressed" line is printed per instance.
const SUPPRESSED_REPORT_EVERY: Duration = Duration::from_secs(1);

/// The token bucket of one processor instance.
#[derive(Debug)]
pub(crate) struct LogGate {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
    reported: Instant,
}

impl LogGate {
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: LOG_BURST,
            refilled: now,
            suppressed: 0,
            reported: now,
        }
    }

    /// Whether a message logged at `now` may be printed; counts it as suppressed if not.
    pub fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * LOG_RATE_PER_SEC).min(LOG_BURST);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// How many messages were suppressed since the last report, if it is time to say so
    /// (at most once a second; `force` at the end of the instance's life).
    pub fn take_suppressed(&mut self, now: Instant, force: bool) -> Option<u64> {
        let due = force || now.saturating_duration_since(self.reported) >= SUPPRESSED_REPORT_EVERY;
        if self.suppressed == 0 || !due {
            return None;
        }
        self.reported = now;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// `message` as one printable line: control characters (newlines, ESC, BEL, …) escaped as
/// `\n`, `\u{1b}`, so a plugin cannot start a line of its own, forge a host line or move the
/// terminal's cursor; past [`LOG_MESSAGE_MAX`] bytes it is cut with a note of how much.
pub(crate) fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(LOG_MESSAGE_MAX) + 16);
    let mut taken = 0;
    for c in message.chars() {
        if out.len() >= LOG_MESSAGE_MAX {
            break;
        }
        taken += c.len_utf8();
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    let cut = message.len() - taken;
    if cut > 0 {
        let _ = write!(out, "… ({cut} bytes cut)");
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_flood_is_held_to_the_burst_then_the_rate_and_counted() {
        let start = Instant::now();
        let mut gate = LogGate::new(start);
        let admitted = (0..10_000).filter(|_| gate.admit(start)).count();
        assert_eq!(admitted, LOG_BURST as usize);
        assert_eq!(gate.take_suppressed(start, false), None, "not a second yet");
        let later = start + Duration::from_secs(1);
        let admitted = (0..10_000).filter(|_| gate.admit(later)).count();
        assert_eq!(admitted, LOG_RATE_PER_SEC as usize);
        assert_eq!(
            gate.take_suppressed(later, false),
            Some(20_000 - LOG_BURST as u64 - LOG_RATE_PER_SEC as u64)
        );
        assert_eq!(gate.take_suppressed(later, true), None, "reported once");
    }

    #[test]
    fn forged_lines_and_escapes_stay_on_one_line() {
        let forged = "ok\n2026-01-01T00:00:00Z ERROR weft: sink failed\r\x1b[31mred\x1b[0m\x07";
        let line = sanitize(forged);
        assert_eq!(
            line,
            "ok\\n2026-01-01T00:00:00Z ERROR weft: sink failed\\r\\u{1b}[31mred\\u{1b}[0m\\u{7}"
        );
    }

    #[test]
    fn long_messages_are_cut_saying_how_much() {
        let line = sanitize(&"é".repeat(10_000));
        assert!(
            line.ends_with("… (15904 bytes cut)"),
            "{}",
            &line[line.len() - 40..]
        );
    }

    proptest! {
        #[test]
        fn any_message_becomes_one_bounded_line_without_control_characters(message in ".*|\\PC*|[\\x00-\\x1f\\x7f]*") {
            let line = sanitize(&message);
            prop_assert!(!line.chars().any(char::is_control));
            prop_assert!(line.len() <= LOG_MESSAGE_MAX + 64);
            if message.len() <= LOG_MESSAGE_MAX / 10 {
                prop_assert!(!line.contains("bytes cut"));
            }
        }
    }
}
