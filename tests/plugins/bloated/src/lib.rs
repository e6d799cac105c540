//! `bloated`: a valid processor (it keeps every event) whose `describe()` returns an
//! absurd manifest: a ~50 MB description and 100,000 parameters. Tests use it to prove
//! that the host and the registry refuse manifests past their caps instead of storing and
//! serving them.

wit_bindgen::generate!({
    // The one world every weft processor exports.
    world: "processor",
    path: "../../../crates/runtime/wit-0.1",
});

use weft::processor::types::ParamSpec;

/// Size of the description: large enough that serving it on every listing hurts.
const DESCRIPTION_BYTES: usize = 50 << 20;
/// Number of parameters declared.
const PARAMS: usize = 100_000;

struct Bloated;

impl Guest for Bloated {
    fn describe() -> Manifest {
        Manifest {
            name: "bloated".to_owned(),
            version: "0.1.0".to_owned(),
            description: "x".repeat(DESCRIPTION_BYTES),
            input_schema: None,
            output_schema: None,
            params: (0..PARAMS)
                .map(|n| ParamSpec {
                    name: format!("p{n}"),
                    description: "one of very many".to_owned(),
                    required: false,
                    default: None,
                })
                .collect(),
        }
    }

    fn configure(
        _params: Vec<(String, String)>,
        input_schema: String,
    ) -> Result<String, ConfigError> {
        Ok(input_schema)
    }

    fn process(batch: Vec<Event>) -> Result<Vec<Outcome>, String> {
        Ok(batch.iter().map(|_| Outcome::Keep).collect())
    }
}

export!(Bloated);
