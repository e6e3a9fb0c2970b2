import * as cockatiel from 'cockatiel';
import pLimit from 'p-limit';
import { bulkhead } from '../src/policies/bulkhead.js';
import { fallback } from '../src/policies/fallback.js';
import { hedge } from '../src/policies/hedge.js';
import { Sema } from 'async-sema';
import PQueue from 'p-queue';
import { loadShedder } from '../src/policies/load-shedder/load-shedder.js';
import { FloorSemaphore } from './floors.js';
import { bareCall, type BenchCase } from './harness.js';

const CONCURRENT = 1000;
const noop = (): void => {};
const never = () => new Promise<never>(() => {});

/** One run: start `CONCURRENT` calls at once and await them all. */
function burst(call: () => Promise<unknown>): () => Promise<unknown> {
  const batch = new Array<Promise<unknown>>(CONCURRENT);
  return () => {
    for (let i = 0; i < CONCURRENT; i++) batch[i] = call();
    return Promise.all(batch);
  };
}

// One call at a time, with free slots.
const bw1 = bulkhead({ maxConcurrent: 10 });
const ck1 = cockatiel.bulkhead(10, 0);
const pl1 = pLimit(10);

// 1,000 calls in flight at once, all admitted.
const bwWide = bulkhead({ maxConcurrent: CONCURRENT });
const ckWide = cockatiel.bulkhead(CONCURRENT, 0);
const plWide = pLimit(CONCURRENT);

// 1,000 calls through 100 slots: 900 of them wait in the queue.
const bwNarrow = bulkhead({ maxConcurrent: 100, maxQueue: CONCURRENT });
const ckNarrow = cockatiel.bulkhead(100, CONCURRENT);
const plNarrow = pLimit(100);
const bwNarrowTimeout = bulkhead({
  maxConcurrent: 100,
  maxQueue: CONCURRENT,
  queueTimeout: 10_000,
});

// Full: the only slot is held forever and there is no queue.
const bwFull = bulkhead({ maxConcurrent: 1, name: 'bench' });
void bwFull.execute(never);
const ckFull = cockatiel.bulkhead(1, 0);
void ckFull.execute(never);

const floor = new FloorSemaphore(10);
const sema = new Sema(10);
const queue = new PQueue({ concurrency: 10 });
async function semaCall<T>(fn: () => Promise<T>): Promise<T> {
  await sema.acquire();
  try {
    return await fn();
  } finally {
    sema.release();
  }
}
const shedFull = loadShedder({ limit: 1 });
void shedFull.execute(never);

const bwFallback = fallback(0);
const ckFallback = cockatiel.fallback(cockatiel.handleAll, 0);
const bwHedge = hedge({ delay: 1000 });

export const cases: BenchCase[] = [
  { group: 'bulkhead', name: 'semaphore', run: () => floor.run(bareCall), floor: true },
  { group: 'bulkhead', name: 'bulwark bulkhead (1 call)', run: () => bw1.execute(bareCall) },
  { group: 'bulkhead', name: 'async-sema (1 call)', run: () => semaCall(bareCall) },
  { group: 'bulkhead', name: 'p-queue (1 call)', run: () => queue.add(bareCall) },
  { group: 'bulkhead', name: 'cockatiel bulkhead (1 call)', run: () => ck1.execute(bareCall) },
  { group: 'bulkhead', name: 'p-limit (1 call)', run: () => pl1(bareCall) },
  {
    group: 'bulkhead',
    name: 'bulwark bulkhead (1,000 in flight)',
    run: burst(() => bwWide.execute(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'cockatiel bulkhead (1,000 in flight)',
    run: burst(() => ckWide.execute(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'p-limit (1,000 in flight)',
    run: burst(() => plWide(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'bulwark bulkhead (1,000 calls, 100 slots)',
    run: burst(() => bwNarrow.execute(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'bulwark bulkhead (1,000 calls, 100 slots, queueTimeout)',
    run: burst(() => bwNarrowTimeout.execute(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'cockatiel bulkhead (1,000 calls, 100 slots)',
    run: burst(() => ckNarrow.execute(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'bulkhead',
    name: 'p-limit (1,000 calls, 100 slots)',
    run: burst(() => plNarrow(bareCall)),
    callsPerRun: CONCURRENT,
  },
  {
    group: 'fail-fast',
    name: 'bulwark full bulkhead',
    run: () => bwFull.execute(bareCall).catch(noop),
  },
  {
    group: 'fail-fast',
    name: 'cockatiel full bulkhead',
    run: () => ckFull.execute(bareCall).catch(noop),
  },
  {
    group: 'fail-fast',
    name: 'bulwark load shedder at its limit',
    run: () => shedFull.execute(bareCall).catch(noop),
  },
  {
    group: 'fallback',
    name: 'bulwark fallback (success path)',
    run: () => bwFallback.execute(bareCall),
  },
  {
    group: 'fallback',
    name: 'cockatiel fallback (success path)',
    run: () => ckFallback.execute(bareCall),
  },
  {
    group: 'hedge',
    name: 'bulwark hedge (answer before delay)',
    run: () => bwHedge.execute(bareCall),
  },
];
