import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeadLetter } from '../../src/queue.js';
import { RedisStore } from '../../src/redis.js';
import { describeRedis, redisPort } from '../setup/redis.js';

const WORKER = fileURLToPath(new URL('./fixtures/queue-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MESSAGES = 300;
const CONCURRENCY = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Child {
  child: ChildProcess;
  ready: Promise<void>;
}

/** Starts the queue worker fixture; `ready` resolves when it prints "ready" (10 s at most). */
function startChild(job: object): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(job)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready; ${stderr}`)), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      if (c.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code ?? signal}); ${stderr}`));
    });
  });
  ready.catch(() => {});
  return { child, ready };
}

function stop(c: Child, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  return new Promise((resolve) => {
    if (c.child.exitCode !== null || c.child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      c.child.kill('SIGKILL');
      resolve();
    }, 5000);
    c.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    c.child.kill(signal);
  });
}

describeRedis('every message ends in exactly one place (BullMQ, processes killed)', () => {
  const children: Child[] = [];
  let io: Redis;

  beforeAll(async () => {
    io = new Redis({ port: redisPort(), host: '127.0.0.1', lazyConnect: true });
    await io.connect();
  });

  afterAll(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    io?.disconnect();
  });

  it(`${MESSAGES} messages, random failures, a graceful restart and a SIGKILL mid-job: 0 lost, 0 in both places`, async () => {
    const name = `crash-${process.pid}-${Date.now()}`;
    const prefix = `queue-crash:${Date.now()}`;
    const job = { port: redisPort(), queue: name, prefix, concurrency: CONCURRENCY };
    const connection = { host: '127.0.0.1', port: redisPort(), maxRetriesPerRequest: null };
    const queue = new Queue(name, { connection });
    const dead = new Queue(`${name}-dead`, { connection });
    try {
      const start = () => {
        const c = startChild(job);
        children.push(c);
        return c;
      };
      const [a, b] = [start(), start()];
      await Promise.all([a.ready, b.ready]);
      await queue.addBulk(
        Array.from({ length: MESSAGES }, (_, n) => ({
          name: 'm',
          data: { n },
          opts: { jobId: `m${n}` },
        })),
      );
      // Let both work a little, then kill one mid-job and restart the other gracefully.
      const started = Date.now() + 10_000;
      while ((await queue.getCompletedCount()) < 40 && Date.now() < started) await sleep(10);
      await stop(a, 'SIGKILL');
      const c = start();
      await stop(b, 'SIGTERM');
      const d = start();
      await Promise.all([c.ready, d.ready]);

      const deadline = Date.now() + 20_000;
      while ((await queue.getCompletedCount()) < MESSAGES) {
        if (Date.now() > deadline) throw new Error('messages did not all finish within 20 s');
        await sleep(100);
      }
      expect(await queue.getFailedCount()).toBe(0);

      const store = new RedisStore({ client: io, prefix: `${prefix}:idem` });
      const letters = (await dead.getJobs(['waiting'], 0, -1)).map((j) => j.data as DeadLetter);
      const deadIds = new Set(letters.map((l) => l.source.id));
      expect(deadIds.size).toBe(letters.length);
      const effects = await io.mget(
        ...Array.from({ length: MESSAGES }, (_, n) => `${prefix}:effect:${n}`),
      );
      let lost = 0;
      let both = 0;
      let twice = 0;
      for (let n = 0; n < MESSAGES; n++) {
        const entry = await store.get(`m${n}`, 'bulwark-queue');
        const processed = entry?.state === 'completed';
        const deadLettered = deadIds.has(`m${n}`);
        if (!processed && !deadLettered) lost++;
        if (processed && deadLettered) both++;
        if (Number(effects[n] ?? 0) > 1) twice++;
        // A poison message is dead-lettered on its first delivery and never has an effect.
        if (n % 23 === 0) expect(deadLettered, `m${n} is poison`).toBe(true);
      }
      expect({ lost, both }).toEqual({ lost: 0, both: 0 });
      // The kill did hit running jobs: BullMQ recovered them as stalled.
      const stalled = await Promise.all(
        Array.from({ length: MESSAGES }, (_, n) => io.hget(`bull:${name}:m${n}`, 'stc')),
      );
      expect(stalled.filter((s) => Number(s ?? 0) > 0).length).toBeGreaterThan(0);
      // Only a holder killed after its effect and before storing the outcome runs twice.
      expect(twice).toBeLessThanOrEqual(CONCURRENCY);
      for (const l of letters) {
        if (l.reason === 'not-retryable') expect(l.deliveries).toBe(1);
        else expect(l.deliveries).toBe(3);
      }
    } finally {
      await Promise.all(children.map((c) => stop(c, 'SIGKILL')));
      await queue.close();
      await dead.close();
    }
  }, 40_000);
});
