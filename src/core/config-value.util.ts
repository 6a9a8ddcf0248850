/** Longest rendering of a bad value in an error message: a config mistake, not a data dump. */
const MAX_SHOWN = 80;

/**
 * Renders a bad option value for an error message, so the reader sees exactly what was given:
 * strings quoted (`"10"` is not `10`), `NaN` and `Infinity` as such (JSON would print `null`),
 * functions and classes by name (JSON would print nothing), class instances by their class (JSON
 * would print `{}` for a `Map`). Long renderings are cut, so a huge value cannot flood a log, and
 * the credentials of a URL (`redis://user:secret@host`) are masked, so a URL given in the wrong
 * place does not leak into logs.
 */
export function describeValue(value: unknown): string {
  return cut(render(value));
}

/**
 * A plain object (`{ ... }`, or `Object.create(null)`), not an array, `Map`, `Date` or class
 * instance: what option bags must be, because Nest's module builder and `Object.entries` copy
 * only own enumerable keys, so the entries of a `Map` or the getters of a class would be dropped
 * without a word.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  // A plain object from another realm (vm, iframe) has that realm's Object.prototype.
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function render(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(redactCredentials(value));
    case 'bigint':
      return `${value}n`;
    case 'function':
      return describeFunction(value);
    case 'object':
      return value === null ? 'null' : describeObject(value);
    default:
      // number (NaN, Infinity included), boolean, undefined, symbol
      return String(value);
  }
}

function describeFunction(fn: { readonly name: string }): string {
  const source = Function.prototype.toString.call(fn);
  const kind = /^class\b/.test(source) ? 'class' : 'function';
  return fn.name ? `${kind} ${fn.name}` : `an anonymous ${kind}`;
}

function describeObject(value: object): string {
  if (!Array.isArray(value) && !isPlainObject(value)) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object';
  }
  try {
    return JSON.stringify(value, (_key, inner: unknown) =>
      typeof inner === 'function' || typeof inner === 'bigint' ? render(inner) : inner,
    );
  } catch {
    return Array.isArray(value) ? 'an array' : 'an object'; // circular
  }
}

/** `redis://user:secret@host` → `redis://***@host`. */
function redactCredentials(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1***@');
}

function cut(text: string): string {
  return text.length <= MAX_SHOWN
    ? text
    : `${text.slice(0, MAX_SHOWN - 1)}… (${text.length} chars)`;
}
