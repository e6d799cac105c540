//! The relay floor end to end: the real `weft-bench relay` process between a tansu broker's
//! topics carries every event with its headers, so the send time the latency is read from
//! survives the relay as it survives weft. Needs tansu (fails without it).

use std::process::{Command, Stdio};
use std::time::Duration;

use weft_bench::broker::Broker;
use weft_bench::clients::{Counter, EventProducer};
use weft_bench::relay::RelaySpec;
use weft_bench::workload::Workload;

/// The relay process, killed when the test ends however it ends.
struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_relay_carries_every_event_with_its_send_time() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(&dir.path().join("tansu.log"))?;
    broker.create_topic("relay-in")?;
    broker.create_topic("relay-out")?;
    let spec = RelaySpec {
        broker: broker.address(),
        from: "relay-in".into(),
        to: "relay-out".into(),
        group: "relay-test".into(),
        source_properties: Vec::new(),
        sink_properties: vec![("linger.ms".into(), "2".into())],
    };
    let mut relay = Relay(
        Command::new(env!("CARGO_BIN_EXE_weft-bench"))
            .args(spec.args())
            .stdin(Stdio::null())
            .spawn()?,
    );
    let workload = Workload::generate(64)?;
    let mut counter = Counter::new(&broker.address(), "relay-out")?;
    // 1,500 events stamped with their send time, at 500/s.
    EventProducer::new(&broker.address())?.send_paced("relay-in", &workload, 500, 3)?;
    counter.wait_for(1_500, Duration::from_secs(120), || {
        match relay.0.try_wait()? {
            Some(status) => anyhow::bail!("the relay exited ({status})"),
            None => Ok(()),
        }
    })?;
    assert_eq!(counter.seen, 1_500);
    assert_eq!(
        counter.latencies_us.len(),
        1_500,
        "every event came out with its send-time header"
    );
    Ok(())
}
