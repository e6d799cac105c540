//! The native variant: the benchmarked chain written by hand in plain Rust over the Avro
//! bytes of the title schema, the fastest reasonable code for the same logic, so that the
//! fused chain's ratio to it is the price of Wasm and of generic processors.
//!
//! Each stage does what the shipped plugin does for these parameters and nothing more:
//! it checks its input datum as the SDK does (a malformed event is rejected, strings are
//! UTF-8), reads only what it needs and copies the rest as bytes. `filter` reads `year`
//! and passes the event on as it is; `project` copies every field but `genres`; `mask`
//! replaces `owner.email` with the salted SHA-256 the mask plugin computes. No Wasm, no
//! SDK, no `Value`s. A test checks that it emits exactly what the plugins emit.

use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use apache_avro::Schema;
use weft_guest::testing::{WireEvent, configure_record};

use crate::stages::{STAGES, StageDef};
use crate::workload::TITLE_SCHEMA;

/// One hand-written stage: what it does to an event's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `year >= 1960`: keep or drop.
    Filter,
    /// Drop `genres`.
    Project,
    /// Hash `owner.email` (of the projected schema) with the salt.
    Mask,
}

struct NativeStage {
    name: &'static str,
    step: Step,
    /// The schema (JSON) the plugin's `configure` says it emits.
    output: String,
    events_in: u64,
    busy: Duration,
}

/// The benchmarked chain, natively.
pub struct NativeChain {
    stages: Vec<NativeStage>,
    salt: String,
}

/// The `configure` answer of the plugin behind `def` for `input`: its output schema.
fn output_schema(def: &StageDef, input: &str) -> anyhow::Result<String> {
    let configured = match def.plugin {
        "filter" => configure_record::<filter::Filter>(def.params, input),
        "project" => configure_record::<project::Project>(def.params, input),
        "mask" => configure_record::<mask::Mask>(def.params, input),
        other => return Err(anyhow!("no native build of plugin {other}")),
    };
    let stage =
        configured.map_err(|e| anyhow!("{}: configure failed: {}", def.plugin, e.message))?;
    Ok(stage.output_schema().to_owned())
}

fn param(def: &StageDef, name: &str) -> Option<&'static str> {
    def.params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

impl NativeChain {
    /// The chain of [`STAGES`] for events of `input_schema`, which must be the title
    /// schema with these stages' parameters: the code is written for them.
    pub fn build(input_schema: &str) -> anyhow::Result<Self> {
        let canonical = |json: &str| -> anyhow::Result<String> {
            Ok(Schema::parse_str(json)
                .context("a schema")?
                .canonical_form())
        };
        ensure!(
            canonical(input_schema)? == canonical(TITLE_SCHEMA)?,
            "the native chain is written for the title schema"
        );
        let expected = [
            ("filter", &[("condition", "year >= 1960")][..]),
            ("project", &[("drop", "genres")][..]),
        ];
        let mut stages = Vec::with_capacity(STAGES.len());
        let mut salt = String::new();
        let mut input = input_schema.to_owned();
        for def in STAGES {
            let step = match def.plugin {
                "filter" => Step::Filter,
                "project" => Step::Project,
                "mask" => {
                    ensure!(
                        param(def, "fields") == Some("owner.email")
                            && param(def, "mode") == Some("hash"),
                        "the native mask is written for fields = owner.email, mode = hash"
                    );
                    salt = param(def, "salt").unwrap_or_default().to_owned();
                    Step::Mask
                }
                other => bail!("no native build of plugin {other}"),
            };
            if let Some((_, params)) = expected.iter().find(|(name, _)| *name == def.plugin) {
                ensure!(
                    def.params == *params,
                    "the native {} is written for {params:?}",
                    def.plugin
                );
            }
            let output = output_schema(def, &input)?;
            stages.push(NativeStage {
                name: def.plugin,
                step,
                output: output.clone(),
                events_in: 0,
                busy: Duration::ZERO,
            });
            input = output;
        }
        Ok(Self { stages, salt })
    }

    /// Runs one batch through every stage and returns what comes out; rejections fail the
    /// run (the workload has none).
    pub fn process(&mut self, batch: Vec<WireEvent>) -> anyhow::Result<Vec<WireEvent>> {
        let mut current = batch;
        for stage in &mut self.stages {
            if current.is_empty() {
                break;
            }
            let started = Instant::now();
            stage.events_in += current.len() as u64;
            current = match stage.step {
                Step::Filter => {
                    let mut kept = Vec::with_capacity(current.len());
                    for event in current {
                        if filter_year(&event.value).map_err(|e| reject(stage.name, e))? {
                            kept.push(event);
                        }
                    }
                    kept
                }
                Step::Project => {
                    let mut out = current;
                    for event in &mut out {
                        event.value =
                            drop_genres(&event.value).map_err(|e| reject(stage.name, e))?;
                    }
                    out
                }
                Step::Mask => {
                    let mut out = current;
                    for event in &mut out {
                        event.value = mask_email(&event.value, &self.salt)
                            .map_err(|e| reject(stage.name, e))?;
                    }
                    out
                }
            };
            stage.busy += started.elapsed();
        }
        Ok(current)
    }

    /// The schema (JSON) each stage emits, in order.
    pub fn output_schemas(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.output.clone()).collect()
    }

    /// Busy nanoseconds per received event, per stage, since the last reset.
    pub fn stage_ns_per_event(&self) -> Vec<f64> {
        self.stages
            .iter()
            .map(|s| s.busy.as_nanos() as f64 / s.events_in.max(1) as f64)
            .collect()
    }

    /// Forgets the counters (after a warm-up).
    pub fn reset_stats(&mut self) {
        for stage in &mut self.stages {
            stage.events_in = 0;
            stage.busy = Duration::ZERO;
        }
    }
}

fn reject(stage: &str, reason: &str) -> anyhow::Error {
    anyhow!("{stage}: rejected an event: cannot decode the input event: {reason}")
}

/// A native event carrying `value`, as a source without keys or headers makes it.
pub fn event(value: Vec<u8>) -> WireEvent {
    WireEvent {
        key: None,
        value,
        headers: Vec::new(),
        timestamp: None,
    }
}

/// A cursor over one datum, checking as it goes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Checked<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn long(&mut self) -> Checked<i64> {
        let mut z = 0u64;
        for i in 0..10 {
            let byte = *self.bytes.get(self.at + i).ok_or("the datum ends early")?;
            z |= u64::from(byte & 0x7f) << (i * 7);
            if byte & 0x80 == 0 {
                self.at += i + 1;
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err("a variable-length integer is longer than ten bytes")
    }

    fn int(&mut self) -> Checked<i32> {
        i32::try_from(self.long()?).map_err(|_| "an int out of range")
    }

    fn take(&mut self, n: usize) -> Checked<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or("the datum ends early")?;
        let bytes = self.bytes.get(self.at..end).ok_or("the datum ends early")?;
        self.at = end;
        Ok(bytes)
    }

    /// A string's bytes, checked to be UTF-8.
    fn string(&mut self) -> Checked<&'a str> {
        let len = usize::try_from(self.long()?).map_err(|_| "invalid length")?;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a string is not UTF-8")
    }

    /// `["null", "double"]`.
    fn nullable_double(&mut self) -> Checked<()> {
        match self.long()? {
            0 => Ok(()),
            1 => self.take(8).map(drop),
            _ => Err("union index out of range"),
        }
    }

    /// An array of strings; its byte range.
    fn strings(&mut self) -> Checked<Range<usize>> {
        let start = self.at;
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(start..self.at);
            }
            if count < 0 {
                self.long()?;
            }
            for _ in 0..count.unsigned_abs() {
                self.string()?;
            }
        }
    }

    fn end(&self) -> Checked<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err("bytes left after the datum")
        }
    }
}

/// The fields of a title every stage needs, with the datum checked whole.
struct Title {
    year: i32,
    /// Where `genres` is (absent in the projected schema).
    genres: Option<Range<usize>>,
    /// Where the email string is, length included.
    email: Range<usize>,
    email_text: Range<usize>,
}

fn read_title(bytes: &[u8], with_genres: bool) -> Checked<Title> {
    let mut r = Reader::new(bytes);
    r.long()?;
    r.string()?;
    r.string()?;
    let year = r.int()?;
    r.nullable_double()?;
    let genres = if with_genres {
        Some(r.strings()?)
    } else {
        None
    };
    r.string()?;
    let start = r.at;
    let text = r.string()?;
    let email = start..r.at;
    r.end()?;
    let email_text = email.end - text.len()..email.end;
    Ok(Title {
        year,
        genres,
        email,
        email_text,
    })
}

fn filter_year(bytes: &[u8]) -> Checked<bool> {
    Ok(read_title(bytes, true)?.year >= 1960)
}

fn drop_genres(bytes: &[u8]) -> Checked<Vec<u8>> {
    let title = read_title(bytes, true)?;
    let genres = title.genres.unwrap_or(0..0);
    let mut out = Vec::with_capacity(bytes.len() - genres.len());
    out.extend_from_slice(&bytes[..genres.start]);
    out.extend_from_slice(&bytes[genres.end..]);
    Ok(out)
}

fn mask_email(bytes: &[u8], salt: &str) -> Checked<Vec<u8>> {
    let title = read_title(bytes, false)?;
    let email = std::str::from_utf8(&bytes[title.email_text]).map_err(|_| "not UTF-8")?;
    let hex = mask::salted_sha256_hex(salt, email);
    let mut out = Vec::with_capacity(bytes.len() + hex.len());
    out.extend_from_slice(&bytes[..title.email.start]);
    // 64 characters: zig-zag 128, two varint bytes.
    out.extend_from_slice(&[0x80, 0x01]);
    out.extend_from_slice(&hex);
    out.extend_from_slice(&bytes[title.email.end..]);
    Ok(out)
}

#[cfg(test)]
mod tests;
