import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRedis, redisPort } from '../setup/redis.js';
import { connectIoredis } from '../support/redis-clients.js';
import { spawnWorker, type Worker } from './fixtures/spawn-worker.js';

const PROCESSES = 8;
const CALLS = 200;
const KEYS = 50;

describeRedis('idempotency on Redis across processes', () => {
  let io: Redis;
  const workers: Worker[] = [];

  beforeAll(async () => {
    io = await connectIoredis(redisPort());
  });

  afterAll(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    io?.disconnect();
  });

  it(`runs each key exactly once: ${PROCESSES} processes × ${CALLS} concurrent calls on ${KEYS} keys`, async () => {
    const prefix = `exactly-once:${Date.now()}`;
    for (let w = 0; w < PROCESSES; w++) {
      // Every process calls every key 4 times, each in its own order; half use each client.
      const keys = Array.from({ length: CALLS }, (_, i) => `key-${(i * 7 + w * 13) % KEYS}`);
      workers.push(
        spawnWorker({
          mode: 'calls',
          port: redisPort(),
          prefix,
          client: w % 2 === 0 ? 'ioredis' : 'node-redis',
          keys,
        }),
      );
    }
    await Promise.all(workers.map((w) => w.waitFor('ready', 15_000)));
    // All processes start together, so that duplicates race for real.
    for (const w of workers) w.go();
    const results = (await Promise.all(workers.map((w) => w.results(15_000)))).flat();

    expect(results).toHaveLength(PROCESSES * CALLS);
    expect(results.filter((r) => r.error !== undefined)).toEqual([]);
    const valueOf = new Map<string, string>();
    for (const r of results) {
      const seen = valueOf.get(r.key);
      if (seen === undefined) valueOf.set(r.key, r.value!.by);
      else expect(r.value!.by, `every caller of ${r.key} gets the same value`).toBe(seen);
    }
    expect(valueOf.size).toBe(KEYS);
    const counters = await io.mget(
      ...Array.from({ length: KEYS }, (_, k) => `${prefix}:count:key-${k}`),
    );
    expect(counters).toEqual(Array.from({ length: KEYS }, () => '1'));
  }, 20_000);
});
