"""weft_guest: write weft processors in Python.

The SDK of the ``weft:processor@0.2.0`` contract (``wit/processor.wit``): a processor is a
subclass of ``Processor`` over plain dicts; the SDK decodes each event's Avro bytes with
the stream's schema resolved to the one the processor declares, encodes what it returns,
turns ``Reject`` into dead letters and an unexpected exception into a trap whose reason is
the exception's text. A processor module ends with ``Stage = weft_guest.stage(MyClass)``
and is built with componentize-py (``weft new NAME --lang python`` writes a project and
prints the command).
"""

from . import avro, log
from .processor import KEEP, ConfigError, Event, Param, Params, Processor, Reject, Runner

__version__ = "0.2.0"
WIT_PACKAGE = "weft:processor@0.2.0"
"""The contract this SDK speaks; the SDK's version is the WIT package's."""

__all__ = [
    "KEEP",
    "WIT_PACKAGE",
    "ConfigError",
    "Event",
    "Param",
    "Params",
    "Processor",
    "Reject",
    "Runner",
    "avro",
    "log",
    "stage",
]


def stage(cls):
    """The `stage` export for a ``Processor`` subclass (see ``weft_guest._stage``)."""
    from ._stage import stage as build

    return build(cls)
