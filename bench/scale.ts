/**
 * Cost that must stay flat as work grows: per-call cost with 10,000 calls in flight at
 * once (against one at a time, in the kernel/dependency groups), and 10,000 calls under
 * one parent context (against the same 10,000 without a parent).
 */
import { budget, dependency, pipeline, retry, timeout, type Context } from '../src/index.js';
import { floorAllFour, floorDeadline } from './floors.js';
import { bareCall, measureInterleaved, type BenchCase } from './harness.js';
import { guarded } from './parts.js';

const N = 10_000;
const batch = new Array<Promise<unknown>>(N);

/** One run: start N calls at once and await them all. */
function burst(call: () => Promise<unknown>): () => Promise<unknown> {
  return () => {
    for (let i = 0; i < N; i++) batch[i] = call();
    return Promise.all(batch);
  };
}

const bwTimeout = timeout(1000);
const bwFull = pipeline(budget(10_000), retry({ maxAttempts: 3 }), timeout(1000));
const dep = dependency('scale', {
  budget: '10s',
  timeout: '1s',
  retry: { maxAttempts: 3 },
  circuitBreaker: { consecutiveFailures: 5 },
  // The parts the issue-14 target names; the default load shedder (which would shed
  // 10,000 calls in flight) is left out so the same pipeline is measured as before.
  loadShedder: false,
  bulkhead: { maxConcurrent: N },
});
const allFour = floorAllFour(N);
const child = pipeline(timeout(1000));

/** N calls of `child`, each under one parent call's context (or none). */
function underParent(withParent: boolean): () => Promise<unknown> {
  const outer = pipeline(budget(60_000));
  return () =>
    outer.execute((ctx: Context) => {
      for (let i = 0; i < N; i++)
        batch[i] = withParent ? child.execute(bareCall, { parent: ctx }) : child.execute(bareCall);
      return Promise.all(batch);
    });
}

export const cases: BenchCase[] = [
  {
    group: '10,000 in flight',
    name: 'deadline check',
    run: burst(() => floorDeadline(bareCall)),
    callsPerRun: N,
    floor: true,
  },
  {
    group: '10,000 in flight',
    name: 'clock read + guard, no library (building block)',
    run: burst(guarded),
    callsPerRun: N,
  },
  {
    group: '10,000 in flight',
    name: 'all four in one async function',
    run: burst(() => allFour(bareCall)),
    callsPerRun: N,
  },
  {
    group: '10,000 in flight',
    name: 'bulwark timeout',
    run: burst(() => bwTimeout.execute(bareCall)),
    callsPerRun: N,
  },
  {
    group: '10,000 in flight',
    name: 'bulwark budget+retry+timeout',
    run: burst(() => bwFull.execute(bareCall)),
    callsPerRun: N,
  },
  {
    group: '10,000 in flight',
    name: 'bulwark dependency()',
    run: burst(() => dep.execute(bareCall)),
    callsPerRun: N,
  },
  {
    group: '10,000 children',
    name: '10,000 timeout calls, no parent',
    run: underParent(false),
    callsPerRun: N,
    floor: true,
  },
  {
    group: '10,000 children',
    name: '10,000 timeout calls, { parent: ctx } of one call',
    run: underParent(true),
    callsPerRun: N,
  },
];

// `tsx bench/scale.ts --measure`: the cases above, interleaved in this process (see
// overhead.ts for why they run apart), printed as JSON results.
if (process.argv.includes('--measure')) {
  const measured = await measureInterleaved(cases, (line) =>
    process.stderr.write(`10,000 in flight: ${line}\n`),
  );
  process.stdout.write(JSON.stringify(measured));
}
