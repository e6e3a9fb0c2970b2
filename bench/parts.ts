/**
 * The building blocks every policy pays for, measured like the cases (interleaved, as a
 * ratio to the bare call): what one clock read, one reaction, one promise layer or one
 * error costs on this machine. Where a target is out of reach, these show why.
 */
import { systemClock } from '../src/core/clock.js';
import { rejectAfterAttach, stacklessErrorOf } from '../src/core/fail-fast.js';
import { CircuitOpenError } from '../src/policies/circuit-breaker/errors.js';
import { bareCall, type BenchCase } from './harness.js';

const noop = (): void => {};
const identity = <T>(v: T): T => v;
const Stackless = stacklessErrorOf(CircuitOpenError);
let sink: unknown;

function withoutStack(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CircuitOpenError('open', 1000, 'bench');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * A deadline read and a promise that settles with the call or could be rejected at the
 * deadline: what a timeout must do before any bookkeeping (a list entry, a context).
 */
export function guarded(): Promise<unknown> {
  const deadline = systemClock.now() + 1000;
  return new Promise((resolve, reject) => {
    sink = deadline;
    bareCall().then(
      (v) => resolve(v),
      (e: unknown) => reject(e),
    );
  });
}

export const cases: BenchCase[] = [
  {
    group: 'building blocks',
    name: 'bare call + one clock read',
    run: () => ((sink = systemClock.now()), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'bare call + one .then reaction',
    run: () => bareCall().then(identity),
  },
  {
    group: 'building blocks',
    name: 'bare call + one await layer',
    run: async () => await bareCall(),
  },
  {
    group: 'building blocks',
    name: 'bare call wrapped in new Promise + 2 reactions (a guard)',
    run: () =>
      new Promise((resolve, reject) => {
        bareCall().then(
          (v) => resolve(v),
          (e: unknown) => reject(e),
        );
      }),
  },
  {
    group: 'building blocks',
    name: 'bare call + one clock read + a guard (the least a timeout that rejects hung work pays)',
    run: guarded,
  },
  {
    group: 'building blocks',
    name: 'new CircuitOpenError (stack trace limit 0)',
    run: () => ((sink = withoutStack()), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'stackless CircuitOpenError (no Error constructor)',
    run: () => ((sink = new Stackless('bench: circuit is open')), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'Promise.reject, handler attached after',
    run: () => Promise.reject(sink).catch(noop),
  },
  {
    group: 'building blocks',
    name: 'a throw inside a reaction, handler attached before',
    run: () =>
      Promise.resolve()
        .then(() => {
          throw sink;
        })
        .catch(noop),
  },
  {
    group: 'building blocks',
    name: 'rejectAfterAttach (a rejecting thenable, adopted after the handler is attached)',
    run: () => rejectAfterAttach(sink).catch(noop),
  },
];
