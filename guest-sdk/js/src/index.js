// weft-guest: write weft processors in JavaScript.
//
// The SDK of the weft:processor@0.2.0 contract (wit/processor.wit). A processor is a class
// extending `Processor` over plain objects; the SDK decodes each event's Avro bytes with the
// stream's schema resolved to the one the processor declares (avsc), encodes what it
// returns, turns `Reject` into dead letters and an unexpected exception into a trap whose
// reason is the exception's text. A processor module ends with
// `export const stage = weftStage(MyProcessor);` and is built by `weft-guest-build`
// (`weft new NAME --lang js` writes a project and prints the command).

import { log } from 'weft:processor/log@0.2.0';

import { ConfigError, Runner, exceptionText } from './processor.js';

export { ConfigError, Event, KEEP, Param, Params, Processor, Reject, Runner, exceptionText } from './processor.js';

export const VERSION = '0.2.0';
/** The contract this SDK speaks; the SDK's version is the WIT package's. */
export const WIT_PACKAGE = 'weft:processor@0.2.0';

/** Logging through the host (`trace` ... `error`); the last `error` line before a trap is
 * the trap's reason. */
export const logger = Object.fromEntries(
  ['trace', 'debug', 'info', 'warn', 'error'].map((level) => [level, (message) => log(level, String(message))]),
);

/**
 * The `stage` export for a `Processor` subclass: `export const stage = weftStage(MyClass);`.
 * An exception the author did not mean is logged at error level and the component traps:
 * the host retries the batch event by event and dead-letters the event that throws with
 * the exception's text.
 */
export function weftStage(cls) {
  const runner = new Runner(cls);
  return {
    describe() {
      return runner.manifest();
    },
    configure(params, inputSchema) {
      try {
        return runner.configure(params, inputSchema);
      } catch (e) {
        if (e instanceof ConfigError) {
          throw configError({ param: e.param, message: e.message });
        }
        const text = exceptionText(e);
        log('error', text);
        throw configError({ param: undefined, message: text });
      }
    },
    process(batch) {
      try {
        return runner.process(batch);
      } catch (e) {
        const text = exceptionText(e);
        log('error', text);
        // Trap, as a Rust panic or a Python exception does, so the host discards this
        // instance and dead-letters the event with the line just logged as the reason
        // (and counts a trap: a version that throws is rolled back like any other).
        // JavaScript has no way to trap but through the bindings: they abort on an
        // outcome whose tag the WIT does not have.
        return [{ tag: 'weft-trap' }];
      }
    },
  };
}

// componentize-js turns a thrown value into the `err` case of a result, taking its
// `payload` when it has one.
function configError(payload) {
  const e = new Error(payload.message);
  e.payload = payload;
  return e;
}

