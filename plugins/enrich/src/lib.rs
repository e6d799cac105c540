//! `enrich`: adds derived fields to catalogue titles (`weft.demo.Title` →
//! `weft.demo.TitleEnriched`) and rejects titles that cannot be right. The showcase of
//! the SDK's typed API.

use serde::{Deserialize, Serialize};
use weft_guest::{ConfigError, EventMeta, Manifest, Outcome, ParamSpec, Params, Processor};

mod slug;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Owner {
    pub name: String,
    pub email: String,
}

/// A catalogue title, as `schemas/title.avsc` declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Title {
    pub id: i64,
    pub title: String,
    pub kind: String,
    pub year: i32,
    pub rating: Option<f64>,
    pub genres: Vec<String>,
    pub owner: Owner,
}

/// A title with its derived fields, as `schemas/title_enriched.avsc` declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TitleEnriched {
    pub id: i64,
    pub title: String,
    pub kind: String,
    pub year: i32,
    pub rating: Option<f64>,
    pub genres: Vec<String>,
    pub owner: Owner,
    pub decade: i32,
    pub title_slug: String,
    pub age_years: i32,
    pub rating_band: &'static str,
}

pub struct Enrich {
    /// Plugins have no clock: ages are counted up to this year.
    reference_year: i32,
    min_year: i32,
}

impl Processor for Enrich {
    type Input = Title;
    type Output = TitleEnriched;

    const MANIFEST: Manifest = Manifest {
        name: "enrich",
        version: env!("CARGO_PKG_VERSION"),
        description: "Adds decade, title_slug, age_years and rating_band to catalogue titles; \
                      rejects titles with an empty title or a year before min_year.",
        params: &[
            ParamSpec::with_default(
                "reference_year",
                "Year that age_years counts up to (processors have no clock).",
                "2026",
            ),
            ParamSpec::with_default(
                "min_year",
                "Titles released before this year are rejected.",
                "1800",
            ),
        ],
    };
    const INPUT_SCHEMA: &'static str = include_str!("../schemas/title.avsc");
    const OUTPUT_SCHEMA: &'static str = include_str!("../schemas/title_enriched.avsc");

    fn configure(params: &Params) -> Result<Self, ConfigError> {
        let year = |name| {
            params
                .parse::<i32>(name)?
                .ok_or_else(|| ConfigError::param(name, "missing"))
        };
        Ok(Self {
            reference_year: year("reference_year")?,
            min_year: year("min_year")?,
        })
    }

    fn process(&mut self, title: Title, _meta: &EventMeta<'_>) -> Outcome<TitleEnriched> {
        if title.title.trim().is_empty() {
            return Outcome::reject(format!("title {} has an empty title", title.id));
        }
        if title.year < self.min_year {
            return Outcome::reject(format!(
                "title {} has year {}, before {}",
                title.id, title.year, self.min_year
            ));
        }
        Outcome::Emit(TitleEnriched {
            decade: title.year - title.year.rem_euclid(10),
            title_slug: slug::slugify(&title.title),
            // Negative for titles announced beyond the reference year.
            age_years: self.reference_year - title.year,
            rating_band: rating_band(title.rating),
            id: title.id,
            title: title.title,
            kind: title.kind,
            year: title.year,
            rating: title.rating,
            genres: title.genres,
            owner: title.owner,
        })
    }
}

weft_guest::export_typed!(Enrich);

/// `unrated`, `low` (below 5), `medium` (below 7.5) or `high`.
pub fn rating_band(rating: Option<f64>) -> &'static str {
    match rating {
        None => "unrated",
        Some(r) if r < 5.0 => "low",
        Some(r) if r < 7.5 => "medium",
        Some(_) => "high",
    }
}

#[cfg(test)]
mod tests;
