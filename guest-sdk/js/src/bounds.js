// A bounded walk over an Avro datum's bytes before avsc decodes them: avsc takes an array's
// or map's block counts on trust, so 5 bytes claiming 2^26 nulls built 67 M items (4.8 s,
// 1.2 GB) and a count of 2^40 in 6 bytes never returned, a deadline trap inside a component
// rather than a reject. The walk reads no values and allocates nothing.

/** Items (array items and map entries) one datum may hold beyond one per byte: room for
 * real arrays of nulls or empty records, which take no bytes, not for what a count claims. */
export const ZERO_SIZE_ITEMS = 1 << 20;

/** How deep the walk follows nested records, arrays, maps and unions (the host refuses
 * events deeper than its `max_depth`, 64 by default, before they get here). */
export const WALK_DEPTH = 512;

const MAX_VARINT_BYTES = 10;

/** Thrown for bytes that cannot be a datum of the type, or that claim too many items. */
export class BoundsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BoundsError';
  }
}

/** A function `bytes -> undefined` that throws `BoundsError` when the bytes claim more items
 * than the datum's budget; `undefined` when `type` (an avsc type, the writer's) holds no
 * array or map, so no datum of it can. The type is compiled once into closures. */
export function itemGuard(type) {
  if (!holdsBlocks(type, new Set())) return undefined;
  const walk = compile(type, new Map());
  return (bytes) => {
    const at = new Walk(bytes);
    walk(at);
    if (at.pos !== bytes.length) throw new BoundsError(`${bytes.length - at.pos} bytes left after the datum`);
  };
}

function holdsBlocks(type, seen) {
  if (seen.has(type)) return false;
  seen.add(type);
  switch (kind(type)) {
    case 'array':
    case 'map':
      return true;
    case 'record':
      return type.fields.some((field) => holdsBlocks(field.type, seen));
    case 'union':
      return type.types.some((branch) => holdsBlocks(branch, seen));
    default:
      return false;
  }
}

function kind(type) {
  const name = type.typeName;
  if (name.startsWith('logical:')) return kind(type.underlyingType);
  if (name.startsWith('union:')) return 'union';
  if (name === 'error') return 'record';
  return name;
}

const skipLong = (at) => {
  at.long();
};
const skipLength = (at) => at.skip(at.long());
const skipping = (n) => (at) => at.skip(n);
const SIMPLE = {
  null: () => {},
  boolean: skipping(1),
  int: skipLong,
  long: skipLong,
  enum: skipLong,
  float: skipping(4),
  double: skipping(8),
  bytes: skipLength,
  string: skipLength,
};

/** `type` as a closure over a `Walk`; a recursive type closes into a loop through `done`. */
function compile(type, done) {
  const k = kind(type);
  if (k in SIMPLE) return SIMPLE[k];
  if (k === 'fixed') return skipping(type.size);
  const known = done.get(type);
  if (known) return (at) => known.walk(at);
  const cell = {};
  done.set(type, cell);
  let inner;
  if (k === 'record') {
    const fields = type.fields.map((field) => compile(field.type, done));
    inner = (at) => {
      for (let i = 0; i < fields.length; i++) fields[i](at);
    };
  } else if (k === 'union') {
    const branches = type.types.map((branch) => compile(branch, done));
    inner = (at) => {
      const index = at.long();
      const branch = branches[index];
      if (branch === undefined) throw new BoundsError(`union branch ${index} out of range`);
      branch(at);
    };
  } else if (k === 'array') {
    const items = compile(type.itemsType, done);
    inner = (at) => at.blocks('array', items, undefined);
  } else if (k === 'map') {
    const values = compile(type.valuesType, done);
    inner = (at) => at.blocks('map', values, skipLength);
  } else {
    throw new BoundsError(`cannot walk a ${type.typeName}`);
  }
  cell.walk = (at) => {
    if (++at.depth > WALK_DEPTH) throw new BoundsError(`nested deeper than ${WALK_DEPTH} levels`);
    inner(at);
    at.depth--;
  };
  return cell.walk;
}

/** Where a walk is in one datum's bytes, and how many items it may still claim. */
class Walk {
  constructor(bytes) {
    this.bytes = bytes;
    this.pos = 0;
    this.depth = 0;
    this.limit = bytes.length + ZERO_SIZE_ITEMS;
    this.left = this.limit;
  }

  blocks(what, item, key) {
    let total = 0;
    for (;;) {
      let count = this.long();
      if (count === 0) return;
      if (count < 0) {
        count = -count;
        this.long();
      }
      total += count;
      if (count > this.left) {
        const claimed = this.limit - this.left + count;
        const others = claimed !== total ? ` (${claimed} with its other arrays and maps)` : '';
        throw new BoundsError(
          `${what} of ${total} items past the limit of ${this.limit} items for a ${this.bytes.length}-byte datum${others}`,
        );
      }
      this.left -= count;
      for (let i = 0; i < count; i++) {
        if (key) key(this);
        item(this);
      }
    }
  }

  /** A zigzag varint as a Number (exact to 2^53, enough to compare with any length). */
  long() {
    const bytes = this.bytes;
    let n = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= bytes.length) throw new BoundsError('truncated buffer');
      const b = bytes[this.pos++];
      n += (b & 0x7f) * scale;
      if (!(b & 0x80)) return n % 2 ? -(n + 1) / 2 : n / 2;
      scale *= 128;
    }
    throw new BoundsError(`a varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  skip(n) {
    if (n < 0 || n > this.bytes.length - this.pos) throw new BoundsError('truncated buffer');
    this.pos += n;
  }
}
