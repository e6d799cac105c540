//! The typed API: a processor over its own serde structs and declared schemas.

use std::any::type_name;

use apache_avro::{Schema, from_value, to_avro_datum, to_value, write_avro_datum_ref};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::weft::processor::types as wit;
use crate::codec;
use crate::encode::Names;
use crate::event::{EventMeta, Outcome};
use crate::manifest::{ConfigError, Manifest, Params};
use crate::stage::Stage;

/// A processor that reads and writes records of schemas it declares, as serde types.
///
/// The SDK decodes each input event with the schema the stream carries, resolved to
/// [`INPUT_SCHEMA`](Self::INPUT_SCHEMA) (Avro schema resolution: fields added with a
/// default, promoted types, reordered fields all work), hands it over as
/// [`Input`](Self::Input), and encodes what [`process`](Self::process) returns with
/// [`OUTPUT_SCHEMA`](Self::OUTPUT_SCHEMA). Export it with [`export_typed!`](crate::export_typed).
pub trait Processor: Sized + 'static {
    /// The input record; its fields must match [`INPUT_SCHEMA`](Self::INPUT_SCHEMA).
    type Input: DeserializeOwned;
    /// The output record; its fields must match [`OUTPUT_SCHEMA`](Self::OUTPUT_SCHEMA).
    type Output: Serialize;

    const MANIFEST: Manifest;
    /// Avro schema (JSON) of the input, usually `include_str!("../schemas/x.avsc")`.
    const INPUT_SCHEMA: &'static str;
    /// Avro schema (JSON) of the output.
    const OUTPUT_SCHEMA: &'static str;

    /// Builds the processor from the pipeline's parameters, already checked against
    /// the manifest (unknown names refused, defaults filled in).
    fn configure(params: &Params) -> Result<Self, ConfigError>;

    /// Processes one input event.
    fn process(&mut self, input: Self::Input, meta: &EventMeta<'_>) -> Outcome<Self::Output>;
}

/// A configured typed processor with the schemas it decodes and encodes with.
pub(crate) struct TypedStage<P> {
    processor: P,
    writer: Schema,
    /// Named types of the writer schema, for the decoder.
    writer_names: Names,
    /// The declared input schema, `None` when the writer schema is the same one and
    /// resolution can be skipped.
    reader: Option<Schema>,
    output: Schema,
    /// Serde encodes straight into the event buffer unless the output schema refers
    /// to named types, which only the `Value` encoder can follow.
    encode_via_value: bool,
}

impl<P: Processor> TypedStage<P> {
    pub(crate) fn configure(
        params: Vec<(String, String)>,
        input_schema: &str,
    ) -> Result<(Self, wit::Configured), ConfigError> {
        let params = Params::new(P::MANIFEST.params, params)?;
        let declared_input = codec::parse_declared("input", P::INPUT_SCHEMA)?;
        let output = codec::parse_declared("output", P::OUTPUT_SCHEMA)?;
        let writer = codec::parse_input(input_schema)?;
        codec::check_readable(&writer, &declared_input).map_err(|e| {
            ConfigError::new(format!(
                "the input schema cannot be read as {}'s input schema {}: {e}",
                P::MANIFEST.name,
                declared_input
                    .name()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
        })?;
        check_serde_input::<P>(&declared_input)?;
        let processor = P::configure(&params)?;
        let reads = reads(&writer, &declared_input);
        let reader =
            (writer.canonical_form() != declared_input.canonical_form()).then_some(declared_input);
        let encode_via_value = codec::has_refs(&output);
        let stage = Self {
            processor,
            writer_names: Names::of(&writer),
            writer,
            reader,
            output,
            encode_via_value,
        };
        let answer = wit::Configured {
            output_schema: P::OUTPUT_SCHEMA.to_owned(),
            reads,
        };
        Ok((stage, answer))
    }

    fn process_one(&mut self, event: wit::Event) -> wit::Outcome {
        let input = match codec::decode(
            &self.writer,
            &self.writer_names,
            self.reader.as_ref(),
            &event.value,
        )
        .and_then(|value| from_value::<P::Input>(&value).map_err(|e| input_mismatch::<P>(e)))
        {
            Ok(input) => input,
            Err(reason) => return wit::Outcome::Reject(reason),
        };
        let meta = EventMeta::new(event.key.as_deref(), &event.headers, event.timestamp);
        let outcome = self.processor.process(input, &meta);
        let (output, via_value) = (&self.output, self.encode_via_value);
        codec::emit(outcome, event, |value, buffer| {
            if via_value {
                let value = to_value(value).map_err(|e| e.to_string())?;
                *buffer = to_avro_datum(output, value).map_err(|e| e.to_string())?;
            } else {
                write_avro_datum_ref(output, &value, buffer).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

impl<P: Processor> Stage for TypedStage<P> {
    fn process_batch(&mut self, batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String> {
        Ok(batch
            .into_iter()
            .map(|event| self.process_one(event))
            .collect())
    }
}

/// The fields of the stream (`writer`) a typed processor reads: those its declared record
/// takes, by name or by one of its aliases, as Avro resolution matches them. The others are
/// skipped by the decoder, so dropping them changes nothing for the processor. `None` (every
/// field) when either schema is not a record.
fn reads(writer: &Schema, declared: &Schema) -> Option<Vec<String>> {
    let (Schema::Record(writer), Schema::Record(declared)) = (writer, declared) else {
        return None;
    };
    Some(
        writer
            .fields
            .iter()
            .filter(|w| {
                declared.fields.iter().any(|d| {
                    d.name == w.name || d.aliases.iter().flatten().any(|alias| *alias == w.name)
                })
            })
            .map(|w| w.name.clone())
            .collect(),
    )
}

fn input_mismatch<P: Processor>(e: impl std::fmt::Display) -> String {
    format!("input does not fit {}: {e}", type_name::<P::Input>())
}

/// Checks once that `P::Input` can hold values of its declared schema, so a field the
/// struct names differently fails `configure` instead of every event.
fn check_serde_input<P: Processor>(declared: &Schema) -> Result<(), ConfigError> {
    let Some(samples) = codec::samples(declared) else {
        return Ok(());
    };
    for sample in &samples {
        if let Err(e) = from_value::<P::Input>(sample) {
            return Err(ConfigError::new(format!(
                "the processor's input type {} does not match its declared input schema: {e}",
                type_name::<P::Input>()
            )));
        }
    }
    Ok(())
}
