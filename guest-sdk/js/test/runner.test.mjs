// The Runner natively (node --test): what the component does between the host and a
// processor, without Wasm. Run from a project that installed weft-guest (sdk_js.rs does).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import avro from 'avsc/etc/browser/avsc-types.js';
import { Buffer } from 'buffer';

import { ConfigError, Event, KEEP, Param, Processor, Reject, Runner } from 'weft-guest/processor';

const DECLARED = {
  type: 'record',
  name: 'Input',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'text', type: 'string' },
  ],
};
const STREAM = {
  type: 'record',
  name: 'Input',
  fields: [
    { name: 'text', type: 'string' },
    { name: 'extra', type: 'int' },
    { name: 'id', type: 'int' },
  ],
};

class Upper extends Processor {
  static name = 'upper';
  static params = [new Param('times', 'How often.', { default: 1 }), new Param('must', 'Required.', { required: true })];
  static inputSchema = DECLARED;
  static outputSchema = DECLARED;
  configure(params) {
    this.times = params.number('times');
  }
  process(record) {
    if (record.text === 'keep') return KEEP;
    if (record.text === 'no') throw new Reject('said no');
    if (record.text === 'bad') return { id: record.id, text: 5 };
    if (record.text === 'two') return [record, new Event({ record, key: new Uint8Array([7]) })];
    return { id: record.id, text: record.text.toUpperCase().repeat(this.times) };
  }
}

const u8 = (buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);

function configured(pairs) {
  const runner = new Runner(Upper);
  const { outputSchema, reads } = runner.configure(pairs, JSON.stringify(STREAM));
  return { runner, output: avro.Type.forSchema(JSON.parse(outputSchema)), reads };
}

test('records arrive as declared and leave in the output schema', () => {
  const { runner, output, reads } = configured([['must', 'x'], ['times', '2']]);
  assert.deepEqual(reads, ['id', 'text']);
  const stream = avro.Type.forSchema(STREAM);
  const events = ['ab', 'keep', 'no', 'bad', 'two'].map((text, id) => ({
    key: new Uint8Array([1]),
    value: u8(stream.toBuffer({ text, extra: 9, id })),
    headers: [],
    timestamp: 5n,
  }));
  const outcomes = runner.process(events);
  const read = (event) => ({ ...output.fromBuffer(Buffer.from(event.value)) });
  assert.equal(outcomes[0].tag, 'emit');
  assert.deepEqual(read(outcomes[0].val[0]), { id: 0, text: 'ABAB' });
  assert.equal(outcomes[0].val[0].timestamp, 5n);
  // The stream's bytes are not the output schema's: KEEP writes the record again.
  assert.deepEqual(read(outcomes[1].val[0]), { id: 1, text: 'keep' });
  assert.deepEqual(outcomes[2], { tag: 'reject', val: 'said no' });
  assert.equal(outcomes[3].tag, 'reject');
  assert.match(outcomes[3].val, /^output does not match the output schema: text: 5 is not string/);
  assert.deepEqual(outcomes[4].val.map((e) => [...e.key]), [[1], [7]]);
});

test('garbage input is a reject, not a crash', () => {
  const { runner } = configured([['must', 'x']]);
  const [outcome] = runner.process([{ key: undefined, value: new Uint8Array([0xff, 0xff, 0xff]), headers: [], timestamp: undefined }]);
  assert.equal(outcome.tag, 'reject');
  assert.match(outcome.val, /^undecodable input/);
});

test('bad parameters name the parameter', () => {
  assert.throws(() => configured([]), (e) => e instanceof ConfigError && e.param === 'must');
  assert.throws(
    () => configured([['must', 'x'], ['times', 'many']]),
    (e) => e instanceof ConfigError && e.param === 'times' && /must be a number/.test(e.message),
  );
});

test('an unreadable stream fails configure', () => {
  const stream = { type: 'record', name: 'Input', fields: [{ name: 'id', type: 'string' }] };
  assert.throws(
    () => new Runner(Upper).configure([['must', 'x']], JSON.stringify(stream)),
    (e) => e instanceof ConfigError && /cannot read the input as declared/.test(e.message),
  );
});

test("an author's exception propagates for the component to trap", () => {
  class Broken extends Upper {
    process() {
      throw new RangeError('nope');
    }
  }
  const runner = new Runner(Broken);
  runner.configure([['must', 'x']], JSON.stringify(DECLARED));
  const value = u8(avro.Type.forSchema(DECLARED).toBuffer({ id: 1, text: 'a' }));
  assert.throws(() => runner.process([{ value, headers: [] }]), RangeError);
});
