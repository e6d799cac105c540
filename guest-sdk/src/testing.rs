//! Runs a processor natively, for unit tests, through the same configure, decode,
//! process and encode path the component runs; only the component ABI is left out.

use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};

use crate::bindings::weft::processor::types as wit;
use crate::codec;
use crate::encode::Names;
use crate::manifest::ConfigError;
use crate::record::RecordProcessor;
use crate::runtime;
use crate::stage::{Ready, Stage};
use crate::typed::Processor;

/// The WIT event and outcome, for tests that check keys, headers and timestamps.
pub use wit::{Event as WireEvent, Outcome as WireOutcome};

/// A configured processor under test.
pub struct TestStage {
    stage: Box<dyn Stage>,
    input: Schema,
    output: Schema,
    output_names: Names,
    output_json: String,
    reads: Option<Vec<String>>,
}

/// What the processor made of one input value, outputs decoded with the output schema.
#[derive(Debug, Clone, PartialEq)]
pub enum TestOutcome {
    Keep,
    Emit(Vec<Value>),
    Reject(String),
}

/// Configures the typed processor `P` as the host would.
pub fn configure_typed<P: Processor>(
    params: &[(&str, &str)],
    input_schema: &str,
) -> Result<TestStage, ConfigError> {
    TestStage::new(
        runtime::configure_typed::<P>(owned(params), input_schema)?,
        input_schema,
    )
}

/// Configures the record processor `P` as the host would.
pub fn configure_record<P: RecordProcessor>(
    params: &[(&str, &str)],
    input_schema: &str,
) -> Result<TestStage, ConfigError> {
    TestStage::new(
        runtime::configure_record::<P>(owned(params), input_schema)?,
        input_schema,
    )
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl TestStage {
    fn new((stage, answer): Ready, input_schema: &str) -> Result<Self, ConfigError> {
        let output_json = answer.output_schema;
        let input = codec::parse_input(input_schema)?;
        let output = Schema::parse_str(&output_json).map_err(|e| {
            ConfigError::new(format!(
                "the processor returned an invalid output schema: {e}"
            ))
        })?;
        Ok(Self {
            stage,
            input,
            output_names: Names::of(&output),
            output,
            output_json,
            reads: answer.reads,
        })
    }

    /// The input fields `configure` said the processor reads (`None`: every field).
    pub fn reads(&self) -> Option<&[String]> {
        self.reads.as_deref()
    }

    /// The output schema (JSON) `configure` returned.
    pub fn output_schema(&self) -> &str {
        &self.output_json
    }

    /// Encodes each value with the input schema, processes them as one batch and
    /// decodes what comes out. Errs if a value does not fit the input schema or the
    /// batch fails.
    pub fn process(&mut self, values: Vec<Value>) -> Result<Vec<TestOutcome>, String> {
        let batch = values
            .into_iter()
            .map(|value| {
                let value =
                    to_avro_datum(&self.input, value).map_err(|e| format!("test input: {e}"))?;
                Ok(WireEvent {
                    key: None,
                    value,
                    headers: Vec::new(),
                    timestamp: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        self.process_events(batch)?
            .into_iter()
            .map(|outcome| match outcome {
                WireOutcome::Keep => Ok(TestOutcome::Keep),
                WireOutcome::Reject(reason) => Ok(TestOutcome::Reject(reason)),
                WireOutcome::Emit(events) => events
                    .iter()
                    .map(|event| {
                        codec::decode(&self.output, &self.output_names, None, &event.value)
                    })
                    .collect::<Result<_, _>>()
                    .map(TestOutcome::Emit),
            })
            .collect()
    }

    /// [`process`](Self::process) for a single value.
    pub fn process_one(&mut self, value: Value) -> Result<TestOutcome, String> {
        let mut outcomes = self.process(vec![value])?;
        match (outcomes.pop(), outcomes.is_empty()) {
            (Some(outcome), true) => Ok(outcome),
            _ => Err("expected exactly one outcome".to_owned()),
        }
    }

    /// Processes raw events exactly as the component's `process` export does.
    pub fn process_events(&mut self, batch: Vec<WireEvent>) -> Result<Vec<WireOutcome>, String> {
        let len = batch.len();
        let outcomes = self.stage.process_batch(batch)?;
        if outcomes.len() != len {
            return Err(format!("{} outcomes for {len} events", outcomes.len()));
        }
        Ok(outcomes)
    }
}
