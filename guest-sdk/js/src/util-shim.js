// What avsc takes from Node's `util`, without the `util` polyfill: that one reads
// `process.env` at load, which a component does not have.

export function inherits(ctor, superCtor) {
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
  Object.setPrototypeOf(ctor, superCtor);
}

export function format(template, ...args) {
  let i = 0;
  return String(template).replace(/%[sdjifoO%]/g, (m) => {
    if (m === '%%') return '%';
    if (i >= args.length) return m;
    const arg = args[i++];
    return m === '%j' ? JSON.stringify(arg) : String(arg);
  });
}

export function deprecate(fn) {
  return fn;
}

export function debuglog() {
  return () => {};
}

export default { inherits, format, deprecate, debuglog };
