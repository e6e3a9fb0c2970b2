// Unhandled rejections: none escape a run.

import { Recorder, type Invariant } from './invariant.js';

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
