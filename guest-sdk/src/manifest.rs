//! What a processor declares about itself, and the parameters a pipeline gives it.

use std::fmt;
use std::str::FromStr;

/// The processor's self-description, shown by the registry and checked by the host.
///
/// The host reads it through `describe()` before configuring anything, so it must not
/// depend on configuration: declare it as an associated `const`.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    /// Lower-case name, `[a-z][a-z0-9-]*`, e.g. `"filter"`.
    pub name: &'static str,
    /// Semantic version; use `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// One or two sentences for the registry's catalogue.
    pub description: &'static str,
    /// Every parameter the processor accepts; any other is refused by `configure`.
    pub params: &'static [ParamSpec],
}

/// A parameter a processor accepts in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
    /// Value used when the pipeline does not give one.
    pub default: Option<&'static str>,
}

impl ParamSpec {
    /// A parameter the pipeline must give.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            required: true,
            default: None,
        }
    }

    /// A parameter the pipeline may leave out; [`Params::get`] then returns `None`.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            required: false,
            default: None,
        }
    }

    /// A parameter with a default the pipeline may override.
    pub const fn with_default(
        name: &'static str,
        description: &'static str,
        default: &'static str,
    ) -> Self {
        Self {
            name,
            description,
            required: false,
            default: Some(default),
        }
    }
}

/// A problem with the parameters or the input schema, reported by `configure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The parameter at fault, if one is.
    pub param: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error that is not about one parameter (usually about the input schema).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            param: None,
            message: message.into(),
        }
    }

    /// An error about the parameter `param`.
    pub fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// Blames the parameter `param`, e.g. for an error from [`crate::FieldPath::resolve`].
    pub fn in_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.param {
            Some(param) => write!(f, "parameter '{param}': {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The parameters of one pipeline stage, checked against the manifest: no unknown
/// names, every required one present, defaults filled in.
#[derive(Debug, Clone)]
pub struct Params {
    values: Vec<(&'static str, String)>,
}

impl Params {
    /// Checks `given` against `specs` as `configure` does before calling the processor.
    pub fn new<K, V>(
        specs: &'static [ParamSpec],
        given: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut values: Vec<(&'static str, String)> = Vec::with_capacity(specs.len());
        for (name, value) in given {
            let name = name.as_ref();
            let Some(spec) = specs.iter().find(|spec| spec.name == name) else {
                let known: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
                let known = if known.is_empty() {
                    "it takes no parameters".to_owned()
                } else {
                    format!("expected one of: {}", known.join(", "))
                };
                return Err(ConfigError::param(
                    name,
                    format!("unknown parameter; {known}"),
                ));
            };
            if values.iter().any(|(seen, _)| *seen == spec.name) {
                return Err(ConfigError::param(name, "given more than once"));
            }
            values.push((spec.name, value.into()));
        }
        for spec in specs {
            if values.iter().any(|(seen, _)| *seen == spec.name) {
                continue;
            }
            if spec.required {
                return Err(ConfigError::param(
                    spec.name,
                    "required parameter is missing",
                ));
            }
            if let Some(default) = spec.default {
                values.push((spec.name, default.to_owned()));
            }
        }
        Ok(Self { values })
    }

    /// The value given for `name`, or its default; `None` if neither exists.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Like [`get`](Self::get), for a parameter that only some settings require.
    pub fn require(&self, name: &str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::param(name, "required parameter is missing"))
    }

    /// Parses the value of `name` with [`FromStr`]; `Ok(None)` when it is absent.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim()
                    .parse()
                    .map_err(|e| ConfigError::param(name, format!("invalid value '{raw}': {e}")))
            })
            .transpose()
    }

    /// A comma-separated list: items trimmed, empty items dropped; empty when absent.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec::required("condition", "what to keep"),
        ParamSpec::with_default("mode", "how", "redact"),
        ParamSpec::optional("salt", "for hashing"),
    ];

    #[test]
    fn defaults_are_filled_and_absent_optionals_stay_absent() {
        let params = Params::new(SPECS, [("condition", "a > 1")]).expect("valid params");
        assert_eq!(params.get("condition"), Some("a > 1"));
        assert_eq!(params.get("mode"), Some("redact"));
        assert_eq!(params.get("salt"), None);
        assert_eq!(
            params
                .require("salt")
                .expect_err("salt is absent")
                .to_string(),
            "parameter 'salt': required parameter is missing"
        );
    }

    #[test]
    fn unknown_missing_and_repeated_params_are_refused() {
        let err = Params::new(SPECS, [("condition", "x"), ("colour", "red")]).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "parameter 'colour': unknown parameter; expected one of: condition, mode, salt"
        );
        let err = Params::new(SPECS, [("mode", "hash")]).expect_err("missing");
        assert_eq!(
            err,
            ConfigError::param("condition", "required parameter is missing")
        );
        let err = Params::new(SPECS, [("condition", "x"), ("condition", "y")]).expect_err("twice");
        assert_eq!(
            err.to_string(),
            "parameter 'condition': given more than once"
        );
    }

    #[test]
    fn parse_and_list_read_values() {
        let params = Params::new(SPECS, [("condition", " 42 "), ("salt", "a, b,,c ")]).expect("ok");
        assert_eq!(params.parse::<i32>("condition"), Ok(Some(42)));
        assert_eq!(
            params
                .parse::<i32>("salt")
                .map(|_| ())
                .expect_err("not a number")
                .to_string(),
            "parameter 'salt': invalid value 'a, b,,c ': invalid digit found in string"
        );
        assert_eq!(params.list("salt"), ["a", "b", "c"]);
        assert!(params.list("nothing").is_empty());
    }
}
