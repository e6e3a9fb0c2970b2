import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisConcurrencyStore } from '../../src/redis.js';
import { describeRedis, redisPort } from '../setup/redis.js';
import { spawnLimitWorker, type LimitWorker } from './fixtures/spawn-limit-worker.js';

/**
 * Limits shared by 8 real processes on one real redis-server. The rate run is 3 s rather
 * than the 10 s of the issue, with the same tolerances: GCRA's error does not grow with
 * time (its bound is rate × window + burst for any window), so a longer run proves nothing
 * more and would add 7 s to every test run on 2 shared cores.
 */

const PROCESSES = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRedis('fleet-wide limits across processes', () => {
  let admin: Redis;
  // One fleet of processes serves every test: starting 8 tsx processes is the slow part.
  let workers: LimitWorker[] = [];

  beforeAll(async () => {
    admin = new Redis({ port: redisPort(), host: '127.0.0.1', lazyConnect: true });
    await admin.connect();
    workers = Array.from({ length: PROCESSES + 1 }, () => spawnLimitWorker(redisPort()));
    await Promise.all(workers.map((w) => w.waitFor('ready', 30_000)));
  }, 40_000);

  afterAll(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    admin?.disconnect();
  });

  /** Runs one job on each of the 8 fleet processes at once. */
  function fleet<T>(job: object, ms: number): Promise<T[]> {
    return Promise.all(workers.slice(0, PROCESSES).map((w) => w.run<T>(job, ms)));
  }

  it('8 processes hammering one limit of 200/s admit 200/s ± 5 %, never more than rate × 100 ms + burst in any 100 ms', async () => {
    const rate = 200;
    const burst = 10;
    const runMs = 3000;
    const results = await fleet<{ slots: number[] }>(
      {
        mode: 'rate',
        prefix: `fleet-rate:${Date.now()}`,
        rate,
        burst,
        runMs,
        loops: 4,
      },
      runMs + 20_000,
    );
    const slots = results.flatMap((r) => r.slots).sort((a, b) => a - b);
    expect(results.every((r) => r.slots.length > 0)).toBe(true);
    // The steady middle of the run, when every process was hammering: the first 250 ms and the last
    // 250 ms are left out (processes start and stop a few ms apart).
    const from = slots[0]! + 250_000;
    const to = slots[0]! + (runMs - 250) * 1000;
    const steady = slots.filter((s) => s >= from && s < to).length;
    const expected = (rate * (to - from)) / 1e6;
    expect(Math.abs(steady - expected)).toBeLessThanOrEqual(expected * 0.05);
    // Any 100 ms window (slots are server time, so no host clock is involved).
    let most = 0;
    for (let i = 0, j = 0; i < slots.length; i++) {
      while (slots[j]! < slots[i]! - 100_000 + 1) j++;
      most = Math.max(most, i - j + 1);
    }
    expect(most).toBeLessThanOrEqual(rate * 0.1 + burst);
  }, 60_000);

  it('a fleet-wide maxConcurrent of 10 is never exceeded across 8 processes (enter/exit on Redis TIME)', async () => {
    const maxConcurrent = 10;
    const results = await fleet<{ intervals: Array<[number, number]>; refused: number }>(
      {
        mode: 'concurrency',
        prefix: `fleet-conc:${Date.now()}`,
        maxConcurrent,
        runMs: 2000,
        loops: 3,
      },
      30_000,
    );
    const events: Array<[number, number]> = [];
    for (const r of results)
      for (const [enter, exit] of r.intervals) events.push([enter, 1], [exit, -1]);
    // At equal times exits go first: a slot freed and taken in the same µs is not an overlap.
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let most = 0;
    for (const [, step] of events) {
      running += step;
      most = Math.max(most, running);
    }
    expect(most).toBeLessThanOrEqual(maxConcurrent);
    // The limit was actually reached (24 callers for 10 slots), and calls were refused for it.
    expect(most).toBeGreaterThanOrEqual(maxConcurrent - 1);
    expect(results.reduce((n, r) => n + r.refused, 0)).toBeGreaterThan(0);
  }, 60_000);

  it('a SIGKILLed holder’s slots come back within the lease TTL', async () => {
    const prefix = `fleet-kill:${Date.now()}`;
    const leaseTtl = 1000;
    // The spare process: it holds every slot until it is killed.
    const holder = workers[PROCESSES]!;
    holder.send({ mode: 'hold', prefix, maxConcurrent: 10, leaseTtl });
    await holder.waitFor('holding', 10_000);
    const store = new RedisConcurrencyStore({ client: admin, prefix, leaseTtl });
    expect((await store.acquire('fleet', 10)).ok).toBe(false);
    const exited = new Promise((r) => holder.child.once('exit', r));
    holder.child.kill('SIGKILL');
    await exited;
    const killedAt = performance.now();
    for (;;) {
      const grant = await store.acquire('fleet', 10);
      if (grant.ok) {
        store.release('fleet', grant);
        break;
      }
      expect(performance.now() - killedAt).toBeLessThan(leaseTtl + 250);
      await sleep(20);
    }
    expect(performance.now() - killedAt).toBeLessThanOrEqual(leaseTtl + 250);
  }, 40_000);
});
