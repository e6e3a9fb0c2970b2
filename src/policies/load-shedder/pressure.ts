import type { IntervalHistogram, monitorEventLoopDelay as Monitor } from 'node:perf_hooks';

type MonitorEventLoopDelay = typeof Monitor;

let monitor: MonitorEventLoopDelay | undefined;
let loading: Promise<void> | undefined;

/**
 * perf_hooks' `monitorEventLoopDelay`, loaded on the first probe read rather than at
 * `import 'bulwark'` (a builtin import costs a fraction of a millisecond, and most
 * processes never read a probe). Node ≥ 20.16 loads a builtin synchronously from ESM and
 * CJS alike; on older 20.x this starts an import and returns undefined until it is done
 * (a probe reads 0 until its monitor has samples anyway).
 */
function loadMonitor(): MonitorEventLoopDelay | undefined {
  if (monitor !== undefined) return monitor;
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof get === 'function') {
    const hooks = get('node:perf_hooks') as { monitorEventLoopDelay: MonitorEventLoopDelay };
    return (monitor = hooks.monitorEventLoopDelay);
  }
  loading ??= import('node:perf_hooks').then((hooks) => {
    monitor = hooks.monitorEventLoopDelay;
  });
  return undefined;
}

/** A source of process pressure; inject a fake in tests. */
export interface PressureProbe {
  /** Recent event-loop delay in ms (how late timers fire beyond their due time). */
  eventLoopDelay(): number;
}

/**
 * The default pressure probe: a perf_hooks event-loop delay monitor, created on first
 * read. It reports the 99th percentile of recent delays and restarts its histogram every
 * `window` ms on a read (no timer of its own; the monitor's sampling timer does not keep
 * the process alive). It measures the real event loop, so it reads real time, not a Clock.
 * It starts measuring at its first read: a stall before that goes unseen, and a stall
 * keeps counting for up to one window after it ends.
 *
 * @example
 * ```ts
 * import { EventLoopDelayProbe, loadShedder } from 'bulwark';
 *
 * // Forget a stall after 250 ms instead of the shared probe's 1 s.
 * const shedder = loadShedder({
 *   limit: 200,
 *   maxEventLoopDelay: '100ms',
 *   pressure: new EventLoopDelayProbe(10, 250),
 * });
 * ```
 */
export class EventLoopDelayProbe implements PressureProbe {
  private histogram: IntervalHistogram | undefined;
  private windowStart = 0;
  private lastRead = -Infinity;
  private value = 0;

  /**
   * @param resolution - Sampling interval of the delay monitor, in ms.
   * @param window - How long recent delays count, in ms: the histogram restarts this often.
   * @param refresh - Reads within this many ms of the last one return the cached value.
   */
  constructor(
    readonly resolution = 10,
    readonly window = 1000,
    readonly refresh = 25,
  ) {}

  /** The 99th percentile of recent event-loop delays, in ms (0 until the monitor has samples). */
  eventLoopDelay(): number {
    const now = performance.now();
    if (now - this.lastRead < this.refresh) return this.value;
    this.lastRead = now;
    const h = this.histogram;
    if (h === undefined) {
      const start = loadMonitor();
      if (start === undefined) return this.value;
      this.histogram = start({ resolution: this.resolution });
      this.histogram.enable();
      this.windowStart = now;
      return this.value;
    }
    if (h.count > 0) {
      // The histogram records whole sampling intervals: the delay is what exceeds the resolution.
      const delay = h.percentile(99) / 1e6 - this.resolution;
      this.value = delay > 0 ? delay : 0;
    }
    if (now - this.windowStart >= this.window) {
      h.reset();
      this.windowStart = now;
    }
    return this.value;
  }
}

let sharedProbe: EventLoopDelayProbe | undefined;

/**
 * The process-wide default probe (one per copy of the library), created on first use.
 *
 * @example
 * ```ts
 * import { eventLoopPressure } from 'bulwark';
 *
 * // What load shedders with `maxEventLoopDelay` see, e.g. for a health endpoint.
 * const lagMs = eventLoopPressure().eventLoopDelay();
 * ```
 */
export function eventLoopPressure(): PressureProbe {
  return (sharedProbe ??= new EventLoopDelayProbe());
}
