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


class _WitOutcomes:
    """The WIT's own types for a ``Runner``'s outcomes: built once, never converted."""

    @staticmethod
    def event(key, value, headers, timestamp):
        if headers and not isinstance(headers[0], types.Header):
            headers = [_header(h) for h in headers]
        return types.Event(key, value, headers, timestamp)

    emit = types.Outcome_Emit
    reject = types.Outcome_Reject
    keep = types.Outcome_Keep()


def stage(cls):
    """The class componentize-py instantiates for the `stage` export: in the module the
    build names (``componentize app``), write ``Stage = weft_guest.stage(MyProcessor)``."""
    runner = Runner(cls, _WitOutcomes)

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
                return runner.process(batch)
            except Exception as e:
                _trap(e)

    Stage.__name__ = Stage.__qualname__ = "Stage"
    return Stage


def _trap(error):
    """An exception the author did not mean: its text becomes the trap's reason (the last
    error line before a trap), then the component traps as a Rust panic would."""
    log.error(exception_text(error))
    raise error
