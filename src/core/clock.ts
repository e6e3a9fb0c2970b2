/**
 * The only source of time for every policy. Policies never call Date.now() or
 * setTimeout themselves, which is what makes every time behaviour testable on a
 * VirtualClock.
 */

/** Whatever a clock's `setTimeout` returns: opaque, only ever handed back to its `clearTimeout`. */
export type TimerHandle = unknown;

/**
 * A source of time and timers. Every policy reads time only through its clock:
 * `systemClock` in production, a `VirtualClock` (from `bulwark/testing`) in tests.
 */
export interface Clock {
  /** Monotonic time in ms (epoch-based on the system clock). */
  now(): number;
  /**
   * Schedules a watchdog. Handles from the system clock are unref'd: a watchdog never
   * keeps the process alive on its own.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer from this clock's `setTimeout`; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Resolves after `ms`, or rejects with `signal.reason` when the signal aborts first.
   * Unlike setTimeout, a sleep keeps the process alive: somebody awaits it.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** setTimeout's limit (2^31 − 1 ms, about 24.8 days); longer waits are re-armed when it fires. */
export const MAX_TIMER_MS = 2_147_483_647;

function sleepOn(
  schedule: (fn: () => void, ms: number) => TimerHandle,
  cancel: (h: TimerHandle) => void,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      cancel(handle);
      reject(signal!.reason);
    };
    const handle = schedule(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export { sleepOn as sleepWithTimers };

/**
 * The default clock: `performance.timeOrigin + performance.now()`, monotonic epoch ms.
 * Policies run on it when neither they nor their pipeline were given a `clock`.
 */
export const systemClock: Clock = {
  now: firstNow,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.min(ms, MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
  sleep(ms, signal) {
    return sleepOn(
      (fn, delay) => setTimeout(fn, Math.min(delay, MAX_TIMER_MS)),
      (h) => clearTimeout(h as NodeJS.Timeout),
      ms,
      signal,
    );
  },
};

/**
 * The system clock's first `now()`. The global `performance` is a lazy getter in Node whose
 * first read loads perf_hooks (about 1 ms): `import 'bulwark'` must not pay that, so it is
 * read here, once, and `now` is replaced by a reader with no branch of its own.
 */
function firstNow(): number {
  const perf = performance;
  const origin = perf.timeOrigin;
  const now = (): number => origin + perf.now();
  systemClock.now = now;
  return now();
}

/**
 * Sets whether a timer keeps the process alive. Only Node Timeout handles (the system
 * clock's) have ref/unref; other clocks' handles are left alone.
 * @internal
 */
export function setTimerRef(handle: TimerHandle | undefined, on: boolean): void {
  const h = handle as { ref?: () => void; unref?: () => void } | undefined;
  if (h === undefined || typeof h.ref !== 'function' || typeof h.unref !== 'function') return;
  if (on) h.ref();
  else h.unref();
}
