//! The relay floor: a hand-written rdkafka consume → produce loop, no weft. A pipeline is two
//! hops (producer → broker → pipeline's consumer, pipeline's producer → broker → reader) where
//! the floor is one; the relay pays the same second hop with nothing else in it, so weft's
//! latency and CPU over the relay's are what weft itself adds.
//!
//! It uses weft's own Kafka defaults (its consumer's fetch wait, its producer's settings:
//! idempotent, `acks = all`, its linger) and the bench's `--source-property` /
//! `--sink-property` over them, as weft's pipelines get them, so a setting swept moves both.
//! Unlike weft it neither decodes nor checks an event, and it never waits for a delivery:
//! librdkafka commits the consumer's offsets on its own timer (at-most-once, fine for a floor).

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use weft_host::io::kafka;

/// What one relay process reads and writes; also the hidden `relay` subcommand's arguments,
/// so what [`RelaySpec::args`] writes is what the subcommand parses back.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RelaySpec {
    #[arg(long)]
    pub broker: String,
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub group: String,
    /// librdkafka consumer properties over weft's consumer defaults.
    #[arg(long = "source-property", value_parser = key_value)]
    pub source_properties: Vec<(String, String)>,
    /// librdkafka producer properties over weft's producer defaults.
    #[arg(long = "sink-property", value_parser = key_value)]
    pub sink_properties: Vec<(String, String)>,
}

/// Parses a `KEY=VALUE` property argument.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))
}

impl RelaySpec {
    /// The consumer's configuration: what a weft source sets that bears on latency and cost,
    /// then the swept properties.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.broker)
            .set("group.id", &self.group)
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        for (key, value) in kafka::CONSUMER_TUNING {
            config.set(*key, *value);
        }
        for (key, value) in &self.source_properties {
            config.set(key, value);
        }
        config
    }

    /// The producer's configuration: weft's producer defaults, then the swept properties.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.broker);
        for (key, value) in kafka::producer::PRODUCER_DEFAULTS {
            config.set(*key, *value);
        }
        for (key, value) in &self.sink_properties {
            config.set(key, value);
        }
        config
    }

    /// The command-line arguments of the hidden `relay` subcommand that run this spec.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "relay",
            "--broker",
            &self.broker,
            "--from",
            &self.from,
            "--to",
            &self.to,
            "--group",
            &self.group,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for (flag, properties) in [
            ("--source-property", &self.source_properties),
            ("--sink-property", &self.sink_properties),
        ] {
            for (key, value) in properties {
                args.push(flag.to_owned());
                args.push(format!("{key}={value}"));
            }
        }
        args
    }
}

/// Relays every message (key, value, headers) from `spec.from` to `spec.to` until the process
/// is stopped (the bench stops it with SIGINT, whose default action ends it).
pub fn run(spec: &RelaySpec) -> anyhow::Result<()> {
    let consumer: BaseConsumer = spec
        .consumer_config()
        .create()
        .context("creating the relay's consumer")?;
    consumer
        .subscribe(&[spec.from.as_str()])
        .context("subscribing")?;
    let producer: ThreadedProducer<DefaultProducerContext> = spec
        .producer_config()
        .create()
        .context("creating the relay's producer")?;
    loop {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                eprintln!("relay: consumer error (librdkafka retries): {e}");
                continue;
            }
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&spec.to);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(headers) = message.headers() {
            record = record.headers(headers.detach());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The producer's own thread drains the queue.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e).context("producing"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RelaySpec {
        RelaySpec {
            broker: "127.0.0.1:1".into(),
            from: "in".into(),
            to: "out".into(),
            group: "relay".into(),
            source_properties: vec![("fetch.wait.max.ms".into(), "3".into())],
            sink_properties: vec![("linger.ms".into(), "7".into())],
        }
    }

    #[test]
    fn the_relay_uses_weft_s_defaults_under_the_swept_properties() {
        let plain = RelaySpec {
            source_properties: Vec::new(),
            sink_properties: Vec::new(),
            ..spec()
        };
        let (consumer, producer) = (plain.consumer_config(), plain.producer_config());
        for (key, value) in kafka::CONSUMER_TUNING {
            assert_eq!(consumer.get(key), Some(*value), "{key}");
        }
        for (key, value) in kafka::producer::PRODUCER_DEFAULTS {
            assert_eq!(producer.get(key), Some(*value), "{key}");
        }
        let swept = spec();
        assert_eq!(swept.consumer_config().get("fetch.wait.max.ms"), Some("3"));
        assert_eq!(swept.producer_config().get("linger.ms"), Some("7"));
        assert_eq!(swept.producer_config().get("acks"), Some("all"));
    }
}
