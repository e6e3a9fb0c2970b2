import { systemClock, type Clock } from '../core/clock.js';
import type { Step } from '../core/context.js';
import type { Policy } from '../core/pipeline.js';

/**
 * Invariant helpers for tests of resilient code. Each one watches a run (wraps fn, a
 * breaker or the calls), keeps what it saw, and has `assert()`, which throws an
 * `InvariantError` naming the invariant and listing the violations. They use no test
 * framework, so they work under vitest, jest, node:test or a plain script.
 */

/** Thrown by `assert()`: names the invariant and lists what broke it. */
export class InvariantError extends Error {
  /** The invariant's name, e.g. `the breaker never calls fn while open`. */
  readonly invariant: string;
  /** One line per violation. */
  readonly violations: readonly string[];
  constructor(invariant: string, violations: readonly string[], total = violations.length) {
    const shown = violations.slice(0, MAX_LISTED);
    const more = total > shown.length ? `\n  … and ${total - shown.length} more` : '';
    super(
      `invariant violated: ${invariant} (${total} violation${total === 1 ? '' : 's'})\n` +
        shown.map((s) => `  - ${s}`).join('\n') +
        more,
    );
    this.name = 'InvariantError';
    this.invariant = invariant;
    this.violations = violations;
  }
}

const MAX_LISTED = 10;
/** Violations kept in memory; the count goes on past it. */
const MAX_KEPT = 100;

/** What every helper has: the invariant's name, what broke it, and `assert()`. */
export interface Invariant {
  /** The invariant's name, used in messages. */
  readonly invariant: string;
  /** One line per violation (the first 100 are kept). */
  readonly violations: readonly string[];
  /** Violations seen, including those not kept. */
  readonly violationCount: number;
  /** Throws an `InvariantError` if anything broke the invariant. */
  assert(): void;
}

/** Shared bookkeeping: a named list of violations. */
class Recorder implements Invariant {
  readonly violations: string[] = [];
  violationCount = 0;
  constructor(readonly invariant: string) {}

  violate(message: string): void {
    this.violationCount++;
    if (this.violations.length < MAX_KEPT) this.violations.push(message);
  }

  assert(): void {
    if (this.violationCount > 0) {
      throw new InvariantError(this.invariant, this.violations, this.violationCount);
    }
  }
}

/**
 * Gives a helper's result object the live `invariant`, `violations` and `violationCount`
 * of its recorder, and `assert()` unless the object brings its own.
 */
function reportingTo<R extends Invariant>(
  target: Omit<R, keyof Invariant> & Partial<Pick<Invariant, 'assert'>>,
  recorder: Recorder,
): R {
  const props: PropertyDescriptorMap = {
    invariant: { get: () => recorder.invariant, enumerable: true },
    violations: { get: () => recorder.violations, enumerable: true },
    violationCount: { get: () => recorder.violationCount, enumerable: true },
  };
  if (!('assert' in target)) props.assert = { value: () => recorder.assert(), enumerable: true };
  return Object.defineProperties(target, props) as R;
}

/**
 * Checks several invariants at once and throws one `InvariantError` listing every one
 * that broke, so a failing fuzz run shows the whole picture.
 *
 * @example
 * ```ts
 * import { bulkhead } from 'bulwark';
 * import {
 *   VirtualClock,
 *   assertInvariants,
 *   bulkheadNeverExceeds,
 *   settlesExactlyOnce,
 * } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const pool = bulkhead({ clock, maxConcurrent: 2, maxQueue: 20 });
 * const concurrency = bulkheadNeverExceeds(2, { clock });
 * const settles = settlesExactlyOnce();
 * const work = concurrency.wrap(() => clock.sleep(50));
 * for (let i = 0; i < 10; i++) settles.track(pool.execute(work)).catch(() => {});
 * await clock.runAll();
 * assertInvariants(concurrency, settles); // one InvariantError listing everything that broke
 * ```
 */
export function assertInvariants(...invariants: Invariant[]): void {
  const broken: InvariantError[] = [];
  for (const invariant of invariants) {
    try {
      invariant.assert();
    } catch (error) {
      if (!(error instanceof InvariantError)) throw error;
      broken.push(error);
    }
  }
  if (broken.length === 0) return;
  if (broken.length === 1) throw broken[0]!;
  const lines = broken.flatMap((e) => e.violations.map((v) => `${e.invariant}: ${v}`));
  throw new InvariantError(broken.map((e) => e.invariant).join('; '), lines);
}

type Fn<C, R> = (ctx: C) => R | PromiseLike<R>;

function signalOf(ctx: unknown): AbortSignal | undefined {
  if (typeof ctx !== 'object' || ctx === null || !('signal' in ctx)) return undefined;
  const signal = (ctx as { signal?: unknown }).signal;
  return signal instanceof AbortSignal ? signal : undefined;
}

// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------

/** A circuit breaker as this helper needs it: its `state`, and (to watch hand-offs) its `run`. */
export interface BreakerLike {
  /** The breaker's state now: `open` and `isolated` count as open. */
  readonly state: string;
  /** The breaker's step in a pipeline, wrapped to watch hand-offs (a bulwark breaker has one). */
  run?: Policy['run'];
}

/** Options of `breakerNeverCallsWhileOpen()`. */
export interface BreakerCheckOptions {
  /**
   * Where the state is checked. `'handoff'` (the default when the breaker has a `run`):
   * each time the breaker passes a call inward. `'fn'`: each time fn starts — exact only
   * when nothing between the breaker and fn delays or repeats calls (no bulkhead queue,
   * no hedge), because those may start fn later for a call the breaker let through while
   * it was still closed.
   */
  at?: 'handoff' | 'fn';
  /** Used to time-stamp violations (default: the system clock). */
  clock?: Clock;
}

/** What `breakerNeverCallsWhileOpen()` returns: the wrapped fn, counts, and `assert()`. */
export interface BreakerCheck<C, R> extends Invariant {
  /** fn, wrapped: calls are counted (and checked, with `at: 'fn'`). */
  readonly fn: (ctx: C) => Promise<R>;
  /** Calls that reached fn. */
  readonly calls: number;
  /** Calls the breaker passed inward (handoff mode). */
  readonly handoffs: number;
  /** Stops watching the breaker (restores its own `run`). */
  dispose(): void;
}

const OPEN_STATES: ReadonlySet<string> = new Set(['open', 'isolated']);

/**
 * "The breaker never calls fn while open": records a violation each time a call gets
 * past the breaker while its state is `open` or `isolated`. By default it watches the
 * breaker itself — it wraps this breaker object's `run` (restored by `dispose()`) and
 * checks the state when a call is passed inward — so a call queued in a bulkhead or a
 * hedge started later for a call admitted while closed is (rightly) not a violation.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, breakerNeverCallsWhileOpen, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const payments = faultyDependency({ clock, latency: 20, outages: [{ from: 0, to: '1m' }] });
 * const dep = dependency('payments', { clock, circuitBreaker: { consecutiveFailures: 3 } });
 * const breakerCheck = breakerNeverCallsWhileOpen(dep.breaker!, payments.call, { clock });
 * for (let i = 0; i < 50; i++) {
 *   dep.execute(breakerCheck.fn).catch(() => {});
 *   await clock.advance(1000);
 * }
 * breakerCheck.assert();
 * breakerCheck.dispose();
 * ```
 */
export function breakerNeverCallsWhileOpen<C, R>(
  breaker: BreakerLike,
  fn: Fn<C, R>,
  options: BreakerCheckOptions = {},
): BreakerCheck<C, R> {
  const clock = options.clock ?? systemClock;
  const mode = options.at ?? (typeof breaker.run === 'function' ? 'handoff' : 'fn');
  const recorder = new Recorder('the breaker never calls fn while open');
  let calls = 0;
  let handoffs = 0;

  const check = (what: string): void => {
    const state = breaker.state;
    if (OPEN_STATES.has(state))
      recorder.violate(`${what} while the breaker was ${state} at t=${clock.now()}`);
  };

  let restore: (() => void) | undefined;
  if (mode === 'handoff') {
    const own = Object.prototype.hasOwnProperty.call(breaker, 'run');
    const original = breaker.run;
    if (typeof original !== 'function') {
      throw new TypeError("breakerNeverCallsWhileOpen: at: 'handoff' needs a breaker with run()");
    }
    const bound = original.bind(breaker);
    // Instance-level wrapper: pipelines call `policy.run(...)`, which finds this first.
    const watched: Policy['run'] = (ctx, f, next) => {
      const checked: Step = {
        invoke: (c, g) => {
          handoffs++;
          check(`call passed on (handoff ${handoffs})`);
          return next.invoke(c, g);
        },
      };
      return bound(ctx, f, checked);
    };
    Object.defineProperty(breaker, 'run', { value: watched, configurable: true, writable: true });
    restore = () => {
      if (own)
        Object.defineProperty(breaker, 'run', {
          value: original,
          configurable: true,
          writable: true,
        });
      else delete (breaker as { run?: unknown }).run;
    };
  }

  const wrapped = (ctx: C): Promise<R> => {
    calls++;
    if (mode === 'fn') check(`fn called (call ${calls})`);
    try {
      return Promise.resolve(fn(ctx));
    } catch (error) {
      return Promise.reject(error);
    }
  };

  return reportingTo(
    {
      fn: wrapped,
      get calls() {
        return calls;
      },
      get handoffs() {
        return handoffs;
      },
      dispose() {
        restore?.();
        restore = undefined;
      },
    },
    recorder,
  );
}

// ---------------------------------------------------------------------------------------

/** Options of `callsWithinBudget()`. */
export interface BudgetCheckOptions {
  /** ms a call may run past its budget before it counts as a violation (default 0). */
  tolerance?: number;
  /** The clock the budgets run on (default: the system clock). Use the policies' clock. */
  clock?: Clock;
}

/** What `callsWithinBudget()` returns: `track()` for each call, and `assert()`. */
export interface BudgetCheck extends Invariant {
  /**
   * Starts a call and watches it against `budgetMs`. Returns a promise with the call's
   * outcome (unhandled if you leave it unhandled, as the original would be).
   */
  track<T>(budgetMs: number, start: () => PromiseLike<T>): Promise<T>;
  /** Calls tracked, settled or not. */
  readonly calls: number;
  /** Longest time a settled call ran past its budget, in ms (negative: all within it). */
  readonly worstOverrun: number;
}

/**
 * "No call exceeds its budget + tolerance": times each tracked call on the clock from its
 * start to its settlement. `assert()` also flags calls still running past their budget.
 * On a VirtualClock a tolerance of 0 is exact; on real time allow for timer lateness.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, callsWithinBudget, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const slow = faultyDependency({ clock, latency: { p50: 200, p99: 2_000 }, hangs: 0.1 });
 * const dep = dependency('slow', { clock, retry: {} });
 * const budgets = callsWithinBudget({ clock, tolerance: 0 });
 * const result = budgets.track(500, () => dep.execute(slow.call, { budget: 500 })).catch(() => {});
 * await clock.advance(1000);
 * await result;
 * budgets.assert();
 * ```
 */
export function callsWithinBudget(options: BudgetCheckOptions | number = {}): BudgetCheck {
  const o = typeof options === 'number' ? { tolerance: options } : options;
  const tolerance = o.tolerance ?? 0;
  const clock = o.clock ?? systemClock;
  const recorder = new Recorder(`no call exceeds its budget + ${tolerance} ms`);
  const running = new Set<{ n: number; start: number; budget: number }>();
  let calls = 0;
  let worstOverrun = -Infinity;

  function settle(entry: { n: number; start: number; budget: number }): void {
    running.delete(entry);
    const took = clock.now() - entry.start;
    const overrun = took - entry.budget;
    if (overrun > worstOverrun) worstOverrun = overrun;
    if (overrun > tolerance) {
      recorder.violate(
        `call ${entry.n} took ${took} ms, budget ${entry.budget} ms (started t=${entry.start})`,
      );
    }
  }

  function track<T>(budgetMs: number, start: () => PromiseLike<T>): Promise<T> {
    const entry = { n: ++calls, start: clock.now(), budget: budgetMs };
    running.add(entry);
    let promise: PromiseLike<T>;
    try {
      promise = start();
    } catch (error) {
      settle(entry);
      return Promise.reject(error);
    }
    return Promise.resolve(promise).then(
      (value) => {
        settle(entry);
        return value;
      },
      (error: unknown) => {
        settle(entry);
        throw error;
      },
    );
  }

  return reportingTo(
    {
      track,
      get calls() {
        return calls;
      },
      get worstOverrun() {
        return worstOverrun;
      },
      assert() {
        const now = clock.now();
        const late = [...running].filter((e) => now - e.start > e.budget + tolerance);
        if (late.length > 0) {
          throw new InvariantError(
            recorder.invariant,
            [
              ...recorder.violations,
              ...late.map(
                (e) => `call ${e.n} still running after ${now - e.start} ms, budget ${e.budget} ms`,
              ),
            ],
            recorder.violationCount + late.length,
          );
        }
        recorder.assert();
      },
    },
    recorder,
  );
}

// ---------------------------------------------------------------------------------------

/** What `settlesExactlyOnce()` returns: `track()` for each call, counts, and `assert()`. */
export interface SettleCheck extends Invariant {
  /**
   * Watches a promise (or any thenable) and returns a native promise with its first
   * outcome. A thenable that calls back twice, or both ways, is a violation.
   */
  track<T>(promise: PromiseLike<T>, label?: string): Promise<T>;
  /** Calls tracked. */
  readonly tracked: number;
  /** Tracked calls that settled (once, or more). */
  readonly settled: number;
  /** Tracked and not settled yet. */
  readonly pending: number;
}

/**
 * "Every call settles exactly once": `assert()` fails for any tracked call that has not
 * settled yet (a call that hangs forever) and for any that settled more than once (a
 * hand-written thenable or callback bridge that resolves and then rejects). Call
 * `assert()` once the run is over (e.g. after `await clock.runAll()`).
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency, settlesExactlyOnce } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const flaky = faultyDependency({ clock, latency: 30, failureRate: 0.3, hangs: 0.05 });
 * const dep = dependency('flaky', { clock, budget: '1s', retry: {} });
 * const settles = settlesExactlyOnce();
 * const calls = Array.from({ length: 20 }, (_, i) =>
 *   settles.track(dep.execute(flaky.call), `call ${i}`).catch(() => 'failed'),
 * );
 * await clock.runAll();
 * settles.assert(); // before awaiting the calls: one that never settles would wait forever
 * await Promise.all(calls);
 * ```
 */
export function settlesExactlyOnce(): SettleCheck {
  const recorder = new Recorder('every call settles exactly once');
  const open = new Map<number, string>();
  let tracked = 0;
  let settled = 0;

  function track<T>(promise: PromiseLike<T>, label?: string): Promise<T> {
    const n = ++tracked;
    const name = label ?? `call ${n}`;
    open.set(n, name);
    let outcomes = 0;
    let first: string | undefined;
    return new Promise<T>((resolve, reject) => {
      const seen = (how: string): boolean => {
        outcomes++;
        if (outcomes === 1) {
          first = how;
          settled++;
          open.delete(n);
          return true;
        }
        recorder.violate(`${name} settled ${outcomes} times (${first}, then ${how})`);
        return false;
      };
      try {
        promise.then(
          (value) => {
            if (seen('fulfilled')) resolve(value);
          },
          (error: unknown) => {
            if (seen('rejected')) reject(error);
          },
        );
      } catch (error) {
        if (seen('threw in then()')) reject(error);
      }
    });
  }

  return reportingTo(
    {
      track,
      get tracked() {
        return tracked;
      },
      get settled() {
        return settled;
      },
      get pending() {
        return open.size;
      },
      assert() {
        if (open.size === 0) return recorder.assert();
        const never = [...open.values()].map((name) => `${name} never settled`);
        throw new InvariantError(
          recorder.invariant,
          [...recorder.violations, ...never],
          recorder.violationCount + never.length,
        );
      },
    },
    recorder,
  );
}

// ---------------------------------------------------------------------------------------

/** Options of `noUnhandledRejections()`. */
export interface UnhandledOptions {
  /**
   * Take the other `unhandledRejection` listeners off while installed and put them back on
   * `dispose()` (default false). For tests that provoke one on purpose: the test runner's
   * own listener would otherwise fail the run.
   */
  exclusive?: boolean;
}

/**
 * What `noUnhandledRejections()` returns: what it caught, `flush()`, `assert()` and `dispose()`.
 */
export interface UnhandledCheck extends Invariant {
  /** Rejections nobody handled (a rejection handled late is taken off the list). */
  readonly rejections: readonly unknown[];
  /** Waits long enough (two macrotask turns) for Node to report pending unhandled rejections. */
  flush(): Promise<void>;
  /** Removes the listeners (and gives back the others, in exclusive mode). */
  dispose(): void;
}

/**
 * "No unhandled rejections": listens to the process's `unhandledRejection` events from
 * now until `dispose()`. Node reports them after the microtask queue drains, so
 * `await check.flush()` before `check.assert()`.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency, noUnhandledRejections } from 'bulwark/testing';
 *
 * const unhandled = noUnhandledRejections();
 * try {
 *   const clock = new VirtualClock();
 *   const search = faultyDependency({ clock, latency: { min: 10, max: 200 }, failureRate: 0.5 });
 *   const dep = dependency('search', { clock, hedge: { delay: 50, maxHedges: 2 } });
 *   const calls = Array.from({ length: 10 }, () => dep.execute(search.call).catch(() => {}));
 *   await clock.runAll();
 *   await Promise.all(calls);
 *   await unhandled.flush();
 *   unhandled.assert(); // a losing hedge's late failure must never surface as unhandled
 * } finally {
 *   unhandled.dispose();
 * }
 * ```
 */
export function noUnhandledRejections(options: UnhandledOptions = {}): UnhandledCheck {
  const recorder = new Recorder('no unhandled rejections');
  const seen = new Map<Promise<unknown>, unknown>();
  const onUnhandled = (reason: unknown, promise: Promise<unknown>): void => {
    seen.set(promise, reason);
  };
  const onHandled = (promise: Promise<unknown>): void => {
    seen.delete(promise);
  };
  let others: ((...args: unknown[]) => void)[] = [];
  if (options.exclusive) {
    others = process.listeners('unhandledRejection') as typeof others;
    process.removeAllListeners('unhandledRejection');
  }
  process.on('unhandledRejection', onUnhandled);
  process.on('rejectionHandled', onHandled);
  let disposed = false;

  const collect = (): void => {
    recorder.violations.length = 0;
    recorder.violationCount = 0;
    for (const reason of seen.values()) recorder.violate(describe(reason));
  };

  return {
    get rejections() {
      return [...seen.values()];
    },
    get invariant() {
      return recorder.invariant;
    },
    get violations() {
      collect();
      return recorder.violations;
    },
    get violationCount() {
      return seen.size;
    },
    async flush() {
      for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    },
    assert() {
      collect();
      recorder.assert();
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      process.off('unhandledRejection', onUnhandled);
      process.off('rejectionHandled', onHandled);
      for (const listener of others) process.on('unhandledRejection', listener);
    },
  };
}

function describe(reason: unknown): string {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  try {
    return `rejected with ${JSON.stringify(reason)}`;
  } catch {
    return `rejected with ${String(reason)}`;
  }
}
