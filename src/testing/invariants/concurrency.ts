// Concurrency: how many calls run at once (trackConcurrency, bulkheadNeverExceeds).
import { systemClock, type Clock } from '../../core/clock.js';

import { Recorder, reportingTo, signalOf, type Fn, type Invariant } from './invariant.js';

/** Options of `trackConcurrency()`. */
export interface ConcurrencyOptions {
  /** Record a violation whenever more than `limit` calls run at once (default Infinity). */
  limit?: number;
  /** The invariant's name in messages (default 'concurrency never exceeds <limit>'). */
  name?: string;
  /**
   * Keep counting a call whose signal aborted until its promise settles (default false:
   * an aborted call counts as over at the abort, because the policies that aborted it
   * free its slot then; set it when fn may keep working after an abort and you want to
   * see that).
   */
  countAbandoned?: boolean;
  /** Used to time-stamp violations (default: the system clock). */
  clock?: Clock;
}

/** What `trackConcurrency()` returns: a wrapper for fn, and what it counted. */
export interface ConcurrencyTracker extends Invariant {
  /** Wraps fn: every call through the wrapper is counted while it runs. */
  wrap<C, R>(fn: Fn<C, R>): (ctx: C) => Promise<R>;
  /** Calls running now. */
  readonly inFlight: number;
  /** The most calls seen running at once. */
  readonly max: number;
  /** Calls started through the wrapper. */
  readonly calls: number;
}

/**
 * Counts how many calls of a wrapped fn run at once, and records each time a call starts
 * while more than `limit` are running. A call ends when its promise settles or its
 * `ctx.signal` aborts, whichever comes first (see `countAbandoned`).
 *
 * @example
 * ```ts
 * import { bulkhead } from 'bulwark';
 * import { VirtualClock, trackConcurrency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const pool = bulkhead({ maxConcurrent: 4, maxQueue: 100, clock });
 * const concurrency = trackConcurrency({ limit: 4, clock });
 * const fn = concurrency.wrap(() => clock.sleep(10));
 * const calls = Array.from({ length: 20 }, () => pool.execute(fn));
 * await clock.runAll();
 * await Promise.all(calls);
 * concurrency.assert(); // throws if a 5th call ever ran alongside 4 others
 * concurrency.max; // 4
 * ```
 */
export function trackConcurrency(options: ConcurrencyOptions = {}): ConcurrencyTracker {
  const limit = options.limit ?? Infinity;
  const clock = options.clock ?? systemClock;
  const countAbandoned = options.countAbandoned ?? false;
  const recorder = new Recorder(options.name ?? `concurrency never exceeds ${limit}`);
  let inFlight = 0;
  let max = 0;
  let calls = 0;

  function wrap<C, R>(fn: Fn<C, R>): (ctx: C) => Promise<R> {
    return (ctx: C): Promise<R> => {
      const n = ++calls;
      inFlight++;
      if (inFlight > max) max = inFlight;
      if (inFlight > limit) {
        recorder.violate(
          `call ${n} started with ${inFlight} running (limit ${limit}) at t=${clock.now()}`,
        );
      }
      let ended = false;
      const signal = countAbandoned ? undefined : signalOf(ctx);
      const end = (): void => {
        if (ended) return;
        ended = true;
        inFlight--;
        signal?.removeEventListener('abort', end);
      };
      if (signal?.aborted) end();
      else signal?.addEventListener('abort', end, { once: true });
      let result: R | PromiseLike<R>;
      try {
        result = fn(ctx);
      } catch (error) {
        end();
        return Promise.reject(error);
      }
      return Promise.resolve(result).then(
        (value) => {
          end();
          return value;
        },
        (error: unknown) => {
          end();
          throw error;
        },
      );
    };
  }

  return reportingTo(
    {
      wrap,
      get inFlight() {
        return inFlight;
      },
      get max() {
        return max;
      },
      get calls() {
        return calls;
      },
      assert: () => recorder.assert(),
    },
    recorder,
  );
}

/**
 * "The bulkhead never exceeds its limit": `trackConcurrency` with that limit and name.
 * Wrap the fn that runs inside the bulkhead. With hedging (which runs inside the
 * bulkhead), one slot may hold `1 + maxHedges` attempts: pass that product as the limit.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, bulkheadNeverExceeds, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const inventory = faultyDependency({ clock, latency: { p50: 50, p99: 500 } });
 * const dep = dependency('inventory', { clock, bulkhead: { maxConcurrent: 3, maxQueue: 10 } });
 * const bulkheadCheck = bulkheadNeverExceeds(3, { clock });
 * const fn = bulkheadCheck.wrap(inventory.call);
 * const calls = Array.from({ length: 20 }, () => dep.execute(fn).catch(() => {}));
 * await clock.runAll();
 * bulkheadCheck.assert();
 * await Promise.all(calls);
 * ```
 */
export function bulkheadNeverExceeds(
  limit: number,
  options: Omit<ConcurrencyOptions, 'limit' | 'name'> = {},
): ConcurrencyTracker {
  return trackConcurrency({
    ...options,
    limit,
    name: `bulkhead never exceeds its limit (${limit})`,
  });
}
