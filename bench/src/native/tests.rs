use weft_guest::testing::{TestStage, WireOutcome};

use super::*;
use crate::workload::Workload;

/// The plugins themselves through the SDK's native path, stage after stage.
fn through_plugins(values: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut input = TITLE_SCHEMA.to_owned();
    let mut stages: Vec<TestStage> = Vec::new();
    for def in STAGES {
        let stage = match def.plugin {
            "filter" => configure_record::<filter::Filter>(def.params, &input),
            "project" => configure_record::<project::Project>(def.params, &input),
            "mask" => configure_record::<mask::Mask>(def.params, &input),
            other => panic!("unexpected plugin {other}"),
        }
        .expect("configures");
        input = stage.output_schema().to_owned();
        stages.push(stage);
    }
    let mut current: Vec<WireEvent> = values.iter().cloned().map(event).collect();
    for stage in &mut stages {
        let outcomes = stage.process_events(current.clone()).expect("processes");
        current = current
            .into_iter()
            .zip(outcomes)
            .flat_map(|(event, outcome)| match outcome {
                WireOutcome::Keep => vec![event],
                WireOutcome::Emit(events) => events,
                WireOutcome::Reject(reason) => panic!("rejected: {reason}"),
            })
            .collect();
    }
    current.into_iter().map(|e| e.value).collect()
}

#[test]
fn the_hand_written_chain_emits_what_the_plugins_emit() {
    let workload = Workload::generate(3000).expect("workload");
    let values = workload.values();
    let mut chain = NativeChain::build(TITLE_SCHEMA).expect("builds");
    let native: Vec<Vec<u8>> = chain
        .process(values.iter().cloned().map(event).collect())
        .expect("processes")
        .into_iter()
        .map(|e| e.value)
        .collect();
    let plugins = through_plugins(values);
    assert!(
        native.len() > 2000 && native.len() < 3000,
        "{}",
        native.len()
    );
    assert_eq!(native, plugins);
}

#[test]
fn malformed_events_are_rejected_not_passed_on() {
    let workload = Workload::generate(1).expect("workload");
    let mut value = workload.values()[0].clone();
    value.push(0);
    let mut chain = NativeChain::build(TITLE_SCHEMA).expect("builds");
    let err = chain
        .process(vec![event(value)])
        .expect_err("a byte too many");
    assert!(err.to_string().starts_with("filter: rejected"), "{err}");
    let cut = workload.values()[0][..5].to_vec();
    assert!(chain.process(vec![event(cut)]).is_err());
}

#[test]
fn other_parameters_are_refused_rather_than_misrepresented() {
    let other = TITLE_SCHEMA.replace(r#""name": "year""#, r#""name": "released""#);
    assert!(NativeChain::build(&other).is_err());
}
