/**
 * Heap bytes per in-flight call: start 10,000 calls whose work stays pending, force GC,
 * and compare with the same 10,000 pending works started without bulwark. Run with
 * `node --expose-gc --import tsx bench/memory-inflight.ts`; prints JSON.
 */
import { dependency } from '../src/index.js';

const N = 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

const dep = dependency('memory', {
  budget: '10s',
  timeout: '1s',
  retry: { maxAttempts: 3 },
  circuitBreaker: { consecutiveFailures: 5 },
  // The parts the issue-14 target names; the default load shedder (which would shed
  // 10,000 calls in flight) is left out so the same pipeline is measured as before.
  loadShedder: false,
  bulkhead: { maxConcurrent: N },
});

async function perCall(start: (work: () => Promise<void>) => Promise<unknown>): Promise<number> {
  const resolvers: Array<() => void> = [];
  const work = () => new Promise<void>((r) => resolvers.push(r));
  const calls: Promise<unknown>[] = [];
  const before = heap();
  for (let i = 0; i < N; i++) calls.push(start(work));
  const during = heap();
  for (const r of resolvers) r();
  await Promise.all(calls);
  return (during - before) / N;
}

// Warm both paths (compiled code and shapes are not per-call memory).
await perCall((w) => w());
await perCall((w) => dep.execute(w));
const samples: Array<{ bare: number; dep: number }> = [];
for (let i = 0; i < 5; i++) {
  samples.push({ bare: await perCall((w) => w()), dep: await perCall((w) => dep.execute(w)) });
}
const added = samples.map((s) => s.dep - s.bare).sort((a, b) => a - b);
console.log(JSON.stringify({ bytesPerCall: added[added.length >> 1], samples }));
