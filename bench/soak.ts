/**
 * `npm run soak`: 1,000,000 calls through the full pipeline with random faults (errors,
 * retryable statuses, short hangs, caller aborts). Checks that the heap stays flat (within
 * 10 % between the first and last quarter, after GC), that active handles return to the
 * baseline, and that no rejection goes unhandled. Not part of `npm test`.
 */
import { Registry } from 'prom-client';
import { dependency } from '../src/index.js';
import { prometheusMetrics } from '../src/prometheus.js';

const TOTAL = Number(process.env.SOAK_CALLS ?? 1_000_000);
const CONCURRENCY = 200;

if (typeof globalThis.gc !== 'function') {
  // Re-run with --expose-gc so heap readings are after a full collection.
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', ...process.argv.slice(1)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

let unhandled = 0;
process.on('unhandledRejection', () => unhandled++);

const registry = new Registry();
const dep = dependency('soak', {
  budget: '200ms',
  timeout: '20ms',
  retry: { maxAttempts: 3, backoff: 0, retryBudget: { ratio: 0.5, minPerSecond: 1000 } },
  circuitBreaker: { failureRate: 0.9, window: { calls: 100 }, halfOpenAfter: 5 },
  bulkhead: { maxConcurrent: 150, maxQueue: 100, queueTimeout: 50 },
  metrics: prometheusMetrics({ registry }),
});

let seed = 42;
const random = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};

async function call(i: number): Promise<void> {
  const r = random();
  const controller = r > 0.999 ? new AbortController() : undefined;
  if (controller) setImmediate(() => controller.abort(new Error('caller gave up')));
  await dep
    .execute(
      (ctx) => {
        const f = random();
        if (f < 0.05) throw Object.assign(new Error('503'), { status: 503 });
        if (f < 0.07) throw new Error('bug');
        if (f < 0.0705)
          return new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
          );
        return i;
      },
      controller ? { signal: controller.signal } : undefined,
    )
    .catch(() => undefined);
}

const heap = () => {
  globalThis.gc!();
  return process.memoryUsage().heapUsed;
};
const handles = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;

const baselineHandles = handles();
const readings: number[] = [];
const started = performance.now();
let next = 0;
async function worker(): Promise<void> {
  while (next < TOTAL) {
    const i = next++;
    await call(i);
    if (i % (TOTAL / 20) === 0 && i > 0) readings.push(heap());
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const seconds = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 300)); // let abandoned attempts and watchdogs finish
const endHandles = handles();

const q = Math.max(1, Math.floor(readings.length / 4));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const first = avg(readings.slice(0, q));
const last = avg(readings.slice(-q));
const growth = (last - first) / first;
const metrics = await registry.metrics();
const calls = [
  ...metrics.matchAll(/^bulwark_calls_total\{dependency="soak",outcome="(\w+)"\} (\d+)/gm),
]
  .map((m) => `${m[1]} ${m[2]}`)
  .join(', ');

const report = [
  `calls: ${TOTAL} in ${seconds.toFixed(1)} s (${Math.round(TOTAL / seconds)} calls/s, concurrency ${CONCURRENCY})`,
  `outcomes: ${calls}`,
  `heap: first quarter ${(first / 1e6).toFixed(1)} MB, last quarter ${(last / 1e6).toFixed(1)} MB, growth ${(growth * 100).toFixed(1)} %`,
  `active handles: baseline ${baselineHandles}, after ${endHandles}`,
  `unhandled rejections: ${unhandled}`,
];
console.log(report.join('\n'));
const ok = Math.abs(growth) <= 0.1 && endHandles <= baselineHandles && unhandled === 0;
console.log(ok ? 'SOAK PASSED' : 'SOAK FAILED');
process.exit(ok ? 0 : 1);
