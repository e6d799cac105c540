//! `mask`: hides the values of string fields, leaving the schema as it is.
//!
//! ```text
//! fields = "owner.email, owner.name"
//! mode   = "hash"          # or "redact" (the default)
//! salt   = "s3cret"        # required for hash
//! ```
//!
//! `redact` replaces each value with `***`; `hash` with the lower-case hex SHA-256 of the
//! salt followed by the value (UTF-8), so equal values stay joinable without being
//! readable. Fields may be strings, nullable strings or arrays of strings (each element
//! is masked); null stays null. Any other type is a configuration error: a masked
//! number would silently stay readable.

use sha2::{Digest, Sha256};
use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::{
    ConfigError, Configured, EventMeta, FieldPath, Manifest, ParamSpec, Params, Record,
    RecordOutcome, RecordProcessor,
};

pub const REDACTED: &str = "***";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Redact,
    Hash { salt: String },
}

impl Mode {
    /// The masked form of `value`.
    pub fn mask(&self, value: &str) -> String {
        match self {
            Mode::Redact => REDACTED.to_owned(),
            Mode::Hash { salt } => {
                let hex = salted_sha256_hex(salt, value);
                // Hex digits are ASCII: this never fails.
                std::str::from_utf8(&hex).unwrap_or_default().to_owned()
            }
        }
    }
}

/// The lower-case hex SHA-256 of `salt` followed by `value`, without allocating.
pub fn salted_sha256_hex(salt: &str, value: &str) -> [u8; 64] {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(value.as_bytes());
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(hasher.finalize(), &mut hex);
    hex
}

pub struct Mask {
    fields: Vec<FieldPath>,
    mode: Mode,
}

impl Mask {
    pub fn new(fields: &[&str], mode: Mode, schema: &Schema) -> Result<Self, ConfigError> {
        if fields.is_empty() {
            return Err(ConfigError::param("fields", "no field to mask"));
        }
        let fields = fields
            .iter()
            .map(|name| {
                let path = FieldPath::resolve(schema, name).map_err(|e| e.in_param("fields"))?;
                check_maskable(&path)?;
                Ok(path)
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { fields, mode })
    }

    /// The fields it masks: all the mask reads.
    pub fn reads(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.as_str().to_owned()).collect()
    }

    /// Masks the configured fields of `record` in place.
    pub fn apply(&self, record: &mut Record) {
        for path in &self.fields {
            match record.get_mut(path) {
                Some(Value::String(s)) => *s = self.mode.mask(s),
                Some(Value::Array(items)) => {
                    for item in items {
                        if let Value::String(s) = unwrap_union_mut(item) {
                            *s = self.mode.mask(s);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn unwrap_union_mut(value: &mut Value) -> &mut Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

fn is_string(schema: &Schema) -> bool {
    match schema {
        Schema::String => true,
        Schema::Union(union) => {
            union
                .variants()
                .iter()
                .all(|v| matches!(v, Schema::String | Schema::Null))
                && union.variants().iter().any(|v| matches!(v, Schema::String))
        }
        _ => false,
    }
}

fn check_maskable(path: &FieldPath) -> Result<(), ConfigError> {
    let (schema, _) = path.value_schema();
    let ok = match schema {
        Schema::Array(array) => is_string(&array.items),
        other => is_string(other),
    };
    if ok {
        Ok(())
    } else {
        let kind =
            format!("{:?}", weft_guest::avro::schema::SchemaKind::from(schema)).to_lowercase();
        Err(ConfigError::param(
            "fields",
            format!(
                "field '{}' is of type {kind}; mask only masks strings, nullable strings and arrays of strings",
                path.as_str()
            ),
        ))
    }
}

impl RecordProcessor for Mask {
    const MANIFEST: Manifest = Manifest {
        name: "mask",
        version: env!("CARGO_PKG_VERSION"),
        description: "Redacts string fields to *** or replaces them with a salted SHA-256; \
                      the schema stays the same.",
        params: &[
            ParamSpec::required(
                "fields",
                "Comma-separated string fields to mask, e.g. \"owner.email, owner.name\".",
            ),
            ParamSpec::with_default(
                "mode",
                "redact (replace with ***) or hash (hex SHA-256 of salt + value).",
                "redact",
            ),
            ParamSpec::optional(
                "salt",
                "Salt prepended to each value before hashing; required when mode = hash.",
            ),
        ],
    };

    fn configure(params: &Params, input_schema: &Schema) -> Result<Configured<Self>, ConfigError> {
        let mode = match params.require("mode")? {
            "redact" => Mode::Redact,
            "hash" => {
                let salt = params
                    .get("salt")
                    .filter(|salt| !salt.is_empty())
                    .ok_or_else(|| {
                        ConfigError::param("salt", "mode = hash needs a non-empty salt")
                    })?;
                Mode::Hash {
                    salt: salt.to_owned(),
                }
            }
            other => {
                return Err(ConfigError::param(
                    "mode",
                    format!("unknown mode '{other}'; expected redact or hash"),
                ));
            }
        };
        let mask = Self::new(&params.list("fields"), mode, input_schema)?;
        let reads = mask.reads();
        Ok(Configured::same_schema(mask).reading(reads))
    }

    fn process(&mut self, mut record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        self.apply(&mut record);
        RecordOutcome::Emit(record)
    }
}

weft_guest::export_record!(Mask);

#[cfg(test)]
mod tests;
