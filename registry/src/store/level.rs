//! A subject's compatibility level: Confluent's seven, plus weft's `PIPELINES` — BACKWARD,
//! and at registration the guard of the pipelines that read the subject (a schema that
//! would block one's upgrade is refused). Stored as its name, as the seven always were, so
//! records written before `PIPELINES` existed read unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use weft_schema::CompatibilityLevel;

/// A level a subject (or the registry as a whole) can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SubjectLevel {
    /// One of the Confluent Schema Registry's levels.
    Avro(CompatibilityLevel),
    /// BACKWARD plus the pipelines guard.
    Pipelines,
}

impl SubjectLevel {
    pub const PIPELINES: &'static str = "PIPELINES";

    /// The Avro check the level runs between a new schema and the subject's history.
    pub fn avro(self) -> CompatibilityLevel {
        match self {
            SubjectLevel::Avro(level) => level,
            SubjectLevel::Pipelines => CompatibilityLevel::Backward,
        }
    }

    /// Whether registration also runs the pipelines guard.
    pub fn guards_pipelines(self) -> bool {
        self == SubjectLevel::Pipelines
    }
}

impl From<CompatibilityLevel> for SubjectLevel {
    fn from(level: CompatibilityLevel) -> Self {
        SubjectLevel::Avro(level)
    }
}

impl fmt::Display for SubjectLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectLevel::Avro(level) => level.fmt(f),
            SubjectLevel::Pipelines => f.write_str(Self::PIPELINES),
        }
    }
}

impl FromStr for SubjectLevel {
    type Err = String;

    /// Case-insensitive, as Confluent's levels are.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case(Self::PIPELINES) {
            return Ok(SubjectLevel::Pipelines);
        }
        s.parse::<CompatibilityLevel>()
            .map(SubjectLevel::Avro)
            .map_err(|e| e.to_string())
    }
}

impl TryFrom<String> for SubjectLevel {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SubjectLevel> for String {
    fn from(level: SubjectLevel) -> Self {
        level.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_levels_read_as_before_and_pipelines_round_trips() {
        // What sled holds for a level set before PIPELINES existed.
        let old: SubjectLevel = serde_json::from_str(r#""FULL_TRANSITIVE""#).expect("old");
        assert_eq!(old, SubjectLevel::Avro(CompatibilityLevel::FullTransitive));
        assert_eq!(
            serde_json::to_string(&old).expect("encodes"),
            r#""FULL_TRANSITIVE""#
        );
        let p: SubjectLevel = "pipelines".parse().expect("case-insensitive");
        assert_eq!(p, SubjectLevel::Pipelines);
        assert_eq!(
            serde_json::to_string(&p).expect("encodes"),
            r#""PIPELINES""#
        );
        assert_eq!(p.avro(), CompatibilityLevel::Backward);
        assert!(p.guards_pipelines() && !old.guards_pipelines());
        assert!("SIDEWAYS".parse::<SubjectLevel>().is_err());
    }
}
