import type { Clock } from '../../core/clock.js';
import type { Priority } from '../../core/context.js';
import type { LoadShedReason } from './errors.js';
import type { Limiter } from './limits/limiter.js';
import type { PressureProbe } from './pressure.js';

/**
 * The `queue` option of `loadShedder()`: a bounded wait for a slot, highest priority served first.
 */
export interface LoadShedderQueueOptions {
  /** Calls that may wait for a slot, all priorities together (integer ≥ 0; 0 = no queue). */
  maxSize: number;
  /** Longest wait while the queue drains normally (default 1 s; Infinity allowed). */
  timeout?: number | string;
  /**
   * Longest wait once the queue has stayed non-empty for `interval` — a standing queue
   * only adds latency, so waiters are let go quickly (default 5 ms). Critical waiters
   * keep `timeout`: they are served first and wait only behind each other.
   */
  overloadTimeout?: number | string;
  /** How long the queue must stay non-empty to count as standing (default 100 ms). */
  interval?: number | string;
  /** Serve the newest waiter first while the queue is standing (default false). */
  lifo?: boolean;
}

/** Options of `loadShedder()`; all optional (with none, nothing is ever shed). */
export interface LoadShedderOptions {
  /** Concurrency limit: an integer ≥ 1, Infinity (default), or a limiter such as `adaptive()`. */
  limit?: number | Limiter;
  /**
   * Share of the limit each priority may fill (each in (0, 1]; defaults low 0.5, normal
   * 0.8, high 0.95, critical 1). A call is admitted only if, with it, its priority's
   * share is not exceeded — except that any call may run when nothing is in flight.
   */
  priorityShares?: Partial<Record<Priority, number>>;
  /** Refuse calls with less than this many ms left before their deadline (default 0: off). */
  minRemainingBudget?: number | string;
  /** Refuse non-critical calls while the event-loop delay is above this (ms; default Infinity: off). */
  maxEventLoopDelay?: number | string;
  /** Where the event-loop delay is read (default: a shared perf_hooks monitor, started on first use). */
  pressure?: PressureProbe;
  /** An optional queue in front of the limit; see LoadShedderQueueOptions. */
  queue?: LoadShedderQueueOptions;
  /**
   * Whether a failed call was dropped for overload — the signal adaptive limits shrink on.
   * Default: TimeoutError, LoadShedError, BulkheadRejectedError. Other errors teach the
   * limiter nothing; a call that finishes after its deadline always counts as dropped.
   */
  isDrop?: (error: unknown) => boolean;
  /** `retryAfterMs` hint on capacity, priority and event-loop rejections (default 1 s). */
  retryAfter?: number | string;
  /**
   * The clock queue timeouts and samples run on (default: the pipeline's clock, else the system
   * clock).
   */
  clock?: Clock;
}

/** Events of a load shedder, by name: subscribe with `shedder.on(name, listener)`. */
export interface LoadShedderEvents {
  /** A call was refused (or let go from the queue) without running. */
  shed: { priority: Priority; reason: LoadShedReason };
  /** The concurrency limit moved. */
  limitChange: { limit: number };
}
