// What a processor author writes against (Processor, Param, Params, Reject, ConfigError,
// Event, KEEP) and `Runner`, which drives a processor over Avro bytes exactly as the
// component does, without Wasm or the host's imports (the SDK's own tests use it).
// Avro is avsc's: its browser build, pure JavaScript over the `buffer` package; bytes first
// pass our bounded walk (bounds.js), as avsc takes block counts on trust.

import avro from 'avsc/etc/browser/avsc-types.js';
import { Buffer } from 'buffer';

import { itemGuard } from './bounds.js';

/** Returned by `process`: pass the input event on as it came, without re-encoding it. */
export const KEEP = Object.freeze({ keep: true });

/** Thrown (or returned) by `process`: the event is dead-lettered with this reason. */
export class Reject extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = 'Reject';
    this.reason = String(reason);
  }
}

/** Thrown by `configure`: the pipeline does not build, naming `param` if given. */
export class ConfigError extends Error {
  constructor(message, param = undefined) {
    super(String(message));
    this.name = 'ConfigError';
    this.param = param;
  }
}

/** A parameter the processor accepts; `default` is the text the pipeline file would give. */
export class Param {
  constructor(name, description = '', { default: fallback, required = false } = {}) {
    this.name = name;
    this.description = description;
    this.default = fallback === undefined ? undefined : paramText(fallback);
    this.required = Boolean(required);
  }
}

function paramText(value) {
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** The stage's parameters as text by name, declared defaults filled in, with typed getters
 * that throw `ConfigError` naming the parameter when its text does not parse. */
export class Params extends Map {
  text(name, fallback) {
    return this.has(name) ? this.get(name) : fallback;
  }
  number(name, fallback) {
    return this.#typed(name, fallback, 'a number', (t) => {
      const n = Number(t);
      if (t.trim() === '' || Number.isNaN(n)) throw new Error(t);
      return n;
    });
  }
  bool(name, fallback) {
    return this.#typed(name, fallback, 'true or false', (t) => {
      if (t !== 'true' && t !== 'false') throw new Error(t);
      return t === 'true';
    });
  }
  json(name, fallback) {
    return this.#typed(name, fallback, 'JSON (an array or a table)', JSON.parse);
  }
  #typed(name, fallback, what, parse) {
    if (!this.has(name)) return fallback;
    const text = this.get(name);
    try {
      return parse(text);
    } catch {
      throw new ConfigError(`must be ${what}, got ${JSON.stringify(text)}`, name);
    }
  }
}

/** What a processor knows of an event besides its record. Return one with `record` set to
 * emit an event whose key, headers or timestamp differ from the input's. */
export class Event {
  constructor({ record = undefined, key = undefined, headers = undefined, timestamp = undefined } = {}) {
    this.record = record;
    this.key = key;
    this.headers = headers;
    this.timestamp = timestamp;
  }
  /** The first header of that name (a Uint8Array), or undefined. */
  header(name) {
    return (this.headers || []).find((h) => h.key === name)?.value;
  }
}

/**
 * Extend it, set the static fields, override `process` (and `configure` if it takes
 * parameters): `name`, `version`, `description`; `params` (a list of `Param`);
 * `inputSchema` (the Avro schema it reads, records arriving in that shape whatever the
 * upstream wrote; `undefined` accepts any record as the stream has it); `outputSchema`
 * (what it emits; `undefined`: what `configure` returns, else the records' own schema);
 * `reads` (top-level input fields it reads; default: the declared input's fields, or every
 * field). `configure` may set `this.reads`.
 */
export class Processor {
  static name = undefined;
  static version = '0.1.0';
  static description = '';
  static params = [];
  static inputSchema = undefined;
  static outputSchema = undefined;
  static reads = undefined;

  /** Checks `params` (a `Params`) against `inputSchema` (the schema, as an object, of the
   * records `process` gets). May return the output schema; throw `ConfigError` to refuse. */
  configure(params, inputSchema) {
    return undefined;
  }

  /** One record and its `Event`. Return an object to emit it, an array to emit several,
   * `undefined`/`null` to drop the event, `KEEP` to pass it on; throw `Reject` to
   * dead-letter it. */
  process(record, event) {
    throw new Error(`${this.constructor.name}.process is not written`);
  }
}

const schemaText = (schema) => (typeof schema === 'string' ? schema : JSON.stringify(schema));
const schemaValue = (schema) => (typeof schema === 'string' ? JSON.parse(schema) : schema);

function typeOf(schema) {
  // `wrapUnions: false`: a union value is the plain value, as in every other weft language.
  return avro.Type.forSchema(schemaValue(schema), { wrapUnions: false });
}

/** `Type: message (file:line)`: the reason a dead letter carries. */
export function exceptionText(error) {
  if (!(error instanceof Error)) return `uncaught ${typeof error}: ${String(error)}`;
  const at = (error.stack || '').split('\n').find((line) => /\d+:\d+/.test(line));
  const where = at ? ` (at ${at.trim().replace(/^at /, '')})` : '';
  return `${error.name}: ${error.message}${where}`;
}

function explainInvalid(type, value) {
  const problems = [];
  type.isValid(value, {
    errorHook(path, any, t) {
      if (problems.length < 3) {
        const shown = JSON.stringify(any, (k, v) => (typeof v === 'bigint' ? String(v) : v));
        problems.push(`${path.join('.') || 'the record'}: ${shown === undefined ? 'missing' : shown} is not ${t.typeName || t.branchName?.() || 'valid'}`);
      }
    },
  });
  return problems.length ? problems.join('; ') : 'not a value of the output schema';
}

/**
 * One configured instance of a processor class over Avro bytes: what the component does
 * between the host and the author's code. `process` takes events `{key, value, headers,
 * timestamp}` and returns one outcome per event, as the WIT's `outcome` variant:
 * `{tag: 'keep'}`, `{tag: 'emit', val: [events]}` or `{tag: 'reject', val: reason}`.
 */
export class Runner {
  constructor(cls) {
    if (typeof cls !== 'function' || !(cls.prototype instanceof Processor)) {
      throw new TypeError('weftStage() takes a class that extends Processor');
    }
    this.cls = cls;
    this.declaredIn = cls.inputSchema === undefined ? undefined : typeOf(cls.inputSchema);
    this.declaredOut = cls.outputSchema === undefined ? undefined : typeOf(cls.outputSchema);
  }

  manifest() {
    const cls = this.cls;
    return {
      name: cls.name,
      version: cls.version,
      description: cls.description,
      inputSchema: cls.inputSchema === undefined ? undefined : schemaText(cls.inputSchema),
      outputSchema: cls.outputSchema === undefined ? undefined : schemaText(cls.outputSchema),
      params: (cls.params || []).map((p) => ({
        name: p.name,
        description: p.description,
        required: p.required,
        default: p.default,
      })),
    };
  }

  /** Returns `{outputSchema, reads}`; throws `ConfigError`. */
  configure(pairs, inputSchemaText) {
    let stream;
    try {
      stream = typeOf(inputSchemaText);
    } catch (e) {
      throw new ConfigError(`input schema: ${e.message}`);
    }
    const params = new Params();
    for (const spec of this.cls.params || []) {
      if (spec.default !== undefined) params.set(spec.name, spec.default);
    }
    for (const [name, text] of pairs) params.set(name, text);
    for (const spec of this.cls.params || []) {
      if (spec.required && !params.has(spec.name)) {
        throw new ConfigError('required parameter missing', spec.name);
      }
    }
    const received = this.declaredIn || stream;
    if (this.declaredIn) {
      try {
        this.resolver = received.createResolver(stream);
      } catch (e) {
        throw new ConfigError(`cannot read the input as declared: ${e.message}`);
      }
    } else {
      this.resolver = undefined;
    }
    this.received = received;
    this.guard = itemGuard(stream);
    const instance = new this.cls();
    const returned = instance.configure(params, received.schema());
    this.output = returned !== undefined && returned !== null ? typeOf(returned) : this.declaredOut || received;
    this.keepOk = this.output.equals(stream);
    this.instance = instance;
    let reads = instance.reads ?? this.cls.reads;
    if (reads === undefined && this.declaredIn) {
      reads = this.declaredIn.fields.map((f) => f.name);
    }
    return {
      outputSchema: JSON.stringify(this.output.schema()),
      reads: reads === undefined || reads === null ? undefined : reads.map(String),
    };
  }

  process(batch) {
    const outcomes = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      outcomes[i] = this.one(batch[i]);
    }
    return outcomes;
  }

  one(event) {
    const { key, value, headers, timestamp } = event;
    let record;
    try {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.guard?.(bytes);
      record = this.received.fromBuffer(bytes, this.resolver);
    } catch (e) {
      return { tag: 'reject', val: `undecodable input: ${e.message}` };
    }
    const meta = new Event({ key, headers, timestamp });
    let result;
    try {
      result = this.instance.process(record, meta);
    } catch (e) {
      if (e instanceof Reject) return { tag: 'reject', val: e.reason };
      throw e;
    }
    try {
      return this.outcome(result, record, meta);
    } catch (e) {
      if (e instanceof OutputError) {
        return { tag: 'reject', val: `output does not match the output schema: ${e.message}` };
      }
      throw e;
    }
  }

  outcome(result, record, meta) {
    if (result === KEEP) {
      if (this.keepOk) return { tag: 'keep' };
      return { tag: 'emit', val: [this.event(record, meta)] };
    }
    if (result === undefined || result === null) return { tag: 'emit', val: [] };
    if (result instanceof Reject) return { tag: 'reject', val: result.reason };
    if (result instanceof Event) return { tag: 'emit', val: [this.event(result.record, meta, result)] };
    if (Array.isArray(result)) {
      return {
        tag: 'emit',
        val: result.map((item) => (item instanceof Event ? this.event(item.record, meta, item) : this.event(item, meta))),
      };
    }
    if (typeof result === 'object') return { tag: 'emit', val: [this.event(result, meta)] };
    throw new TypeError(`process returned ${typeof result}; expected an object, an array, undefined, KEEP, an Event or a Reject`);
  }

  event(record, meta, out = undefined) {
    let bytes;
    try {
      bytes = this.output.toBuffer(record);
    } catch (e) {
      throw new OutputError(explainInvalid(this.output, record));
    }
    return {
      key: out?.key ?? meta.key,
      value: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      headers: out?.headers ?? meta.headers,
      timestamp: out?.timestamp ?? meta.timestamp,
    };
  }
}

class OutputError extends Error {}

