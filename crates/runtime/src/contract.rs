//! The versions of the processor contract a component may export, behind one type: which one
//! a component speaks is found once at load time, and a chain calls both the same way.

use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

use super::HostState;
use super::bindings::{ConfigError, Event, Manifest, Outcome, v01, v02};

/// Most fields a stage may report reading; more is a guest bug or hostility, and the host
/// then takes it as reading every field.
pub const READS_MAX: usize = 4096;
/// Longest field path (dotted) a stage may report reading.
pub const READ_PATH_MAX: usize = 1 << 10;

/// The `weft:processor` package version a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContractVersion {
    /// `weft:processor@0.1.0`: the world exports the functions; `configure` says nothing of
    /// what the instance reads, so it is taken to read every field.
    V0_1,
    /// `weft:processor@0.2.0`: the functions in the exported `stage` interface; `configure`
    /// reports the fields the instance reads.
    V0_2,
}

impl ContractVersion {
    /// The package version, as `weft inspect` shows it: `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Links the `log` import of both versions (and the type-only `types` instance a 0.1.0
/// component imports): wasmtime matches 0.1.x and 0.2.x as different interfaces.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    v02::Processor::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v01::weft::processor::log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    linker.instance("weft:processor/types@0.1.0")?;
    Ok(())
}

/// A component linked and checked against one version of the contract.
#[derive(Clone)]
pub(crate) enum Pre {
    V0_2(v02::ProcessorPre<HostState>),
    V0_1(v01::ProcessorPre<HostState>),
}

/// One instance of a processor, in a store.
pub(crate) enum Instance {
    V0_2(v02::Processor),
    V0_1(v01::Processor),
}

/// What `configure` answered: the output schema, and the fields read (`None` = every one).
pub(crate) struct Configured {
    pub output_schema: String,
    pub reads: Option<Vec<String>>,
}

impl Pre {
    /// The newest version the component exports; the error names what was looked for.
    pub fn new(pre: InstancePre<HostState>) -> Result<Self, String> {
        let newer = match v02::ProcessorPre::new(pre.clone()) {
            Ok(pre) => return Ok(Pre::V0_2(pre)),
            Err(e) => e,
        };
        v01::ProcessorPre::new(pre).map(Pre::V0_1).map_err(|older| {
            format!(
                "exports neither weft:processor/stage@0.2.0 ({newer:#}) nor the \
                 weft:processor@0.1.0 world ({older:#})"
            )
        })
    }

    pub fn version(&self) -> ContractVersion {
        match self {
            Pre::V0_2(_) => ContractVersion::V0_2,
            Pre::V0_1(_) => ContractVersion::V0_1,
        }
    }

    pub fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
            Pre::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
        })
    }
}

impl Instance {
    pub fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Manifest> {
        match self {
            Instance::V0_2(i) => i.weft_processor_stage().call_describe(store),
            Instance::V0_1(i) => i.call_describe(store),
        }
    }

    pub fn configure(
        &self,
        store: &mut Store<HostState>,
        params: &[(String, String)],
        input_schema: &str,
    ) -> wasmtime::Result<Result<Configured, ConfigError>> {
        Ok(match self {
            Instance::V0_2(i) => i
                .weft_processor_stage()
                .call_configure(store, params, input_schema)?
                .map(|c| Configured {
                    output_schema: c.output_schema,
                    reads: c.reads,
                }),
            Instance::V0_1(i) => {
                i.call_configure(store, params, input_schema)?
                    .map(|output_schema| Configured {
                        output_schema,
                        reads: None,
                    })
            }
        })
    }

    pub fn process(
        &self,
        store: &mut Store<HostState>,
        batch: &[Event],
    ) -> wasmtime::Result<Result<Vec<Outcome>, String>> {
        match self {
            Instance::V0_2(i) => i.weft_processor_stage().call_process(store, batch),
            Instance::V0_1(i) => i.call_process(store, batch),
        }
    }
}

/// The fields a stage reads, as the host keeps them: sorted, without duplicates. A list past
/// [`READS_MAX`] entries, or with a path past [`READ_PATH_MAX`] bytes or that is not Avro
/// field names joined by dots (`title.`, `title..x`, `sub field`, `é`, a control character
/// that would forge log lines), is not believed: `None`, every field, is the answer that
/// cannot hide a dependency — and the one the registry takes, where such a path would make
/// it refuse the pipeline's whole lineage report.
pub(crate) fn normalize_reads(reads: Option<Vec<String>>) -> Option<Vec<String>> {
    let mut reads = reads?;
    if reads.len() > READS_MAX
        || reads
            .iter()
            .any(|r| r.len() > READ_PATH_MAX || !is_field_path(r))
    {
        return None;
    }
    reads.sort();
    reads.dedup();
    Some(reads)
}

/// Whether `path` is Avro names (`[A-Za-z_][A-Za-z0-9_]*`) joined by dots, as the registry
/// checks `reads` (its `fields::valid_path`).
fn is_field_path(path: &str) -> bool {
    path.split('.').all(|name| {
        let mut bytes = name.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_sorted_once_each_and_implausible_lists_mean_every_field() {
        let some = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(normalize_reads(some(&["b", "a", "b"])), some(&["a", "b"]));
        assert_eq!(normalize_reads(some(&[])), some(&[]));
        assert_eq!(normalize_reads(None), None);
        assert_eq!(normalize_reads(some(&["a", ""])), None);
        assert_eq!(normalize_reads(some(&["a\n2026-01-01 ERROR forged"])), None);
        // Not Avro names joined by dots: the registry would refuse the whole lineage report.
        for bad in [
            "title.",
            ".title",
            "title..x",
            "title.sub field",
            "title.é",
            "1st",
            "a-b",
        ] {
            assert_eq!(normalize_reads(some(&["id", bad])), None, "{bad:?}");
        }
        assert_eq!(
            normalize_reads(some(&["owner.email", "_x.y_2"])),
            some(&["_x.y_2", "owner.email"])
        );
        let long = "x".repeat(READ_PATH_MAX + 1);
        assert_eq!(normalize_reads(some(&[long.as_str()])), None);
        let many: Vec<String> = (0..=READS_MAX).map(|i| format!("f{i}")).collect();
        assert_eq!(normalize_reads(Some(many)), None);
    }
}
