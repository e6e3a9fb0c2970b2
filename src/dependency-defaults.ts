import { isPlainObject } from './core/validate.js';

/**
 * What `dependency(name, {})` adds when the config leaves a part out: most users never
 * tune, so the parts left out must protect on their own. Each default part is turned off
 * with `false` (`retry: false`, `circuitBreaker: false`, `loadShedder: false`). A part
 * given explicitly is built from what it says, with its policy's own defaults; only the
 * breaker's `whileOpen` is filled in for it too (see DEFAULT_WHILE_OPEN).
 *
 * How retry and the breaker's wait compose (no double waiting): retry is outside the
 * breaker, so a retried attempt that meets an open breaker waits in the breaker's queue
 * for the trial's outcome, within the call's remaining budget, and is never also delayed
 * by a retry for the same reason: a `CircuitOpenError` (the breaker could not serve the
 * call within its budget or maxWait) is not retried by the default `retryOn`. The backoff
 * sleep happens only after a real failure of the dependency; the breaker's wait only
 * while the dependency is known to be down. Both count against the one budget.
 */

/**
 * Retry: 4 attempts (Polly's default: 3 retries) with the default backoff (100 ms, ×2,
 * full jitter), and a retry budget so retries add at most half of recent traffic (plus 1
 * per second for a quiet client). At 30 % random errors a request then fails 0.3⁴ ≈ 0.8 %
 * of the time instead of 0.3³ ≈ 2.7 % with 3 attempts (brownout scenario: 99.8 % against
 * 98.7 %), for about 0.42 retries per request on average. Half, not Finagle's 20 %: 20 %
 * would leave half of those retries unsent. Under a total outage the retry budget still
 * caps retries at 1.5× load, and the breaker opens within a few calls anyway.
 */
export const DEFAULT_RETRY = {
  maxAttempts: 4,
  retryBudget: { ratio: 0.5, minPerSecond: 1 },
} as const;

/**
 * The breaker: `circuitBreaker()`'s own defaults (the default trip rule, a 300 ms first
 * open period growing ×1.5 to 30 s, a 1 s slow start after closing), plus waiting for
 * the trial while open.
 */
export const DEFAULT_CIRCUIT_BREAKER = {} as const;

/**
 * Calls that meet an open breaker wait for the next trial when their budget allows, for
 * at most 1 s: a dependency back from a short fault serves them instead of them failing
 * (no policy at all would have). (500 ms lost 9 points of success in the flapping
 * scenario: 63 % against 72 %.) At most 100 wait: 1 s of traffic at 100 calls/s. A busier
 * client would otherwise release a crowd at a dependency that has just come back, on top
 * of the backlog a weakened dependency builds: 300 waiters at 300 calls/s cost 4 points
 * of success in the slow-recovery scenario, 100 cost none.
 */
export const DEFAULT_WHILE_OPEN = { wait: true, maxWait: 1000, maxQueue: 100 } as const;

/**
 * The load shedder: a gradient (latency-driven) concurrency limit between 600 and 1200
 * calls in flight (normal priority may fill 80 % of it: 480), with a short queue in front.
 * The floor is generous on purpose, and measured (README: Choosing settings):
 * - a healthy dependency is never shed: 480 in flight is 32 000 calls/s at 15 ms.
 * - the load shedder is the outermost part, so the calls waiting for an open breaker (up
 *   to 100) hold their places in it, on top of the backlog a weakened dependency builds
 *   while it regains capacity: in the slow-recovery scenario that reached about 440, and a
 *   floor of 500 (400 for normal priority) shed 100 of them.
 * - under overload it still bounds the dependency's queue, to about 480 calls per client
 *   process (1.2 s of queueing at 400 calls/s of capacity) instead of every call the
 *   caller sends; above the floor the limit grows only while at least half of it is in use
 *   and latency stays near its long-term level.
 * - the queue (100 calls, LIFO and at most 50 ms while it stands) catches the calls that arrive
 *   just as an overload ends, while the limit is still full of its calls: they get the
 *   slots the backlog frees within milliseconds instead of being refused. During the
 *   overload itself it only delays a refusal by up to 50 ms. (With the queue's own 5 ms a
 *   loaded run still shed one such call: after an event-loop stall, timers run before the
 *   answers that free slots are read.)
 */
export const DEFAULT_LOAD_SHEDDER = {
  limit: { algorithm: 'gradient', min: 600, initial: 600, max: 1200 },
  queue: { maxSize: 100, lifo: true, overloadTimeout: 50 },
} as const;

/**
 * Returns the config with the default parts filled in (a new object; the input is not
 * changed). `false` stays `false`: dependency() reads it as "no such part".
 */
export function withDependencyDefaults(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (out.retry === undefined) out.retry = DEFAULT_RETRY;
  if (out.loadShedder === undefined) out.loadShedder = DEFAULT_LOAD_SHEDDER;
  if (out.circuitBreaker === undefined) out.circuitBreaker = DEFAULT_CIRCUIT_BREAKER;
  const breaker = out.circuitBreaker;
  if (isPlainObject(breaker) && breaker.whileOpen === undefined)
    out.circuitBreaker = { ...breaker, whileOpen: DEFAULT_WHILE_OPEN };
  return out;
}
