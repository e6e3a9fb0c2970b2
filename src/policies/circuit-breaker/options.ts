import type { Clock } from '../../core/clock.js';
import { isPlainObject, Validator } from '../../core/validate.js';
import { DEFAULT_RULE_WINDOW } from './default-trip-rule.js';

/** Failure rate and slow-call rate are measured over the last `calls` outcomes… */
export interface CountWindowOptions {
  /** How many of the latest outcomes the window holds. */
  calls: number;
}

/** …or over the last `ms`, in `buckets` slices (default 10): coarser slices, less memory. */
export interface TimeWindowOptions {
  /** How far back the window reaches (ms or '30s'). */
  ms: number | string;
  /** Slices the window is kept in (default 10); it moves on one slice at a time. */
  buckets?: number;
}

/** Open duration that grows while trips follow each other: initial × multiplier^(trip − 1), capped. */
export interface HalfOpenBackoffOptions {
  /** default 5 s */
  initial?: number | string;
  /** default 2 */
  multiplier?: number;
  /** default 60 s */
  max?: number | string;
}

/** What a call that meets an open breaker does: fail at once, or wait for the trial's outcome. */
export interface WhileOpenOptions {
  /**
   * Wait for the next half-open trial instead of failing, when the call's remaining budget
   * covers the wait plus a minimum attempt time (default false; true in `dependency()`).
   */
  wait?: boolean;
  /**
   * The longest a call waits for a trial (ms or '5s'; default 10 s). A call let through by a
   * trial but held back by slow start waits on until the ramp admits it (at most its window).
   */
  maxWait?: number | string;
  /** Calls waiting at once; the next one fails at once (default 1000). */
  maxQueue?: number;
}

/** Ramp traffic back after the breaker closes: admit a share that grows over `window`. */
export interface SlowStartOptions {
  /** How long the ramp from 10 % to all calls takes (ms or '1s'; default 1 s). */
  window?: number | string;
}

/**
 * Options of `circuitBreaker()`; all optional. With no trip rule given it uses the default
 * rule (see default-trip-rule.ts): half the calls of the last 10 s failed (at least 20
 * calls), or 10 failures in a row (5 while traffic is low).
 */
export interface CircuitBreakerOptions {
  /** Open after this many failures in a row. */
  consecutiveFailures?: number;
  /** Open when failures make up at least this share (0..1) of the window. */
  failureRate?: number;
  /** Window for `failureRate` and `slowCall` (default `{ ms: 10_000, buckets: 10 }`). */
  window?: CountWindowOptions | TimeWindowOptions;
  /**
   * Outcomes the window must hold before a rate can trip the breaker (default: the window
   * size for a count window, 10 for a time window).
   */
  minimumCalls?: number;
  /** Calls slower than `ms` count toward a slow-call rate; the breaker opens when it reaches `rate`. */
  slowCall?: { ms: number | string; rate: number };
  /**
   * What counts as a failure. Called with a thrown error (`kind === 'error'`) or a
   * returned value (`kind === 'result'`). Default: every error except bulwark's own
   * rejections (an attempt timeout IS a failure); results never. The caller's own abort
   * and bulwark rejections other than timeouts are never counted either way.
   */
  isFailure?: (errorOrResult: unknown, kind: 'error' | 'result') => boolean;
  /**
   * How long it stays open before a trial: ms, '30s', or a growing backoff (default
   * `{ initial: 300, multiplier: 1.5, max: 30_000 }`: a brief fault is seen as over within
   * a few hundred ms, a long one is probed every 30 s).
   */
  halfOpenAfter?: number | string | HalfOpenBackoffOptions;
  /** Wait for recovery instead of failing while open (see WhileOpenOptions; default: fail). */
  whileOpen?: WhileOpenOptions;
  /** Ramp traffic back after closing (default `{ window: 1000 }`); `false` turns it off. */
  slowStart?: SlowStartOptions | false;
  /** Trial calls allowed at once while half-open (default 1). */
  halfOpenMaxCalls?: number;
  /** Successful trials that close it (default `halfOpenMaxCalls`). */
  halfOpenSuccesses?: number;
  /** A trial still running after this long counts as failed (default 10 s; Infinity allowed). */
  halfOpenTimeout?: number | string;
  /** Names the breaker in error messages and stats (default 'circuitBreaker'). */
  name?: string;
  /** The clock open periods are timed on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
}

/** Validated, defaulted settings. `undefined` means the rule is not in use. */
export interface BreakerConfig {
  name: string;
  clock: Clock | undefined;
  consecutiveFailures: number | undefined;
  failureRate: number | undefined;
  window: { calls: number } | { ms: number; buckets: number } | undefined;
  minimumCalls: number;
  slowCallMs: number | undefined;
  slowCallRate: number | undefined;
  isFailure: ((errorOrResult: unknown, kind: 'error' | 'result') => boolean) | undefined;
  halfOpenAfter: { initial: number; multiplier: number; max: number };
  halfOpenMaxCalls: number;
  halfOpenSuccesses: number;
  halfOpenTimeout: number;
  /** The default rule is in use (no trip rule was given). */
  defaultRule: boolean;
  whileOpen: { wait: boolean; maxWait: number; maxQueue: number };
  /** Ramp length in ms; 0 = no slow start. */
  slowStart: number;
}

const KNOWN = [
  'whileOpen',
  'slowStart',
  'consecutiveFailures',
  'failureRate',
  'window',
  'minimumCalls',
  'slowCall',
  'isFailure',
  'halfOpenAfter',
  'halfOpenMaxCalls',
  'halfOpenSuccesses',
  'halfOpenTimeout',
  'name',
  'clock',
];

export const DEFAULT_CONSECUTIVE_FAILURES = 5;
export const DEFAULT_WINDOW = { ms: 10_000, buckets: 10 } as const;
const DEFAULT_TIME_WINDOW_MINIMUM_CALLS = 10;
const DEFAULT_HALF_OPEN_AFTER = 5_000;
const DEFAULT_HALF_OPEN_MAX = 60_000;
/**
 * The default open duration when halfOpenAfter is not given: 300 ms, ×1.5 per trip in a
 * row, up to 30 s (trials 0.3, 0.75, 1.4, 2.4, 4.0, 6.2 s … after the trip). A short first
 * probe sees a brief fault end before a 1 s budget runs out (a 2 s fault is seen as over
 * 0.4 s after it ends, a 6 s one 0.2 s after); the growth keeps a long outage from being
 * probed more than every 30 s. (200 ms ×1.5 probed once more per 2 s fault and saw its
 * end 0.6 s late in the flapping scenario.)
 */
export const DEFAULT_OPEN_DURATION = Object.freeze({ initial: 300, multiplier: 1.5, max: 30_000 });
const DEFAULT_MAX_WAIT = 10_000;
const DEFAULT_MAX_QUEUE = 1000;
const DEFAULT_SLOW_START_WINDOW = 1000;
const DEFAULT_HALF_OPEN_TIMEOUT = 10_000;
const MAX_WINDOW_CALLS = 1_000_000;
const MAX_BUCKETS = 1_000;

function unknownKeys(
  v: Validator,
  name: string,
  value: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      v.problem(`${name}.${key}`, `one of ${known.join(', ')}`, `unknown key "${key}"`);
  }
}

function readWindow(v: Validator, value: unknown): BreakerConfig['window'] {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    v.problem('window', '{ calls } or { ms, buckets }', value);
    return undefined;
  }
  if (value.calls !== undefined) {
    unknownKeys(v, 'window', value, ['calls']);
    return { calls: v.int('window.calls', value.calls, 1, 1, MAX_WINDOW_CALLS) };
  }
  if (value.ms !== undefined) {
    unknownKeys(v, 'window', value, ['ms', 'buckets']);
    const ms = v.duration('window.ms', value.ms, DEFAULT_WINDOW.ms, { min: 1 });
    const buckets = v.int('window.buckets', value.buckets, DEFAULT_WINDOW.buckets, 1, MAX_BUCKETS);
    return { ms, buckets };
  }
  v.problem('window', '{ calls } or { ms, buckets }', value);
  return undefined;
}

function readWhileOpen(v: Validator, value: unknown): BreakerConfig['whileOpen'] {
  const off = { wait: false, maxWait: DEFAULT_MAX_WAIT, maxQueue: DEFAULT_MAX_QUEUE };
  if (value === undefined) return off;
  if (!isPlainObject(value)) {
    v.problem('whileOpen', '{ wait, maxWait, maxQueue }', value);
    return off;
  }
  unknownKeys(v, 'whileOpen', value, ['wait', 'maxWait', 'maxQueue']);
  if (value.wait !== undefined && typeof value.wait !== 'boolean')
    v.problem('whileOpen.wait', 'true or false', value.wait);
  return {
    wait: value.wait === true,
    maxWait: v.duration('whileOpen.maxWait', value.maxWait, DEFAULT_MAX_WAIT, {
      min: 0,
      allowInfinity: true,
    }),
    maxQueue: v.int('whileOpen.maxQueue', value.maxQueue, DEFAULT_MAX_QUEUE, 0),
  };
}

function readSlowStart(v: Validator, value: unknown): number {
  if (value === false) return 0;
  if (value === undefined) return DEFAULT_SLOW_START_WINDOW;
  if (!isPlainObject(value)) {
    v.problem('slowStart', '{ window } or false', value);
    return 0;
  }
  unknownKeys(v, 'slowStart', value, ['window']);
  return v.duration('slowStart.window', value.window, DEFAULT_SLOW_START_WINDOW, { min: 0 });
}

function readHalfOpenAfter(v: Validator, value: unknown): BreakerConfig['halfOpenAfter'] {
  if (value === undefined) return DEFAULT_OPEN_DURATION;
  if (typeof value === 'number' || typeof value === 'string') {
    const ms = v.duration('halfOpenAfter', value, DEFAULT_HALF_OPEN_AFTER);
    return { initial: ms, multiplier: 1, max: ms };
  }
  if (!isPlainObject(value)) {
    v.problem('halfOpenAfter', "a duration (ms or '30s') or { initial, multiplier, max }", value);
    return { initial: DEFAULT_HALF_OPEN_AFTER, multiplier: 1, max: DEFAULT_HALF_OPEN_AFTER };
  }
  unknownKeys(v, 'halfOpenAfter', value, ['initial', 'multiplier', 'max']);
  const initial = v.duration('halfOpenAfter.initial', value.initial, DEFAULT_HALF_OPEN_AFTER);
  const multiplier = v.number('halfOpenAfter.multiplier', value.multiplier, 2, 1);
  const max = v.duration('halfOpenAfter.max', value.max, Math.max(initial, DEFAULT_HALF_OPEN_MAX));
  if (max < initial)
    v.problem('halfOpenAfter.max', `a duration ≥ halfOpenAfter.initial (${initial} ms)`, value.max);
  return { initial, multiplier, max };
}

/**
 * Validates circuit breaker options once, at construction, listing every problem with its
 * path (`payments.circuitBreaker.failureRate: expected number in [0, 1], got 2`).
 */
export function readBreakerOptions(options: unknown, path: string): BreakerConfig {
  const v = new Validator(path);
  const o = v.object(options, KNOWN);

  const consecutiveGiven = o.consecutiveFailures !== undefined;
  const consecutive = v.int(
    'consecutiveFailures',
    o.consecutiveFailures,
    DEFAULT_CONSECUTIVE_FAILURES,
    1,
  );
  const failureRate =
    o.failureRate === undefined ? undefined : v.number('failureRate', o.failureRate, 0.5, 0, 1);

  let slowCallMs: number | undefined;
  let slowCallRate: number | undefined;
  if (o.slowCall !== undefined) {
    if (!isPlainObject(o.slowCall)) {
      v.problem('slowCall', '{ ms, rate }', o.slowCall);
    } else {
      unknownKeys(v, 'slowCall', o.slowCall, ['ms', 'rate']);
      if (o.slowCall.ms === undefined)
        v.problem('slowCall.ms', "a duration (ms or '2s')", undefined);
      if (o.slowCall.rate === undefined) v.problem('slowCall.rate', 'number in [0, 1]', undefined);
      slowCallMs = v.duration('slowCall.ms', o.slowCall.ms, 0);
      slowCallRate = v.number('slowCall.rate', o.slowCall.rate, 1, 0, 1);
    }
  }

  const defaultRule = !consecutiveGiven && failureRate === undefined && slowCallRate === undefined;
  const usesWindow = failureRate !== undefined || slowCallRate !== undefined;
  let window = readWindow(v, o.window);
  if (window !== undefined && !usesWindow) {
    v.problem(
      'window',
      'failureRate or slowCall to be set (the window only feeds those rates)',
      o.window,
    );
  }
  if (window === undefined && usesWindow) window = { ...DEFAULT_WINDOW };

  const windowCalls = window !== undefined && 'calls' in window ? window.calls : undefined;
  let minimumCalls = v.int(
    'minimumCalls',
    o.minimumCalls,
    windowCalls ?? DEFAULT_TIME_WINDOW_MINIMUM_CALLS,
    1,
  );
  if (o.minimumCalls !== undefined && !usesWindow) {
    v.problem(
      'minimumCalls',
      'failureRate or slowCall to be set (it gates those rates)',
      o.minimumCalls,
    );
  }
  if (windowCalls !== undefined && minimumCalls > windowCalls) {
    v.problem(
      'minimumCalls',
      `integer ≤ window.calls (${windowCalls}): the window never holds more`,
      o.minimumCalls,
    );
    minimumCalls = windowCalls;
  }

  const halfOpenAfter = readHalfOpenAfter(v, o.halfOpenAfter);
  const halfOpenMaxCalls = v.int('halfOpenMaxCalls', o.halfOpenMaxCalls, 1, 1);
  if (windowCalls !== undefined && halfOpenMaxCalls > windowCalls) {
    v.problem(
      'halfOpenMaxCalls',
      `integer ≤ window.calls (${windowCalls}): a trial larger than the sample that tripped it`,
      o.halfOpenMaxCalls,
    );
  }
  const halfOpenSuccesses = v.int('halfOpenSuccesses', o.halfOpenSuccesses, halfOpenMaxCalls, 1);
  const halfOpenTimeout = v.duration(
    'halfOpenTimeout',
    o.halfOpenTimeout,
    DEFAULT_HALF_OPEN_TIMEOUT,
    {
      min: 1,
      allowInfinity: true,
    },
  );
  const isFailure = v.func<BreakerConfig['isFailure']>('isFailure', o.isFailure, undefined);

  let name = 'circuitBreaker';
  if (o.name !== undefined) {
    if (typeof o.name !== 'string' || o.name === '')
      v.problem('name', 'a non-empty string', o.name);
    else name = o.name;
  }
  const clock = o.clock as Clock | undefined;
  if (
    clock !== undefined &&
    (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function')
  ) {
    v.problem(
      'clock',
      'a Clock (an object with now(), setTimeout(), clearTimeout(), sleep())',
      clock,
    );
  }
  const whileOpen = readWhileOpen(v, o.whileOpen);
  const slowStart = readSlowStart(v, o.slowStart);
  v.done();

  return {
    name,
    clock,
    // With no failure rule but a slow-call rate, failures still open it after 5 in a row.
    consecutiveFailures:
      consecutiveGiven || (failureRate === undefined && !defaultRule) ? consecutive : undefined,
    failureRate,
    window: defaultRule ? { ...DEFAULT_RULE_WINDOW } : window,
    minimumCalls,
    slowCallMs,
    slowCallRate,
    isFailure,
    halfOpenAfter,
    halfOpenMaxCalls,
    halfOpenSuccesses,
    halfOpenTimeout,
    defaultRule,
    whileOpen,
    slowStart,
  };
}
