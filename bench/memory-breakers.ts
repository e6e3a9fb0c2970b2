/**
 * What 10,000 circuit breakers cost: bulwark vs cockatiel vs opossum.
 *
 *   tsx bench/memory-breakers.ts        (re-runs itself under node --expose-gc)
 *
 * Each library runs in its own child process so heaps do not mix. A child creates
 * 10,000 time-window breakers, measures the heap (after forced GC) idle, after a first
 * burst of calls on every breaker, and across rounds of sustained traffic; it counts the
 * timers the library creates and those still active, then simply returns. The parent
 * records whether the child then exits on its own: a breaker library must never keep a
 * process alive.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = 10_000;
const ROUNDS = 6;
const ROUND_GAP_MS = 250;
const CALLS_PER_ROUND = 5;

type Call = (breaker: any, fail: boolean) => Promise<unknown>;

interface Subject {
  label: string;
  /** Loads the library; returns how to build one breaker and how to make one call through it. */
  load(): Promise<{ create: () => unknown; call: Call }>;
}

const failure = new Error('dependency failed');

const subjects: Record<string, Subject> = {
  'bulwark-time': {
    label: 'bulwark circuitBreaker, failureRate over { ms: 10000, buckets: 10 }',
    async load() {
      const { circuitBreaker } = await import('../src/policies/circuit-breaker/circuit-breaker.js');
      return {
        create: () =>
          circuitBreaker({
            failureRate: 0.5,
            window: { ms: 10_000, buckets: 10 },
            minimumCalls: 100,
          }),
        call: (breaker, fail) => breaker.execute(fail ? rejectFailure : resolveOne),
      };
    },
  },
  'bulwark-consecutive': {
    label: 'bulwark circuitBreaker, consecutiveFailures: 5',
    async load() {
      const { circuitBreaker } = await import('../src/policies/circuit-breaker/circuit-breaker.js');
      return {
        create: () => circuitBreaker({ consecutiveFailures: 5 }),
        call: (breaker, fail) => breaker.execute(fail ? rejectFailure : resolveOne),
      };
    },
  },
  'cockatiel-sampling': {
    label: 'cockatiel SamplingBreaker({ threshold: 0.5, duration: 10000 })',
    async load() {
      const { circuitBreaker, handleAll, SamplingBreaker } = await import('cockatiel');
      return {
        create: () =>
          circuitBreaker(handleAll, {
            halfOpenAfter: 5_000,
            breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 10 }),
          }),
        call: (breaker, fail) => breaker.execute(fail ? rejectFailure : resolveOne),
      };
    },
  },
  opossum: {
    label: 'opossum (defaults: 10 s rolling window in 10 buckets, 10 s timeout)',
    async load() {
      const { default: CircuitBreaker } = await import('opossum');
      return {
        create: () =>
          new CircuitBreaker(action, { rollingCountTimeout: 10_000, rollingCountBuckets: 10 }),
        call: (breaker, fail) => breaker.fire(fail),
      };
    },
  },
  'opossum-no-timeout': {
    label: 'opossum, timeout: false',
    async load() {
      const { default: CircuitBreaker } = await import('opossum');
      return {
        create: () =>
          new CircuitBreaker(action, {
            rollingCountTimeout: 10_000,
            rollingCountBuckets: 10,
            timeout: false,
          }),
        call: (breaker, fail) => breaker.fire(fail),
      };
    },
  },
};

function resolveOne(): Promise<number> {
  return Promise.resolve(1);
}

function rejectFailure(): Promise<never> {
  return Promise.reject(failure);
}

function action(fail: boolean): Promise<number> {
  return fail ? rejectFailure() : resolveOne();
}

interface Measurement {
  key: string;
  label: string;
  idleBytes: number;
  activeBytes: number;
  /** Heap growth per breaker from the first to the last round of sustained traffic. */
  growthBytes: number;
  timersCreated: number;
  /** Ref'd timers still alive at the end (getActiveResourcesInfo does not list unref'd ones). */
  timersActive: number;
  exitsOnItsOwn?: boolean;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heap(): number {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** Counts setTimeout/setInterval calls made from now on (libraries look the globals up per call). */
function countTimers(): { readonly count: number } {
  const counter = { count: 0 };
  const { setTimeout: st, setInterval: si } = globalThis;
  globalThis.setTimeout = ((...args: Parameters<typeof st>) => {
    counter.count++;
    return st(...args);
  }) as typeof st;
  globalThis.setInterval = ((...args: Parameters<typeof si>) => {
    counter.count++;
    return si(...args);
  }) as typeof si;
  return counter;
}

async function traffic(
  call: Call,
  breakers: readonly unknown[],
  perBreaker: number,
): Promise<void> {
  for (const breaker of breakers) {
    for (let i = 0; i < perBreaker; i++) {
      // One failure in five: enough to exercise the failure path without tripping.
      await call(breaker, i === perBreaker - 1).catch(() => undefined);
    }
  }
}

async function child(key: string): Promise<void> {
  const subject = subjects[key]!;
  const { create, call } = await subject.load();
  // Warm up code paths and inline caches so the baseline does not count them.
  await traffic(call, Array.from({ length: 50 }, create), CALLS_PER_ROUND);

  const timers = countTimers();
  const timersBefore = activeTimers();
  const base = heap();
  const breakers: unknown[] = [];
  for (let i = 0; i < N; i++) breakers.push(create());
  const idle = heap();
  await traffic(call, breakers, CALLS_PER_ROUND);
  const active = heap();
  let first = 0;
  let last = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await new Promise((resolve) => setTimeout(resolve, ROUND_GAP_MS));
    await traffic(call, breakers, CALLS_PER_ROUND);
    last = heap();
    if (round === 0) first = last;
  }
  const result: Measurement = {
    key,
    label: subject.label,
    idleBytes: (idle - base) / N,
    activeBytes: (active - base) / N,
    growthBytes: (last - first) / N,
    timersCreated: timers.count - ROUNDS, // minus the gaps between rounds, made here
    timersActive: activeTimers() - timersBefore,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Returning here is the test: the process must now exit with nothing keeping it alive.
  (globalThis as { keep?: unknown }).keep = breakers;
}

function runChild(key: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', key],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    let result: Measurement | undefined;
    let exitTimer: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined && result === undefined) {
        result = JSON.parse(line) as Measurement;
        // Measured: now give it a few seconds to exit by itself.
        exitTimer = setTimeout(() => {
          result!.exitsOnItsOwn = false;
          proc.kill('SIGKILL');
        }, 5_000);
      }
    });
    proc.on('exit', () => {
      if (exitTimer !== undefined) clearTimeout(exitTimer);
      if (result === undefined) {
        reject(new Error(`${key}: child exited without a result`));
        return;
      }
      result.exitsOnItsOwn ??= true;
      resolve(result);
    });
  });
}

async function main(): Promise<void> {
  const results: Measurement[] = [];
  // `--only a,b` measures just those subjects.
  const onlyIndex = process.argv.indexOf('--only');
  const keys = onlyIndex >= 0 ? process.argv[onlyIndex + 1]!.split(',') : Object.keys(subjects);
  for (const key of keys) {
    if (subjects[key] === undefined)
      throw new Error(`unknown subject ${key}; known: ${Object.keys(subjects).join(', ')}`);
    results.push(await runChild(key));
  }
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(
    `\n${N.toLocaleString('en-US')} breakers, heapUsed + arrayBuffers after forced GC, bytes per breaker\n`,
  );
  console.log(
    '| breaker | idle B | after calls B | growth over sustained traffic B | timers created | timers holding the process | exits on its own |',
  );
  console.log('|---|--:|--:|--:|--:|--:|:-:|');
  for (const r of results) {
    console.log(
      `| ${r.label} | ${fmt(r.idleBytes)} | ${fmt(r.activeBytes)} | ${fmt(r.growthBytes)} | ${fmt(r.timersCreated)} | ${fmt(r.timersActive)} | ${r.exitsOnItsOwn ? 'yes' : 'no'} |`,
    );
  }
  console.log(
    `\nTraffic: ${CALLS_PER_ROUND} calls per breaker (1 failing), then ${ROUNDS} more rounds ${ROUND_GAP_MS} ms apart.` +
      '\n"timers created" counts setTimeout/setInterval calls during the run (intervals included, even' +
      ' when unref\'d); "timers holding the process" counts ref\'d timers still alive at the end' +
      ' (process.getActiveResourcesInfo() lists only those).',
  );
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  await child(process.argv[childIndex + 1]!);
} else if (gc === undefined) {
  // Started as `tsx bench/memory-breakers.ts`: run again with a GC we can force.
  const proc = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  proc.on('exit', (code) => {
    process.exitCode = code ?? 1;
  });
} else {
  await main();
}
