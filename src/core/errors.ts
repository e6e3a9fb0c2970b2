/**
 * Every rejection bulwark makes is a BulwarkError with a stable `code`.
 *
 * `instanceof` must hold across the ESM and CJS copies of the library, which define
 * distinct classes; so each instance carries a brand under a registry symbol and the
 * classes answer `instanceof` by that brand, not by prototype identity.
 */

import type { BulwarkErrorCode } from '../error-codes.js';

const BRAND = Symbol.for('bulwark.error.kind');

/**
 * The stable `code` of each bulwark error: switch on it rather than on messages, which may change.
 */
export type { BulwarkErrorCode };

function brandOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const kind = (value as Record<symbol, unknown>)[BRAND];
  return typeof kind === 'string' ? kind : undefined;
}

/**
 * The base class of every error bulwark raises itself; errors of the wrapped function are
 * rethrown unchanged, never wrapped. Tell them apart by class or by `code`: `instanceof`
 * holds even across the ESM and CJS builds of the library.
 *
 * @example
 * ```ts
 * import { BulwarkError, TimeoutError, timeout } from 'bulwark';
 *
 * const limited = timeout('300ms');
 * try {
 *   await limited.execute((ctx) => fetch('https://payments.internal/health', { signal: ctx.signal }));
 * } catch (error) {
 *   if (error instanceof TimeoutError)
 *     console.log(`gave up after ${error.timeoutMs} ms`);
 *   else if (error instanceof BulwarkError)
 *     console.log(error.code); // e.g. 'ERR_TIMEOUT'
 *   else throw error; // the dependency's own failure, unchanged
 * }
 * ```
 */
export class BulwarkError extends Error {
  /** Stable machine-readable code; see the error-code table in the README. */
  readonly code: BulwarkErrorCode;
  /** The dependency (policy set) the error came from, when known. */
  declare dependency?: string;
  /** The trace the call belonged to, set by a tracing backend (`bulwark/otel`) when one is used. */
  declare traceId?: string;

  constructor(code: BulwarkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** Name used for the cross-copy brand; survives minification because it is a literal. */
  static readonly kind: string = 'BulwarkError';

  /**
   * Answers by the brand each instance carries rather than by prototype, so that
   * `instanceof` holds for errors from the other (ESM or CJS) copy of bulwark too.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const kind = brandOf(value);
    if (kind === undefined) return false;
    return this.kind === 'BulwarkError' || this.kind === kind;
  }
}

/**
 * Builds an error without capturing a stack trace. Fail-fast rejections (a policy
 * refusing work it has no room for) happen at high rates exactly when a system is in trouble;
 * a stack trace costs microseconds each and says nothing the code does not.
 */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Which limit a `TimeoutError` hit: one attempt's timeout, or the whole call's budget or deadline.
 */
export type TimeoutScope = 'attempt' | 'budget';

/**
 * `ERR_TIMEOUT`: an attempt's timeout or the whole call's budget ran out; the work was told through
 * `ctx.signal`.
 */
export class TimeoutError extends BulwarkError {
  static override readonly kind = 'TimeoutError';
  /**
   * `'attempt'` for a `timeout()` (the dependency's fault: worth another attempt); `'budget'` for the
   * call's budget or deadline (neither: the caller's time is up).
   */
  readonly scope: TimeoutScope;
  /** The limit that was hit, in ms. */
  readonly timeoutMs: number;
  constructor(scope: TimeoutScope, timeoutMs: number, message?: string) {
    super(
      'ERR_TIMEOUT',
      message ??
        (scope === 'attempt'
          ? `attempt timed out after ${formatMs(timeoutMs)}`
          : `call exceeded its time budget of ${formatMs(timeoutMs)}`),
    );
    this.scope = scope;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Attributes a bulwark error to the dependency whose call it ended: sets `dependency` and,
 * for a TimeoutError (whose message otherwise names no one), prefixes the message. The
 * innermost dependency wins: an error already attributed is left as it is.
 * @internal
 */
export function attributeError(error: unknown, dependency: string): void {
  if (!(error instanceof BulwarkError) || error.dependency !== undefined) return;
  error.dependency = dependency;
  if (error instanceof TimeoutError) error.message = `${dependency}: ${error.message}`;
}

/**
 * What a call whose caller signal is already aborted rejects with: the caller's own reason,
 * unchanged — except a bare `abort()`'s generic AbortError, which names nothing; that one
 * becomes an AbortError saying what happened where, with the caller's reason as `cause`.
 * @internal
 */
export function abortedBeforeStart(reason: unknown, label: string): unknown {
  if (!(reason instanceof DOMException) || reason.name !== 'AbortError') return reason;
  return new DOMException(
    `${label}: the caller's signal was already aborted; the call was not started`,
    { name: 'AbortError', cause: reason },
  );
}

/** One bad option: where it is, what it should be, and what was given. */
export interface ConfigProblem {
  /** Dotted path of the bad option, e.g. `payments.timeout.ms`. */
  path: string;
  /** What the option must be, e.g. `integer ≥ 1`. */
  expected: string;
  /** The value that was given. */
  got: unknown;
  /** Replaces the "expected …, got …" text when that form does not fit (unknown keys). */
  message?: string;
}

/**
 * `ERR_CONFIG`: options or a config were invalid. Thrown once, at construction, listing
 * every problem found (not only the first), each with its path.
 */
export class ConfigError extends BulwarkError {
  static override readonly kind = 'ConfigError';
  /** Every problem found; the message has one line per problem. */
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super('ERR_CONFIG', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/**
 * Brand and name live on each class's prototype, not on every instance: a per-instance
 * defineProperty made each fail-fast rejection measurably slower.
 */
for (const cls of [BulwarkError, TimeoutError, ConfigError]) {
  brandClass(cls);
}

/** Gives an error class (of this library, e.g. HttpError) its cross-copy brand and its name. */
export function brandClass(cls: { kind: string; prototype: object }): void {
  Object.defineProperty(cls.prototype, BRAND, { value: cls.kind, enumerable: false });
  Object.defineProperty(cls.prototype, 'name', {
    value: cls.kind,
    enumerable: false,
    writable: true,
    configurable: true,
  });
}

/**
 * True for any error bulwark raised itself (from either its ESM or its CJS build); false
 * for the wrapped function's own errors, which bulwark rethrows unchanged.
 *
 * @example
 * ```ts
 * import { isBulwarkError, timeout } from 'bulwark';
 *
 * try {
 *   await timeout('1s').execute(() => fetch('https://inventory.internal/stock/42'));
 * } catch (error) {
 *   // Local refusals and timeouts carry a stable code; anything else is the dependency's.
 *   console.log(isBulwarkError(error) ? error.code : 'dependency failed', error);
 * }
 * ```
 */
export function isBulwarkError(value: unknown): value is BulwarkError {
  return brandOf(value) !== undefined;
}

function formatProblem(p: ConfigProblem): string {
  if (p.message !== undefined) return `${p.path}: ${p.message}`;
  return `${p.path}: expected ${p.expected}, got ${describeValue(p.got)}`;
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 57)}...` : json;
  } catch {
    return 'an object';
  }
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms >= 10 ? Math.round(ms) : Math.round(ms * 10) / 10} ms`;
}

/** An abort that the caller asked for (not a bulwark timeout). */
export function isAbortError(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { name?: unknown }).name === 'AbortError' &&
    !isBulwarkError(value)
  );
}
