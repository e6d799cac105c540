// Input bytes an attacker chose, through the Runner natively (node --test): block counts of
// zero-size items that avsc would build without bound must be a reject naming the limit,
// quickly, and the walk in front of avsc must let every real datum through unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import avro from 'avsc/etc/browser/avsc-types.js';
import { Buffer } from 'buffer';

import { Processor, Runner } from 'weft-guest/processor';

// A copy of src/bounds.js's allowance (the package exports only ./processor).
const ZERO_SIZE_ITEMS = 1 << 20;

class Echo extends Processor {
  static name = 'echo';
  process(record) {
    this.last = record;
    return record;
  }
}

function varint(n) {
  let z = (BigInt(n) << 1n) ^ (BigInt(n) >> 63n);
  const out = [];
  for (;;) {
    const b = Number(z & 0x7fn);
    z >>= 7n;
    if (!z) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const bytes = (...parts) => new Uint8Array(parts.flat(Infinity));

function run(schema, value) {
  const runner = new Runner(Echo);
  runner.configure([], JSON.stringify(schema));
  const [outcome] = runner.process([{ key: undefined, value, headers: [], timestamp: undefined }]);
  return { outcome, record: runner.instance.last };
}

const rec = (fields) => ({ type: 'record', name: 'R', fields });
const NULLS = rec([{ name: 'nulls', type: { type: 'array', items: 'null' } }]);
const EMPTIES = rec([{ name: 'empties', type: { type: 'array', items: { type: 'record', name: 'E', fields: [] } } }]);
const LIMIT = /^undecodable input: array of \d+ items past the limit of \d+ items for a \d+-byte datum/;

/** Blocks each claiming one item per byte after their count: items grow as the square of
 * the input (the attack on the Python SDK's per-block check). */
function quadraticBlocks(blocks) {
  const parts = [];
  let after = 0;
  for (let i = 0; i < blocks; i++) {
    const count = varint(after + 1);
    parts.push(count);
    after += count.length;
  }
  return bytes(...parts.reverse(), varint(0));
}

test('a 5-byte block of 2^26 nulls is a reject naming the limit, not 67 M items', () => {
  const value = bytes(varint(2 ** 26), varint(0));
  assert.equal(value.length, 5);
  for (const schema of [NULLS, EMPTIES]) {
    const { outcome, record } = run(schema, value);
    assert.equal(outcome.tag, 'reject');
    assert.match(outcome.val, LIMIT);
    assert.match(outcome.val, /^undecodable input: array of 67108864 items/);
    assert.equal(record, undefined);
  }
});

test('a block count of 2^40 in 6 bytes is a reject, not a hang', () => {
  const { outcome } = run(NULLS, bytes(varint(2 ** 40), varint(0)));
  assert.match(outcome.val, LIMIT);
  const negative = run(NULLS, bytes(varint(-(2 ** 40)), varint(0), varint(0)));
  assert.match(negative.outcome.val, LIMIT);
});

test('many blocks cannot add up past the limit either', () => {
  const value = quadraticBlocks(5000);
  assert.ok(value.length < 11000);
  for (const schema of [NULLS, EMPTIES]) {
    assert.match(run(schema, value).outcome.val, LIMIT);
  }
});

test('the limit spans every array and map of the datum', () => {
  const schema = rec([
    { name: 'a', type: { type: 'array', items: 'null' } },
    { name: 'm', type: { type: 'map', values: { type: 'array', items: 'null' } } },
  ]);
  const half = [varint(ZERO_SIZE_ITEMS / 2 + 64), varint(0)];
  const { outcome } = run(schema, bytes(half, varint(1), varint(1), [0x6b], half, varint(0)));
  assert.match(outcome.val, /^undecodable input: array of \d+ items .* with its other arrays and maps/);
  const fits = run(schema, bytes(half, varint(0)));
  assert.equal(fits.outcome.tag, 'emit');
});

test('a real array of a million nulls still decodes', () => {
  const { outcome, record } = run(NULLS, bytes(varint(ZERO_SIZE_ITEMS), varint(0)));
  assert.equal(outcome.tag, 'emit');
  assert.equal(record.nulls.length, ZERO_SIZE_ITEMS);
});

const RICH = {
  type: 'record',
  name: 'Rich',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'flag', type: 'boolean' },
    { name: 'ratio', type: 'float' },
    { name: 'score', type: 'double' },
    { name: 'name', type: 'string' },
    { name: 'blob', type: 'bytes' },
    { name: 'code', type: { type: 'fixed', name: 'Code', size: 3 } },
    { name: 'colour', type: { type: 'enum', name: 'Colour', symbols: ['RED', 'GREEN'] } },
    { name: 'tags', type: { type: 'map', values: { type: 'array', items: ['null', 'int', 'string'] } } },
    { name: 'empties', type: { type: 'array', items: { type: 'record', name: 'Empty', fields: [] } } },
    {
      name: 'list',
      type: ['null', { type: 'record', name: 'Node', fields: [{ name: 'v', type: 'int' }, { name: 'next', type: ['null', 'Node'] }] }],
    },
  ],
};

test('every real datum passes the walk and decodes as avsc reads it', () => {
  const type = avro.Type.forSchema(RICH, { wrapUnions: false });
  for (let i = 0; i < 300; i++) {
    const value = type.random();
    const encoded = type.toBuffer(value);
    const { outcome, record } = run(RICH, new Uint8Array(encoded));
    assert.equal(outcome.tag, 'emit', outcome.val);
    assert.ok(Buffer.from(type.toBuffer(record)).equals(encoded));
    // Every truncation, and one trailing byte, is a reject.
    for (const end of [0, 1, encoded.length >> 1, encoded.length - 1]) {
      if (end < encoded.length) assert.equal(run(RICH, new Uint8Array(encoded.subarray(0, end))).outcome.tag, 'reject');
    }
    assert.equal(run(RICH, new Uint8Array([...encoded, 0])).outcome.tag, 'reject');
  }
});

test('random garbage is a reject or a record, never an exception', () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 2000; i++) {
    const value = new Uint8Array(next() % 40).map(() => next() & 0xff);
    const { outcome } = run(RICH, value);
    assert.ok(outcome.tag === 'reject' || outcome.tag === 'emit');
  }
});
