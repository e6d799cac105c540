"""The component's exports: maps the `stage` interface of weft:processor@0.2.0 onto a
``Runner``. Imported only inside a component build, where componentize-py generated
``wit_world`` from the WIT."""

from componentize_py_types import Err
from wit_world.exports import Stage as _StageProtocol
from wit_world.imports import types

from . import log
from .processor import ConfigError, Runner, exception_text


def _header(header):
    return header if isinstance(header, types.Header) else types.Header(header[0], bytes(header[1]))


def stage(cls):
    """The class componentize-py instantiates for the `stage` export: in the module the
    build names (``componentize app``), write ``Stage = weft_guest.stage(MyProcessor)``."""
    runner = Runner(cls)

    def emit(event):
        key, value, headers, timestamp = event
        return types.Event(key, value, [_header(h) for h in headers], timestamp)

    keep = types.Outcome_Keep()

    class Stage(_StageProtocol):
        def describe(self):
            name, version, description, input_schema, output_schema, params = runner.manifest()
            return types.Manifest(
                name,
                version,
                description,
                input_schema,
                output_schema,
                [types.ParamSpec(n, d, r, default) for n, d, r, default in params],
            )

        def configure(self, params, input_schema):
            try:
                output_schema, reads = runner.configure(params, input_schema)
            except ConfigError as e:
                raise Err(types.ConfigError(e.param, e.message)) from None
            except Exception as e:
                _trap(e)
            return types.Configured(output_schema, reads)

        def process(self, batch):
            try:
                outcomes = runner.process(
                    [(e.key, e.value, e.headers, e.timestamp) for e in batch]
                )
            except Exception as e:
                _trap(e)
            wit = []
            for outcome in outcomes:
                kind = outcome[0]
                if kind == "emit":
                    wit.append(types.Outcome_Emit([emit(event) for event in outcome[1]]))
                elif kind == "keep":
                    wit.append(keep)
                else:
                    wit.append(types.Outcome_Reject(outcome[1]))
            return wit

    Stage.__name__ = Stage.__qualname__ = "Stage"
    return Stage


def _trap(error):
    """An exception the author did not mean: its text becomes the trap's reason (the last
    error line before a trap), then the component traps as a Rust panic would."""
    log.error(exception_text(error))
    raise error
