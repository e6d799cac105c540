//! The component's entry points: one configured stage per instance, behind the WIT exports.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Once;

use crate::bindings::exports::weft::processor::stage::Guest;
use crate::bindings::weft::processor::types as wit;
use crate::log::{self, Level};
use crate::manifest::{ConfigError, Manifest};
use crate::record::{RecordProcessor, RecordStage};
use crate::stage::{Ready, Stage};
use crate::typed::{Processor, TypedStage};

thread_local! {
    // A component instance is single-threaded and hosts one processor: the configured
    // stage lives here between `configure` and the `process` calls.
    static STAGE: RefCell<Option<Box<dyn Stage>>> = const { RefCell::new(None) };
}

fn describe(manifest: &Manifest, input: Option<&str>, output: Option<&str>) -> wit::Manifest {
    wit::Manifest {
        name: manifest.name.to_owned(),
        version: manifest.version.to_owned(),
        description: manifest.description.to_owned(),
        input_schema: input.map(str::to_owned),
        output_schema: output.map(str::to_owned),
        params: manifest
            .params
            .iter()
            .map(|p| wit::ParamSpec {
                name: p.name.to_owned(),
                description: p.description.to_owned(),
                required: p.required,
                default: p.default.map(str::to_owned),
            })
            .collect(),
    }
}

fn install(configured: Result<Ready, ConfigError>) -> Result<wit::Configured, wit::ConfigError> {
    install_panic_hook();
    match configured {
        Ok((stage, answer)) => {
            STAGE.with_borrow_mut(|slot| *slot = Some(stage));
            Ok(answer)
        }
        Err(e) => Err(wit::ConfigError {
            param: e.param,
            message: e.message,
        }),
    }
}

fn process(batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String> {
    STAGE.with_borrow_mut(|slot| match slot {
        Some(stage) => stage.process_batch(batch),
        None => Err("process called before a successful configure".to_owned()),
    })
}

/// Logs a panic's message and location before the trap, so the host can put it into
/// the dead-letter reason (a trap itself carries no message).
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let at = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            log::log(Level::Error, &format!("processor panicked{at}: {message}"));
        }));
    });
}

/// The WIT exports for a [`Processor`]; instantiated by [`export_typed!`](crate::export_typed).
#[doc(hidden)]
pub struct TypedAdapter<P>(PhantomData<P>);

impl<P: Processor> Guest for TypedAdapter<P> {
    fn describe() -> wit::Manifest {
        describe(&P::MANIFEST, Some(P::INPUT_SCHEMA), Some(P::OUTPUT_SCHEMA))
    }

    fn configure(
        params: Vec<(String, String)>,
        input_schema: String,
    ) -> Result<wit::Configured, wit::ConfigError> {
        install(configure_typed::<P>(params, &input_schema))
    }

    fn process(batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String> {
        process(batch)
    }
}

/// The WIT exports for a [`RecordProcessor`]; instantiated by [`export_record!`](crate::export_record).
#[doc(hidden)]
pub struct RecordAdapter<P>(PhantomData<P>);

impl<P: RecordProcessor> Guest for RecordAdapter<P> {
    fn describe() -> wit::Manifest {
        describe(&P::MANIFEST, None, None)
    }

    fn configure(
        params: Vec<(String, String)>,
        input_schema: String,
    ) -> Result<wit::Configured, wit::ConfigError> {
        install(configure_record::<P>(params, &input_schema))
    }

    fn process(batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String> {
        process(batch)
    }
}

pub(crate) fn configure_typed<P: Processor>(
    params: Vec<(String, String)>,
    input_schema: &str,
) -> Result<Ready, ConfigError> {
    TypedStage::<P>::configure(params, input_schema)
        .map(|(stage, answer)| (Box::new(stage) as Box<dyn Stage>, answer))
}

pub(crate) fn configure_record<P: RecordProcessor>(
    params: Vec<(String, String)>,
    input_schema: &str,
) -> Result<Ready, ConfigError> {
    RecordStage::<P>::configure(params, input_schema)
        .map(|(stage, answer)| (Box::new(stage) as Box<dyn Stage>, answer))
}
