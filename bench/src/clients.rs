//! The bench's own Kafka clients, independent of weft: a producer of the workload (all at
//! once, or paced at a steady rate with each event's send time in a header) and a reader of
//! a topic that counts what arrives and times the events that carry a send time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::workload::Workload;

/// Header holding an event's send time, microseconds since the Unix epoch (8 bytes, big
/// endian). weft passes headers through, so it survives every stage.
pub const SENT_HEADER: &str = "bench.sent-us";

/// How long the reading client's fetch may wait at the broker: tansu holds a fetch for all
/// of it even when data arrives, so this is part of every latency figure, the floor's too.
pub const READER_FETCH_WAIT_MS: &str = "10";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Produces the workload's events to a topic.
pub struct EventProducer {
    producer: BaseProducer,
}

impl EventProducer {
    /// librdkafka's defaults (5 ms of linger), as a plain producer has.
    pub fn new(broker: &str) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", broker)
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .context("creating the producer")?;
        Ok(Self { producer })
    }

    /// Sends the first `events` events of the workload as fast as the client takes them.
    pub fn send(&self, topic: &str, workload: &Workload, events: u64) -> anyhow::Result<()> {
        let values = workload.values();
        for i in 0..events {
            let value = &values[(i % values.len() as u64) as usize];
            self.send_one(BaseRecord::to(topic).payload(value.as_slice()))?;
        }
        self.flush()
    }

    /// Sends the first `rate × seconds` events of the workload at a steady `rate` per second,
    /// each stamped with its send time in [`SENT_HEADER`].
    pub fn send_paced(
        &self,
        topic: &str,
        workload: &Workload,
        rate: u64,
        seconds: u64,
    ) -> anyhow::Result<()> {
        let values = workload.values();
        let total = rate * seconds;
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < total {
            let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            while sent < due {
                let value = &values[(sent % values.len() as u64) as usize];
                let stamp = now_us().to_be_bytes();
                let headers = OwnedHeaders::new().insert(Header {
                    key: SENT_HEADER,
                    value: Some(&stamp[..]),
                });
                self.send_one(
                    BaseRecord::to(topic)
                        .payload(value.as_slice())
                        .headers(headers),
                )?;
                sent += 1;
            }
            // Serves delivery reports; also the pacing tick (events go out in bursts of
            // rate/1000 at most).
            self.producer.poll(Duration::from_millis(1));
        }
        self.flush()
    }

    fn send_one(&self, mut record: BaseRecord<'_, (), [u8]>) -> anyhow::Result<()> {
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e).context("producing an event"),
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.producer
            .flush(Duration::from_secs(120))
            .context("flushing the producer")
    }
}

/// Counts the events reaching a topic, and keeps the latency of each that carries
/// [`SENT_HEADER`].
pub struct Counter {
    consumer: BaseConsumer,
    pub seen: u64,
    /// Send-to-read latencies in microseconds, in arrival order.
    pub latencies_us: Vec<u64>,
}

impl Counter {
    pub fn new(broker: &str, topic: &str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker)
            .set("group.id", format!("bench-counter-{topic}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", READER_FETCH_WAIT_MS)
            .create()
            .context("creating the counting consumer")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        Ok(Self {
            consumer,
            seen: 0,
            latencies_us: Vec::new(),
        })
    }

    /// Waits until `total` events have been seen, calling `alive` about once a second (it
    /// fails when a process under test died); returns when the last one arrived.
    pub fn wait_for(
        &mut self,
        total: u64,
        timeout: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut last = Instant::now();
        let mut checked = Instant::now();
        while self.seen < total {
            if let Some(message) = self.consumer.poll(Duration::from_millis(100)) {
                let message = message.context("consuming the output")?;
                self.seen += 1;
                last = Instant::now();
                let sent = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| h.key == SENT_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| <[u8; 8]>::try_from(v).ok())
                });
                if let Some(sent) = sent {
                    self.latencies_us
                        .push(now_us().saturating_sub(u64::from_be_bytes(sent)));
                }
            }
            if checked.elapsed() > Duration::from_secs(1) {
                alive()?;
                checked = Instant::now();
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {total} events came out within {timeout:?}",
                    self.seen
                );
            }
        }
        Ok(last)
    }
}
