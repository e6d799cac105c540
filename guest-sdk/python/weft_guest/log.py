"""Logging through the host: each line carries the plugin and stage, rate-limited there.

``error`` has a meaning beyond logging: the last error line of a call that then traps is
the trap's reason in the dead letter (the SDK logs an exception's text that way). Outside
a component (an author's own tests) lines go to stderr.
"""

import sys

try:
    from wit_world.imports import log as _host
except ImportError:  # not inside a component
    _host = None

__all__ = ["trace", "debug", "info", "warn", "error"]


def _emit(level, name, message):
    if _host is not None:
        _host.log(getattr(_host.Level, level), str(message))
    else:
        print(f"{name}: {message}", file=sys.stderr)


def trace(message):
    _emit("TRACE", "trace", message)


def debug(message):
    _emit("DEBUG", "debug", message)


def info(message):
    _emit("INFO", "info", message)


def warn(message):
    _emit("WARN", "warn", message)


def error(message):
    _emit("ERROR", "error", message)
