"""Avro binary datums in pure Python: schemas compiled into decoders and encoders.

Pure Python because a processor runs inside componentize-py's CPython, where C extensions
(fastavro's) cannot load; fastavro's own pure-Python fallback imports ``bz2`` at module
level, which that CPython lacks, and the Apache ``avro`` package took 48 us per event
round trip natively against about 6 us for this module (see the README's Performance).

A schema is compiled once, in ``configure``, into closures over ``(data, pos)``: no schema
walk per event. ``decoder(writer, reader)`` applies Avro's resolution rules (promotions,
fields by name or alias, defaults, enum symbols, unions), so a processor receives records
shaped as it declared them whatever the upstream stage wrote.

Depth: only a named type that refers to itself can nest without bound; each such
reference counts one level and a datum past ``max_depth`` is refused with ``AvroError``
(the host refuses deeper events before they get here; this keeps a bug from becoming a
Python ``RecursionError``).

Items: every array item and map entry but a zero-size one (``null``, an empty record) takes
at least a byte, so one datum may hold at most as many items as it has bytes plus
``ZERO_SIZE_ITEMS``; a block claiming more is refused with ``AvroError`` before any item is
read. Without this budget a few kilobytes of blocks of nulls made hundreds of millions of
``None`` (a deadline and gigabytes inside a component, a trap rather than a reject).

Values: null ``None``, boolean ``bool``, int/long ``int``, float/double ``float``,
bytes/fixed ``bytes``, string/enum ``str``, array ``list``, map ``dict`` of ``str``,
record ``dict`` by field name. Logical types are their underlying type (a
``timestamp-millis`` is an ``int``). A union value is written with the first branch its
Python type fits; a ``dict`` fits a record branch whose fields it has, else a map.
"""

import json
import struct

__all__ = ["AvroError", "Schema", "parse", "decoder", "encoder", "DEFAULT_MAX_DEPTH", "ZERO_SIZE_ITEMS"]

DEFAULT_MAX_DEPTH = 64
# Items one datum may hold beyond one per byte: room for real arrays of nulls or empty
# records (a million ``None`` is 8 MB and ~50 ms), not for the hundreds of millions a few
# kilobytes of block counts could otherwise claim.
ZERO_SIZE_ITEMS = 1 << 20
PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_PROMOTIONS = {
    "int": ("long", "float", "double"),
    "long": ("float", "double"),
    "float": ("double",),
    "string": ("bytes",),
    "bytes": ("string",),
}

_float = struct.Struct("<f")
_double = struct.Struct("<d")


class AvroError(ValueError):
    """A schema that cannot be parsed or resolved, or a datum that does not fit it."""


class Schema:
    """A parsed schema: ``root`` is the JSON form with named types defined once, ``names``
    maps each full name to its definition."""

    __slots__ = ("root", "names", "text")

    def __init__(self, root, names, text):
        self.root = root
        self.names = names
        self.text = text

    def resolve(self, node):
        """The definition a node stands for (a name becomes its named type)."""
        if isinstance(node, str) and node not in PRIMITIVES:
            return self.names[node]
        return node

    def fields(self):
        """Top-level field names of a record schema (``[]`` otherwise)."""
        root = self.resolve(self.root)
        if isinstance(root, dict) and root.get("type") == "record":
            return [f["name"] for f in root["fields"]]
        return []


def parse(schema):
    """Parses a schema given as JSON text or as its Python value (``dict``, ``list``, ``str``)."""
    if isinstance(schema, Schema):
        return schema
    text = schema if isinstance(schema, str) and schema.lstrip()[:1] in "{[\"" else None
    try:
        value = json.loads(text) if text is not None else schema
    except ValueError as e:
        raise AvroError(f"schema is not JSON: {e}") from None
    names = {}
    root = _canon(value, None, names, 0)
    return Schema(root, names, text if text is not None else json.dumps(value))


def _full(name, namespace):
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _canon(node, namespace, names, depth):
    """Normalises a schema: names become full names, a named type is defined once in
    ``names`` and referred to by name everywhere it appears."""
    if depth > 256:
        raise AvroError("schema nests deeper than 256 levels")
    if isinstance(node, str):
        if node in PRIMITIVES:
            return node
        full = _full(node, namespace)
        if full in names:
            return full
        if node in names:
            return node
        raise AvroError(f"unknown type name {node!r}")
    if isinstance(node, list):
        return [_canon(branch, namespace, names, depth + 1) for branch in node]
    if not isinstance(node, dict) or "type" not in node:
        raise AvroError(f"not a schema: {node!r}")
    kind = node["type"]
    if kind in PRIMITIVES:
        return kind
    if kind in ("record", "error", "enum", "fixed"):
        name = node.get("name")
        if not isinstance(name, str):
            raise AvroError(f"a {kind} needs a name")
        ns = node.get("namespace", namespace)
        full = _full(name, ns)
        inner_ns = full.rpartition(".")[0] or None
        definition = {"type": "record" if kind == "error" else kind, "name": full}
        definition["aliases"] = [_full(a, inner_ns) for a in node.get("aliases", [])]
        names[full] = definition
        if kind in ("record", "error"):
            fields = []
            for field in node.get("fields", []):
                fields.append(
                    {
                        "name": field["name"],
                        "type": _canon(field["type"], inner_ns, names, depth + 1),
                        "aliases": list(field.get("aliases", [])),
                        **({"default": field["default"]} if "default" in field else {}),
                    }
                )
            definition["fields"] = fields
        elif kind == "enum":
            definition["symbols"] = list(node["symbols"])
            if "default" in node:
                definition["default"] = node["default"]
        else:
            definition["size"] = int(node["size"])
        return full
    if kind == "array":
        return {"type": "array", "items": _canon(node["items"], namespace, names, depth + 1)}
    if kind == "map":
        return {"type": "map", "values": _canon(node["values"], namespace, names, depth + 1)}
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in PRIMITIVES):
        return _canon(kind, namespace, names, depth + 1)
    raise AvroError(f"unknown type {kind!r}")


# ---------------------------------------------------------------------------------------
# Decoding


def _read_long(data, pos):
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise AvroError("varint longer than 10 bytes")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _read_null(data, pos):
    return None, pos


def _read_boolean(data, pos):
    return data[pos] != 0, pos + 1


def _read_float(data, pos):
    return _float.unpack_from(data, pos)[0], pos + 4


def _read_double(data, pos):
    return _double.unpack_from(data, pos)[0], pos + 8


def _read_bytes(data, pos):
    n, pos = _read_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise AvroError("bytes run past the end of the datum")
    return bytes(data[pos:end]), end


def _read_string(data, pos):
    n, pos = _read_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise AvroError("string runs past the end of the datum")
    return str(data[pos:end], "utf-8"), end


def _promote(read, to):
    def promoted(data, pos):
        value, pos = read(data, pos)
        return to(value), pos

    return promoted


_PRIMITIVE_READERS = {
    "null": _read_null,
    "boolean": _read_boolean,
    "int": _read_long,
    "long": _read_long,
    "float": _read_float,
    "double": _read_double,
    "bytes": _read_bytes,
    "string": _read_string,
}


def decoder(writer, reader=None, max_depth=DEFAULT_MAX_DEPTH):
    """A function ``bytes -> value`` reading datums written with ``writer`` as ``reader``
    declares them (``reader`` defaults to the writer). Raises ``AvroError`` when the writer
    cannot be read as the reader, naming where."""
    writer = parse(writer)
    reader = parse(reader) if reader is not None else writer
    compiler = _Resolver(writer, reader, max_depth)
    read = compiler.compile(writer.root, reader.root, "")

    budget = compiler.budget

    def decode(data):
        budget[0] = len(data) + ZERO_SIZE_ITEMS
        budget[1] = budget[0]
        value, pos = read(data, 0)
        if pos != len(data):
            raise AvroError(f"{len(data) - pos} bytes left after the datum")
        return value

    return decode


def _kind(node):
    if isinstance(node, list):
        return "union"
    return node if isinstance(node, str) else node["type"]


class _Resolver:
    def __init__(self, writer, reader, max_depth):
        self.writer = writer
        self.reader = reader
        self.max_depth = max_depth
        # Named pairs already compiled, so recursive types close into a loop of closures.
        self.named = {}
        self.depth = [0]
        # [items this datum may still hold, its whole allowance]: set by each decode.
        self.budget = [0, 0]

    def compile(self, w, r, path):
        wd, rd = self.writer.resolve(w), self.reader.resolve(r)
        named = isinstance(w, str) and w not in PRIMITIVES
        if named:
            key = (w, r if isinstance(r, str) else json.dumps(r, sort_keys=True))
            cell = self.named.get(key)
            if cell is not None:
                return self._guarded(cell)
            cell = [None]
            self.named[key] = cell
            cell[0] = self._compile(wd, rd, path)
            return cell[0]
        return self._compile(wd, rd, path)

    def _guarded(self, cell):
        """A recursive reference: counts a level of nesting so a datum cannot nest deeper
        than ``max_depth``."""
        depth, limit = self.depth, self.max_depth

        def nested(data, pos):
            depth[0] += 1
            try:
                if depth[0] > limit:
                    raise AvroError(f"nested deeper than {limit} levels")
                return cell[0](data, pos)
            finally:
                depth[0] -= 1

        return nested

    def _compile(self, w, r, path):
        at = path or "the top level"
        wk, rk = _kind(w), _kind(r)
        if isinstance(w, list):
            branches = [self._branch(b, r, path) for b in w]

            def union(data, pos):
                index, pos = _read_long(data, pos)
                if index < 0 or index >= len(branches):
                    raise AvroError(f"union branch {index} out of range at {at}")
                read = branches[index]
                if read is None:
                    raise AvroError(f"union branch {index} at {at} cannot be read as the reader's type")
                return read(data, pos)

            return union
        if isinstance(r, list):
            # The same type first, then one the writer's promotes to (as Java's resolver).
            for exact in (True, False):
                for branch in r:
                    if self._matches(w, self.reader.resolve(branch), exact):
                        return self.compile(self._named(w), branch, path)
            raise AvroError(f"{at}: the writer's {wk} fits no branch of the reader's union")
        if wk in PRIMITIVES:
            if wk == rk:
                return _PRIMITIVE_READERS[wk]
            if rk in _PROMOTIONS.get(wk, ()):
                read = _PRIMITIVE_READERS[wk]
                if rk in ("float", "double"):
                    return _promote(read, float)
                if rk == "string":
                    return _promote(read, lambda b: str(b, "utf-8"))
                if rk == "bytes":
                    return _promote(read, lambda s: s.encode("utf-8"))
                return read
            raise AvroError(f"{at}: the writer's {wk} cannot be read as {rk}")
        if wk != rk:
            raise AvroError(f"{at}: the writer's {wk} cannot be read as {rk}")
        if wk == "array":
            items = self.compile(w["items"], r["items"], path + "[]")
            return _blocks(items, None, self.budget)
        if wk == "map":
            values = self.compile(w["values"], r["values"], path + "{}")
            return _blocks(values, _read_string, self.budget)
        if wk == "fixed":
            size = w["size"]
            if size != r["size"]:
                raise AvroError(f"{at}: fixed of {size} bytes cannot be read as {r['size']}")

            def fixed(data, pos):
                end = pos + size
                if end > len(data):
                    raise AvroError("fixed runs past the end of the datum")
                return bytes(data[pos:end]), end

            return fixed
        if wk == "enum":
            default = r.get("default")
            symbols = []
            for symbol in w["symbols"]:
                if symbol in r["symbols"]:
                    symbols.append(symbol)
                elif default is not None:
                    symbols.append(default)
                else:
                    symbols.append(None)

            def enum(data, pos):
                index, pos = _read_long(data, pos)
                if index < 0 or index >= len(symbols):
                    raise AvroError(f"enum index {index} out of range at {at}")
                symbol = symbols[index]
                if symbol is None:
                    raise AvroError(f"{at}: symbol {w['symbols'][index]} unknown to the reader")
                return symbol, pos

            return enum
        return self._record(w, r, path)

    def _named(self, w):
        return w["name"] if isinstance(w, dict) and "name" in w else w

    def _branch(self, w, r, path):
        try:
            return self.compile(w, r, path)
        except AvroError:
            # A branch the reader cannot read fails only if a datum uses it.
            return None

    def _matches(self, w, r, exact):
        wk, rk = _kind(w), _kind(r)
        if wk == rk:
            if wk in ("record", "enum", "fixed"):
                short = lambda n: n.rpartition(".")[2]  # noqa: E731
                return short(w["name"]) == short(r["name"]) or w["name"] in r.get("aliases", [])
            return True
        return not exact and rk in _PROMOTIONS.get(wk, ())

    def _record(self, w, r, path):
        by_name = {}
        for field in r["fields"]:
            by_name[field["name"]] = field
            for alias in field.get("aliases", []):
                by_name.setdefault(alias, field)
        steps = []
        seen = set()
        for field in w["fields"]:
            target = by_name.get(field["name"])
            sub = f"{path}.{field['name']}" if path else field["name"]
            if target is None:
                steps.append((None, self.compile(field["type"], field["type"], sub)))
            else:
                seen.add(target["name"])
                steps.append((target["name"], self.compile(field["type"], target["type"], sub)))
        defaults = []
        for field in r["fields"]:
            if field["name"] in seen:
                continue
            if "default" not in field:
                raise AvroError(
                    f"{path or r['name']}: field {field['name']!r} is missing from the writer "
                    "and has no default"
                )
            defaults.append((field["name"], _default(self.reader, field["type"], field["default"])))
        steps = tuple(steps)
        defaults = tuple(defaults)

        if not defaults and all(name is not None for name, _ in steps):
            # The writer's fields are the reader's (the usual case): no skips, no defaults.
            def same_fields(data, pos):
                out = {}
                for name, read in steps:
                    out[name], pos = read(data, pos)
                return out, pos

            return same_fields

        def record(data, pos):
            out = {}
            for name, read in steps:
                value, pos = read(data, pos)
                if name is not None:
                    out[name] = value
            for name, value in defaults:
                out[name] = json.loads(value) if isinstance(value, _Json) else value
            return out, pos

        return record


class _Json(str):
    """A default that is mutable (list or dict): decoded afresh for every record."""


def _default(schema, node, value):
    node = schema.resolve(node)
    if isinstance(node, list):
        node = schema.resolve(node[0])
    kind = _kind(node)
    if kind in ("bytes", "fixed") and isinstance(value, str):
        return value.encode("latin-1")
    if kind in ("float", "double") and isinstance(value, int):
        return float(value)
    if isinstance(value, (list, dict)):
        return _Json(json.dumps(value))
    return value


def _blocks(read_item, read_key, budget):
    """An array's or map's blocks; each count is taken from the datum's item ``budget``
    before its items are read, so no run of blocks can claim more items than it allows."""
    kind = "array" if read_key is None else "map"

    def blocks(data, pos):
        out = {} if read_key is not None else []
        total = 0
        while True:
            count, pos = _read_long(data, pos)
            if count == 0:
                return out, pos
            if count < 0:
                count = -count
                _, pos = _read_long(data, pos)
            total += count
            if count > budget[0]:
                claimed = budget[1] - budget[0] + count
                others = f" ({claimed} with its other arrays and maps)" if claimed != total else ""
                raise AvroError(
                    f"{kind} of {total} items past the limit of {budget[1]} items for a "
                    f"{len(data)}-byte datum{others}"
                )
            budget[0] -= count
            if read_key is None:
                for _ in range(count):
                    item, pos = read_item(data, pos)
                    out.append(item)
            else:
                for _ in range(count):
                    key, pos = read_key(data, pos)
                    out[key], pos = read_item(data, pos)

    return blocks


# ---------------------------------------------------------------------------------------
# Encoding


def _write_long(n, out):
    n = (n << 1) ^ (n >> 63)
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_null(value, out):
    if value is not None:
        raise AvroError(f"expected null, got {type(value).__name__}")


def _write_boolean(value, out):
    if not isinstance(value, bool):
        raise AvroError(f"expected a bool, got {type(value).__name__}")
    out.append(1 if value else 0)


def _int_writer(lo, hi, kind):
    def write(value, out):
        # `type(...) is int` first: the common case, and it excludes bool.
        exact = type(value) is int
        if (not exact and (not isinstance(value, int) or isinstance(value, bool))) or not (
            lo <= value <= hi
        ):
            raise AvroError(f"expected an {kind}, got {value!r}"[:200])
        _write_long(value, out)

    return write


def _write_float(value, out):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise AvroError(f"expected a float, got {type(value).__name__}")
    out += _float.pack(value)


def _write_double(value, out):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise AvroError(f"expected a double, got {type(value).__name__}")
    out += _double.pack(value)


def _write_bytes(value, out):
    if not isinstance(value, (bytes, bytearray)):
        raise AvroError(f"expected bytes, got {type(value).__name__}")
    _write_long(len(value), out)
    out += value


def _write_string(value, out):
    if not isinstance(value, str):
        raise AvroError(f"expected a str, got {type(value).__name__}")
    encoded = value.encode("utf-8")
    _write_long(len(encoded), out)
    out += encoded


_PRIMITIVE_WRITERS = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _int_writer(-(1 << 31), (1 << 31) - 1, "int"),
    "long": _int_writer(-(1 << 63), (1 << 63) - 1, "long"),
    "float": _write_float,
    "double": _write_double,
    "bytes": _write_bytes,
    "string": _write_string,
}


def encoder(schema, max_depth=DEFAULT_MAX_DEPTH):
    """A function ``value -> bytes`` writing ``value`` as a datum of ``schema``. Raises
    ``AvroError`` naming the field when the value does not fit."""
    schema = parse(schema)
    compiled = {}
    depth = [0]

    def compile_node(node):
        if isinstance(node, str) and node not in PRIMITIVES:
            cell = compiled.get(node)
            if cell is None:
                cell = [None]
                compiled[node] = cell
                cell[0] = build(schema.names[node])
                return cell[0]

            def nested(value, out):
                depth[0] += 1
                try:
                    if depth[0] > max_depth:
                        raise AvroError(f"nested deeper than {max_depth} levels")
                    return cell[0](value, out)
                finally:
                    depth[0] -= 1

            return nested
        return build(node)

    def build(node):
        if isinstance(node, str):
            return _PRIMITIVE_WRITERS[node]
        if isinstance(node, list):
            return _union_writer(schema, [(b, compile_node(b)) for b in node])
        kind = node["type"]
        if kind == "array":
            write_item = compile_node(node["items"])

            def array(value, out):
                if not isinstance(value, (list, tuple)):
                    raise AvroError(f"expected a list, got {type(value).__name__}")
                if value:
                    _write_long(len(value), out)
                    for item in value:
                        write_item(item, out)
                out.append(0)

            return array
        if kind == "map":
            write_value = compile_node(node["values"])

            def map_(value, out):
                if not isinstance(value, dict):
                    raise AvroError(f"expected a dict, got {type(value).__name__}")
                if value:
                    _write_long(len(value), out)
                    for key, item in value.items():
                        _write_string(key, out)
                        write_value(item, out)
                out.append(0)

            return map_
        if kind == "fixed":
            size = node["size"]

            def fixed(value, out):
                if not isinstance(value, (bytes, bytearray)) or len(value) != size:
                    raise AvroError(f"expected {size} bytes for fixed {node['name']}")
                out += value

            return fixed
        if kind == "enum":
            index = {symbol: i for i, symbol in enumerate(node["symbols"])}

            def enum(value, out):
                i = index.get(value)
                if i is None:
                    raise AvroError(f"{value!r} is not a symbol of enum {node['name']}"[:200])
                _write_long(i, out)

            return enum
        fields = []
        for f in node["fields"]:
            default = _default(schema, f["type"], f["default"]) if "default" in f else _MISSING
            # A list or dict default is decoded afresh each time it is used (rare).
            fields.append((f["name"], compile_node(f["type"]), default, isinstance(default, _Json)))
        fields = tuple(fields)
        record_name = node["name"]

        def record(value, out):
            if type(value) is not dict and not isinstance(value, dict):
                raise AvroError(f"expected a dict for record {record_name}, got {type(value).__name__}")
            get = value.get
            for name, write, default, fresh in fields:
                field_value = get(name, default)
                if field_value is _MISSING:
                    raise AvroError(f"record {record_name}: field {name!r} is missing")
                if fresh and field_value is default:
                    field_value = json.loads(default)
                try:
                    write(field_value, out)
                except AvroError as e:
                    raise AvroError(f"field {name!r}: {e}") from None

        return record

    write = compile_node(schema.root)

    def encode(value):
        out = bytearray()
        write(value, out)
        return bytes(out)

    return encode


_MISSING = object()


def _union_writer(schema, branches):
    """Picks the first branch the value's Python type fits (see the module's doc)."""
    resolved = [(i, schema.resolve(b), write) for i, (b, write) in enumerate(branches)]

    def fits(node, value):
        kind = _kind(node)
        if value is None:
            return kind == "null"
        if isinstance(value, bool):
            return kind == "boolean"
        if isinstance(value, int):
            if kind == "int":
                return -(1 << 31) <= value < (1 << 31)
            return kind in ("long", "float", "double")
        if isinstance(value, float):
            return kind in ("float", "double")
        if isinstance(value, str):
            return kind == "string" or (kind == "enum" and value in node["symbols"])
        if isinstance(value, (bytes, bytearray)):
            return kind == "bytes" or (kind == "fixed" and len(value) == node["size"])
        if isinstance(value, (list, tuple)):
            return kind == "array"
        if isinstance(value, dict):
            if kind == "record":
                return all(f["name"] in value or "default" in f for f in node["fields"])
            return kind == "map"
        return False

    def union(value, out):
        for i, node, write in resolved:
            if fits(node, value):
                _write_long(i, out)
                write(value, out)
                return
        raise AvroError(f"{type(value).__name__} value fits no branch of the union")

    return union
