//! A value as a pipeline file writes it: processor parameters and librdkafka properties.
//! Both the pipeline's types and the Kafka tables use it, so it stands below both.
//!
//! A processor gets each parameter as text (`wit/processor.wit`, "Parameters"): what the
//! TOML file wrote, so a float keeps its spelling (`5.0` stays `5.0`; serde hands the
//! loader an `f64`, whose `Display` would print `5`), and arrays and tables arrive as JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A parameter value as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    String(String),
    Integer(i64),
    Float(Float),
    Bool(bool),
    /// `params = { fields = ["a", "b"] }`: passed as JSON.
    Array(Vec<toml::Value>),
    /// `params = { rename = { a = "b" } }`: passed as JSON.
    Table(toml::Table),
}

/// A float and, when the loader saw the file, its text there (`1e3`, `5.0`, `+inf`).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "f64")]
pub struct Float {
    pub value: f64,
    pub text: Option<String>,
}

impl From<f64> for Float {
    fn from(value: f64) -> Self {
        Self { value, text: None }
    }
}

impl ParamValue {
    /// Whether the value is a scalar (a Kafka property must be one).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, ParamValue::Array(_) | ParamValue::Table(_))
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Integer(i) => write!(f, "{i}"),
            ParamValue::Float(Float {
                text: Some(text), ..
            }) => f.write_str(text),
            ParamValue::Float(Float { value, text: None }) => f.write_str(&float_text(*value)),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Array(items) => {
                let json: Vec<_> = items.iter().map(to_json).collect();
                f.write_str(&serde_json::Value::Array(json).to_string())
            }
            ParamValue::Table(table) => f.write_str(&table_json(table).to_string()),
        }
    }
}

/// A float as TOML would spell it when the file's own text is unknown (a pipeline sent as
/// JSON): always with a decimal point or an exponent, so it reads back as a float.
fn float_text(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `Debug` is the shortest text that reads back exactly, and keeps `.0` (`5.0`, `1e300`).
    format!("{value:?}")
}

fn table_json(table: &toml::Table) -> serde_json::Value {
    serde_json::Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

/// TOML to JSON: a datetime becomes its TOML text, a non-finite float `null` (JSON has none).
fn to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(table) => table_json(table),
    }
}

/// Puts the file's own text on every float parameter of every `[[processor]]`: serde gave
/// the loader `f64`s, and `5.0` must reach the processor as `5.0`, `1e3` as `1e3`. The file
/// already parsed as TOML, so a second parse that fails only leaves the fallback spelling.
/// It takes each processor's `params`, in file order, so this module stays below the types.
pub(crate) fn keep_float_text<'a>(
    text: &str,
    processors: impl IntoIterator<Item = &'a mut BTreeMap<String, ParamValue>>,
) {
    use toml::de::{DeTable, DeValue};
    let Ok(table) = DeTable::parse(text) else {
        return;
    };
    let Some(DeValue::Array(items)) = table.get_ref().get("processor").map(|v| v.get_ref()) else {
        return;
    };
    for (item, params_of) in items.iter().zip(processors) {
        let DeValue::Table(item) = item.get_ref() else {
            continue;
        };
        let Some(DeValue::Table(params)) = item.get("params").map(|v| v.get_ref()) else {
            continue;
        };
        for (name, value) in params.iter() {
            if let (DeValue::Float(raw), Some(ParamValue::Float(float))) =
                (value.get_ref(), params_of.get_mut(name.get_ref().as_ref()))
            {
                float.text = Some(raw.as_str().to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_a_decimal_point_without_the_file() {
        for (value, text) in [
            (5.0, "5.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e300, "1e300"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(ParamValue::Float(Float::from(value)).to_string(), text);
        }
    }
}
