import { systemClock, type Clock, type TimerHandle, setTimerRef } from '../core/clock.js';
import { Validator } from '../core/validate.js';
import {
  KNOWN,
  readLatency,
  readList,
  readWindow,
  windowOf,
  type OutageSpec,
  type SlowdownSpec,
  type Window,
} from './fault-options.js';
import {
  FaultError,
  type FaultInfo,
  type FaultWindow,
  type FaultyDependency,
  type FaultyDependencyOptions,
  type FaultyResponse,
} from './fault-types.js';
import { mix, seededRandom } from './seeded-random.js';

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
