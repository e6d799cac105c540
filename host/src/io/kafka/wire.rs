//! Message values on the wire: the Confluent framing (magic byte 0, 4-byte big-endian schema
//! id, Avro datum) and the decoder that turns a value into a datum of the pipeline's schema.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use weft_schema::check_can_read;
use weft_schema::datum::{DatumCheck, DatumError};
use weft_schema::parse_schema;

use crate::registry::client::{Client, ClientError};

/// The Confluent wire format's first byte.
pub const MAGIC: u8 = 0;
/// Magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Appends the Confluent framing of `datum` written with schema `id` to `out`.
pub fn frame(id: u32, datum: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + datum.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
}

/// Splits a Confluent-framed value into its schema id and datum.
pub fn unframe(value: &[u8]) -> Result<(u32, &[u8]), String> {
    match value {
        [MAGIC, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [magic, ..] if value.len() >= HEADER_LEN => Err(format!(
            "not in the Confluent wire format: magic byte {magic}, expected {MAGIC}"
        )),
        _ => Err(format!(
            "not in the Confluent wire format: {} bytes, shorter than the {HEADER_LEN}-byte header",
            value.len()
        )),
    }
}

/// Why a value could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// The value itself is bad (or its writer schema unusable): a dead letter.
    Bad(String),
    /// The registry cannot be reached: nothing is wrong with the value, so the run must stop
    /// rather than dead-letter it.
    Unavailable(String),
}

/// How a writer schema id relates to the reader schema.
#[derive(Debug, Clone)]
enum Writer {
    /// Same schema: the datum is checked and passed on as it is.
    Same,
    /// Another schema the reader can read: the datum is checked against it, resolved and
    /// re-encoded.
    Resolve(Arc<Schema>, Arc<DatumCheck>),
    /// Unknown id, unparsable or unreadable schema.
    Unusable(String),
}

/// Turns message values into datums of the reader schema.
pub struct Decoder {
    reader: Arc<Schema>,
    check: DatumCheck,
    confluent: Option<Confluent>,
}

struct Confluent {
    registry: Client,
    writers: HashMap<u32, Writer>,
}

/// Attempts and pause between them when the registry cannot be reached.
const REGISTRY_ATTEMPTS: u32 = 6;
const REGISTRY_BACKOFF: Duration = Duration::from_millis(500);

impl Decoder {
    /// Bare datums written with `reader`, nested at most `max_depth` levels deep.
    pub fn raw(reader: Arc<Schema>, max_depth: usize) -> Result<Self, String> {
        Ok(Self {
            check: DatumCheck::new(&reader, max_depth)?,
            reader,
            confluent: None,
        })
    }

    /// Confluent-framed datums whose writer schemas are fetched from `registry` by id.
    pub fn confluent(
        reader: Arc<Schema>,
        registry: Client,
        max_depth: usize,
    ) -> Result<Self, String> {
        Ok(Self {
            check: DatumCheck::new(&reader, max_depth)?,
            reader,
            confluent: Some(Confluent {
                registry,
                writers: HashMap::new(),
            }),
        })
    }

    /// The same decoder reading as `reader` from now on. Writer schemas already fetched are
    /// fetched again on first use: how a writer relates to the reader depends on the reader.
    pub fn with_reader(&self, reader: Arc<Schema>) -> Result<Self, String> {
        Ok(Self {
            check: DatumCheck::new(&reader, self.check.max_depth())?,
            reader,
            confluent: self.confluent.as_ref().map(|c| Confluent {
                registry: c.registry.clone(),
                writers: HashMap::new(),
            }),
        })
    }

    /// The datum of `value`, written with the reader schema.
    pub fn decode(&mut self, value: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let Some(confluent) = &mut self.confluent else {
            return check_datum(&self.check, value)
                .map(|()| value.to_vec())
                .map_err(DecodeError::Bad);
        };
        let (id, datum) = unframe(value).map_err(DecodeError::Bad)?;
        let writer = match confluent.writers.get(&id) {
            Some(writer) => writer.clone(),
            None => {
                let writer = fetch_writer(
                    &confluent.registry,
                    id,
                    &self.reader,
                    self.check.max_depth(),
                )?;
                confluent.writers.insert(id, writer.clone());
                writer
            }
        };
        match writer {
            Writer::Same => check_datum(&self.check, datum)
                .map(|()| datum.to_vec())
                .map_err(DecodeError::Bad),
            Writer::Resolve(schema, check) => {
                // Checked first: apache-avro decodes by recursion, so only a datum within
                // the depth limit may reach it.
                check_datum(&check, datum)
                    .map_err(|e| DecodeError::Bad(format!("schema id {id}: {e}")))?;
                let value = from_avro_datum(&schema, &mut &datum[..], Some(&self.reader))
                    .map_err(|e| DecodeError::Bad(format!("schema id {id}: corrupt datum: {e}")))?;
                to_avro_datum(&self.reader, value).map_err(|e| {
                    DecodeError::Bad(format!(
                        "schema id {id}: resolving to the reader schema: {e}"
                    ))
                })
            }
            Writer::Unusable(reason) => Err(DecodeError::Bad(reason)),
        }
    }
}

/// Checks a datum whole, so a corrupt or too deep value becomes a dead letter here instead
/// of a failure further down.
fn check_datum(check: &DatumCheck, datum: &[u8]) -> Result<(), String> {
    check.check(datum).map_err(|e| match e {
        DatumError::TooDeep { .. } => e.to_string(),
        DatumError::Invalid { .. } => format!("corrupt Avro datum: {e}"),
    })
}

fn fetch_writer(
    registry: &Client,
    id: u32,
    reader: &Schema,
    max_depth: usize,
) -> Result<Writer, DecodeError> {
    let text = with_retries(&format!("fetching schema id {id}"), || {
        registry.schema_by_id(id)
    });
    let text = match text {
        Ok(text) => text,
        Err(Fetch::Unavailable(reason)) => return Err(DecodeError::Unavailable(reason)),
        Err(Fetch::Rejected(e)) => {
            return Ok(Writer::Unusable(format!("schema id {id}: {e}")));
        }
    };
    let writer = match parse_schema(&text) {
        Ok(schema) => schema,
        Err(e) => {
            return Ok(Writer::Unusable(format!(
                "schema id {id} is not a valid Avro schema: {e}"
            )));
        }
    };
    if writer.canonical_form() == reader.canonical_form() {
        return Ok(Writer::Same);
    }
    let check = match DatumCheck::new(&writer, max_depth) {
        Ok(check) => check,
        Err(e) => return Ok(Writer::Unusable(format!("schema id {id}: {e}"))),
    };
    Ok(match check_can_read(&writer, reader) {
        Ok(()) => Writer::Resolve(Arc::new(writer), Arc::new(check)),
        Err(e) => Writer::Unusable(format!(
            "schema id {id} cannot be read with the pipeline's source schema: {e}"
        )),
    })
}

/// How a registry call finally failed.
pub(crate) enum Fetch {
    /// Not reachable after every attempt.
    Unavailable(String),
    /// The registry answered no.
    Rejected(ClientError),
}

/// Calls the registry, retrying while it cannot be reached (a restart, a blip).
pub(crate) fn with_retries<T>(
    what: &str,
    mut call: impl FnMut() -> Result<T, ClientError>,
) -> Result<T, Fetch> {
    let mut attempt = 1;
    loop {
        match call() {
            Ok(value) => return Ok(value),
            Err(e @ ClientError::Transport { .. }) if attempt < REGISTRY_ATTEMPTS => {
                tracing::warn!("{what}: {e}; retrying (attempt {attempt} of {REGISTRY_ATTEMPTS})");
                std::thread::sleep(REGISTRY_BACKOFF * 2u32.pow(attempt - 1));
                attempt += 1;
            }
            Err(e @ ClientError::Transport { .. }) => {
                return Err(Fetch::Unavailable(format!(
                    "{what}: {e} (after {REGISTRY_ATTEMPTS} attempts)"
                )));
            }
            Err(e) => return Err(Fetch::Rejected(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips() {
        let mut out = Vec::new();
        frame(0x0102_0304, b"datum", &mut out);
        assert_eq!(&out[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(unframe(&out).expect("framed"), (0x0102_0304, &b"datum"[..]));
    }

    #[test]
    fn bad_framing_is_named() {
        assert!(
            unframe(&[1, 0, 0, 0, 1, 2])
                .expect_err("bad magic")
                .contains("magic byte 1")
        );
        assert!(unframe(&[0, 0]).expect_err("too short").contains("2 bytes"));
    }

    #[test]
    fn raw_decoder_rejects_corrupt_and_trailing_bytes() {
        let schema = Arc::new(Schema::parse_str(r#""long""#).expect("schema"));
        let mut decoder = Decoder::raw(schema, 64).expect("compiles");
        assert_eq!(decoder.decode(&[2]).expect("valid long"), vec![2]);
        assert!(
            matches!(decoder.decode(&[2, 2]), Err(DecodeError::Bad(r)) if r.contains("1 bytes after the end"))
        );
        assert!(matches!(decoder.decode(&[0x80]), Err(DecodeError::Bad(_))));
    }

    #[test]
    fn a_decoder_given_a_new_reader_checks_against_it_from_then_on() {
        let long = Arc::new(Schema::parse_str(r#""long""#).expect("schema"));
        let text = Arc::new(Schema::parse_str(r#""string""#).expect("schema"));
        let decoder = Decoder::raw(long, 64).expect("compiles");
        let mut switched = decoder.with_reader(text).expect("compiles");
        assert_eq!(
            switched.decode(&[2, b'a']).expect("a string"),
            vec![2, b'a']
        );
        // A lone long (1) is a string of one byte with the byte missing.
        assert!(matches!(switched.decode(&[2]), Err(DecodeError::Bad(_))));
    }

    #[test]
    fn a_deeply_nested_value_is_a_dead_letter_not_a_crash() {
        let schema = Arc::new(
            Schema::parse_str(
                r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
            )
            .expect("schema"),
        );
        let mut decoder = Decoder::raw(schema, 64).expect("compiles");
        // 100,000 nodes: branch 1 (the next node) at each level, then null.
        let mut value = vec![2u8; 100_000];
        value.push(0);
        assert!(matches!(
            decoder.decode(&value),
            Err(DecodeError::Bad(r)) if r == "nested deeper than 64 levels (limits.max_depth)"
        ));
    }
}
