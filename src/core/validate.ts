import { ConfigError, type ConfigProblem } from './errors.js';
import { parseDuration } from './duration.js';

/** A non-null, non-array object: what every options section must be. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * True for an object whose options sit on its prototype (`{ __proto__: { … } }` in a
 * literal): Object.keys and spreads do not see them, so they would be silently dropped.
 * Class instances (a prototype with its own `constructor`) are not flagged.
 */
export function hasInheritedOptions(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return (
    proto !== Object.prototype &&
    proto !== null &&
    !Object.prototype.hasOwnProperty.call(proto, 'constructor')
  );
}

/** What a `__proto__` key is told: parsed JSON can hold one, and it must not set a prototype. */
export const PROTO_KEY_PROBLEM = {
  expected: 'no __proto__ key',
  message: 'a __proto__ key is not an option (it would replace the prototype)',
} as const;

/**
 * Collects every problem in an options object, so a ConfigError lists them all at once
 * with the dotted path of each.
 */
export class Validator {
  readonly problems: ConfigProblem[] = [];

  constructor(readonly prefix = '') {}

  path(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  problem(name: string, expected: string, got: unknown): void {
    this.problems.push({ path: this.path(name), expected, got });
  }

  unknownKey(name: string, known: readonly string[]): void {
    this.problems.push({
      path: this.path(name),
      expected: `one of ${known.join(', ')}`,
      got: name,
      message: `unknown option (known: ${known.join(', ')})`,
    });
  }

  /** Fails on keys outside `known` (typos must not silently fall back to defaults). */
  object(value: unknown, known: readonly string[]): Record<string, unknown> {
    if (value === undefined) return {};
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.problems.push({
        path: this.prefix || 'options',
        expected: 'an options object',
        got: value,
      });
      return {};
    }
    if (hasInheritedOptions(value)) {
      this.problems.push({
        path: this.prefix || 'options',
        expected: 'a plain options object',
        got: value,
        message: 'options set through __proto__ would be ignored: write them as own keys',
      });
      return {};
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__')
        this.problems.push({ path: this.path(key), got: key, ...PROTO_KEY_PROBLEM });
      else if (!known.includes(key)) this.unknownKey(key, known);
    }
    return value as Record<string, unknown>;
  }

  int(
    name: string,
    value: unknown,
    def: number,
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number {
    if (value === undefined) return def;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problem(
        name,
        max === Number.MAX_SAFE_INTEGER ? `integer ≥ ${min}` : `integer in [${min}, ${max}]`,
        value,
      );
      return def;
    }
    return value;
  }

  number(
    name: string,
    value: unknown,
    def: number,
    min: number,
    max = Infinity,
    what?: string,
  ): number {
    if (value === undefined) return def;
    if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
      this.problem(
        name,
        what ?? (max === Infinity ? `number ≥ ${min}` : `number in [${min}, ${max}]`),
        value,
      );
      return def;
    }
    return value;
  }

  /** ms as a number or a string like '250ms', '2s', '1m'; Infinity only when written out. */
  duration(
    name: string,
    value: unknown,
    def: number,
    opts: { min?: number; allowInfinity?: boolean } = {},
  ): number {
    if (value === undefined) return def;
    const ms = parseDuration(value);
    const min = opts.min ?? 0;
    if (ms === undefined || ms < min || (ms === Infinity && !opts.allowInfinity)) {
      const inf = opts.allowInfinity ? ' or Infinity' : '';
      this.problem(
        name,
        `a duration ≥ ${min} ms (number of ms or '250ms', '2s', '1m')${inf}`,
        value,
      );
      return def;
    }
    return ms;
  }

  oneOf<T extends string>(name: string, value: unknown, options: readonly T[], def: T): T {
    if (value === undefined) return def;
    if (typeof value !== 'string' || !options.includes(value as T)) {
      this.problem(name, options.map((o) => `'${o}'`).join(' | '), value);
      return def;
    }
    return value as T;
  }

  func<F>(name: string, value: unknown, def: F): F {
    if (value === undefined) return def;
    if (typeof value !== 'function') {
      this.problem(name, 'a function', value);
      return def;
    }
    return value as F;
  }

  bool(name: string, value: unknown, def: boolean): boolean {
    if (value === undefined) return def;
    if (typeof value !== 'boolean') {
      this.problem(name, 'a boolean', value);
      return def;
    }
    return value;
  }

  /** Throws one ConfigError listing every problem found. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}
