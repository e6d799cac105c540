//! Times the per-batch round trips a Kafka pipeline makes against a broker: an idempotent
//! `acks=all` produce of 1024 events plus flush, and a synchronous offset commit.
//! `kafka_probe 127.0.0.1:9092 topic`

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "probe".into());
    for (name, idempotent) in [("acks=all idempotent", true), ("acks=1", false)] {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &broker);
        if idempotent {
            config.set("enable.idempotence", "true").set("acks", "all");
        } else {
            config.set("acks", "1");
        }
        let producer: BaseProducer = config.create()?;
        for round in 0..5 {
            let started = Instant::now();
            for _ in 0..1024 {
                producer
                    .send(BaseRecord::<(), [u8]>::to(&topic).payload(&[0u8; 100][..]))
                    .map_err(|(e, _)| e)?;
            }
            producer.flush(Duration::from_secs(10))?;
            println!(
                "{name}: produce+flush 1024 round {round}: {:?}",
                started.elapsed()
            );
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("group.id", "probe")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let mut got = 0;
    let started = Instant::now();
    let mut last = None;
    while got < 5 * 1024 * 2 && started.elapsed() < Duration::from_secs(30) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            got += 1;
            last = Some((m.partition(), m.offset()));
        }
    }
    println!("consumed {got} in {:?}", started.elapsed());
    if let Some((partition, offset)) = last {
        for round in 0..5 {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition, Offset::Offset(offset + 1))?;
            let started = Instant::now();
            consumer.commit(&tpl, CommitMode::Sync)?;
            println!("commit sync round {round}: {:?}", started.elapsed());
        }
    }
    Ok(())
}
