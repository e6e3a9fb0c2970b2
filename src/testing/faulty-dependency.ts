import { systemClock, type Clock, type TimerHandle, setTimerRef } from '../core/clock.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import { Validator } from '../core/validate.js';

/**
 * How long a call takes, in ms: a constant (`20`, `'20ms'`), uniform between `min` and
 * `max`, or log-normal with the given median and 99th percentile (the usual shape of
 * real service latency: most calls near p50, a long tail out to p99 and beyond).
 */
export type LatencyOption =
  | number
  | string
  | { min: number | string; max: number | string }
  | { p50: number | string; p99: number | string };

/**
 * A stretch of the dependency's timeline, in ms counted from its `origin` (numbers or
 * '30s', '10m'); `from` inclusive, `to` exclusive. `to` may be Infinity.
 */
export interface FaultWindow {
  /** Start, in ms since `origin` (inclusive). */
  from: number | string;
  /** End, in ms since `origin` (exclusive); may be Infinity. */
  to: number | string;
}

/** What a fault-making function learns about the call it fails. */
export interface FaultInfo {
  /** 'failure': the random failure rate; 'outage': inside an outage; 'brownout': the failure rate of a slowdown. */
  kind: 'failure' | 'outage' | 'brownout';
  /** 1 for the first call. */
  call: number;
  /** When the call started, in ms since `origin`. */
  at: number;
}

/** Every call that starts inside the window fails (or hangs, with `hang: true`). */
export interface Outage extends FaultWindow {
  /** The error to throw: a value, or a function making one per call (default: `errors`). */
  error?: unknown;
  /** ms before the error arrives (default 0: refused at once, like a closed port). */
  latency?: number | string;
  /** Calls neither answer nor fail; they end only when their signal aborts (a black hole). */
  hang?: boolean;
}

/** A brownout: latency is multiplied by `factor`, and `failureRate` (if given) replaces the normal one. */
export interface Slowdown extends FaultWindow {
  /** Latency multiplier (default 1). */
  factor?: number;
  /** Share of calls (0..1) that fail during the slowdown, instead of the normal `failureRate`. */
  failureRate?: number;
}

/** Options of `faultyDependency()`; all optional (with none, every call succeeds at once). */
export interface FaultyDependencyOptions<T = FaultyResponse> {
  /** Latency of a normal call (default 0: answers on the next microtask). */
  latency?: LatencyOption;
  /** Share of calls (0..1) that fail after their latency (default 0). */
  failureRate?: number;
  /** Windows in which every call fails (or hangs). */
  outages?: readonly Outage[];
  /** Windows of higher latency and, optionally, another failure rate. */
  slowdowns?: readonly Slowdown[];
  /** Share of calls (0..1, outside outages) that hang until their signal aborts (default 0). */
  hangs?: number;
  /** Same seed, same calls at the same times → the same latencies and faults (default 1). */
  seed?: number;
  /** Default: the system clock (real time). Pass a VirtualClock in tests. */
  clock?: Clock;
  /** Time on the clock that windows count from (default: `clock.now()` at creation). */
  origin?: number;
  /** Makes the error a failed call throws (default: a `FaultError` with `status` 503). */
  errors?: (fault: FaultInfo) => unknown;
  /** Makes the value a successful call returns (default `{ call, latency }`). */
  value?: (info: { call: number; at: number; latency: number }) => T;
  /**
   * Keep every call's start time, so that `callsDuring()` can count any window
   * (default true). Turn it off for millions of calls: memory stays flat.
   */
  history?: boolean;
}

/** What a successful call returns by default. */
export interface FaultyResponse {
  /** Which call this was (1 for the first). */
  call: number;
  /** The latency it was given, in ms. */
  latency: number;
}

/**
 * What the simulated dependency throws unless told otherwise: an HTTP 503, so default retry
 * rules apply.
 *
 * @example
 * ```ts
 * import { FaultError, faultyDependency } from 'bulwark/testing';
 *
 * // Throttling instead of outages: 429s, to test how callers back off.
 * const partner = faultyDependency({
 *   failureRate: 0.3,
 *   errors: (fault) => new FaultError(fault, 429),
 * });
 * ```
 */
export class FaultError extends Error {
  /** The HTTP status it stands for (default 503). */
  readonly status: number;
  /** Which kind of fault made it. */
  readonly kind: FaultInfo['kind'];
  /** Which call it failed (1 for the first). */
  readonly call: number;
  constructor(fault: FaultInfo, status = 503) {
    super(`simulated ${fault.kind} (call ${fault.call} at ${Math.round(fault.at)} ms): ${status}`);
    this.name = 'FaultError';
    this.status = status;
    this.kind = fault.kind;
    this.call = fault.call;
  }
}

/** A simulated downstream from `faultyDependency()`: its `call`, and counters of what happened. */
export interface FaultyDependency<T = FaultyResponse> {
  /** The simulated downstream call; pass it to `execute` as is (it reads `ctx.signal`). */
  readonly call: (ctx?: { readonly signal?: AbortSignal }) => Promise<T>;
  /** Calls started. */
  readonly calls: number;
  /** Calls that returned a value. */
  readonly succeeded: number;
  /** Calls that threw a fault. */
  readonly failed: number;
  /** Calls ended by their signal (hung or not). */
  readonly aborted: number;
  /** Calls that were fated to hang (each ends only by abort). */
  readonly hung: number;
  /** Calls running now: started, not settled, signal not aborted. */
  readonly inFlight: number;
  /** The most calls ever running at once. */
  readonly maxInFlight: number;
  /** Clock time that windows count from. */
  readonly origin: number;
  /** The configured outages, in ms since origin (pass one to `callsDuring`). */
  readonly outages: readonly { readonly from: number; readonly to: number }[];
  /** The configured slowdowns, in ms since origin. */
  readonly slowdowns: readonly {
    readonly from: number;
    readonly to: number;
    readonly factor: number;
  }[];
  /** Calls started inside `window` (an outage, a slowdown, or any `{ from, to }`). */
  callsDuring(window: FaultWindow): number;
  /** What the dependency is doing at `at` ms since origin (default: now). */
  phaseAt(at?: number): 'outage' | 'slowdown' | 'normal';
}

// ---------------------------------------------------------------------------------------
// Seeded randomness (our own: a 32-bit mixer and mulberry32).

/** Mixes two 32-bit numbers into one well-spread seed (murmur3's finalizer). */
function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A small, fast, seeded PRNG (mulberry32) returning floats in [0, 1). Use it wherever
 * a policy takes a `random` option (retry jitter) so a test run replays exactly.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, seededRandom } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const random = seededRandom(42);
 * const payments = dependency('payments', { clock, retry: { maxAttempts: 3, random } });
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------
// Options.

type Sampler = (random: () => number) => number;

/** z for the 99th percentile of the standard normal distribution. */
const Z99 = 2.3263478740408408;

interface Window {
  from: number;
  to: number;
}
interface OutageSpec extends Window {
  error: unknown;
  hasError: boolean;
  latency: number;
  hang: boolean;
}
interface SlowdownSpec extends Window {
  factor: number;
  failureRate: number | undefined;
}

const KNOWN = [
  'latency',
  'failureRate',
  'outages',
  'slowdowns',
  'hangs',
  'seed',
  'clock',
  'origin',
  'errors',
  'value',
  'history',
];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readLatency(v: Validator, value: unknown): Sampler {
  if (value === undefined) return () => 0;
  if (typeof value === 'number' || typeof value === 'string') {
    const ms = v.duration('latency', value, 0);
    return () => ms;
  }
  if (isObject(value) && 'min' in value && 'max' in value) {
    const min = v.duration('latency.min', value.min, 0);
    const max = v.duration('latency.max', value.max, min);
    if (max < min) v.problem('latency.max', `a duration ≥ latency.min (${min} ms)`, value.max);
    return (random) => min + random() * (max - min);
  }
  if (isObject(value) && 'p50' in value && 'p99' in value) {
    const p50 = v.duration('latency.p50', value.p50, 1, { min: Number.MIN_VALUE });
    const p99 = v.duration('latency.p99', value.p99, p50);
    if (p99 < p50) v.problem('latency.p99', `a duration ≥ latency.p50 (${p50} ms)`, value.p99);
    // ln(latency) is normal with median ln(p50); p99 fixes its spread.
    const mu = Math.log(p50);
    const sigma = p99 > p50 ? Math.log(p99 / p50) / Z99 : 0;
    return (random) => {
      // Box–Muller; 1 − u keeps the log argument in (0, 1].
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return Math.exp(mu + sigma * z);
    };
  }
  v.problem('latency', "ms, '20ms', { min, max } or { p50, p99 }", value);
  return () => 0;
}

function readWindow(v: Validator, path: string, value: Record<string, unknown>): Window {
  const from = v.duration(`${path}.from`, value.from, 0);
  const to = v.duration(`${path}.to`, value.to, from, { allowInfinity: true });
  if (value.from === undefined)
    v.problem(`${path}.from`, 'a duration (ms since origin)', undefined);
  if (value.to === undefined) v.problem(`${path}.to`, 'a duration (ms since origin)', undefined);
  if (to < from) v.problem(`${path}.to`, `a duration ≥ ${path}.from (${from} ms)`, value.to);
  return { from, to };
}

function readList<S>(
  v: Validator,
  name: string,
  value: unknown,
  known: readonly string[],
  read: (path: string, item: Record<string, unknown>) => S,
): S[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    v.problem(name, 'an array of { from, to, … }', value);
    return [];
  }
  return value.flatMap((item, i) => {
    const path = `${name}[${i}]`;
    if (!isObject(item)) {
      v.problem(path, '{ from, to, … }', item);
      return [];
    }
    for (const key of Object.keys(item)) {
      if (!known.includes(key)) v.unknownKey(`${path}.${key}`, known);
    }
    return [read(path, item)];
  });
}

/** Reads a window given as `{ from, to }` for callsDuring(); throws on a bad one. */
function windowOf(window: FaultWindow): Window {
  const from = parseDuration(window?.from);
  const to = parseDuration(window?.to);
  if (from === undefined || to === undefined || to < from) {
    const problem: ConfigProblem = {
      path: 'callsDuring(window)',
      expected: '{ from, to } with durations, from ≤ to',
      got: window,
    };
    throw new ConfigError([problem]);
  }
  return { from, to };
}

/**
 * A seeded simulated downstream: latency from a distribution, random failures, outages
 * and brownouts on the clock's timeline, and hangs that end only when the caller's signal
 * aborts. Call `n` draws its latency and faults from its own stream of the seed, so a run
 * replays exactly for the same seed and the same call times. Faults are HTTP 503
 * `FaultError`s by default, which bulwark's default retry rules retry.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const payments = faultyDependency({
 *   clock,
 *   latency: { p50: 40, p99: 300 },
 *   failureRate: 0.02,
 *   outages: [{ from: '1m', to: '11m' }],
 *   seed: 7,
 * });
 * const dep = dependency('payments', { clock, retry: {}, circuitBreaker: {} });
 * const result = dep.execute(payments.call);
 * await clock.advance(1000);
 * console.log(await result, payments.calls, payments.maxInFlight);
 * // … and after the outage: payments.callsDuring({ from: '1m', to: '11m' })
 * ```
 */
export function faultyDependency<T = FaultyResponse>(
  options: FaultyDependencyOptions<T> = {},
): FaultyDependency<T> {
  const v = new Validator('faultyDependency');
  const o = v.object(options, KNOWN);
  const sample = readLatency(v, o.latency);
  const failureRate = v.number('failureRate', o.failureRate, 0, 0, 1);
  const hangRate = v.number('hangs', o.hangs, 0, 0, 1);
  const seedValue = v.number('seed', o.seed, 1, -Infinity, Infinity);
  if (!Number.isFinite(seedValue)) v.problem('seed', 'a finite number', o.seed);
  const seed = (Number.isFinite(seedValue) ? Math.trunc(seedValue) : 1) >>> 0;
  const clock = (o.clock as Clock | undefined) ?? systemClock;
  if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function') {
    v.problem('clock', 'a Clock (now(), setTimeout(), clearTimeout(), sleep())', o.clock);
  }
  const makeError = v.func<(fault: FaultInfo) => unknown>(
    'errors',
    o.errors,
    (fault) => new FaultError(fault),
  );
  const makeValue = v.func<
    ((info: { call: number; at: number; latency: number }) => T) | undefined
  >('value', o.value, undefined);
  const keepHistory = v.bool('history', o.history, true);
  const outages = readList<OutageSpec>(
    v,
    'outages',
    o.outages,
    ['from', 'to', 'error', 'latency', 'hang'],
    (path, item) => ({
      ...readWindow(v, path, item),
      error: item.error,
      hasError: item.error !== undefined,
      latency: v.duration(`${path}.latency`, item.latency, 0),
      hang: v.bool(`${path}.hang`, item.hang, false),
    }),
  );
  const slowdowns = readList<SlowdownSpec>(
    v,
    'slowdowns',
    o.slowdowns,
    ['from', 'to', 'factor', 'failureRate'],
    (path, item) => ({
      ...readWindow(v, path, item),
      factor: v.number(`${path}.factor`, item.factor, 1, 0),
      failureRate:
        item.failureRate === undefined
          ? undefined
          : v.number(`${path}.failureRate`, item.failureRate, 0, 0, 1),
    }),
  );
  const originValue =
    o.origin === undefined ? undefined : v.number('origin', o.origin, 0, -Infinity);
  v.done();
  const origin = originValue ?? clock.now();

  let calls = 0;
  let succeeded = 0;
  let failed = 0;
  let aborted = 0;
  let hung = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let starts = keepHistory ? new Float64Array(64) : undefined;

  const findIn = <W extends Window>(list: readonly W[], at: number): W | undefined => {
    for (const w of list) if (at >= w.from && at < w.to) return w;
    return undefined;
  };

  const fault = (
    kind: FaultInfo['kind'],
    call: number,
    at: number,
    outage?: OutageSpec,
  ): unknown => {
    const info: FaultInfo = { kind, call, at };
    if (outage?.hasError)
      return typeof outage.error === 'function' ? outage.error(info) : outage.error;
    return makeError(info);
  };

  const call = (ctx?: { readonly signal?: AbortSignal }): Promise<T> => {
    const n = ++calls;
    const at = clock.now() - origin;
    if (starts !== undefined) {
      if (n > starts.length) {
        const grown = new Float64Array(starts.length * 2);
        grown.set(starts);
        starts = grown;
      }
      starts[n - 1] = at;
    }
    const signal = ctx?.signal;
    if (signal?.aborted) {
      aborted++;
      return Promise.reject(signal.reason);
    }

    // Every call draws the same numbers in the same order from its own stream, whatever
    // its fate: call n's faults depend only on (seed, n, its start time).
    const random = seededRandom(mix(seed, n));
    const baseLatency = sample(random);
    const hangDraw = random();
    const failDraw = random();

    let delay: number;
    let hangs = false;
    let error: unknown;
    let fails = false;
    const outage = findIn(outages, at);
    if (outage !== undefined) {
      delay = outage.latency;
      hangs = outage.hang;
      fails = !hangs;
      if (fails) error = fault('outage', n, at, outage);
    } else {
      const slowdown = findIn(slowdowns, at);
      delay = baseLatency * (slowdown?.factor ?? 1);
      const rate = slowdown?.failureRate ?? failureRate;
      if (hangDraw < hangRate) hangs = true;
      else if (failDraw < rate) {
        fails = true;
        error = fault(slowdown?.failureRate !== undefined ? 'brownout' : 'failure', n, at);
      }
    }

    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let timer: TimerHandle | undefined;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        inFlight--;
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      // Counted out at the abort itself (not a microtask later): the caller's policies
      // react to the same abort and may start the next call at once.
      const onAbort = (): void => {
        if (timer !== undefined) clock.clearTimeout(timer);
        if (!finish()) return;
        aborted++;
        reject(signal!.reason);
      };
      const answer = (): void => {
        if (!finish()) return;
        if (fails) {
          failed++;
          reject(error);
        } else {
          succeeded++;
          resolve(
            makeValue === undefined
              ? ({ call: n, latency: delay } as T)
              : makeValue({ call: n, at, latency: delay }),
          );
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (hangs) {
        hung++;
        return;
      }
      if (delay > 0) {
        timer = clock.setTimeout(answer, delay);
        // The system clock unrefs its timers; a simulated answer somebody awaits must keep
        // the process alive, like a real socket would.
        setTimerRef(timer, true);
      } else answer();
    });
  };

  return {
    call,
    get calls() {
      return calls;
    },
    get succeeded() {
      return succeeded;
    },
    get failed() {
      return failed;
    },
    get aborted() {
      return aborted;
    },
    get hung() {
      return hung;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    origin,
    outages: outages.map(({ from, to }) => ({ from, to })),
    slowdowns: slowdowns.map(({ from, to, factor }) => ({ from, to, factor })),
    callsDuring(window: FaultWindow): number {
      if (starts === undefined) {
        throw new Error(
          'faultyDependency: callsDuring() needs history (created with history: false)',
        );
      }
      const { from, to } = windowOf(window);
      let count = 0;
      for (let i = 0; i < calls; i++) {
        const t = starts[i]!;
        if (t >= from && t < to) count++;
      }
      return count;
    },
    phaseAt(at = clock.now() - origin): 'outage' | 'slowdown' | 'normal' {
      if (findIn(outages, at) !== undefined) return 'outage';
      return findIn(slowdowns, at) !== undefined ? 'slowdown' : 'normal';
    },
  };
}
