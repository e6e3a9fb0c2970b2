// Issue 12 item 2 on real Redis: node-redis connections killed (CLIENT KILL) while outcomes
// are being stored. A caller never gets a value whose outcome was not stored (so, once the
// lock expired, the key would run again and its next caller see another value): a complete()
// lost to the kill is retried, or the call fails with IdempotencyStoreError.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IdempotencyStoreError } from '../../src/index.js';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { RedisStore } from '../../src/redis.js';
import type { IdempotencyStore } from '../../src/stores/store.js';
import { describeRedis, redisPort } from '../setup/redis.js';

const KEYS = 40;
// A round's kills miss every complete about one time in four (timing): 6 rounds make a
// run that proves nothing about one in 4,000.
const MAX_ROUNDS = 6;
const NAME = `idem-kill-${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRedis('idempotency on node-redis under CLIENT KILL', () => {
  let admin: Redis;
  let nr: ReturnType<typeof createClient>;

  beforeAll(async () => {
    admin = new Redis({ port: redisPort(), host: '127.0.0.1', lazyConnect: true });
    await admin.connect();
    nr = createClient({
      name: NAME,
      socket: { port: redisPort(), host: '127.0.0.1', reconnectStrategy: () => 10 },
    });
    nr.on('error', () => {});
    await nr.connect();
  });

  afterAll(async () => {
    admin?.disconnect();
    nr?.destroy();
  });

  /** Kills this test's own connection (found by name: other files share the server). */
  async function killOurs(): Promise<void> {
    const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    for (const line of list.split('\n')) {
      if (!line.includes(` name=${NAME} `)) continue;
      const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
      if (id !== undefined) await admin.call('CLIENT', 'KILL', 'ID', id).catch(() => 0);
    }
  }

  it('runs no key twice and gives no two callers of a key different values', async () => {
    const redis = new RedisStore({ client: nr, prefix: `kill:${Date.now()}`, timeout: 1_000 });
    let completeFailures = 0;
    const store: IdempotencyStore = {
      name: redis.name,
      claim: (...a) => redis.claim(...a),
      complete: (...a) =>
        redis.complete(...a).catch((e: unknown) => {
          completeFailures++;
          throw e;
        }),
      release: (...a) => redis.release(...a),
      get: (...a) => redis.get(...a),
    };
    const policy = idempotency({ store, lockTtl: 300 });
    const runs = new Map<string, number>();
    const call = (key: string, ms: number) =>
      policy
        .execute(
          async () => {
            runs.set(key, (runs.get(key) ?? 0) + 1);
            await sleep(ms);
            return { key, nonce: Math.random() };
          },
          { idempotencyKey: key },
        )
        .then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );

    // Operations end one after another over ~150 ms while the connection is killed every
    // few ms, so completes are sent on connections that die under them. Whether a kill
    // lands on a complete is timing: a round in which none did proves nothing, so rounds
    // (with fresh keys) go on until one did, up to MAX_ROUNDS; every round is checked.
    for (let round = 0; round < MAX_ROUNDS && completeFailures === 0; round++) {
      const keys = Array.from({ length: KEYS }, (_, i) => `r${round}k${i}`);
      let killing = true;
      const killer = (async () => {
        while (killing) {
          await killOurs();
          await sleep(2);
        }
      })();
      const first = await Promise.all(keys.map((k, i) => call(k, 20 + i * 4)));
      killing = false;
      await killer;
      await sleep(400); // reconnected, and every lock of round one has expired
      const second = await Promise.all(keys.map((k) => call(k, 1)));

      for (const r of first) {
        if ('error' in r) expect(r.error).toBeInstanceOf(IdempotencyStoreError);
      }
      keys.forEach((k, i) => {
        const a = first[i]!;
        // A caller that got a value has its outcome stored: the key never runs again and
        // every later caller gets that same value.
        if ('value' in a) {
          expect(second[i], `${k}: one value`).toEqual({ value: a.value });
          expect(runs.get(k), `${k} ran once`).toBe(1);
        }
      });
    }
    // The kill did hit stores of outcomes (else this test proves nothing).
    expect(completeFailures).toBeGreaterThan(0);
  }, 30_000);
});
