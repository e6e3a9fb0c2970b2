/**
 * Every rejection bulwark makes is a BulwarkError with a stable `code`.
 *
 * `instanceof` must hold across the ESM and CJS copies of the library, which define
 * distinct classes; so each instance carries a brand under a registry symbol and the
 * classes answer `instanceof` by that brand, not by prototype identity.
 */

const BRAND = Symbol.for('bulwark.error.kind');

export type BulwarkErrorCode =
  | 'ERR_TIMEOUT'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_BULKHEAD_FULL'
  | 'ERR_LOAD_SHED'
  | 'ERR_IDEMPOTENCY_IN_PROGRESS'
  | 'ERR_IDEMPOTENCY_KEY_REUSED'
  | 'ERR_IDEMPOTENCY_STORE'
  | 'ERR_CONFIG'
  | 'ERR_HTTP_STATUS';

function brandOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const kind = (value as Record<symbol, unknown>)[BRAND];
  return typeof kind === 'string' ? kind : undefined;
}

export class BulwarkError extends Error {
  /** Stable machine-readable code; see the error-code table in the README. */
  readonly code: BulwarkErrorCode;
  /** The dependency (policy set) the error came from, when known. */
  declare dependency?: string;

  constructor(code: BulwarkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** Name used for the cross-copy brand; survives minification because it is a literal. */
  static readonly kind: string = 'BulwarkError';

  static override [Symbol.hasInstance](value: unknown): boolean {
    const kind = brandOf(value);
    if (kind === undefined) return false;
    return this.kind === 'BulwarkError' || this.kind === kind;
  }
}

/**
 * Builds an error without capturing a stack trace. Fail-fast rejections (open breaker,
 * full bulkhead, shed load) happen at high rates exactly when a system is in trouble;
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

export type TimeoutScope = 'attempt' | 'budget';

export class TimeoutError extends BulwarkError {
  static override readonly kind = 'TimeoutError';
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

export class CircuitOpenError extends BulwarkError {
  static override readonly kind = 'CircuitOpenError';
  /** ms until the breaker admits its next trial call (Infinity while isolated). */
  readonly retryAfterMs: number;
  readonly state: 'open' | 'half-open' | 'isolated';
  constructor(state: 'open' | 'half-open' | 'isolated', retryAfterMs: number, name?: string) {
    super(
      'ERR_CIRCUIT_OPEN',
      `${name ? `${name}: ` : ''}circuit is ${state}` +
        (Number.isFinite(retryAfterMs) ? `; next trial in ${formatMs(retryAfterMs)}` : ''),
    );
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

export type BulkheadRejectReason = 'full' | 'queue-timeout';

export class BulkheadRejectedError extends BulwarkError {
  static override readonly kind = 'BulkheadRejectedError';
  readonly reason: BulkheadRejectReason;
  constructor(reason: BulkheadRejectReason, message: string) {
    super('ERR_BULKHEAD_FULL', message);
    this.reason = reason;
  }
}

export type LoadShedReason = 'capacity' | 'priority' | 'deadline' | 'event-loop';

export class LoadShedError extends BulwarkError {
  static override readonly kind = 'LoadShedError';
  readonly reason: LoadShedReason;
  /** Suggested wait before trying again, when the shedder can tell. */
  readonly retryAfterMs: number | undefined;
  constructor(reason: LoadShedReason, message: string, retryAfterMs?: number) {
    super('ERR_LOAD_SHED', message);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

export class IdempotencyInProgressError extends BulwarkError {
  static override readonly kind = 'IdempotencyInProgressError';
  constructor(message = 'a call with this idempotency key is still in progress') {
    super('ERR_IDEMPOTENCY_IN_PROGRESS', message);
  }
}

export class IdempotencyKeyReuseError extends BulwarkError {
  static override readonly kind = 'IdempotencyKeyReuseError';
  constructor(message = 'idempotency key was reused with a different request fingerprint') {
    super('ERR_IDEMPOTENCY_KEY_REUSED', message);
  }
}

export class IdempotencyStoreError extends BulwarkError {
  static override readonly kind = 'IdempotencyStoreError';
  readonly store: string;
  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super('ERR_IDEMPOTENCY_STORE', `${store}: ${message}`, options);
    this.store = store;
  }
}

export interface ConfigProblem {
  /** Dotted path of the bad option, e.g. `payments.retry.maxAttempts`. */
  path: string;
  expected: string;
  got: unknown;
  /** Replaces the "expected …, got …" text when that form does not fit (unknown keys). */
  message?: string;
}

export class ConfigError extends BulwarkError {
  static override readonly kind = 'ConfigError';
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
for (const cls of [
  BulwarkError,
  TimeoutError,
  CircuitOpenError,
  BulkheadRejectedError,
  LoadShedError,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
  ConfigError,
]) {
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
