// The public shapes of faultyDependency(): its options, what it answers, and its FaultError.
import type { Clock } from '../core/clock.js';

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
