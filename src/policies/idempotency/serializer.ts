/** Turns results (and failures, as plain data) into the text a store keeps, and back. */
export interface Serializer {
  /** The text to store for a value; throw to refuse a value that would not come back equal. */
  serialize(value: unknown): string;
  /** The value back from stored text. */
  deserialize(text: string): unknown;
}

// ---------------------------------------------------------------------------------------
// Stored failures: an error becomes plain data (name, message and its primitive own
// properties such as code or status) and comes back as an Error carrying the same.

const ERROR_TAG = '__bulwarkError';

export function errorToData(error: unknown): unknown {
  if (!(error instanceof Error)) return { [ERROR_TAG]: 'thrown', value: error };
  const data: Record<string, unknown> = {
    [ERROR_TAG]: 'error',
    name: error.name,
    message: error.message,
  };
  for (const [k, v] of Object.entries(error)) {
    if (k === 'stack' || k === 'cause') continue;
    if (
      v === null ||
      typeof v === 'string' ||
      typeof v === 'boolean' ||
      (typeof v === 'number' && Number.isFinite(v))
    ) {
      data[k] = v;
    }
  }
  return data;
}

export function dataToError(data: unknown): unknown {
  const d = data as Record<string, unknown> | null;
  if (d === null || typeof d !== 'object') return data;
  if (d[ERROR_TAG] === 'thrown') return d.value;
  if (d[ERROR_TAG] !== 'error') return data;
  const error = new Error(typeof d.message === 'string' ? d.message : 'stored failure');
  for (const [k, v] of Object.entries(d)) {
    if (k === ERROR_TAG || k === 'message') continue;
    Object.defineProperty(error, k, {
      value: v,
      enumerable: k !== 'name',
      writable: true,
      configurable: true,
    });
  }
  return error;
}

// ---------------------------------------------------------------------------------------
// The default serializer: JSON, refusing any value that would not come back as it went in.

function describeAt(path: string): string {
  return path === '$' ? 'the result' : path;
}

function unsafe(what: string, path: string, why: string): TypeError {
  return new TypeError(
    `idempotency: cannot store ${describeAt(path)} as JSON: ${what} ${why}; ` +
      'return JSON-safe data (plain objects, arrays, strings, finite numbers, booleans, null) or pass a serializer',
  );
}

function checkJson(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw unsafe(`the number ${value}`, path, 'would come back as null');
      return;
    case 'bigint':
      throw unsafe('a BigInt', path, 'has no JSON form');
    case 'function':
      throw unsafe('a function', path, 'has no JSON form');
    case 'symbol':
      throw unsafe('a symbol', path, 'has no JSON form');
    case 'undefined':
      throw unsafe('undefined', path, 'would come back as null');
    default:
      break;
  }
  if (value === null) return;
  const obj = value as object;
  if (seen.has(obj)) throw unsafe('a circular reference', path, 'has no JSON form');
  seen.add(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj))
        throw unsafe('an empty array slot', `${path}[${i}]`, 'would come back as null');
      checkJson(obj[i], `${path}[${i}]`, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj.constructor as { name?: string } | undefined)?.name || 'a class';
      const back = obj instanceof Date ? 'a string' : 'a plain object';
      throw unsafe(`an instance of ${name}`, path, `would come back as ${back}`);
    }
    for (const k of Object.keys(obj)) {
      const v = (obj as Record<string, unknown>)[k];
      // An undefined property is dropped by JSON and still reads as undefined: no loss.
      if (v !== undefined) checkJson(v, `${path}.${k}`, seen);
    }
  }
  seen.delete(obj);
}

/**
 * The default serializer: JSON for plain data; `undefined` as the whole result (a void
 * operation) is kept as the empty text. Anything JSON would silently change — a Date,
 * a Map, a class instance, a BigInt, NaN, a function — is refused with its path.
 */
export const jsonSerializer: Serializer = {
  serialize(value: unknown): string {
    if (value === undefined) return '';
    checkJson(value, '$', new Set());
    return JSON.stringify(value);
  },
  deserialize(text: string): unknown {
    return text === '' ? undefined : JSON.parse(text);
  },
};
