//! Kafka transport: a consumer-group source, an idempotent sink and a dead-letter topic, in
//! the Confluent wire format (ids through the registry) or as bare Avro datums.
//!
//! At-least-once comes from the run loop's order (poll → process → write → flush → commit)
//! and from two rules kept here: the source commits only offsets it handed over before the
//! sinks flushed, and a sink's `flush` fails if any message was not acknowledged.

pub mod producer;
pub mod sink;
pub mod source;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub use sink::{KafkaDeadLetters, KafkaSink};
pub use source::KafkaSource;

use crate::config::{ParamValue, RegistryAccess};
use crate::registry::client::Client;

/// Headers of a dead-letter message.
pub const HEADER_REASON: &str = "weft.reason";
pub const HEADER_PROCESSOR: &str = "weft.processor";
pub const HEADER_STAGE: &str = "weft.stage";

/// Default `fetch.wait.max.ms` of weft's consumers: how long a broker may hold a fetch.
///
/// Apache Kafka answers a fetch as soon as `fetch.min.bytes` (1) are there, so on Kafka this
/// only sets how often an idle consumer asks (1000 / wait times a second per broker) and
/// costs no latency. tansu (0.6) holds every fetch for the whole wait and returns only what
/// was there when the fetch began, so there each hop costs 1.5 waits on average and 2 at
/// worst (librdkafka's 500 ms: up to a second per hop). Measured with `weft-bench`
/// (passthrough over tansu, the settings back to back, 3–5 runs each, a busy 2-core
/// machine; tansu's idle figure includes the bench's reader fetching every 10 ms):
///
/// | wait | p50 at 2,000/s (floor 20.5) | weft at 2,000/s | weft idle | tansu idle |
/// |---|---|---|---|---|
/// | 2 ms | 26–27 ms | 4–9% of a core | 3.2–3.4% | 13–14% |
/// | 5 ms | 32–36 ms | 4–8% | 2.2–2.4% | 8–10% |
/// | 10 ms | 38–43 ms | 3.5–4.7% | 1.4–2.2% | 5–8% |
///
/// Against 10 ms at 2,000 events/s, with 20 s phases, two runs each: 5 ms takes p99 from 51
/// to 41–44 ms in passthrough and from 52 to 43–49 fused (within 15 ms of the floor's 29),
/// p50 by 4–6 ms, for about one point of a core more (passthrough 5.4% against 4.4%, fused
/// 9–11% against 6–7%; the relay floor pays the same: 4–5% against 3%); 20 idle pipelines
/// in one `weft serve` (`bench/examples/serve_idle.rs`) cost 12–15% of a core against 10%
/// (17% at 2 ms). 5 ms is the middle: half the latency 2 ms saves for half its idle cost,
/// and on Kafka 200 idle fetches a second rather than 500. Set `[source.properties]
/// "fetch.wait.max.ms"`: 2 for the lowest latency on tansu, 100–500 on Kafka for the fewest
/// idle fetches (a daemon of many quiet pipelines).
pub const FETCH_WAIT_MAX_MS: &str = "5";

/// Default `linger.ms` of weft's producers: how long librdkafka waits to fill a request.
///
/// Each batch is flushed before it is acknowledged and a flush waits out the linger
/// (rust-rdkafka's zero-timeout flush lifts it only for the instant of the call), so the
/// linger is latency: librdkafka's own 5 ms was. 0 is worse, not better: messages leave
/// while the batch is still being queued, in many small requests. Measured with `weft-bench`
/// at 2,000 events/s (passthrough, tansu, a 10 ms fetch wait, back to back, two runs each):
/// 1 ms p50 37 ms, weft 4% of a core, tansu 16–21%; 0 ms p50 41–44 ms, weft 6%, tansu
/// 23–29%; 5 ms p50 40 ms; 50 ms p50 160 ms. The idle cost is the same for all of them.
pub const LINGER_MS: &str = "1";

/// The consumer settings of weft's defaults that set latency and idle cost, for a client
/// that must behave as weft's source does (the benchmark's relay floor).
pub const CONSUMER_TUNING: &[(&str, &str)] = &[("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)];

/// A librdkafka configuration: weft's defaults, then the pipeline's properties over them.
/// `brokers` is the table's settled value (`config::Settings`); nothing here reads the
/// environment.
fn client_config(
    brokers: Option<&str>,
    defaults: &[(&str, &str)],
    properties: &BTreeMap<String, ParamValue>,
) -> Result<ClientConfig, String> {
    let brokers =
        brokers.ok_or("no brokers (the pipeline file was not loaded with its settings settled)")?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in properties {
        config.set(key, value.to_string());
    }
    // librdkafka's own log lines go through `ClientContext::log` below; its `debug`
    // contexts (`debug = "cgrp,fetch"`) are only useful with their lines.
    config.set_log_level(if properties.contains_key("debug") {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Warning
    });
    Ok(config)
}

/// The registry client for the Confluent format: the table's settled registry and token.
fn registry(access: Option<&RegistryAccess>) -> Result<Client, String> {
    let access = access.ok_or(
        "the Confluent wire format needs a registry (the pipeline file was not loaded with its settings settled)",
    )?;
    Client::new(&access.url, access.token.clone()).map_err(|e| e.to_string())
}

/// Fatal errors end the run; everything else librdkafka retries by itself.
fn is_fatal(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageConsumptionFatal(_))
        || matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::InvalidConfig
            )
        )
}

/// Logs a client's errors and librdkafka's log lines through `tracing`, each distinct
/// message at most once per interval: a broker that is down for a minute must not flood
/// the log, and must not be silent either. Remembers the first fatal error.
struct Diagnostics {
    /// `kafka titles (group g)`: what the lines are about.
    label: String,
    seen: Mutex<HashMap<String, Instant>>,
    fatal: Mutex<Option<String>>,
}

const REPEAT_EVERY: Duration = Duration::from_secs(10);

impl Diagnostics {
    fn new(label: String) -> Self {
        Self {
            label,
            seen: Mutex::new(HashMap::new()),
            fatal: Mutex::new(None),
        }
    }

    /// Whether `message` was not logged within the last interval.
    fn fresh(&self, message: &str) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let now = Instant::now();
        match seen.get(message) {
            Some(at) if now.duration_since(*at) < REPEAT_EVERY => false,
            _ => {
                if seen.len() > 256 {
                    seen.clear();
                }
                seen.insert(message.to_string(), now);
                true
            }
        }
    }

    fn warn(&self, message: &str) {
        if self.fresh(message) {
            tracing::warn!(client = %self.label, "{message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let message = format!("{error}: {reason}");
        if is_fatal(&error) {
            tracing::error!(client = %self.label, "fatal: {message}");
            if let Ok(mut fatal) = self.fatal.lock() {
                fatal.get_or_insert(message);
            }
        } else {
            self.warn(&message);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, line: &str) {
        let message = format!("librdkafka {facility}: {line}");
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => self.warn(&message),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(client = %self.label, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(client = %self.label, "{message}"),
        }
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// A key as errors show it: text when it is text, else hex; shortened.
fn show_key(key: Option<&[u8]>) -> String {
    let Some(key) = key else {
        return "(none)".into();
    };
    let mut text = match std::str::from_utf8(key) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("0x{}", hex::encode(key)),
    };
    if text.len() > 64 {
        let mut cut = 61;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_readably() {
        assert_eq!(show_key(None), "(none)");
        assert_eq!(show_key(Some(b"tt0042")), "\"tt0042\"");
        assert_eq!(show_key(Some(&[0xff, 0x00])), "0xff00");
        assert_eq!(show_key(Some("x".repeat(100).as_bytes())).len(), 64);
    }

    #[test]
    fn producers_linger_a_millisecond_unless_the_pipeline_says_otherwise() {
        let none = BTreeMap::new();
        let config = client_config(Some("127.0.0.1:1"), producer::PRODUCER_DEFAULTS, &none)
            .expect("a config");
        assert_eq!(config.get("linger.ms"), Some("1"));
        assert_eq!(config.get("acks"), Some("all"));
        let tuned = BTreeMap::from([("linger.ms".to_owned(), ParamValue::Integer(20))]);
        let config = client_config(Some("127.0.0.1:1"), producer::PRODUCER_DEFAULTS, &tuned)
            .expect("a config");
        assert_eq!(config.get("linger.ms"), Some("20"));
    }

    #[test]
    fn repeated_messages_are_throttled() {
        let d = Diagnostics::new("test".into());
        assert!(d.fresh("broker down"));
        assert!(!d.fresh("broker down"));
        assert!(d.fresh("another"));
    }
}
