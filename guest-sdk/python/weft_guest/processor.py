"""What a processor author writes against: ``Processor``, ``Param``, ``Params``, ``Reject``,
``ConfigError``, ``Event`` and ``KEEP``; and ``Runner``, which drives a processor over Avro
bytes exactly as the component does, without any Wasm (the SDK's tests and an author's own
use it)."""

import json
import struct
import traceback

from . import avro

__all__ = [
    "KEEP",
    "ConfigError",
    "Event",
    "Param",
    "Params",
    "Processor",
    "Reject",
    "Runner",
]


class _Keep:
    def __repr__(self):
        return "KEEP"


KEEP = _Keep()
"""Returned by ``process``: pass the input event on as it came, without re-encoding it.
Only valid when the processor's output schema is the stream's input schema."""


class Reject(Exception):
    """Raised (or returned) by ``process``: the event goes to the dead-letter sink with
    this reason. For events that are wrong, not for bugs: an unexpected exception makes the
    processor trap, and its text becomes the dead letter's reason."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = str(reason)


class ConfigError(Exception):
    """Raised by ``configure``: the pipeline does not build, naming ``param`` if given."""

    def __init__(self, message, param=None):
        super().__init__(message)
        self.message = str(message)
        self.param = param


class Param:
    """A parameter the processor accepts in the pipeline file. ``default`` is the text the
    file would give (``"5.0"``, ``"true"``, ``'["a"]'``); a parameter without one is
    optional unless ``required``."""

    __slots__ = ("name", "description", "default", "required")

    def __init__(self, name, description="", default=None, required=False):
        self.name = name
        self.description = description
        self.default = None if default is None else _param_text(default)
        self.required = bool(required)


def _param_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class Params(dict):
    """The stage's parameters as the pipeline file wrote them, text by name, with the
    declared defaults filled in. The typed getters raise ``ConfigError`` naming the
    parameter when its text does not parse."""

    def text(self, name, default=None):
        return self.get(name, default)

    def int(self, name, default=None):
        return self._typed(name, default, int, "an integer")

    def float(self, name, default=None):
        return self._typed(name, default, float, "a number")

    def bool(self, name, default=None):
        def parse(text):
            if text in ("true", "false"):
                return text == "true"
            raise ValueError(text)

        return self._typed(name, default, parse, "true or false")

    def json(self, name, default=None):
        """An array or table parameter (the host passes them as JSON)."""
        return self._typed(name, default, json.loads, "JSON (an array or a table)")

    def _typed(self, name, default, parse, what):
        text = self.get(name)
        if text is None:
            return default
        try:
            return parse(text)
        except ValueError:
            raise ConfigError(f"must be {what}, got {text!r}", param=name) from None


class Event:
    """What a processor knows of an event besides its record: key (bytes or None), headers
    (list of ``(str, bytes)``), timestamp (ms since the epoch or None). Return one, with
    ``record`` set, to emit an event whose key, headers or timestamp differ from the
    input's."""

    __slots__ = ("record", "key", "headers", "timestamp")

    def __init__(self, record=None, key=None, headers=(), timestamp=None):
        self.record = record
        self.key = key
        self.headers = headers if isinstance(headers, list) else list(headers)
        self.timestamp = timestamp

    def header(self, name):
        """The first header of that name (bytes), or None."""
        for header in self.headers:
            key, value = header if isinstance(header, tuple) else (header.key, header.value)
            if key == name:
                return value
        return None


class Processor:
    """Subclass it, set the class attributes, override ``process`` (and ``configure`` if
    it takes parameters):

    - ``name``, ``version``, ``description``: the manifest;
    - ``params``: a list of ``Param``;
    - ``input_schema``: the Avro schema (dict or JSON text) it reads, records arriving in
      that shape whatever the upstream wrote; ``None`` accepts any record as the stream
      has it;
    - ``output_schema``: what it emits; ``None`` means whatever ``configure`` returns, or
      else the schema of the records it receives;
    - ``reads``: top-level input fields it reads (``None``: the declared input schema's
      fields, or every field when it declares none). ``configure`` may set ``self.reads``;
    - ``record_type``: a class built from each record's fields as keywords (a dataclass or
      a ``NamedTuple``), for typed records instead of dicts; ``process`` may return
      instances of dataclasses or named tuples too.
    """

    name = None
    version = "0.1.0"
    description = ""
    params = ()
    input_schema = None
    output_schema = None
    reads = None
    record_type = None

    def configure(self, params, input_schema):
        """Checks ``params`` (a ``Params``) against ``input_schema`` (the ``avro.Schema``
        of the records ``process`` will get). May return the output schema. Raise
        ``ConfigError`` to refuse."""
        return None

    def process(self, record, event):
        """One record (a dict) and its ``Event``. Return a dict to emit it, a list to emit
        several (``Event`` items carry their own key, headers, timestamp), ``None`` to drop
        the event, ``KEEP`` to pass it on unchanged; raise or return ``Reject`` to
        dead-letter it."""
        raise NotImplementedError(f"{type(self).__name__}.process")


def exception_text(error):
    """``Type: message (file line N, in function)``: the reason a dead letter carries."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({last.filename.rpartition('/')[2]} line {last.lineno}, in {last.name})"
    return text


class Outcomes:
    """How a ``Runner`` spells outcomes and events: plain tuples by default (an author's own
    tests); the component passes the WIT's types, so nothing is converted twice."""

    @staticmethod
    def event(key, value, headers, timestamp):
        return (key, value, headers, timestamp)

    @staticmethod
    def emit(events):
        return ("emit", events)

    @staticmethod
    def reject(reason):
        return ("reject", reason)

    keep = ("keep",)


class Runner:
    """One configured instance of a processor class over Avro bytes: what the component
    does between the host and the author's code, minus the Wasm types. ``process`` takes
    events with ``key``, ``value``, ``headers``, ``timestamp`` attributes and returns one
    outcome per event, spelled by ``outcomes`` (``Outcomes``: ``("keep",)``,
    ``("emit", [(key, value, headers, timestamp), ...])`` or ``("reject", reason)``). An
    author's exception propagates (the component traps on it)."""

    def __init__(self, cls, outcomes=Outcomes):
        if not isinstance(cls, type) or not issubclass(cls, Processor):
            raise TypeError("weft_guest.stage() takes a subclass of weft_guest.Processor")
        self.cls = cls
        self.out = outcomes
        self.declared_in = avro.parse(cls.input_schema) if cls.input_schema is not None else None
        self.declared_out = avro.parse(cls.output_schema) if cls.output_schema is not None else None
        self.instance = None

    def manifest(self):
        """``(name, version, description, input schema text, output schema text, params)``."""
        cls = self.cls
        return (
            cls.name,
            cls.version,
            cls.description,
            self.declared_in.text if self.declared_in else None,
            self.declared_out.text if self.declared_out else None,
            [(p.name, p.description, p.required, p.default) for p in cls.params],
        )

    def configure(self, pairs, input_schema_text):
        """Returns ``(output schema text, reads or None)``; raises ``ConfigError``."""
        try:
            stream = avro.parse(input_schema_text)
        except avro.AvroError as e:
            raise ConfigError(f"input schema: {e}") from None
        params = Params()
        for spec in self.cls.params:
            if spec.default is not None:
                params[spec.name] = spec.default
        params.update(pairs)
        for spec in self.cls.params:
            if spec.required and spec.name not in params:
                raise ConfigError("required parameter missing", param=spec.name)
        received = self.declared_in or stream
        try:
            self.decode = avro.decoder(stream, received)
        except avro.AvroError as e:
            raise ConfigError(f"cannot read the input as declared: {e}") from None
        instance = self.cls()
        returned = instance.configure(params, received)
        output = avro.parse(returned) if returned is not None else self.declared_out or received
        self.encode = avro.encoder(output)
        self.keep_ok = output.text == stream.text or json.loads(output.text) == json.loads(stream.text)
        self.instance = instance
        self.record_type = self.cls.record_type
        reads = instance.reads
        if reads is None and self.declared_in is not None:
            reads = self.declared_in.fields()
        return output.text, None if reads is None else [str(r) for r in reads]

    def process(self, events):
        process, decode, encode, out = self.instance.process, self.decode, self.encode, self.out
        make, emit, reject = out.event, out.emit, out.reject
        record_type = self.record_type
        outcomes = []
        append = outcomes.append
        for event in events:
            key, headers, timestamp = event.key, event.headers, event.timestamp
            try:
                record = decode(event.value)
                if record_type is not None:
                    record = record_type(**record)
            except (avro.AvroError, IndexError, UnicodeDecodeError, struct.error, TypeError) as e:
                append(reject(f"undecodable input: {e}"))
                continue
            meta = Event(None, key, headers, timestamp)
            try:
                result = process(record, meta)
            except Reject as e:
                append(reject(e.reason))
                continue
            try:
                if type(result) is dict:
                    # The common case first: one record out, the input's key and headers.
                    append(emit([make(key, encode(result), headers, timestamp)]))
                else:
                    append(self._outcome(result, record, meta))
            except avro.AvroError as e:
                append(reject(f"output does not match the output schema: {e}"))
        return outcomes

    def _outcome(self, result, record, meta):
        out = self.out

        def encode(value):
            return self.encode(_plain(value))

        if isinstance(result, dict) or _is_typed(result):
            return out.emit([out.event(meta.key, encode(result), meta.headers, meta.timestamp)])
        if result is None:
            return out.emit([])
        if result is KEEP:
            if self.keep_ok:
                return out.keep
            # The stream's bytes are not in the output schema: write the record again.
            return out.emit([out.event(meta.key, encode(record), meta.headers, meta.timestamp)])
        if isinstance(result, Reject):
            return out.reject(result.reason)
        if isinstance(result, Event):
            return out.emit([self._event(result, meta)])
        if isinstance(result, (list, tuple)):
            emitted = []
            for item in result:
                if isinstance(item, Event):
                    emitted.append(self._event(item, meta))
                else:
                    emitted.append(out.event(meta.key, encode(item), meta.headers, meta.timestamp))
            return out.emit(emitted)
        raise TypeError(
            f"process returned {type(result).__name__}; expected a dict, a list, "
            "None, KEEP, an Event or a Reject"
        )

    def _event(self, item, meta):
        return self.out.event(
            item.key if item.key is not None else meta.key,
            self.encode(_plain(item.record)),
            item.headers if item.headers else meta.headers,
            item.timestamp if item.timestamp is not None else meta.timestamp,
        )


def _is_typed(value):
    return hasattr(value, "__dataclass_fields__") or hasattr(value, "_asdict")


def _plain(value):
    """A dataclass or named tuple as the dict the encoder writes (nested ones too)."""
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    return value
